"""End to end on real parts: anvil with the genuine contracts, RabbitMQ (this run's vhost),
Redis (this run's prefix), PostgreSQL (this run's test database) and one real Celery
worker process per queue plus beat, started as subprocesses exactly as in production."""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable

import pytest
from eth_utils import keccak
from kombu import Connection

from arbbot.chain.tx import encode_call
from arbbot.devnet.scenarios import balance_of, plant_price_gap, plant_v3_price_gap
from arbbot.types import ScoredOpportunity
from tests.e2e.fleet import QUEUES, ROOT, wait_for  # noqa: F401  (the fleet fixture: conftest.py)

# django_db: makes pytest-django create this run's test database even when only e2e tests run.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


def _executions(django_db_blocker: Any, **filters: Any) -> list[Any]:
    from webapp.core.models import Execution

    with django_db_blocker.unblock():
        return list(Execution.objects.filter(**filters).order_by("id"))


_WETH_EVENTS = {
    # WETH9's events and the sign each gives the balance of the address in its topic 1 / 2
    "0x" + keccak(text="Transfer(address,address,uint256)").hex(): (-1, +1),
    "0x" + keccak(text="Deposit(address,uint256)").hex(): (+1, 0),
    "0x" + keccak(text="Withdrawal(address,uint256)").hex(): (-1, 0),
}


def _weth_delta(dep: Any, receipt: dict[str, Any]) -> int:
    """What one transaction did to the executor's WETH balance, from WETH9's own events."""
    me = "0x" + "0" * 24 + dep.executor.lower()[2:]
    delta = 0
    for entry in receipt["logs"]:
        signs = _WETH_EVENTS.get(entry["topics"][0]) if entry["address"].lower() == dep.weth.lower() else None
        if signs is None:
            continue
        amount = int(entry["data"], 16)
        for topic, sign in zip(entry["topics"][1:3], signs):
            if sign and topic.lower() == me:
                delta += sign * amount
    return delta


def _executor_gain(rpc: Any, dep: Any, receipt: dict[str, Any]) -> int:
    """The executor's WETH gain from this one transaction, from WETH9's events; the block's
    ``balanceOf`` change is checked to be the sum of what its transactions did (one, under
    automine), which ties the events to the balance."""
    mined = int(receipt["blockNumber"], 16)
    if rpc.block_number() <= mined:
        # Read a block's state only once a later block exists. anvil 1.7.1 may answer a read
        # at the head (by number or by hash) with the state of the block being mined on top
        # of it: 18 of 565 reads under two concurrent senders, none once the head had moved
        # on. A clean-clone run failed on it (block 192's balance held block 193's profit).
        rpc.call("evm_mine")
    block = rpc.call("eth_getBlockByNumber", [hex(mined), False])
    hashes = [h.lower() for h in block["transactions"]]
    per_tx = [_weth_delta(dep, rpc.call("eth_getTransactionReceipt", [h])) for h in hashes]
    moved = balance_of(rpc, dep.weth, dep.executor, mined) - balance_of(rpc, dep.weth, dep.executor, mined - 1)
    assert moved == sum(per_tx), f"block {mined}: balance moved {moved}, transactions' events say {per_tx}"
    return per_tx[hashes.index(receipt["transactionHash"].lower())]


def test_planted_gap_is_found_sized_executed_and_profit_is_exact(fleet: dict[str, Any], django_db_blocker: Any) -> None:
    rpc, dep = fleet["rpc"], fleet["dep"]
    weth = dep.weth
    # Let the fleet bootstrap and settle (initial pools are priced consistently).
    wait_for(lambda: _scan_head(fleet) is not None, 60, "the scan stage to publish its first block")
    # The block before the plant: read after it, the head may already be the fleet's trade.
    before_plant = rpc.block_number()
    planted = plant_price_gap(rpc, dep, "WETH", "USDC", 4.0, dex="sushiswap")

    def success() -> Any:
        rows = [
            e for e in _executions(django_db_blocker, status="success")
            if e.block_number > before_plant and planted["pool"]["address"] in _opportunity_pools(django_db_blocker, e)
        ]
        return rows[0] if rows else None

    row = wait_for(success, 90, "an execution through the planted pool")
    assert row.tx_hash.startswith("0x") and len(row.tx_hash) == 66
    receipt = rpc.call("eth_getTransactionReceipt", [row.tx_hash])
    assert int(receipt["status"], 16) == 1
    assert row.gas_used == int(receipt["gasUsed"], 16) > 0
    mined = int(receipt["blockNumber"], 16)
    assert row.mined_block == mined
    # The executor keeps the profit in the start token (WETH): its balance rose by exactly
    # the profit the path stage predicted, to the wei, and the row records that.
    assert row.profit_token == weth
    gained = _executor_gain(rpc, dep, receipt)
    assert gained > 0
    assert gained == int(row.predicted_profit) == int(row.realised_profit)


