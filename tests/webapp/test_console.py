"""The console's pages without a browser: what each shows, its filters, the partial HTMX
polls, the chart series, the kill-switch button's permissions and CSRF, and that no refresh
counts a whole table (tests/webapp/test_browser.py drives them in chromium)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.webapp.api_support import CHAIN_ID, POOL, USDC, WETH, role_client, seed
from webapp.core import selectors
from webapp.core.models import Chain, Execution, Opportunity, Transaction

TX = "0x" + "ab" * 32
PAGES = ("/", "/opportunities/", "/executions/", "/pools/", "/model/")


@pytest.fixture
def seeded(db: None) -> Chain:
    chain = seed()
    Chain.objects.filter(pk=chain.pk).update(explorer_url="https://scan.example/")
    now = timezone.now()
    Execution.objects.create(
        created_at=now, chain_id=CHAIN_ID, block_number=8, path_id="won", status="success", mode="live",
        profit_token=WETH, tx_hash=TX, gas_used=100_000, gas_price_wei=Decimal(10**9),
        predicted_profit=Decimal(3 * 10**17), final_predicted_profit=Decimal(2 * 10**17),
        realised_profit=Decimal(25 * 10**16), realised_profit_native=Decimal(25 * 10**16), decision_latency_ms=12.5,
    )
    Transaction.objects.create(
        created_at=now, chain_id=CHAIN_ID, block_number=8, path_id="won", sender="0x" + "33" * 20, nonce=4,
        tx_hash=TX, raw_tx="0x00", state="final", gas_limit=300_000, max_fee_per_gas=Decimal(10**9),
        worst_gas_wei=Decimal(3 * 10**14),
    )
    Opportunity.objects.create(
        created_at=now - dt.timedelta(hours=3), chain_id=CHAIN_ID, block_number=2, block_hash="0x" + "00" * 32,
        path_id="old", pools=[POOL], tokens=[USDC, WETH], profit_token=USDC, amount_in=Decimal(10**6),
        amount_out=Decimal(2 * 10**6), gas_cost=Decimal(1), net_profit=Decimal(10**6), score=0.9, decision="skip",
    )
    return chain


def test_every_page_and_its_live_part_for_a_viewer(seeded: Chain) -> None:
    client = role_client("viewer")
    for path in PAGES:
        page = client.get(path)
        assert page.status_code == 200, path
        html = page.content.decode()
        assert 'hx-trigger="every 1s"' in html and "vendor/htmx/htmx.min.js" in html, path
        assert 'action="/accounts/logout/"' in html  # the logout button (a POST with its CSRF token)
        live = client.get(path, HTTP_HX_REQUEST="true")
        assert live.status_code == 200 and "<nav>" not in live.content.decode(), path  # the partial alone
    for name, url in (("Flower", "5555"), ("Grafana", "3000"), ("Jaeger", "16686")):
        assert re.search(rf'href="[^"]*{url}"[^>]*>{name}', client.get("/").content.decode())


def test_anonymous_is_sent_to_the_login_from_every_page(seeded: Chain) -> None:
    for path in (*PAGES, "/executions/1/", "/console/series.json"):
        answer = Client().get(path)
        assert answer.status_code == 302 and answer["Location"].startswith("/accounts/login/"), path


def test_executions_show_predicted_realised_difference_and_explorer_links(seeded: Chain) -> None:
    client = role_client("viewer")
    html = client.get(f"/executions/?chain={CHAIN_ID}&status=success").content.decode()
    won = Execution.objects.get(path_id="won")
    # predicted: the re-sized 0.2 WETH the send was sized on; realised 0.25; difference +0.05
    row = html[html.index(f'href="/executions/{won.id}/"'):]
    row = row[: row.index("</tr>")]
    assert "0.200000" in row and "0.250000" in row and "0.050000" in row
    assert f'href="https://scan.example/tx/{TX}"' in row
    assert f'/executions/{won.id}/' not in client.get(f"/executions/?chain={CHAIN_ID}&status=reverted").content.decode()
    assert f'/executions/{won.id}/' not in client.get("/executions/?token=USDC").content.decode()
    assert f'/executions/{won.id}/' in client.get("/executions/?token=weth").content.decode()
    # by DEX: through the opportunity of the same (chain, block, path); "won" has none
    assert f'/executions/{won.id}/' not in client.get("/executions/?dex=uni").content.decode()

    detail = client.get(f"/executions/{won.id}/").content.decode()
    for text in ("predicted when found", "predicted at send", "0.300000", "0.200000", "250000000000000000",
                 f"https://scan.example/tx/{TX}", "0.000100"):  # gas paid: 100k gas at 1 gwei
        assert text in detail, text
    assert client.get("/executions/999999/").status_code == 404


def test_a_refused_send_shows_the_nodes_answer(seeded: Chain) -> None:
    client = role_client("viewer")
    failed = Execution.objects.create(
        created_at=timezone.now(), chain_id=CHAIN_ID, block_number=9, path_id="refused", status="failed",
        mode="live", profit_token=WETH, reason="send failed: eth_sendRawTransaction: 127.0.0.1:8545: HTTP 502",
    )
    Transaction.objects.create(
        created_at=timezone.now(), chain_id=CHAIN_ID, block_number=9, path_id="refused", sender="0x" + "33" * 20,
        nonce=5, tx_hash="0x" + "cd" * 32, raw_tx="0x00", state="refused", gas_limit=300_000,
        max_fee_per_gas=Decimal(10**9), worst_gas_wei=Decimal(3 * 10**14),
        error="eth_sendRawTransaction: 127.0.0.1:8545: HTTP 502",
    )
    detail = client.get(f"/executions/{failed.id}/").content.decode()
    assert "refused<br><span class=\"muted\">the node answered: eth_sendRawTransaction: 127.0.0.1:8545: HTTP 502" in detail


def test_list_filters_by_chain_dex_token_status_and_time(seeded: Chain) -> None:
    client = role_client("viewer")

    def blocks(query: str) -> list[int]:
        return [o["block_number"] for o in selectors.console_opportunities(selectors.console_filters(
            dict(p.split("=") for p in query.split("&") if p)))]

    assert blocks("") == [7]  # the 3-hour-old one is outside the default hour
    assert blocks("window=24h") == [7, 2]
    assert blocks("window=24h&status=skip") == [2]
    assert blocks("window=24h&token=USDC") == [7, 2]  # a route through USDC, or USDC's profit
    assert blocks("window=24h&dex=uni") == [7, 2]
    assert blocks("window=24h&dex=nosuchdex") == []
    assert blocks(f"window=24h&chain={CHAIN_ID + 1}") == []
    assert blocks("window=forever&chain=x") == [7]  # unknown values: the defaults
    assert "WETH → USDC" in client.get("/opportunities/").content.decode()


def test_pools_show_state_staleness_and_exclusion(seeded: Chain) -> None:
    from arbbot.types import V2PoolState
    from webapp.core import services

    services.pool_exclude(CHAIN_ID, POOL, "operator's decision")
    hot = selectors._hot(CHAIN_ID)
    try:
        hot.put_pools([V2PoolState(POOL, WETH, USDC, 5 * 10**18, 10_000 * 10**6, block_number=40)], 45, "0x" + "45" * 32)
        html = role_client("viewer").get("/pools/?excluded=1").content.decode()
        row = html[html.index('id="pools"'):]
        assert "5.000000 WETH / 10,000.000000 USDC" in row
        assert "<td class=\"num\">40</td><td class=\"num\">5</td>" in row  # changed at 40, head 45
        assert "excluded: operator&#x27;s decision" in row
    finally:
        hot.clear()


def test_the_kill_switch_button_is_for_operators_with_csrf(seeded: Chain) -> None:
    fleet = selectors._hot(CHAIN_ID).fleet
    fleet.set_kill_switch(False)
    try:
        viewer_page = role_client("viewer").get("/").content.decode()
        assert "kill-switch-button" not in viewer_page and "operators may flip it" in viewer_page
        assert role_client("viewer").post("/console/killswitch", {"engaged": "1"}).status_code == 403
        assert not fleet.kill_switch_engaged()
        assert Client().post("/console/killswitch", {"engaged": "1"}).status_code == 302  # to the login
        assert not fleet.kill_switch_engaged()

        operator = role_client("operator")
        assert 'id="kill-switch-button"' in operator.get("/").content.decode()
        assert operator.get("/console/killswitch").status_code == 405  # a GET changes nothing
        assert operator.post("/console/killswitch", {"engaged": "1"}).status_code == 302
        assert fleet.kill_switch_engaged()
        assert ">ENGAGED<" in operator.get("/", HTTP_HX_REQUEST="true").content.decode()

        from django.contrib.auth.models import User

        strict = Client(enforce_csrf_checks=True)
        strict.force_login(User.objects.get(username="operator-user"))
        assert strict.post("/console/killswitch", {"engaged": "0"}).status_code == 403  # no CSRF token
        assert fleet.kill_switch_engaged()
        assert operator.post("/console/killswitch", {"engaged": "0"})["Location"] == "/"
        assert not fleet.kill_switch_engaged()
    finally:
        fleet.set_kill_switch(False)


def test_the_chart_series_are_exact_and_bounded(seeded: Chain) -> None:
    s = role_client("viewer").get("/console/series.json?window=5m").json()
    assert s["window"] == "5m" and s["bucket_s"] == 5 and len(s["t"]) == len(s["opportunities_per_s"]) > 50
    assert s["source"] == "table"
    # 0.25 realised minus 100k gas at 1 gwei, summed exactly
    assert s["pnl_native_wei"] == str(25 * 10**16 - 10**14)
    assert 12.5 in s["p50"]
    assert sum(s["opportunities_per_s"]) * 5 == pytest.approx(1)  # the hour-old one is outside


def test_no_refresh_counts_a_whole_table(seeded: Chain) -> None:
    client = role_client("viewer")
    with CaptureQueriesContext(connection) as ctx:
        for path in PAGES:
            client.get(path, HTTP_HX_REQUEST="true")
        client.get("/console/series.json?window=24h")
    for q in ctx.captured_queries:
        sql = q["sql"]
        for table in ("core_opportunity", "core_execution", "core_transaction"):
            if re.search(rf'FROM "?{table}"?', sql) and not re.search(r"WHERE|LIMIT", sql):
                pytest.fail(f"an unbounded read of {table}: {sql}")
