"""A block's live sends as one turn of the account's nonce lock (``ExecutionRunner.send_all``
over ``NonceSession.send_many``): signed at consecutive nonces, recorded in one write, sent in
nonce order, each decision taken as its bytes leave; a send that fails stops the rest, whose
nonces go to the next sender; the limits count the batch's earlier sends; a worker killed
between two sends loses nothing and sends nothing twice. Real anvil (the stand-in executor
of tests/execution/executor_helpers.py), Redis, PostgreSQL, and the project's fault proxy
process for a node that refuses a send.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Any, Iterator, Sequence

import pytest
from eth_account import Account

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import LocalSigner
from arbbot.devnet.faultproxy import FaultProxy
from arbbot.execution import stage
from arbbot.execution.follow import FollowPolicy, TxRecord, follow
from arbbot.execution.nonces import NonceManager, NonceSession
from arbbot.execution.runner import ExecutionRunner, RiskLimits
from arbbot.hotstate import HotState
from tests.execution.executor_helpers import (
    STAND_IN_EXECUTOR as EXECUTOR,
    STAND_IN_PROFIT as PROFIT,
    STAND_IN_USDC as USDC,
    STAND_IN_WETH as WETH,
    stand_in_scored as scored,
    two_price_pools,
)

pytestmark = pytest.mark.django_db

POOLS = ["0x" + f"{i:02x}" * 20 for i in range(1, 13)]
CYCLES = [(POOLS[2 * k], POOLS[2 * k + 1]) for k in range(6)]  # each pays, no pool shared


@pytest.fixture(scope="module")
def node(stand_in_node: RpcClient) -> RpcClient:
    return stand_in_node


@pytest.fixture(autouse=True)
def empty_journal() -> None:
    from webapp.core.models import Execution, Transaction

    Transaction.objects.all().delete()
    Execution.objects.all().delete()


@pytest.fixture
def signer(node: RpcClient) -> LocalSigner:
    key = "0x" + secrets.token_hex(32)
    node.call("anvil_setBalance", [Account.from_key(key).address, hex(10**20)])
    return LocalSigner(node, key)


class CountedNonces(NonceManager):
    """The fleet's nonce manager, counting its turns of the lock."""

    turns = 0

    @contextlib.contextmanager
    def session(self) -> Iterator[NonceSession]:
        self.turns += 1
        with super().session() as s:
            yield s


def make_runner(rpc: RpcClient, signer: LocalSigner, hot: HotState, **kw: Any) -> ExecutionRunner:
    hot.put_pools(two_price_pools(POOLS, USDC, WETH), 7, "0x" + "07" * 32)
    return ExecutionRunner(
        rpc=rpc, executor=EXECUTOR, mode="live", pools=hot.get_pools, signer=LocalSigner(rpc, signer.key),
        kill_switch=hot.fleet.kill_switch_engaged, is_orphaned=hot.is_orphaned, hot=hot,
        nonces=CountedNonces(hot, rpc, signer.address), receipt_timeout_s=20.0, **kw,
    )


def batch(*names: str, start: int = 0) -> list[Any]:
    """One opportunity per name, each through a cycle of its own (from ``CYCLES[start]`` on)."""
    return [scored(name, CYCLES[start + k]) for k, name in enumerate(names)]


def pending_count(node: RpcClient, signer: LocalSigner) -> int:
    return int(node.call("eth_getTransactionCount", [signer.address, "pending"]), 16)


def rows() -> dict[str, Any]:
    from webapp.core.models import Transaction

    return {t.path_id: t for t in Transaction.objects.all()}


def status_of(path_id: str) -> str:
    from webapp.core.models import Execution

    return str(Execution.objects.get(path_id=path_id).status)


def settle(runner: ExecutionRunner, done: Any, *, grace_s: float = 30.0) -> None:
    from webapp.core.services import DbJournal

    for _ in range(20):
        runner.rpc.call("evm_mine")
        follow(runner, DbJournal(), FollowPolicy(confirmations=1, signed_grace_s=grace_s))
        if done():
            return
    raise AssertionError("not settled after 20 follow passes")


def test_a_batch_is_signed_in_one_turn_recorded_in_one_write_and_sent_in_nonce_order(
    node: RpcClient, signer: LocalSigner, hot: HotState
) -> None:
    from webapp.core.services import DbJournal

    writes: list[int] = []

    class Journal(DbJournal):
        def tx_signed_all(self, recs: Sequence[TxRecord]) -> None:
            writes.append(len(recs))
            super().tx_signed_all(recs)

    runner = make_runner(node, signer, hot)
    first = pending_count(node, signer)
    node.call("evm_setAutomine", [False])
    try:
        results = stage.execute(batch("a", "b", "c"), {31337: runner}.__getitem__, Journal())
        assert [(r.path_id, r.status) for r in results] == [("a", "sent"), ("b", "sent"), ("c", "sent")]
        assert writes == [3] and runner.nonces.turns == 1  # type: ignore[union-attr]
        by_path = rows()
        assert [by_path[p].nonce for p in "abc"] == [first, first + 1, first + 2]
        assert [by_path[p].tx_hash for p in "abc"] == [r.tx_hash for r in results]
        decided = [r.extra["decided_at"] for r in results]
        assert decided == sorted(decided) and len(set(decided)) == 3  # each as its own send left
        assert int(node.call("txpool_status")["pending"], 16) == 3
        assert hot.nonce_peek(signer.address) == (first + 3, None)  # nothing left in flight
        assert set(hot.open_txs(signer.address)) == {r.tx_hash for r in results}
    finally:
        node.call("evm_setAutomine", [True])
    settle(runner, lambda: all(status_of(p) == "success" for p in "abc"))
    assert pending_count(node, signer) == first + 3
    from webapp.core.models import Execution

    assert {int(e.realised_profit) for e in Execution.objects.all()} == {PROFIT}


