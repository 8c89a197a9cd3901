"""The cross-chain API: inventory per chain and token, sagas with their legs (in flight or
not), and cross-chain PnL per token, exact as decimal strings, for a viewer."""

from __future__ import annotations

import pytest

from arbbot.crosschain.saga import Leg, Saga
from tests.webapp.api_support import role_client

pytestmark = pytest.mark.django_db
BIG = 2**200 + 7
A, B = 31337, 31338
USDC_A, USDC_B, LINK_A = "0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + "cc" * 20
WALLET = "0x" + "dd" * 20


def _record() -> list[int]:
    from webapp.core import services

    trade = Saga("trade", "t1", state="done", plan={"quote": "USDC", "base": "LINK"}, wallet=WALLET,
                 predicted_profit=BIG, realised_profit=BIG,
                 legs=[Leg(0, "buy", A, USDC_A, LINK_A, 5, 7, state="ok", nonce=3, tx_hash="0x" + "01" * 32,
                           raw_tx="0xsecretbytes", realised_out=7)])
    lost = Saga("trade", "t2", state="compensated", plan={"quote": "USDC"}, wallet=WALLET, realised_profit=-3,
                alert="leg_failed")
    fee = Saga("rebalance", "r1", state="done", plan={"symbol": "USDC"}, wallet=WALLET, realised_profit=-10)
    open_ = Saga("rebalance", "r2", state="in_flight", plan={"symbol": "LINK"}, wallet=WALLET)
    ids = services.xchain_sagas_record([trade, lost, fee, open_])
    store = services.DbSagaStore()
    for saga_id, saga in zip(ids, (trade, lost, fee, open_)):  # created "planned": move each to its state
        with store.step(saga_id) as row:
            row.state, row.realised_profit, row.alert = saga.state, saga.realised_profit, saga.alert
            store.save(row)
    services.xchain_inventory_record({"USDC": {A: BIG, B: 3}}, {"USDC": {A: USDC_A, B: USDC_B}}, WALLET)
    return ids


def test_inventory_sagas_and_pnl_read_exactly() -> None:
    _record()
    viewer = role_client("viewer")
    inventory = viewer.get("/api/xchain/inventory/?symbol=USDC").json()["results"]
    assert {(r["chain_id"], r["balance"]) for r in inventory} == {(A, str(BIG)), (B, "3")}

    sagas = viewer.get("/api/xchain/sagas/").json()["results"]
    assert [s["key"] for s in sagas] == ["r2", "r1", "t2", "t1"]
    t1 = sagas[-1]
    assert t1["realised_profit"] == str(BIG) and t1["legs"][0]["realised_out"] == "7"
    assert "raw_tx" not in t1["legs"][0]
    assert [s["key"] for s in viewer.get("/api/xchain/sagas/?open=true").json()["results"]] == ["r2"]
    assert [s["key"] for s in viewer.get("/api/xchain/sagas/?kind=trade&state=compensated").json()["results"]] == ["t2"]
    assert viewer.get("/api/xchain/sagas/?state=exploded").status_code == 400

    pnl = viewer.get("/api/xchain/pnl/").json()
    assert pnl["by_token"] == [{"token": "USDC", "trades": 2, "trade_profit": str(BIG - 3), "rebalances": 1,
                                "rebalance_cost": "10", "net": str(BIG - 13)}]
    assert pnl["open"] == 1 and pnl["alerts"] == {"leg_failed": 1}
    assert pnl["sagas_by_state"] == {"done": 2, "compensated": 1, "in_flight": 1}


def test_the_dashboard_shows_inventory_sagas_in_flight_and_pnl() -> None:
    _record()
    page = role_client("viewer").get("/").content.decode()
    assert "<h2>Cross-chain</h2>" in page
    assert f"<code>{BIG}</code>" in page  # the inventory, exact
    assert "in flight 1" in page and "leg_failed 1" in page
    assert f"<code>{BIG - 13}</code>" in page  # net PnL of USDC
