"""The console in a real browser (Debian's chromium driven by Playwright, no browser
download) against the live Django server, while a devnet fleet runs (``tests.e2e.fleet``:
anvil with the genuine contracts, one real Celery worker per queue and beat, live mode).

An operator logs in and watches the overview update without a reload as the fleet closes a
planted price gap, opens that execution and reads predicted against realised, engages the
kill switch and sees the next gap dropped with nothing sent; a viewer sees no button and is
refused when posting anyway. Screenshots of every step go to a tmp dir (printed), and with
``ARBBOT_README_SCREENSHOT=1`` the overview's also to ``docs/img/overview.png``."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.e2e.fleet import QUEUES, ROOT, run_fleet, wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
EXPLORER = "https://explorer.devnet.test"
README_PNG = ROOT / "docs" / "img" / "overview.png"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (make validators)"),
]


def _purge_stage_queues() -> None:
    """An earlier fleet of this run (tests/e2e) may have left messages for the same chain id
    in this run's vhost: this fleet starts from empty queues."""
    from django.conf import settings
    from kombu import Connection

    with Connection(settings.ARBBOT.broker_url, connect_timeout=5) as conn:
        for q in QUEUES:
            channel = conn.channel()
            try:
                channel.queue_purge(q)
            except Exception:  # not declared yet
                pass


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, django_db_setup: Any, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    _purge_stage_queues()
    yield from run_fleet(tmp_path_factory, django_db_setup, django_db_blocker)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots: {path}")
    return path