def test_mixed_v2_v3_cycle_is_executed_with_exact_profit(fleet: dict[str, Any], django_db_blocker: Any) -> None:
    """A gap planted on a genuine V3 pool is closed through a cycle mixing V3 and V2 hops."""
    from webapp.core.models import Opportunity

    rpc, dep = fleet["rpc"], fleet["dep"]
    v3_pools = {p["address"] for p in dep.pools if p["kind"] == "v3"}
    v2_pools = {p["address"] for p in dep.pools if p["kind"] == "v2"}
    before_plant = rpc.block_number()
    planted = plant_v3_price_gap(rpc, dep, "WETH", "USDC", 3000, 3.0)

    def mixed_success() -> Any:
        for e in _executions(django_db_blocker, status="success"):
            pools = set(_opportunity_pools(django_db_blocker, e))
            if e.block_number > before_plant and planted["pool"]["address"] in pools and pools & v2_pools:
                return e
        return None

    row = wait_for(mixed_success, 90, "a mixed V2/V3 cycle through the planted V3 pool")
    with django_db_blocker.unblock():
        opp = Opportunity.objects.filter(block_number=row.block_number, path_id=row.path_id).first()
    assert opp is not None and set(opp.pools) & v3_pools and set(opp.pools) & v2_pools
    receipt = rpc.call("eth_getTransactionReceipt", [row.tx_hash])
    assert int(receipt["status"], 16) == 1
    gained = _executor_gain(rpc, dep, receipt)
    assert gained > 0
    assert gained == int(row.predicted_profit) == int(row.realised_profit)


def test_workers_export_the_metrics_the_dashboards_read(fleet: dict[str, Any]) -> None:
    """Prefork children's counters reach each worker's /metrics (multiprocess mode)."""
    import requests

    def sample(queue: str, name: str) -> float:
        text = requests.get(f"http://127.0.0.1:{fleet['metrics_ports'][queue]}/metrics", timeout=5).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))

    assert sample("scan", 'arbbot_stage_batches_total{stage="scan"}') > 0
    assert sample("path", "arbbot_opportunities_total") > 0
    assert sample("execute", 'arbbot_executions_total{chain="31337",status="success"}') > 0
    assert sample("execute", "arbbot_gas_spent_wei_total") > 0
    assert sample("scan", "arbbot_rpc_requests_total") > 0


def test_stale_opportunity_is_dropped_and_nothing_executes_twice(fleet: dict[str, Any], django_db_blocker: Any) -> None:
    from webapp.core.models import Opportunity
    from workers.tasks import execute

    rpc, dep = fleet["rpc"], fleet["dep"]
    before_plant = rpc.block_number()
    planted = plant_price_gap(rpc, dep, "WETH", "DAI", 4.0, dex="uniswap")
    done = wait_for(
        lambda: [
            e for e in _executions(django_db_blocker, status="success")
            if e.block_number > before_plant and planted["pool"]["address"] in _opportunity_pools(django_db_blocker, e)
        ],
        90, "an execution through the second planted pool",
    )[0]
    with django_db_blocker.unblock():
        opp_row = Opportunity.objects.filter(
            chain_id=done.chain_id, block_number=done.block_number, path_id=done.path_id
        ).first()
    assert opp_row is not None
    wire = _execute_message(opp_row, opp_row.block_number, opp_row.block_hash)
    ScoredOpportunity.from_wire(wire)  # a well-formed message
    # 1. The same opportunity delivered again: the claim makes it a no-op.
    execute.execute.delay([wire])
    # 2. The same cycle seen again one block later, after the gap was already taken: stale.
    stale = json.loads(json.dumps(wire))
    stale["opportunity"]["block_number"] = opp_row.block_number + 1
    execute.execute.delay([stale])
    dropped = wait_for(
        lambda: _executions(
            django_db_blocker, block_number=opp_row.block_number + 1, path_id=opp_row.path_id, status="dropped"
        ),
        60, "the stale opportunity to be recorded as dropped",
    )[0]
    assert "re-validation" in dropped.reason or "stale" in dropped.reason
    assert dropped.tx_hash == ""  # nothing was sent
    time.sleep(1.0)  # give the duplicate every chance to (wrongly) run
    same = _executions(django_db_blocker, block_number=opp_row.block_number, path_id=opp_row.path_id)
    assert len(same) == 1 and same[0].status == "success"
    stale_rows = _executions(django_db_blocker, block_number=opp_row.block_number + 1, path_id=opp_row.path_id)
    assert len(stale_rows) == 1
    # Every transaction the fleet sent is recorded once: no hash appears twice.
    hashes = [e.tx_hash for e in _executions(django_db_blocker) if e.tx_hash]
    assert len(hashes) == len(set(hashes))


