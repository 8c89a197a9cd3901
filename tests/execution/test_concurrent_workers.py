"""The execute stage in real OS processes on one account: 8 workers, 500 opportunities,
every batch delivered twice (as a broker redelivers after a lost ack); and workers killed
with SIGKILL right after signing and right after sending. Real anvil (a stand-in executor
that always pays), Redis and PostgreSQL (the test database, committed rows)."""

from __future__ import annotations

import multiprocessing as mp
import os
import secrets
import signal
from typing import Any, Iterator

import pytest
import redis
from eth_account import Account

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import wait_receipt
from arbbot.devnet.anvil import start_anvil
from arbbot.hotstate import HotState
from tests.execution.executor_helpers import stand_in_executor, two_price_pools

pytestmark = pytest.mark.django_db(transaction=True)

WETH, USDC = "0x" + "e0" * 20, "0x" + "c0" * 20
EXECUTOR = "0x" + "ee" * 20
PROFIT = 3 * 10**15
POOLS = ["0x" + f"{i:040x}" for i in range(1, 41)]
OPPORTUNITIES, PROCESSES, BATCH = 500, 8, 25


@pytest.fixture(scope="module")
def node() -> Iterator[str]:
    with start_anvil() as anvil:
        RpcClient(anvil.url).call("anvil_setCode", [EXECUTOR, stand_in_executor(PROFIT)])
        yield anvil.url


@pytest.fixture
def key(node: str) -> str:
    key = "0x" + secrets.token_hex(32)
    RpcClient(node).call("anvil_setBalance", [Account.from_key(key).address, hex(10**22)])
    return key


