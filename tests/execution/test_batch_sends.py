"""A block's live sends in one turn of the account's nonce lock (``ExecutionRunner.turn``):
taken at the first send (never in dry-run); each opportunity checked in turn, then the
turn's sends signed at consecutive nonces, recorded in one commit before the first leaves,
and sent in nonce order (``TurnSends.flush``); a send that fails stops the ones after it and
leaves its nonce to the next send; the limits count the turn's earlier sends; a worker
killed between two sends loses nothing and sends nothing twice. Real anvil (the stand-in
executor of tests/execution/executor_helpers.py), Redis, PostgreSQL, and the project's fault
proxy process for a node that refuses a send.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
from typing import Any, Iterator, Sequence

import pytest
import redis
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
    """A live runner as the fleet builds it: the hot state read in one round trip a submit."""
    hot.put_pools(two_price_pools(POOLS, USDC, WETH), 7, "0x" + "07" * 32)
    args: dict[str, Any] = dict(
        rpc=rpc, executor=EXECUTOR, mode="live", pools=hot.get_pools, signer=LocalSigner(rpc, signer.key),
        kill_switch=hot.fleet.kill_switch_engaged, is_orphaned=hot.is_orphaned, hot=hot, reads=hot.send_reads,
        nonces=CountedNonces(hot, rpc, signer.address), receipt_timeout_s=20.0,
    )
    return ExecutionRunner(**{**args, **kw})


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


def reason_of(path_id: str) -> str:
    from webapp.core.models import Execution

    return str(Execution.objects.get(path_id=path_id).reason)


def settle(runner: ExecutionRunner, done: Any, *, grace_s: float = 30.0) -> None:
    from webapp.core.services import DbJournal

    for _ in range(20):
        runner.rpc.call("evm_mine")
        follow(runner, DbJournal(), FollowPolicy(confirmations=1, signed_grace_s=grace_s))
        if done():
            return
    raise AssertionError("not settled after 20 follow passes")


def test_a_batch_sends_in_one_turn_all_recorded_before_the_first_leaves_in_nonce_order(
    node: RpcClient, signer: LocalSigner, hot: HotState
) -> None:
    from webapp.core.services import DbJournal

    order: list[str] = []

    class Journal(DbJournal):
        def tx_signed(self, *recs: TxRecord) -> None:
            paths = "".join(rec.attempt["path_id"] for rec in recs)
            order.append(f"{paths} recorded, {pending_count(node, signer) - first} on the node")
            super().tx_signed(*recs)

    runner = make_runner(node, signer, hot)
    first = pending_count(node, signer)
    node.call("evm_setAutomine", [False])
    try:
        results = stage.execute(batch("a", "b", "c"), {31337: runner}.__getitem__, Journal())
        assert [(r.path_id, r.status) for r in results] == [("a", "sent"), ("b", "sent"), ("c", "sent")]
        assert runner.nonces.turns == 1  # type: ignore[union-attr]
        assert order == ["abc recorded, 0 on the node"]  # one commit, before any of them left
        by_path = rows()
        assert [by_path[p].nonce for p in "abc"] == [first, first + 1, first + 2]
        assert [by_path[p].tx_hash for p in "abc"] == [r.tx_hash for r in results]
        decided = [r.extra["decided_at"] for r in results]
        assert decided == sorted(decided) and len(set(decided)) == 3  # each as its own send left
        assert int(node.call("txpool_status")["pending"], 16) == 3
        assert hot.nonce_peek(signer.address) == (first + 3, None)  # nothing left in flight
        assert set(hot.open_txs(signer.address)) == {r.tx_hash for r in results}
        assert {p: hot.last_trades(list(c)) for p, c in zip("abc", CYCLES)} == {
            p: {pool: (signer.address.lower(), by_path[p].nonce, by_path[p].tx_hash) for pool in c}
            for p, c in zip("abc", CYCLES)}
        assert not hot.nonce_lock(signer.address).locked()  # given back at the batch's end
    finally:
        node.call("evm_setAutomine", [True])
    settle(runner, lambda: all(status_of(p) == "success" for p in "abc"))
    assert pending_count(node, signer) == first + 3
    from webapp.core.models import Execution

    assert {int(e.realised_profit) for e in Execution.objects.all()} == {PROFIT}


class Sends(redis.Connection):
    """A real Redis connection counting what it sends: one command, or one pipeline."""

    sends = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sends += 1
        super().send_packed_command(command, check_health)


def test_a_later_send_of_a_turn_reads_the_hot_state_in_one_round_trip(
    node: RpcClient, signer: LocalSigner, hot: HotState,
) -> None:
    """A batch's submits ask Redis once together, for everything their checks read (the
    kill switch, the orphaned block, the pools, their cooldowns and last trades: the turn
    holds the lock), and nothing else until the turn reads the kill switch once more before
    its sends, then notes the three sends' pools in one round trip. Read one by one, as
    before ``ExecutionRunner.reads``, each submit asked six times. (The nonce take and its
    sent note, the nonce manager's, are on another client here.)"""
    from webapp.core.services import DbJournal

    pool = redis.ConnectionPool.from_url(os.environ.get("ARBBOT_REDIS_URL", "redis://127.0.0.1:6379/0"),
                                         connection_class=Sends)
    counted = HotState(redis.Redis(connection_pool=pool), hot.prefix, hot.chain_id)
    counted.get_pools([POOLS[0]])  # connected: the handshake is not counted
    marks: list[tuple[str, int]] = []

    def reads(**kw: Any) -> Any:
        marks.append(("kill switch" if "pools" not in kw else f"{len(kw['pools'])} pools read", Sends.sends))
        return counted.send_reads(**kw)

    class Journal(DbJournal):
        def tx_signed(self, *recs: TxRecord) -> None:
            marks.append((f"{len(recs)} recorded", Sends.sends))
            super().tx_signed(*recs)

    runner = dataclasses.replace(make_runner(node, signer, hot), hot=counted, reads=reads)
    results = stage.execute(batch("a", "b", "c"), {31337: runner}.__getitem__, Journal())
    marks.append(("done", Sends.sends))
    assert [r.status for r in results] == ["sent"] * 3
    steps = [(what, b - a) for (what, a), (_, b) in zip(marks, marks[1:])]
    assert steps == [("6 pools read", 1), ("kill switch", 1), ("3 recorded", 1)]
    pool.disconnect()


@pytest.mark.parametrize("stop", ["kill switch engaged", "computed on an orphaned block (reorg)"])
def test_the_kill_switch_or_a_reorg_after_a_batchs_reads_stops_all_its_sends(
    node: RpcClient, signer: LocalSigner, hot: HotState, stop: str,
) -> None:
    """The batch's checks read the hot state together, before the first check: the kill
    switch engaged, or the batch's block orphaned by a reorg, right after that read, every
    check passes on it, and the turn's read before its sends drops them all; nothing is
    signed into the journal, nothing leaves, the pools stay free."""
    from webapp.core.services import DbJournal

    calls = 0

    def reads(**kw: Any) -> Any:
        nonlocal calls
        out = hot.send_reads(**kw)
        calls += 1
        if calls == 1 and stop.startswith("kill"):
            hot.fleet.set_kill_switch(True)
        elif calls == 1:
            hot.redis.sadd(hot.key("orphaned"), kw["block_hash"].lower())
        return out

    runner = make_runner(node, signer, hot, reads=reads)
    first = pending_count(node, signer)
    try:
        results = stage.execute(batch("a", "b", "c"), {31337: runner}.__getitem__, DbJournal())
    finally:
        hot.fleet.set_kill_switch(False)
    assert calls == 2
    assert [(r.status, r.reason) for r in results] == [("dropped", f"{stop} before the turn's sends left")] * 3
    assert pending_count(node, signer) == first and rows() == {}
    assert hot.nonce_peek(signer.address)[1] is None  # no nonce was taken
    assert hot.last_trades([p for c in CYCLES[:3] for p in c]) == {}
    if stop.startswith("kill"):  # the pools are free: the next batch (switch off) sends through them
        again = stage.execute(batch("d", "e", "f"), {31337: runner}.__getitem__, DbJournal())
        assert [r.status for r in again] == ["sent"] * 3


def test_reads_older_than_a_round_trip_to_the_node_are_taken_again_under_the_lock(
    node: RpcClient, signer: LocalSigner, hot: HotState,
) -> None:
    """A submit whose re-validation asks the node itself (a batch of one has no replies
    ahead) reads the kill switch and last trades again before signing, though its turn held
    the lock at its first read: engaged during that round trip, the send is dropped."""
    from webapp.core.services import DbJournal

    class Tripping(RpcClient):
        def batch(self, requests: Any, **kw: Any) -> Any:
            if any(method == "eth_call" for method, _ in requests):
                hot.fleet.set_kill_switch(True)
            return super().batch(requests, **kw)

    runner = make_runner(Tripping(node.url), signer, hot)
    first = pending_count(node, signer)
    try:
        results = stage.execute(batch("a"), {31337: runner}.__getitem__, DbJournal())
    finally:
        hot.fleet.set_kill_switch(False)
    assert [(r.status, r.reason) for r in results] == [("dropped", "kill switch engaged")]
    assert runner.nonces.turns == 1  # type: ignore[union-attr]  # primed: the first read held the lock
    assert pending_count(node, signer) == first and rows() == {}


def test_the_days_pnl_is_read_once_a_turn_before_the_first_submit(
    node: RpcClient, signer: LocalSigner, hot: HotState,
) -> None:
    """The stage primes the turn (``Turn.prime``) while the re-validation ahead runs: the
    lock is taken and the day's PnL read under it before the first submit, and every send
    of the batch uses that figure for both its checks. A turn not primed (``submit``, one
    opportunity) reads it before the re-validation and again under the lock."""
    from webapp.core.services import DbJournal

    reads: list[bool] = []  # whether the lock was held at each read

    def pnl() -> int:
        reads.append(hot.nonce_lock(signer.address).locked())
        return 0

    runner = make_runner(node, signer, hot, limits=RiskLimits(daily_loss_limit_wei=10**18), daily_pnl_wei=pnl)
    submitted: list[int] = []
    original = runner._submit

    def counting(*a: object, **kw: object) -> object:
        submitted.append(len(reads))
        return original(*a, **kw)  # type: ignore[arg-type]

    runner._submit = counting  # type: ignore[method-assign]
    results = stage.execute(batch("a", "b", "c"), {31337: runner}.__getitem__, DbJournal())
    assert [r.status for r in results] == ["sent", "sent", "sent"]
    assert reads == [True] and submitted == [1, 1, 1]
    reads.clear()
    assert runner.submit(batch("d")[0], DbJournal()).tx_hash  # type: ignore[union-attr]
    assert reads == [False, True]


def test_a_primed_turn_that_cannot_read_the_pnl_sends_nothing(
    node: RpcClient, signer: LocalSigner, hot: HotState,
) -> None:
    """Fails closed: an unreadable PnL at the priming refuses every send of the turn, and
    the lock is given back at the batch's end."""
    from webapp.core.services import DbJournal

    def pnl() -> int:
        raise ConnectionError("the database is gone")

    runner = make_runner(node, signer, hot, limits=RiskLimits(daily_loss_limit_wei=10**18), daily_pnl_wei=pnl)
    results = stage.execute(batch("a", "b"), {31337: runner}.__getitem__, DbJournal())
    assert [(r.status, r.reason) for r in results] == [
        ("dropped", "daily loss state unknown: ConnectionError: the database is gone")] * 2
    assert not hot.nonce_lock(signer.address).locked()
    assert int(node.call("txpool_status")["pending"], 16) == 0


def test_a_primed_turn_whose_lock_is_busy_drops_every_send_without_waiting_again(
    node: RpcClient, signer: LocalSigner, hot: HotState,
) -> None:
    """Another sender of the account holds the lock: the priming waits once, and each send
    of the batch is dropped with why; nothing is signed or sent."""
    from webapp.core.services import DbJournal

    runner = make_runner(node, signer, hot)
    assert isinstance(runner.nonces, NonceManager)
    runner.nonces.lock_wait_s = 0.2
    other = hot.nonce_lock(signer.address, 30, 0)
    assert other.acquire()
    try:
        results = stage.execute(batch("a", "b", "c"), {31337: runner}.__getitem__, DbJournal())
    finally:
        other.release()
    assert [r.status for r in results] == ["dropped"] * 3
    assert all(f"nonce lock of {signer.address.lower()} not free within 0.2s" in r.reason for r in results), results
    assert runner.nonces.turns == 1 and rows() == {}  # one wait for the lock, not one a send
    assert int(node.call("txpool_status")["pending"], 16) == 0


def test_a_send_made_at_once_takes_the_turns_deferred_ones_with_it(
    node: RpcClient, signer: LocalSigner, hot: HotState,
) -> None:
    """``TurnSends``: one opportunity deferred, the next submitted at once: both leave in
    one go, in order, and the call answers with its own send."""
    from arbbot.execution.runner import Pending, Ready
    from webapp.core.services import DbJournal

    runner = make_runner(node, signer, hot)
    first = pending_count(node, signer)
    with runner.turn(DbJournal(), prime=True) as sends:
        deferred = sends.defer(batch("a")[0])
        assert isinstance(deferred, Ready) and pending_count(node, signer) == first
        now = sends(batch("b", start=1)[0])
        assert sends.flush() == []  # nothing left
    assert isinstance(now, Pending) and now.attempt["path_id"] == "b"
    assert {p: t.nonce for p, t in rows().items()} == {"a": first, "b": first + 1}
    assert rows()["b"].tx_hash == now.tx_hash and pending_count(node, signer) == first + 2


def test_a_dry_run_batch_never_takes_the_nonce_lock(node: RpcClient, signer: LocalSigner, hot: HotState) -> None:
    from webapp.core.services import DbJournal

    runner = make_runner(node, signer, hot)
    runner.mode = "dry-run"
    results = stage.execute(batch("a", "b"), {31337: runner}.__getitem__, DbJournal())
    assert [r.status for r in results] == ["simulated", "simulated"]
    assert runner.nonces.turns == 0 and rows() == {}  # type: ignore[union-attr]


def test_a_send_that_fails_stops_the_turns_later_sends_and_leaves_its_nonce_to_the_next_send(
    node: RpcClient, signer: LocalSigner, hot: HotState
) -> None:
    """The node refuses the second send (HTTP 502 from the fault proxy; the first passes):
    the first is out, the second failed, and the third, signed and recorded with the others,
    is never sent; the count was re-read from the node, so the next batch goes out at the
    second's nonce: no gap. The two rows end ``replaced`` by it, each execution ``failed``
    with its own reason, nothing paid."""
    from webapp.core.services import DbJournal

    proxy = FaultProxy(node.url)
    try:
        runner = make_runner(RpcClient([proxy.url], retries=0), signer, hot)
        first = pending_count(node, signer)
        proxy.set("error", methods=("eth_sendRawTransaction",), spare=1)
        results = stage.execute(batch("a", "b", "c"), {31337: runner}.__getitem__, DbJournal())
        assert [(r.path_id, r.status) for r in results] == [("a", "sent"), ("b", "failed"), ("c", "failed")]
        assert proxy.stats()["counts"]["error"] == 1  # the third was never tried
        assert set(hot.last_trades([p for c in CYCLES[:3] for p in c])) == set(CYCLES[0])  # b's and c's went
        proxy.set("pass")
        again = stage.execute(batch("d", "e", start=3), {31337: runner}.__getitem__, DbJournal())
        assert [(r.path_id, r.status) for r in again] == [("d", "sent"), ("e", "sent")]
        by_path = rows()
        assert {p: (t.state, t.nonce) for p, t in by_path.items()} == {
            "a": ("sent", first), "b": ("refused", first + 1), "c": ("refused", first + 2),
            "d": ("sent", first + 1), "e": ("sent", first + 2)}
        assert "502" in by_path["b"].error and results[1].reason == f"send failed: {by_path['b'].error}"
        assert results[2].reason == by_path["c"].error == (
            f"not sent: the send of nonce {first + 1} before it failed: {by_path['b'].error}")
        assert pending_count(node, signer) == first + 3
    finally:
        proxy.stop()
    runner = make_runner(node, signer, hot)
    settle(runner, lambda: all(status_of(p) == "success" for p in "ade"), grace_s=0)
    # their nonces went to "d" and "e", which were mined: nothing of b or c was, nor will
    # be; each execution keeps its own reason, not "taken by another execution"
    assert {rows()[p].state for p in "bc"} == {"replaced"}
    assert (status_of("b"), reason_of("b")) == ("failed", f"send failed: {rows()['b'].error}; nothing was paid")
    assert (status_of("c"), reason_of("c")) == ("failed", f"{rows()['c'].error}; nothing was paid")


def test_a_refused_send_frees_its_pools_and_ends_failed_with_the_nodes_answer(
    node: RpcClient, signer: LocalSigner, hot: HotState
) -> None:
    """The last send of a batch is refused, so no later send takes its nonce: its pools are
    free at once (their notes named it), and once the follower's grace has passed it finds
    the node without it: the row dropped, the execution failed with the node's answer (not
    "its worker stopped before sending"), the nonce released."""
    from webapp.core.services import DbJournal

    proxy = FaultProxy(node.url)
    try:
        runner = make_runner(RpcClient([proxy.url], retries=0), signer, hot)
        first = pending_count(node, signer)
        proxy.set("error", methods=("eth_sendRawTransaction",), spare=1)
        results = stage.execute(batch("a", "b"), {31337: runner}.__getitem__, DbJournal())
        assert [r.status for r in results] == ["sent", "failed"]
    finally:
        proxy.stop()
    assert set(hot.last_trades(list(CYCLES[0]))) == set(CYCLES[0])  # a's notes stay
    assert hot.last_trades(list(CYCLES[1])) == {}  # b's went with its refusal
    assert hot.forget_traded(CYCLES[0], "0x" + "ab" * 32) == 0  # a note names its own trade only
    assert (rows()["b"].state, rows()["b"].nonce) == ("refused", first + 1)
    runner = make_runner(node, signer, hot)
    settle(runner, lambda: status_of("a") == "success" and rows()["b"].state == "dropped", grace_s=0)
    assert (status_of("b"), reason_of("b")) == ("failed", f"send failed: {rows()['b'].error}; nothing was paid")
    assert pending_count(node, signer) == first + 1 and hot.nonce_peek(signer.address) == (first + 1, None)


def test_a_receipt_read_before_its_block_does_not_drop_our_mined_trade(
    node: RpcClient, signer: LocalSigner, hot: HotState
) -> None:
    """A follow pass reads the account's mined count and the receipts in one JSON-RPC batch,
    which a node may answer in any order: a block mined between the two leaves the count past
    the nonce and no receipt. The pass asks the receipt again and settles our trade instead
    of dropping it as "used by a transaction not in the journal" (seen once in CI)."""
    import time

    from arbbot.execution.follow import FollowReport, _Pass
    from webapp.core.services import DbJournal

    runner = make_runner(node, signer, hot)
    assert [r.status for r in stage.execute(batch("a"), {31337: runner}.__getitem__, DbJournal())] == ["sent"]
    [rec] = DbJournal().txs_open(31337)
    mined = int(node.call("eth_getTransactionCount", [signer.address, "latest"]), 16)
    assert mined == rec.nonce + 1  # automine: already in a block
    report = FollowReport()
    race = _Pass(runner, DbJournal(), FollowPolicy(confirmations=1), node.block_number(), time.time(), report)
    race.group([rec], {}, mined)  # the count saw the block, the receipt read did not
    assert (status_of("a"), rows()["a"].state) == ("success", "confirmed") and report.counts == {
        "mined": 1, "confirmed": 1}


def test_the_limits_count_the_sends_of_the_turn_before_each(
    node: RpcClient, signer: LocalSigner, hot: HotState
) -> None:
    from webapp.core.services import DbJournal

    node.call("evm_setAutomine", [False])  # one base fee for the whole test: one worst case
    try:
        runner = make_runner(node, signer, hot, limits=RiskLimits(max_open_txs=2))
        results = stage.execute(batch("a", "b", "c"), {31337: runner}.__getitem__, DbJournal())
        assert [r.status for r in results] == ["sent", "sent", "dropped"]
        assert results[2].reason == "2 open transactions of the account, the maximum is 2"

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
    """Killed sending the second of three: all three recorded ``signed``, the first on the
    node, the turn's first nonce still in flight. The follow pass finds the first on the
    node (sent, then settled) and drops the other two; the next sender re-reads the count
    from the node and takes the second's nonce: no gap, nothing twice."""
    from webapp.core.services import DbJournal

    runner = make_runner(DiesAtSecondSend(node.urls), signer, hot)
    first = pending_count(node, signer)
    with pytest.raises(Died):
        stage.execute(batch("a", "b", "c"), {31337: runner}.__getitem__, DbJournal())
    assert {p: t.state for p, t in rows().items()} == {"a": "signed", "b": "signed", "c": "signed"}
    assert pending_count(node, signer) == first + 1
    assert hot.nonce_peek(signer.address) == (first + 3, first)  # the turn's nonces in flight

    runner = make_runner(node, signer, hot)
    settle(runner, lambda: status_of("a") == "success" and {status_of("b"), status_of("c")} == {"dropped"},
           grace_s=0)
    assert {p: t.state for p, t in rows().items()} == {"a": "confirmed", "b": "dropped", "c": "dropped"}
    later = stage.execute([scored("d", CYCLES[3], block_number=9)], {31337: runner}.__getitem__, DbJournal())
    assert [r.status for r in later] == ["sent"] and rows()["d"].nonce == first + 1
    node.call("evm_mine")
    assert pending_count(node, signer) == first + 2


def test_a_pass_confirms_a_blocks_trades_with_one_canonical_read_and_reads_the_journal_in_two_queries(
    node: RpcClient, signer: LocalSigner, hot: HotState, monkeypatch: pytest.MonkeyPatch,
    django_assert_num_queries: Any,
) -> None:
    """Three trades mined in one block: the follow pass reads the open transactions and
    their executions in two queries whatever their number, asks the block's canonical hash
    once, and confirms each trade in one database transaction (a failure while recording
    the outcome leaves it ``mined``, for the next pass)."""
    from webapp.core import services
    from webapp.core.services import DbJournal

    node.call("evm_setAutomine", [False])
    try:
        runner = make_runner(node, signer, hot)
        results = stage.execute(batch("a", "b", "c"), {31337: runner}.__getitem__, DbJournal())
        assert [r.status for r in results] == ["sent"] * 3
        node.call("evm_mine")
    finally:
        node.call("evm_setAutomine", [True])
    with django_assert_num_queries(2):
        records = DbJournal().txs_open(31337)
    assert sorted(r.attempt["path_id"] for r in records) == ["a", "b", "c"]
    assert all(r.attempt["amount_in"] > 0 and r.attempt["predicted_profit"] > 0 for r in records)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the database went away mid-write")

    with monkeypatch.context() as m:  # the outcome cannot be written: nothing of the confirmation is
        m.setattr(services, "execution_finish", broken)
        report = follow(runner, DbJournal(), FollowPolicy(confirmations=1))
    assert report.counts == {"mined": 3, "error": 3}
    assert {t.state for t in rows().values()} == {"mined"} and {status_of(p) for p in "abc"} == {"mined"}

    asked: list[str] = []
    call = runner.rpc.call

    def counted(method: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(method)
        return call(method, *args, **kwargs)

    monkeypatch.setattr(runner.rpc, "call", counted)
    report = follow(runner, DbJournal(), FollowPolicy(confirmations=1))
    assert report.counts == {"confirmed": 3}
    assert {t.state for t in rows().values()} == {"confirmed"} and {status_of(p) for p in "abc"} == {"success"}
    assert asked.count("eth_getBlockByNumber") == 1