def test_opportunity_from_an_orphaned_block_never_reaches_execution(
    fleet: dict[str, Any], django_db_blocker: Any
) -> None:
    """After a reorg the scan stage marks the orphaned block; an opportunity computed on it
    that arrives at the execute stage afterwards is dropped, nothing is sent."""
    from workers import runtime

    kill_switch = runtime.hotstate(fleet["dep"].chain_id).fleet
    # The kill switch keeps the fleet from sending (and so mining) while the chain is reorged.
    kill_switch.set_kill_switch(True)
    try:
        time.sleep(2.0)  # let an in-flight execution finish
        _reorged_opportunity_is_dropped(fleet, django_db_blocker)
    finally:
        kill_switch.set_kill_switch(False)


def _reorged_opportunity_is_dropped(fleet: dict[str, Any], django_db_blocker: Any) -> None:
    from webapp.core.models import Opportunity
    from workers import runtime
    from workers.tasks import execute

    rpc, dep = fleet["rpc"], fleet["dep"]
    hot = runtime.hotstate(dep.chain_id)
    plant_price_gap(rpc, dep, "WETH", "LINK", 2.0, dex="uniswap")
    head = rpc.call("eth_getBlockByNumber", ["latest", False])
    orphan, number = head["hash"].lower(), int(head["number"], 16)
    wait_for(lambda: _scan_head(fleet) == (number, orphan), 30, "the scan stage to publish the block")
    accounts = rpc.call("eth_accounts")
    rpc.call("anvil_reorg", [1, [[{"from": accounts[7], "to": accounts[6], "value": "0x1"}, 0]]])
    assert rpc.call("eth_getBlockByNumber", [hex(number), False])["hash"].lower() != orphan
    wait_for(lambda: hot.is_orphaned(orphan), 30, "the orphaned block to be marked")

    with django_db_blocker.unblock():
        executed = {(e.block_number, e.path_id) for e in _executions(django_db_blocker)}
        template = next(o for o in Opportunity.objects.order_by("-id") if (number, o.path_id) not in executed)
    wire = _execute_message(template, number, orphan)
    execute.execute.delay([wire])
    row = wait_for(
        lambda: _executions(django_db_blocker, block_number=number, path_id=template.path_id, status="dropped"),
        30, "the orphaned opportunity to be recorded",
    )[0]
    assert "orphaned" in row.reason and row.tx_hash == ""