def test_a_send_that_fails_stops_the_batch_and_the_next_send_takes_its_nonce(
    node: RpcClient, signer: LocalSigner, hot: HotState
) -> None:
    """The node refuses the second send (HTTP 502 from the fault proxy; the first passes):
    the first is out, the second failed, the third never leaves (its row dropped at once);
    the stored nonce follows the node, so the next batch fills the hole: no gap."""
    proxy = FaultProxy(node.url)
    try:
        runner = make_runner(RpcClient([proxy.url], retries=0), signer, hot)
        first = pending_count(node, signer)
        proxy.set("error", methods=("eth_sendRawTransaction",), spare=1)
        from webapp.core.services import DbJournal

        results = stage.execute(batch("a", "b", "c"), {31337: runner}.__getitem__, DbJournal())
        assert [(r.path_id, r.status) for r in results] == [("a", "sent"), ("b", "failed"), ("c", "dropped")]
        assert results[1].reason.startswith("send failed:")
        assert results[2].reason == "not sent: a send before it in the batch failed; nothing was paid"
        assert proxy.stats()["counts"]["error"] == 1  # the third was never offered to the node
        by_path = rows()
        assert {p: (t.state, t.nonce) for p, t in by_path.items()} == {
            "a": ("sent", first), "b": ("signed", first + 1), "c": ("dropped", first + 2)}
        assert pending_count(node, signer) == first + 1
        assert hot.nonce_peek(signer.address) == (first + 1, None)  # resynced from the node

        proxy.set("pass")  # (b's pools wait for its nonce to be mined: a cycle of its own)
        again = stage.execute([scored("d", CYCLES[3])], {31337: runner}.__getitem__, DbJournal())
        assert [r.status for r in again] == ["sent"]
        assert rows()["d"].nonce == first + 1
    finally:
        proxy.stop()
    runner = make_runner(node, signer, hot)
    settle(runner, lambda: status_of("a") == status_of("d") == "success", grace_s=0)
    assert pending_count(node, signer) == first + 2
    # its nonce went to "d", which was mined: nothing of b was, nor will be
    assert rows()["b"].state == "replaced" and status_of("b") in ("failed", "dropped")


def test_the_limits_count_the_sends_of_the_batch_before_each(
    node: RpcClient, signer: LocalSigner, hot: HotState
) -> None:
    from webapp.core.services import DbJournal

    node.call("evm_setAutomine", [False])  # one base fee for the whole test: one worst case
    try:
        runner = make_runner(node, signer, hot, limits=RiskLimits(max_open_txs=2))
        results = stage.execute(batch("a", "b", "c"), {31337: runner}.__getitem__, DbJournal())
        assert [r.status for r in results] == ["sent", "sent", "dropped"]
        assert results[2].reason == "2 open transactions of the account (2 of them sent just before it), the maximum is 2"

        worst = int(rows()["a"].worst_gas_wei)
        # two open (a and b) reserve 2 worst cases; a limit of 3.5 lets one more through
        runner = make_runner(node, signer, hot, limits=RiskLimits(daily_loss_limit_wei=worst * 7 // 2))
        results = stage.execute(batch("d", "e", "f", start=3), {31337: runner}.__getitem__, DbJournal())
        assert [r.status for r in results] == ["sent", "dropped", "dropped"]
        assert results[1].reason == (
            f"daily loss limit: PnL today 0 wei, {3 * worst} wei reserved by 3 open transactions, this one may cost "
            f"{worst} wei, limit -{worst * 7 // 2} wei"
        )
    finally:
        node.call("evm_setAutomine", [True])


class Died(BaseException):
    """Stands for the worker being killed at that instruction: nothing after it runs."""


class DiesAtSecondSend(RpcClient):
    sends = 0

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        if method == "eth_sendRawTransaction":
            self.sends += 1
            if self.sends == 2:
                raise Died
        return super().call(method, params)


def test_a_worker_killed_between_two_sends_loses_none_and_sends_none_twice(
    node: RpcClient, signer: LocalSigner, hot: HotState
) -> None:
    """Killed after the first of three sends: all three recorded ``signed``, the batch's
    last nonce still in flight. The follow pass finds the first on the node (sent, then
    settled) and drops the two never sent; the next sender re-reads the count from the node
    and takes the second's nonce: no gap, nothing twice."""
    from webapp.core.services import DbJournal

    runner = make_runner(DiesAtSecondSend(node.urls), signer, hot)
    first = pending_count(node, signer)
    with pytest.raises(Died):
        stage.execute(batch("a", "b", "c"), {31337: runner}.__getitem__, DbJournal())
    assert {p: t.state for p, t in rows().items()} == {"a": "signed", "b": "signed", "c": "signed"}
    assert pending_count(node, signer) == first + 1
    assert hot.nonce_peek(signer.address) == (first + 3, first + 2)  # the batch's last in flight

    runner = make_runner(node, signer, hot)
    settle(runner, lambda: status_of("a") == "success" and status_of("b") == status_of("c") == "dropped",
           grace_s=0)
    assert {p: t.state for p, t in rows().items()} == {"a": "confirmed", "b": "dropped", "c": "dropped"}
    later = stage.execute([scored("d", CYCLES[3], block_number=9)], {31337: runner}.__getitem__, DbJournal())
    assert [r.status for r in later] == ["sent"] and rows()["d"].nonce == first + 1
    node.call("evm_mine")
    assert pending_count(node, signer) == first + 2