def opportunity_wire(n: int) -> dict[str, Any]:
    from arbbot.types import Opportunity, ScoredOpportunity

    k = n % (len(POOLS) // 2)
    return ScoredOpportunity(
        opportunity=Opportunity(
            chain_id=31337, block_number=7, block_hash="0x" + "07" * 32, path_id=f"c-{n}",
            pools=(POOLS[2 * k], POOLS[2 * k + 1]), tokens=(WETH, USDC, WETH), amount_in=10**18,
            amount_out=10**18 + 4 * 10**15, gas_estimate=200_000, gas_price_wei=10**9, gas_cost=2 * 10**14,
        ),
        score=1.0,
        decision="execute",
    ).to_wire()


def _runner(url: str, prefix: str, key: str) -> Any:
    """A live runner on the stand-in executor. Its nonce lock expires after 5 s, not the
    fleet's 120 s, so a killed holder does not keep the next test waiting that long."""
    from arbbot.chain.tx import LocalSigner
    from arbbot.execution.nonces import NonceManager
    from arbbot.execution.runner import ExecutionRunner

    rpc = RpcClient(url, timeout_s=20.0)
    hot = HotState(redis.Redis.from_url(os.environ.get("ARBBOT_REDIS_URL", "redis://127.0.0.1:6379/0")), prefix,
                   31337)
    signer = LocalSigner(rpc, key, chain_id=31337)
    return ExecutionRunner(rpc=rpc, executor=EXECUTOR, mode="live", pools=hot.get_pools, signer=signer,
                           nonces=NonceManager(hot, rpc, signer.address, lock_ttl_s=5.0), chain_id=31337)


def _django(db_name: str) -> None:
    os.environ["ARBBOT_DATABASE_NAME"] = db_name
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()


def _worker(url: str, db_name: str, prefix: str, key: str, batches: Any, out: Any) -> None:
    """One execute worker process: takes batches until told to stop."""
    _django(db_name)
    from arbbot.execution import stage
    from arbbot.types import ScoredOpportunity
    from webapp.core.services import DbJournal

    runner, errors, statuses = _runner(url, prefix, key), [], []
    while (batch := batches.get(timeout=120)) is not None:
        try:
            for r in stage.execute([ScoredOpportunity.from_wire(w) for w in batch], {31337: runner}.__getitem__,
                                   DbJournal()):
                statuses.append(r.status)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    out.put((os.getpid(), statuses, errors))


def _dies(url: str, db_name: str, prefix: str, key: str, where: str, wire: dict[str, Any]) -> None:
    """An execute worker killed (SIGKILL, no cleanup) right after signing or after sending."""
    _django(db_name)
    from arbbot.execution import stage
    from arbbot.types import ScoredOpportunity
    from webapp.core.services import DbJournal

    class Journal(DbJournal):
        def tx_signed(self, *recs: Any) -> None:
            super().tx_signed(*recs)
            if where == "signed":
                os.kill(os.getpid(), signal.SIGKILL)

        def tx_sent(self, tx_hash: str, **kw: Any) -> None:
            if where == "sent":
                os.kill(os.getpid(), signal.SIGKILL)
            super().tx_sent(tx_hash, **kw)

    stage.execute([ScoredOpportunity.from_wire(wire)], {31337: _runner(url, prefix, key)}.__getitem__, Journal())


def _db_name() -> str:
    from django.db import connection

    return str(connection.settings_dict["NAME"])


def test_eight_worker_processes_500_opportunities_each_nonce_once_nothing_sent_twice(
    node: str, key: str, hot: HotState
) -> None:
    from webapp.core.models import Execution, Transaction

    hot.put_pools(two_price_pools(POOLS, USDC, WETH), 7, "0x" + "07" * 32)
    wires = [opportunity_wire(n) for n in range(OPPORTUNITIES)]
    batches = [wires[i:i + BATCH] for i in range(0, OPPORTUNITIES, BATCH)]
    ctx = mp.get_context("spawn")
    queue, out = ctx.Queue(), ctx.Queue()
    for b in batches + batches:  # every batch delivered twice
        queue.put(b)
    for _ in range(PROCESSES):
        queue.put(None)
    procs = [ctx.Process(target=_worker, args=(node, _db_name(), hot.prefix, key, queue, out))
             for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    reports = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=30)

    assert [e for _, _, errors in reports for e in errors] == []
    statuses = [s for _, st, _ in reports for s in st]
    assert len(statuses) == OPPORTUNITIES and set(statuses) == {"sent"}  # the second deliveries claimed nothing
    assert Execution.objects.count() == OPPORTUNITIES
    txs = list(Transaction.objects.all())
    assert len(txs) == OPPORTUNITIES and len({t.path_id for t in txs}) == OPPORTUNITIES  # one each, none twice
    assert sorted(t.nonce for t in txs) == list(range(OPPORTUNITIES))  # every nonce once, no gap
    rpc = RpcClient(node)
    address = Account.from_key(key).address
    # the node mines what was sent in its own time (anvil mines a block a transaction, after
    # its reply: on a slow machine ~100 of the 500 were still to be mined when the workers
    # were done). A sender's transactions are mined in nonce order, so once the last nonce's
    # is, every one is; one never taken would keep it out and time out here
    wait_receipt(rpc, max(txs, key=lambda t: t.nonce).tx_hash)
    assert int(rpc.call("eth_getTransactionCount", [address, "latest"]), 16) == OPPORTUNITIES
    receipts = rpc.batch([("eth_getTransactionReceipt", [t.tx_hash]) for t in txs])
    assert all(r is not None and int(r["status"], 16) == 1 for r in receipts)


@pytest.mark.parametrize("where", ["signed", "sent"])
def test_a_worker_killed_right_after_signing_or_sending_sends_at_most_once_and_ends_final(
    node: str, key: str, hot: HotState, where: str
) -> None:
    from webapp.core.models import Execution, Transaction
    from webapp.core.services import DbJournal

    from arbbot.execution.follow import FollowPolicy, follow

    hot.put_pools(two_price_pools(POOLS, USDC, WETH), 7, "0x" + "07" * 32)
    rpc = RpcClient(node)
    address = Account.from_key(key).address
    before = int(rpc.call("eth_getTransactionCount", [address, "pending"]), 16)
    ctx = mp.get_context("spawn")
    p = ctx.Process(target=_dies, args=(node, _db_name(), hot.prefix, key, where, opportunity_wire(1)))
    p.start()
    p.join(timeout=120)
    assert p.exitcode == -signal.SIGKILL

    tx = Transaction.objects.get(path_id="c-1")
    assert tx.state == "signed"  # persisted before the send either way
    sent = int(rpc.call("eth_getTransactionCount", [address, "pending"]), 16) - before
    assert sent == (1 if where == "sent" else 0)
    runner = _runner(node, hot.prefix, key)
    final = {"signed": "dropped", "sent": "success"}[where]
    for _ in range(5):  # the first pass may wait for the dead worker's nonce lock to expire
        follow(runner, DbJournal(), FollowPolicy(confirmations=1, signed_grace_s=0))
        if Execution.objects.get(path_id="c-1").status == final:
            break
    e = Execution.objects.get(path_id="c-1")
    assert e.status == final, e.reason
    assert int(rpc.call("eth_getTransactionCount", [address, "latest"]), 16) - before == sent  # at most once
    if where == "sent":
        assert (e.tx_hash, int(e.realised_profit), e.gas_used > 0) == (tx.tx_hash, PROFIT, True)
        from webapp.core.selectors import pnl_today_wei

        # its gas counts in the loss limit (the profit is in WETH, 0xe0.. here is not the chain's WETH)
        assert pnl_today_wei(31337, "0x" + "00" * 20) == -e.gas_used * int(e.gas_price_wei)
    else:
        assert (e.gas_used, e.tx_hash) == (0, "")
    assert not hot.open_txs(address.lower())  # nothing left reserved
    # the next send takes the next nonce: no gap, no collision
    from arbbot.execution import stage
    from arbbot.types import ScoredOpportunity

    [r] = stage.execute([ScoredOpportunity.from_wire(opportunity_wire(2))], {31337: runner}.__getitem__, DbJournal())
    assert r.status == "sent"
    assert Transaction.objects.get(path_id="c-2").nonce == before + sent