def test_malformed_messages_are_dead_lettered_and_the_fleet_goes_on(fleet: dict[str, Any]) -> None:
    from workers.celery_app import app
    from workers.tasks import scan

    sent = {
        app.send_task("workers.tasks.path.find", args=[{"chain_id": "not-a-number", "states": "nope"}]).id,
        app.send_task("workers.tasks.execute.execute", args=[[{"opportunity": {"pools": ["0x12"]}}]]).id,
        app.send_task("workers.tasks.ml.score", args=["not a list"]).id,
        app.send_task("workers.tasks.nonexistent", args=[], queue="path").id,
    }

    seen: list[dict[str, Any]] = []
    with Connection(os.environ["ARBBOT_BROKER_URL"]) as conn:
        from workers.queues import DEAD_LETTER_QUEUE, celery_queues

        dlq = next(q for q in celery_queues() if q.name == DEAD_LETTER_QUEUE)
        queue = conn.SimpleQueue(dlq, no_ack=True)

        def drain() -> bool:
            try:
                while True:
                    msg = queue.get(timeout=0.5)
                    if msg.headers.get("id") in sent:
                        seen.append({"task": msg.headers.get("task"), "death": msg.headers.get("x-death"),
                                     "reason": msg.headers.get("x-arbbot-reason")})
            except queue.Empty:
                pass
            return len(seen) >= len(sent)

        wait_for(drain, 60, "four messages in the dead-letter queue", poll_s=0)
        queue.close()
    tasks = sorted(str(m["task"]) for m in seen)
    assert tasks == sorted(
        ["workers.tasks.path.find", "workers.tasks.execute.execute", "workers.tasks.ml.score",
         "workers.tasks.nonexistent"]
    )
    # a malformed message carries its reason; the unknown task was rejected by Celery itself
    by_task = {m["task"]: m for m in seen}
    for name in ("workers.tasks.path.find", "workers.tasks.execute.execute", "workers.tasks.ml.score"):
        assert by_task[name]["reason"].startswith("malformed: "), by_task[name]
    assert by_task["workers.tasks.nonexistent"]["death"][0]["reason"] == "rejected"
    # Still alive: a real task is processed after the bad ones.
    before = _scan_head(fleet)
    fleet["rpc"].call("evm_mine")
    scan.scan_chain.delay(fleet["dep"].chain_id)
    wait_for(lambda: (_scan_head(fleet) or (0,))[0] > (before or (0,))[0], 30, "the scan stage to move on")


