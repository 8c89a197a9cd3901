"""Cross-chain arbitrage on two real anvil chains and the real database: a planted gap
captured with both legs exact to the wei, the inventory rebalanced through the bridge, and
the compensations (a failed leg unwound, a refunded or stalled transfer) with their alerts."""

from __future__ import annotations

from typing import Any

import pytest

from arbbot.crosschain import engine
from arbbot.crosschain.saga import Rebalance, rebalance_saga
from arbbot.crosschain.strategy import within_band
from arbbot.devnet.scenarios import plant_price_gap
from arbbot.devnet.twochain import CHAIN_A, CHAIN_B, read_xchain_key
from tests.crosschain.conftest import TwoChains, configure, drive

pytestmark = pytest.mark.django_db


def test_planted_gap_is_captured_exactly_per_leg_and_the_inventory_rebalanced(chains2: TwoChains) -> None:
    from webapp.core import services
    from webapp.core.models import XChainSaga

    c = chains2
    # LINK 5 % dearer on chain B: buy it on A, sell the same amount on B, at once
    plant_price_gap(c.b.rpc(), c.two.b, "USDC", "LINK", 5.0, dex="uniswap")
    pair, chains = configure(c, tolerance_bps=200, delay_blocks=2)
    before = engine.read_inventory(chains)
    saga = engine.plan_trade(pair, chains, "trade:gap")
    assert saga is not None and saga.predicted_profit > 0
    buy, sell = saga.legs
    assert (buy.chain_id, sell.chain_id) == (CHAIN_A, CHAIN_B)
    store = services.DbSagaStore()
    saga_id = services.xchain_sagas_record([saga])[0]
    assert services.xchain_sagas_record([saga]) == [saga_id]  # the idempotency key: recorded once

    assert drive(store, chains, saga_id).state == "done"
    done = store.get(saga_id)
    for leg in done.legs:
        assert leg.state == "ok"
        assert leg.realised_out == leg.predicted_out  # to the wei, per leg
    assert done.realised_profit == int(done.plan["gross_profit"]) > 0
    after = engine.read_inventory(chains)
    assert after["USDC"][CHAIN_A] == before["USDC"][CHAIN_A] - buy.amount_in
    assert after["LINK"][CHAIN_A] == before["LINK"][CHAIN_A] + buy.predicted_out
    assert after["LINK"][CHAIN_B] == before["LINK"][CHAIN_B] - sell.amount_in
    assert after["USDC"][CHAIN_B] == before["USDC"][CHAIN_B] + sell.predicted_out
    assert not all(within_band(held, pair.config.band(s)) for s, held in after.items())

    rebalances = engine.plan_rebalances(pair, chains, "rebalance:gap")
    assert {(r.plan["symbol"], r.plan["src_chain"]) for r in rebalances} == {("USDC", CHAIN_B), ("LINK", CHAIN_A)}
    relayer = c.relayer(delay_blocks=2)
    for rid in services.xchain_sagas_record(rebalances):
        assert drive(store, chains, rid, relayer).state == "done"
    final = engine.read_inventory(chains)
    assert all(within_band(held, pair.config.band(s)) for s, held in final.items())
    for r in rebalances:  # each token's total fell by exactly the bridge's fee
        symbol = r.plan["symbol"]
        assert sum(final[symbol].values()) == sum(after[symbol].values()) - int(r.plan["fee"])
    assert set(XChainSaga.objects.values_list("state", flat=True)) == {"done"}


def test_a_refunded_transfer_is_compensated_with_an_alert(chains2: TwoChains) -> None:
    from webapp.core import services

    c = chains2
    _pair, chains = configure(c)
    before = engine.read_inventory(chains)
    saga = rebalance_saga(Rebalance("USDC", CHAIN_A, CHAIN_B, 1_000 * 10**18), chains, "rebalance:refund")
    saga_id = services.xchain_sagas_record([saga])[0]
    result = drive(services.DbSagaStore(), chains, saga_id, c.relayer(failure_rate=1.0, delay_blocks=1))
    assert (result.state, result.alerts) == ("compensated", ["bridge_refunded"])
    assert engine.read_inventory(chains) == before  # the refund returned the full amount


def test_a_stalled_transfer_is_held_with_an_alert(chains2: TwoChains) -> None:
    from webapp.core import services

    c = chains2
    _pair, chains = configure(c, stall_blocks=4)
    before = engine.read_inventory(chains)
    saga = rebalance_saga(Rebalance("LINK", CHAIN_B, CHAIN_A, 10 * 10**18), chains, "rebalance:stall")
    saga_id = services.xchain_sagas_record([saga])[0]
    result = drive(services.DbSagaStore(), chains, saga_id, c.relayer(stall_rate=1.0, delay_blocks=1))
    assert (result.state, result.alerts) == ("held", ["bridge_stalled"])
    held = services.DbSagaStore().get(saga_id)
    assert "held for an operator" in held.error
    after = engine.read_inventory(chains)
    assert after["LINK"][CHAIN_B] == before["LINK"][CHAIN_B] - 10 * 10**18  # burnt, not lost from view