@pytest.fixture
def browser(live_server: Any) -> Iterator[Any]:
    """Function-scoped: Playwright's event loop must be gone before the live server's
    transactional database is flushed after the test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # as root (CI) chromium needs --no-sandbox
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def _login(browser: Any, base: str, user: str, password: str) -> Any:
    page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{base}/")
    assert "/accounts/login/" in page.url  # every page needs a login
    page.fill("#id_username", user)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    return page


def _executions(**filters: Any) -> list[Any]:
    from webapp.core.models import Execution

    return list(Execution.objects.filter(**filters).order_by("id"))


def test_the_console_in_a_browser_while_the_fleet_runs(
    fleet: dict[str, Any], live_server: Any, browser: Any, shots: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Playwright's sync API runs an event loop in this thread; the ORM reads here are the
    # test's own (the live server answers from its thread), so Django's guard may stand down.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect

    from arbbot.devnet.scenarios import plant_price_gap
    from webapp.core import selectors, services
    from webapp.core.models import Chain, Transaction
    from workers import runtime

    rpc, dep, base = fleet["rpc"], fleet["dep"], live_server.url
    kill = runtime.hotstate(dep.chain_id).fleet
    kill.set_kill_switch(False)
    Chain.objects.filter(chain_id=dep.chain_id).update(explorer_url=EXPLORER)
    operator, op_password = services.user_set_role("browser-operator", "operator")
    viewer, viewer_password = services.user_set_role("browser-viewer", "viewer")
    try:
        # --- the operator logs in; the overview is live before anything happened
        page = _login(browser, base, operator.username, str(op_password))
        expect(page.locator("#kill-switch-state")).to_have_text("off")
        wait_for(lambda: runtime.hotstate(dep.chain_id).head() is not None, 60, "the fleet's first scanned block")
        page.evaluate("window.__loaded_once = true")  # gone if the page reloads
        updated = page.locator("#updated").inner_text()
        # HTMX polls every second; the bound is looser for a loaded CI machine, not a measure
        expect(page.locator("#updated")).not_to_have_text(updated, timeout=15_000)
        page.screenshot(path=str(shots / "01-overview-idle.png"), full_page=True)

        # --- a price gap: the fleet closes it, the overview shows it without a reload
        before_plant = rpc.block_number()
        planted = plant_price_gap(rpc, dep, "WETH", "USDC", 4.0, dex="sushiswap")
        row = wait_for(lambda: next(iter(_executions(status="success", block_number__gt=before_plant)), None),
                       90, "an execution closing the planted gap")
        expect(page.locator(f"#executions a[href='/executions/{row.id}/']")).to_have_count(1, timeout=15_000)
        expect(page.locator("#outcomes")).to_contain_text("success")
        expect(page.locator("#profit")).to_contain_text("WETH")
        assert page.evaluate("window.__loaded_once") is True, "the overview reloaded instead of updating in place"
        expect(page.locator("#chart-pnl canvas")).to_have_count(1)  # uPlot drew from the series view
        page.wait_for_function("document.getElementById('charts').dataset.updated > 0")
        page.goto(f"{base}/?window=5m")  # the charts in 5-second buckets: this run's minutes
        page.wait_for_function("document.getElementById('charts').dataset.updated > 0")
        expect(page.locator("#chart-source")).to_contain_text("5 s buckets")
        page.screenshot(path=str(shots / "02-overview-after-trade.png"), full_page=True)
        if os.environ.get("ARBBOT_README_SCREENSHOT") == "1":
            README_PNG.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(README_PNG), full_page=True)

        # --- its detail: predicted against realised (exact: the same base units), explorer link
        page.goto(f"{base}/executions/?chain={dep.chain_id}&status=success")
        page.locator(f"#executions a[href='/executions/{row.id}/']").click()
        page.wait_for_url(f"{base}/executions/{row.id}/")
        row.refresh_from_db()
        expect(page.locator("#prediction")).to_contain_text("predicted at send")
        expect(page.locator("#realised")).to_contain_text(str(int(row.realised_profit)))
        predicted = int(row.final_predicted_profit) or int(row.predicted_profit)
        expect(page.locator("#difference")).to_have_text(selectors.format_amount(int(row.realised_profit) - predicted, 18))
        link = page.locator(f"#transactions a[href='{EXPLORER}/tx/{row.tx_hash}']")
        expect(link).to_have_count(1)
        page.screenshot(path=str(shots / "03-execution.png"), full_page=True)

        # --- the kill switch: engaged from the console, the next gap is dropped, nothing sent
        page.goto(f"{base}/")
        page.click("#kill-switch-button")
        page.wait_for_url(f"{base}/")
        expect(page.locator("#kill-switch-state")).to_have_text("ENGAGED")
        assert kill.kill_switch_engaged(), "the console's button did not engage the fleet's kill switch"
        sent_before = Transaction.objects.count()
        engaged_at = rpc.block_number()
        plant_price_gap(rpc, dep, "WETH", "USDC", 4.0, dex="uniswap")
        dropped = wait_for(
            lambda: next(iter(_executions(reason="kill switch engaged", block_number__gt=engaged_at)), None),
            90, "an execution dropped by the kill switch")
        assert dropped.status == "dropped" and not dropped.tx_hash
        assert Transaction.objects.count() == sent_before
        assert not Transaction.objects.filter(block_number__gt=engaged_at).exists()
        expect(page.locator("#executions")).to_contain_text("kill switch engaged", timeout=15_000)
        page.screenshot(path=str(shots / "04-kill-switch-engaged.png"), full_page=True)

        # --- a viewer: sees the state, has no button, and a forged POST is refused
        vpage = _login(browser, base, viewer.username, str(viewer_password))
        expect(vpage.locator("#kill-switch-state")).to_have_text("ENGAGED")
        expect(vpage.locator("#kill-switch-button")).to_have_count(0)
        csrf = next(c["value"] for c in vpage.context.cookies() if c["name"] == "csrftoken")
        answer = vpage.context.request.post(f"{base}/console/killswitch", form={"engaged": "0"},
                                            headers={"X-CSRFToken": csrf, "Referer": f"{base}/"})
        assert answer.status == 403
        assert kill.kill_switch_engaged(), "a viewer released the kill switch"
        vpage.screenshot(path=str(shots / "05-viewer.png"), full_page=True)

        # --- the operator releases it; logs out
        page.click("#kill-switch-button")
        expect(page.locator("#kill-switch-state")).to_have_text("off")
        assert not kill.kill_switch_engaged()
        page.click("#logout")
        page.wait_for_url(re.compile(r".*/accounts/login/.*"))
        assert planted["pool"]["address"]
    finally:
        kill.set_kill_switch(False)
        # The ORM's connection opened while Playwright's loop ran lives in that context:
        # closed here, or it outlives the run and keeps its test database from being dropped.
        from django.db import connections

        connections.close_all()