def _committed(django_db_blocker: Any, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on a fresh database connection (another thread), so its writes commit at
    once instead of inside the test's transaction."""
    import threading

    from django.db import connection

    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        finally:
            connection.close()

    with django_db_blocker.unblock():
        t = threading.Thread(target=run)
        t.start()
        t.join()
    return out["value"]


def _execute_message(row: Any, block_number: int, block_hash: str) -> dict[str, Any]:
    """An execute-queue message for the cycle of a recorded Opportunity row, as seen at
    ``(block_number, block_hash)``."""
    return {
        "opportunity": {
            "chain_id": row.chain_id, "block_number": block_number, "block_hash": block_hash,
            "path_id": row.path_id, "pools": row.pools, "tokens": row.tokens,
            "amount_in": str(row.amount_in), "amount_out": str(row.amount_out),
            "gas_estimate": 1, "gas_price_wei": "1", "gas_cost": str(row.gas_cost),
        },
        "score": 1.0, "decision": "execute",
    }


def _scan_head(fleet: dict[str, Any]) -> tuple[int, str] | None:
    from workers import runtime

    return runtime.hotstate(fleet["dep"].chain_id).head()


def _opportunity_pools(django_db_blocker: Any, execution: Any) -> list[str]:
    from webapp.core.models import Opportunity

    with django_db_blocker.unblock():
        o = Opportunity.objects.filter(
            chain_id=execution.chain_id, block_number=execution.block_number, path_id=execution.path_id
        ).first()
    return list(o.pools) if o else []


def test_fee_on_transfer_token_is_excluded_with_its_reason(fleet: dict[str, Any], django_db_blocker: Any) -> None:
    """A fee-on-transfer token listed on both DEXes at different prices looks like free money;
    the scan stage's transfer probe flags it, the path stage excludes it and records why, and
    no execution goes through its pools."""
    from arbbot.chain.tx import deploy_unlocked, send_unlocked
    from arbbot.devnet.scenarios import fund_token
    from tests.chain.devchain import compile_solidity
    from tests.chain.test_token_checks import NONSTANDARD_TOKENS_SOL
    from webapp.core.models import Opportunity, Token

    rpc, dep = fleet["rpc"], fleet["dep"]
    deployer = dep.deployer
    fot = deploy_unlocked(rpc, deployer, compile_solidity(NONSTANDARD_TOKENS_SOL)["BurnTwoPercentToken"],
                          ["uint256"], [10**30])
    pairs = []
    for dex, price in (("uniswap", 1_000), ("sushiswap", 1_100)):  # a 10% gap between the DEXes
        factory = dep.dex(dex)["factory"]
        send_unlocked(rpc, deployer, to=factory, data=encode_call("createPair(address,address)", [fot, dep.weth]))
        pair = "0x" + rpc.eth_call(factory, encode_call("getPair(address,address)", [fot, dep.weth]))[-40:]
        fund_token(rpc, dep, "WETH", pair, 50 * 10**18)
        send_unlocked(rpc, deployer, to=fot, data=encode_call("transfer(address,uint256)", [pair, 50 * price * 10**18]))
        send_unlocked(rpc, deployer, to=pair, data=encode_call("mint(address)", [deployer]))
        pairs.append(pair.lower())

    def recorded() -> Any:
        with django_db_blocker.unblock():
            return Token.objects.filter(address=fot.lower()).exclude(excluded_reason="").first()

    token = wait_for(recorded, 60, "the fee-on-transfer token to be recorded as excluded")
    assert token.excluded_reason.startswith("fee-on-transfer")
    rpc.call("evm_mine")
    time.sleep(2.0)  # a few more pipeline rounds over the listed pairs
    with django_db_blocker.unblock():
        through = [o for o in Opportunity.objects.filter(chain_id=dep.chain_id) if set(o.pools) & set(pairs)]
    assert through == []
    assert not [e for e in _executions(django_db_blocker) if set(_opportunity_pools(django_db_blocker, e)) & set(pairs)]


def test_executions_left_pending_by_a_dead_worker_are_reconciled(fleet: dict[str, Any], django_db_blocker: Any) -> None:
    """A claimed execution whose worker died is finished from the chain by the journal's
    follow task (its transaction was signed and sent) or marked failed by reconcile
    (nothing was signed); nothing stays pending and nothing is re-sent."""
    import datetime as dt

    from django.utils import timezone

    from webapp.core.models import Execution, Transaction
    from workers.tasks import execute

    plant_price_gap(fleet["rpc"], fleet["dep"], "WETH", "UNI", 3.0, dex="sushiswap")
    done = wait_for(lambda: _executions(django_db_blocker, status="success"), 90, "a successful execution")[-1]
    old = timezone.now() - dt.timedelta(minutes=10)

    def create_rows() -> tuple[Any, Any]:
        # The worker of ``done`` died right after sending: its row says pending, its
        # transaction's row says signed, as the journal had them at that moment.
        Execution.objects.filter(pk=done.pk).update(status="pending", mined_block=None, realised_profit=0,
                                                    gas_used=0, reason="")
        Transaction.objects.filter(tx_hash=done.tx_hash).update(state="signed", created_at=old, mined_block=None,
                                                                 mined_block_hash="")
        unsent = Execution.objects.create(
            created_at=old, chain_id=done.chain_id, block_number=done.block_number, path_id="crashed-before-send",
            status="pending", profit_token=done.profit_token,
        )
        return Execution.objects.get(pk=done.pk), unsent

    # The workers must see the rows: write them committed, outside this test's transaction.
    sent, unsent = _committed(django_db_blocker, create_rows)
    execute.reconcile.delay(60.0)

    def finished() -> Any:
        with django_db_blocker.unblock():
            rows = {e.path_id: e for e in Execution.objects.filter(pk__in=[sent.pk, unsent.pk])}
        return rows if all(r.status not in ("pending", "sent", "mined") for r in rows.values()) else None

    rows = wait_for(finished, 60, "the pending executions to be finished")
    assert rows[done.path_id].status == "success"
    assert rows[done.path_id].tx_hash == done.tx_hash
    assert rows[done.path_id].realised_profit == done.realised_profit
    assert rows[done.path_id].gas_used == done.gas_used
    assert rows["crashed-before-send"].status == "failed"
    assert "nothing was sent" in rows["crashed-before-send"].reason
    with django_db_blocker.unblock():
        assert Transaction.objects.get(tx_hash=done.tx_hash).state == "confirmed"
    # Nothing was sent for either: the one has the transaction it had, the other none.
    with django_db_blocker.unblock():
        assert Transaction.objects.filter(path_id=done.path_id, block_number=done.block_number).count() == 1
        assert not Transaction.objects.filter(path_id="crashed-before-send").exists()
