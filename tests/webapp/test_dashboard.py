"""The dashboard shows realised profit per token exactly, recent rows, and the queues."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from webapp.core import services
from tests.webapp.api_support import role_client
from webapp.core.models import Chain, Execution

WETH = "0x" + "11" * 20


@pytest.mark.django_db
def test_dashboard_shows_profit_per_token_and_queues() -> None:
    client = role_client("viewer")
    chain = Chain.objects.create(chain_id=7, name="seven", rpc_urls="http://127.0.0.1:8545", weth=WETH)
    services.token_register(chain, WETH, "WETH", 18)
    for i, profit in enumerate([1_234_567_890_123_456_789, 10**18]):
        Execution.objects.create(
            created_at=timezone.now(), chain_id=7, block_number=100 + i, path_id=f"p{i}", status="success",
            tx_hash="0x" + f"{i:064x}", gas_used=150_000, profit_token=WETH,
            predicted_profit=Decimal(profit), realised_profit=Decimal(profit),
        )
    Execution.objects.create(created_at=timezone.now(), chain_id=7, block_number=102, path_id="p9",
                             status="dropped", reason="stale: the cycle no longer pays")
    html = client.get("/").content.decode()
    assert "2.234568" in html  # 2.234567890123456789 WETH shown to 6 decimals
    assert "2234567890123456789" in html  # the exact base units
    assert "stale: the cycle no longer pays" in html
    for queue in ("scan", "path", "ml", "execute", "bridge", "analytics", "dead_letter"):
        assert f"<td>{queue}</td>" in html
    summary = client.get("/api/summary/").json()
    assert summary["executions_by_status"] == {"success": 2, "dropped": 1}
    assert summary["profit_by_token"][0]["total_base_units"] == "2234567890123456789"


@pytest.mark.django_db
def test_paper_profit_is_shown_apart_from_realised_profit() -> None:
    client = role_client("viewer")
    chain = Chain.objects.create(chain_id=7, name="seven", rpc_urls="http://127.0.0.1:8545", weth=WETH, mode="paper")
    services.token_register(chain, WETH, "WETH", 18)
    common = {"created_at": timezone.now(), "chain_id": 7, "profit_token": WETH}
    Execution.objects.create(block_number=1, path_id="live", status="success", mode="live",
                             realised_profit=Decimal(5 * 10**17), **common)
    Execution.objects.create(block_number=2, path_id="paper", status="simulated", mode="paper",
                             realised_profit=Decimal(3 * 10**17), **common)
    Execution.objects.create(block_number=3, path_id="dry", status="simulated", mode="dry-run",
                             realised_profit=Decimal(0), **common)
    summary = client.get("/api/summary/").json()
    assert [p["total_base_units"] for p in summary["profit_by_token"]] == [str(5 * 10**17)]
    assert [p["total_base_units"] for p in summary["paper_profit_by_token"]] == [str(3 * 10**17)]
    html = client.get("/").content.decode()
    paper = html[html.index('id="paper-profit"'):]
    assert "0.300000" in paper[: paper.index("</table>")]
    assert "seven (7, paper)" in html


@pytest.mark.django_db
def test_api_summary_covers_a_window_never_the_whole_table() -> None:
    client = role_client("viewer")
    chain = Chain.objects.create(chain_id=7, name="seven", rpc_urls="http://127.0.0.1:8545", weth=WETH)
    services.token_register(chain, WETH, "WETH", 18)
    now = timezone.now()
    for i, age in enumerate([dt.timedelta(minutes=2), dt.timedelta(hours=3), dt.timedelta(days=2)]):
        Execution.objects.create(created_at=now - age, chain_id=7, block_number=i, path_id=f"w{i}", status="success",
                                 mode="live", profit_token=WETH, realised_profit=Decimal(10**18 + i))
    by_window = {w: client.get(f"/api/summary/?window={w}").json() for w in ("5m", "24h", "7d")}
    assert by_window["5m"]["executions_by_status"] == {"success": 1}
    assert by_window["24h"]["executions_by_status"] == {"success": 2}
    assert by_window["7d"]["profit_by_token"][0]["total_base_units"] == str(3 * 10**18 + 3)
    assert client.get("/api/summary/").json()["window"] == "24h"  # the default
    bad = client.get("/api/summary/?window=forever")
    assert bad.status_code == 400 and "window" in bad.json()["detail"]