def test_a_failed_leg_is_unwound_on_the_other_chain_with_an_alert(chains2: TwoChains, monkeypatch: Any) -> None:
    from arbbot.devnet.scenarios import swap_v2, fund_token, approve
    from prometheus_client import REGISTRY

    from webapp.core import services
    from workers.tasks import bridge

    c = chains2
    plant_price_gap(c.b.rpc(), c.two.b, "USDC", "LINK", 5.0, dex="uniswap")
    pair, chains = configure(c)
    saga = engine.plan_trade(pair, chains, "trade:unwind")
    assert saga is not None
    saga_id = services.xchain_sagas_record([saga])[0]
    # before the legs are signed, a rival closes the gap on B: the sell leg's floor fails
    rpc_b, dep_b = c.b.rpc(), c.two.b
    pool = dep_b.pool("uniswap", "USDC", "LINK")
    amount = 3_000 * 10**18
    fund_token(rpc_b, dep_b, "LINK", dep_b.deployer, amount)
    approve(rpc_b, dep_b.deployer, dep_b.token("LINK"), dep_b.dex("uniswap")["router"], amount)
    swap_v2(rpc_b, dep_b, dep_b.deployer, pool, dep_b.token("LINK"), amount)

    before_alerts = REGISTRY.get_sample_value("arbbot_xchain_alerts_total", {"alert": "leg_failed"}) or 0.0
    monkeypatch.setenv("ARBBOT_XCHAIN_KEY", read_xchain_key(c.directory))  # the task reads the pair from the db
    state = ""
    for _ in range(10):
        state = bridge.advance(saga_id, requeue=False)
        if state in ("done", "failed", "compensated", "held"):
            break
    assert state == "compensated"
    assert REGISTRY.get_sample_value("arbbot_xchain_alerts_total", {"alert": "leg_failed"}) == before_alerts + 1
    done = services.DbSagaStore().get(saga_id)
    buy, sell, unwind = done.legs
    assert (buy.state, sell.state, unwind.state) == ("ok", "reverted", "ok")
    assert (unwind.chain_id, unwind.token_in, unwind.amount_in) == (buy.chain_id, buy.token_out, buy.realised_out)
    assert done.alert == "leg_failed" and done.realised_profit is not None and done.realised_profit < 0


def test_the_bridge_takes_a_key_once_and_only_its_relayer_completes_it(chains2: TwoChains) -> None:
    from arbbot.chain.tx import TxFailed, check_receipt, encode_call, send_unlocked, wait_receipt
    from arbbot.crosschain.bridge import TransferStatus, transfer_key

    c = chains2
    _pair, chains = configure(c)
    key = transfer_key("bridge:once")
    signer = chains.signer(CHAIN_A)
    fees = chains.fees(CHAIN_A)
    amount = 100 * 10**18
    tx = chains.bridge.send(signer, key, "USDC", amount, CHAIN_A, CHAIN_B, chains.wallet, **fees)
    assert tx is not None
    check_receipt(wait_receipt(c.a.rpc(), tx))
    assert chains.bridge.send(signer, key, "USDC", amount, CHAIN_A, CHAIN_B, chains.wallet, **fees) is None
    call = chains.bridge.send_call(key, "USDC", amount, CHAIN_A, CHAIN_B, chains.wallet)
    again = signer.send(to=call.to, data=call.data, gas=call.gas, **chains.fees(CHAIN_A))
    assert int(wait_receipt(c.a.rpc(), again)["status"], 16) == 0  # the contract refuses the key too
    assert chains.bridge.status(key, CHAIN_A, CHAIN_B) == TransferStatus.PENDING
    complete = encode_call("complete(bytes32,address,address,uint256)",
                           [key, c.two.token("USDC", CHAIN_B), chains.wallet, amount])
    stranger = str(c.b.rpc().call("eth_accounts")[5]).lower()
    with pytest.raises(TxFailed):
        send_unlocked(c.b.rpc(), stranger, to=c.two.bridges[CHAIN_B], data=complete, gas=200_000)
    c.relayer(delay_blocks=0).poll_once()
    assert chains.bridge.status(key, CHAIN_A, CHAIN_B) == TransferStatus.DELIVERED
    with pytest.raises(TxFailed):  # delivered once: the relayer cannot deliver it again
        send_unlocked(c.b.rpc(), c.two.relayer, to=c.two.bridges[CHAIN_B], data=complete, gas=200_000)


def test_dry_run_starts_no_saga_and_the_kill_switch_holds_one_in_flight(chains2: TwoChains, monkeypatch: Any) -> None:
    from arbbot.config import get_settings
    from webapp.core import selectors, services
    from webapp.core.models import XChainInventory
    from workers import runtime
    from workers.tasks import bridge

    c = chains2
    plant_price_gap(c.b.rpc(), c.two.b, "USDC", "LINK", 5.0, dex="uniswap")
    pair, chains = configure(c)
    monkeypatch.setenv("ARBBOT_XCHAIN_KEY", read_xchain_key(c.directory))
    assert get_settings().mode == "dry-run"  # the default: a gap is there, no saga starts
    assert bridge.tick() == [] and not selectors.xchain_open()
    assert XChainInventory.objects.filter(wallet=chains.wallet).count() == 4  # the inventory is still read

    saga = engine.plan_trade(pair, chains, "trade:killswitch")
    assert saga is not None
    saga_id = services.xchain_sagas_record([saga])[0]
    fleet = runtime.hotstate(CHAIN_A).fleet
    fleet.set_kill_switch(True)
    try:
        monkeypatch.setattr(bridge.advance, "apply_async", lambda *a, **k: None)
        assert bridge.advance(saga_id) == "held-by-kill-switch"
        assert services.DbSagaStore().get(saga_id).state == "planned"  # nothing signed, nothing sent
    finally:
        fleet.set_kill_switch(False)
    assert bridge.advance(saga_id, requeue=False) == "done"


def test_a_stalled_leg_is_cancelled_at_its_nonce_and_the_other_unwound(chains2: TwoChains) -> None:
    from arbbot.crosschain.saga import advance
    from webapp.core import services

    c = chains2
    plant_price_gap(c.b.rpc(), c.two.b, "USDC", "LINK", 5.0, dex="uniswap")
    pair, chains = configure(c, stall_blocks=3)
    saga = engine.plan_trade(pair, chains, "trade:stall")
    assert saga is not None
    saga_id = services.xchain_sagas_record([saga])[0]
    store = services.DbSagaStore()
    real_fees = chains.fees
    # the sell leg on B is signed with a fee no block takes: it is never mined
    chains.fees = lambda cid: real_fees(cid) if cid == CHAIN_A else {  # type: ignore[method-assign]
        "max_fee_per_gas": 1, "max_priority_fee_per_gas": 1}
    assert advance(store, chains, saga_id).state == "sent"
    chains.fees = real_fees  # type: ignore[method-assign]
    before_b = int(c.b.rpc().call("eth_getTransactionCount", [chains.wallet, "latest"]), 16)

    result = drive(store, chains, saga_id)
    assert (result.state, result.alerts) == ("compensated", ["leg_failed"])
    done = store.get(saga_id)
    roles = {leg.role: leg for leg in done.legs}
    assert (roles["buy"].state, roles["sell"].state, roles["cancel"].state, roles["unwind"].state) == (
        "ok", "dropped", "ok", "ok")
    assert roles["cancel"].nonce == roles["sell"].nonce and roles["cancel"].chain_id == CHAIN_B
    assert c.b.rpc().call("eth_getTransactionReceipt", [roles["sell"].tx_hash]) is None  # never ran
    assert int(c.b.rpc().call("eth_getTransactionCount", [chains.wallet, "latest"]), 16) == before_b + 1
    assert "cancelled" in done.error


def test_config_apply_checks_each_pair_on_its_chains_and_writes_nothing_on_a_problem(chains2: TwoChains) -> None:
    from django.core.exceptions import ValidationError

    from arbbot.devnet.twochain import xchain_config
    from webapp.core import services
    from webapp.core.models import XChainToken

    c = chains2
    configure(c)
    services.config_apply(xchain_config(c.two), onchain=True)  # the devnet's own section is all there
    bad = xchain_config(c.two)
    pair = bad["xchain"]["pairs"][0]
    nowhere, no_bridge = "0x" + "77" * 20, "0x" + "88" * 20
    pair["tokens"][1]["bridged"]["address"] = nowhere
    pair["bridge"]["contracts"][CHAIN_B] = no_bridge
    with pytest.raises(ValidationError) as err:
        services.config_apply(bad, onchain=True)
    message = " ".join(err.value.messages)
    assert f"xchain.pairs[0] (devnet).tokens[1] (USDC): {nowhere} has no code on chain {CHAIN_B}" in message
    assert f"xchain.pairs[0] (devnet).bridge: contracts: {no_bridge} has no code on chain {CHAIN_B}" in message
    assert "xchain.pairs[0] (devnet): dex: the factory" in message  # no USDC/LINK pool with that USDC
    assert XChainToken.objects.get(symbol="USDC").bridged_address == c.two.tokens["USDC"][CHAIN_B]  # unchanged
