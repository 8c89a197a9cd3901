"""The execute stage's loop (``arbbot.execution.stage``) and the journal's follow passes
(``arbbot.execution.follow``) with the database journal (``webapp.core.services.DbJournal``)
and a live-mode runner on a real anvil: crashes at each step, stuck transactions replaced
or cancelled, a reorg, a nonce taken by another transaction.

The executor is a stand-in: raw EVM code (set with ``anvil_setCode``) that answers every
call with a fixed profit and logs ``Executed(token, amountIn, profit)`` as ArbExecutor
does, so re-validation passes and the receipt carries a realised profit; what is under
test is the loop and its journal, not the contract (tests/execution/test_executor_contract.py).
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any, Callable

import pytest
from eth_account import Account

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import LocalSigner
from arbbot.chain.rawtx import decode_raw_tx
from arbbot.execution import stage
from arbbot.execution.executor import encode_execute, hops_for_cycle
from arbbot.execution.follow import FollowPolicy, TxRecord, follow
from arbbot.execution.runner import ExecutionRunner, Pending
from arbbot.execution.nonces import NonceManager
from arbbot.hotstate import HotState
from arbbot.paths.resize import resize
from arbbot.types import V2PoolState
from tests.execution.executor_helpers import (
    STAND_IN_EXECUTOR as EXECUTOR,
    STAND_IN_PROFIT as PROFIT,
    STAND_IN_USDC as USDC,
    STAND_IN_WETH as WETH,
    stand_in_executor,
    stand_in_scored,
    two_price_pools,
)

pytestmark = pytest.mark.django_db

POOLS = ["0x" + f"{i:02x}" * 20 for i in range(1, 7)]


@pytest.fixture(scope="module")
def node(stand_in_node: RpcClient) -> RpcClient:
    return stand_in_node


@pytest.fixture(autouse=True)
def empty_journal() -> None:
    """Rows other tests committed (the e2e fleet's) are not this test's: out of sight, in
    this test's transaction only."""
    from webapp.core.models import Execution, Transaction

    Transaction.objects.all().delete()
    Execution.objects.all().delete()


@pytest.fixture
def signer(node: RpcClient) -> LocalSigner:
    key = "0x" + secrets.token_hex(32)
    address = Account.from_key(key).address
    node.call("anvil_setBalance", [address, hex(10**20)])
    return LocalSigner(node, key)


@pytest.fixture
def runner(node: RpcClient, signer: LocalSigner, hot: HotState) -> ExecutionRunner:
    hot.put_pools(cycle_pools(), 7, "0x" + "07" * 32)
    return ExecutionRunner(
        rpc=node,
        executor=EXECUTOR,
        mode="live",
        pools=hot.get_pools,
        signer=signer,
        kill_switch=hot.fleet.kill_switch_engaged,
        is_orphaned=hot.is_orphaned,
        nonces=NonceManager(hot, node, signer.address),
        receipt_timeout_s=20.0,
    )


def cycle_pools() -> list[V2PoolState]:
    """(POOLS[2k], POOLS[2k+1]) is a cycle that pays on these states."""
    return two_price_pools(POOLS, USDC, WETH)


scored = stand_in_scored


def sent_count(node: RpcClient, signer: LocalSigner) -> int:
    return int(node.call("eth_getTransactionCount", [signer.address, "pending"]), 16)


def follow_until(runner: ExecutionRunner, policy: FollowPolicy, done: Callable[[], bool], *,
                 mine: bool = True, passes: int = 20) -> list[dict[str, int]]:
    """Follow passes (mining a block before each) until ``done``; the pass reports."""
    from webapp.core.services import DbJournal

    reports = []
    for _ in range(passes):
        if mine:
            runner.rpc.call("evm_mine")
        reports.append(follow(runner, DbJournal(), policy).counts)
        if done():
            return reports
    raise AssertionError(f"not done after {passes} follow passes: {reports}")


def status_of(path_id: str) -> str:
    from webapp.core.models import Execution

    return str(Execution.objects.get(path_id=path_id).status)


def test_a_batch_is_sent_together_and_a_second_delivery_claims_and_sends_nothing(
    node: RpcClient, signer: LocalSigner, runner: ExecutionRunner
) -> None:
    from webapp.core.models import Execution, Transaction
    from webapp.core.services import DbJournal

    batch = [scored("cycle-a", (POOLS[0], POOLS[1])), scored("cycle-b", (POOLS[2], POOLS[3]))]
    node.call("evm_setAutomine", [False])
    try:
        results = stage.execute(batch, {31337: runner}.__getitem__, DbJournal())
        # Nothing waited for a block: both are out, in the mempool together.
        assert [(r.path_id, r.status) for r in results] == [("cycle-a", "sent"), ("cycle-b", "sent")]
        assert int(node.call("txpool_status")["pending"], 16) == 2
        txs = {t.path_id: t for t in Transaction.objects.all()}
        assert {p: (t.state, t.tx_hash, t.kind) for p, t in txs.items()} == {
            r.path_id: ("sent", r.tx_hash, "trade") for r in results
        }
        for t in txs.values():  # the journal holds the exact bytes that were sent
            assert node.call("eth_getTransactionByHash", [t.tx_hash])["hash"] == t.tx_hash
            assert decode_raw_tx(t.raw_tx).tx_hash == t.tx_hash
        assert {e.status for e in Execution.objects.all()} == {"sent"}
    finally:
        node.call("evm_setAutomine", [True])
    follow_until(runner, FollowPolicy(confirmations=2), lambda: status_of("cycle-b") == "success", mine=True)

    rows = {e.path_id: e for e in Execution.objects.all()}
    assert {p: (e.status, e.tx_hash, int(e.realised_profit), e.mode) for p, e in rows.items()} == {
        r.path_id: ("success", r.tx_hash, PROFIT, "live") for r in results
    }
    # Sent at the size the newest states call for, not the path stage's; both recorded.
    states = {p.address: p for p in cycle_pools()}
    best = resize([states[POOLS[0]], states[POOLS[1]]], (WETH, USDC, WETH))
    assert best is not None and best.amount_in != 10**18
    a = rows["cycle-a"]
    assert (int(a.amount_in), int(a.predicted_profit)) == (10**18, 4 * 10**15)
    assert (int(a.final_amount_in), int(a.final_predicted_profit)) == (best.amount_in, best.profit)
    sent_data = decode_raw_tx(Transaction.objects.get(path_id="cycle-a").raw_tx).data
    assert sent_data == encode_execute(WETH, best.amount_in, 3 * 10**15,
                                       hops_for_cycle([states[POOLS[0]], states[POOLS[1]]], (WETH, USDC, WETH)),
                                       flash=True)
    assert rows["cycle-a"].mined_block == rows["cycle-b"].mined_block
    assert {t.state for t in Transaction.objects.all()} == {"confirmed"}
    assert sent_count(node, signer) == 2

    again = stage.execute(batch, {31337: runner}.__getitem__, DbJournal())
    assert again == []
    assert sent_count(node, signer) == 2


def test_a_batch_is_re_validated_at_once_and_never_past_a_send_through_its_pools(
    node: RpcClient, signer: LocalSigner, runner: ExecutionRunner
) -> None:
    a, b, c = (scored("cycle-a", (POOLS[0], POOLS[1])), scored("cycle-b", (POOLS[2], POOLS[1])),
               scored("cycle-c", (POOLS[4], POOLS[5])))
    runner.ahead_ttl_s = 60.0  # this test's pace is not the point; the pool rule is
    assert runner.revalidate_ahead([a, b, c]) == 3
    # The chain moves on after the batch was re-validated: the executor now pays twice as much.
    node.call("anvil_setCode", [EXECUTOR, stand_in_executor(2 * PROFIT)])
    try:
        outcomes = {s.opportunity.path_id: runner.submit(s) for s in (a, b, c)}
    finally:
        node.call("anvil_setCode", [EXECUTOR, stand_in_executor(PROFIT)])
    assert all(isinstance(o, Pending) for o in outcomes.values()), outcomes
    # a and c were decided on the batch's replies; b goes through POOLS[1], which a's
    # transaction traded: it was re-validated again, on the chain as it is now.
    assert {p: o.simulated_profit for p, o in outcomes.items()} == {  # type: ignore[union-attr]
        "cycle-a": PROFIT, "cycle-b": 2 * PROFIT, "cycle-c": PROFIT,
    }
    assert sent_count(node, signer) == 3


def test_a_batch_claims_at_once_only_what_nobody_claimed_before() -> None:
    from webapp.core.models import Execution
    from webapp.core.services import DbJournal

    a, b, c = (scored(p, (POOLS[0], POOLS[1])) for p in ("cycle-a", "cycle-b", "cycle-c"))
    journal = DbJournal()
    assert journal.claim_all([a, c]) == [True, True]
    assert journal.claim_all([a, b, c]) == [False, True, False]
    assert journal.claim_all([]) == []
    assert sorted(Execution.objects.values_list("path_id", "status")) == [
        ("cycle-a", "pending"), ("cycle-b", "pending"), ("cycle-c", "pending"),
    ]


def test_the_batch_is_re_validated_while_it_is_claimed(
    node: RpcClient, signer: LocalSigner, runner: ExecutionRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The re-validation round trip does not wait for the claim's commit: the node is asked
    while the journal is still claiming, and each submit then takes its replies from it."""
    import threading

    from webapp.core.services import DbJournal

    asked = threading.Event()
    batches: list[int] = []
    ask = node.batch

    def batch(requests: Any, **kw: Any) -> Any:
        batches.append(len(requests))
        asked.set()
        return ask(requests, **kw)

    monkeypatch.setattr(node, "batch", batch)

    class SlowJournal(DbJournal):
        def claim_all(self, batch: Any) -> list[bool]:
            overlapped.append(asked.wait(10))  # the round trip started before the claim ended
            return super().claim_all(batch)

    overlapped: list[bool] = []
    runner.mode = "dry-run"
    batch_ = [scored("cycle-a", (POOLS[0], POOLS[1])), scored("cycle-c", (POOLS[4], POOLS[5]))]
    results = stage.execute(batch_, {31337: runner}.__getitem__, SlowJournal())
    assert overlapped == [True]
    assert [(r.path_id, r.status) for r in results] == [("cycle-a", "simulated"), ("cycle-c", "simulated")]
    assert len(batches) == 1  # both decided on the replies taken ahead: no further round trip


def test_claims_and_unsent_outcomes_do_not_wait_for_the_disk_sent_ones_do() -> None:
    """A claim and the outcome of an attempt that signed nothing commit without waiting for
    the WAL's fsync (8 ms here, on the way to the first decision); anything about a
    transaction that was signed waits for it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from arbbot.types import ExecutionResult
    from webapp.core.services import DbJournal

    journal = DbJournal()
    a, b = scored("cycle-a", (POOLS[0], POOLS[1])), scored("cycle-b", (POOLS[2], POOLS[3]))

    def unflushed(do: Callable[[], Any]) -> bool:
        with CaptureQueriesContext(connection) as queries:
            do()
        return any("synchronous_commit TO OFF" in q["sql"] for q in queries.captured_queries)

    assert unflushed(lambda: journal.claim_all([a, b]))
    assert unflushed(lambda: journal.claim_all([a]))  # a redelivery: one by one, the same
    attempt = dict(chain_id=31337, profit_token=WETH, amount_in=10**18, predicted_profit=4 * 10**15)
    assert unflushed(lambda: journal.finished(ExecutionResult(
        status="simulated", reason="dry-run", block_number=7, path_id="cycle-a", **attempt)))
    assert unflushed(lambda: journal.finished(ExecutionResult(
        status="dropped", reason="stale", block_number=7, path_id="cycle-b", **attempt)))
    assert not unflushed(lambda: journal.finished(ExecutionResult(
        status="failed", reason="send failed", block_number=7, path_id="cycle-b", **attempt)))
    assert not unflushed(lambda: journal.finished(ExecutionResult(
        status="success", reason="mined", block_number=7, path_id="cycle-a", tx_hash="0x" + "ab" * 32,
        **attempt)))


def test_a_batch_claim_writes_the_rows_one_claim_would_and_claims_each_cycle_once() -> None:
    """``claim_all`` (one raw insert) leaves the rows ``execution_claim`` (the ORM) would;
    one claimed before, and a cycle named twice after its first, are not claimed."""
    from django.forms.models import model_to_dict

    from webapp.core.models import Execution
    from webapp.core.services import DbJournal, execution_claim

    def batch(block: int) -> list[Any]:
        made = [scored(f"cycle-{i}", (POOLS[i % 6], POOLS[(i + 1) % 6]), block_number=block) for i in range(5)]
        return [*made, scored("cycle-1", (POOLS[0], POOLS[1]), block_number=block)]  # named twice

    for s in batch(11)[:5]:
        assert execution_claim(s) is not None
    before = batch(12)
    assert execution_claim(before[3]) is not None  # claimed before the batch came
    assert DbJournal().claim_all(before) == [True, True, True, False, True, False]
    assert DbJournal().claim_all(before) == [False] * 6  # a second delivery claims nothing

    def rows(block: int) -> dict[str, dict[str, Any]]:
        return {e.path_id: {k: v for k, v in model_to_dict(e).items() if k not in ("id", "created_at", "block_number")}
                for e in Execution.objects.filter(block_number=block)}

    assert rows(12) == rows(11) and len(rows(12)) == 5


def test_a_batch_of_outcomes_is_recorded_as_each_would_be_alone_unsigned_ones_together() -> None:
    """``DbJournal.finished_all`` leaves every row as ``finished`` of each would: the
    unsigned ones (dropped, simulated) in one transaction that does not wait for the disk, a
    pipelined UPDATE per set of fields; a paper trade priced from its claimed row, an outcome
    never claimed and a failed one (durable) as before."""
    from django.db import connection
    from django.forms.models import model_to_dict
    from django.test.utils import CaptureQueriesContext

    from arbbot.types import ExecutionResult
    from webapp.core.models import Execution
    from webapp.core.services import DbJournal

    journal = DbJournal()
    attempt = dict(chain_id=31337, profit_token=WETH, amount_in=10**18, predicted_profit=4 * 10**15)

    def outcomes(block: int) -> list[ExecutionResult]:
        def made(path_id: str, status: str, reason: str, **kw: Any) -> ExecutionResult:
            return ExecutionResult(status=status, reason=reason, block_number=block, path_id=path_id, **attempt, **kw)

        return [
            made("sim", "simulated", "dry-run: simulated profit 9", extra={
                "mode": "dry-run", "final_amount_in": 10**18 - 5, "final_predicted_profit": 3 * 10**15,
                "decision_latency_s": 0.0123}),
            made("drop", "dropped", "re-validation reverted: BadHop", extra={"mode": "dry-run"}),
            made("bare", "dropped", "decision was skip: overlaps"),
            made("paper", "simulated", "paper trade", realised_profit=2 * 10**15,
                 extra={"mode": "paper", "native_price": (3, 2)}),
            made("paper-row", "simulated", "paper trade", realised_profit=10**15, extra={"mode": "paper"}),
            made("failed", "failed", "send failed: nonce too low", extra={"mode": "live"}),
            made("unclaimed", "dropped", "stale"),
        ]

    def claim(block: int) -> None:
        journal.claim_all([scored(p, (POOLS[0], POOLS[1]), block_number=block)
                           for p in ("sim", "drop", "bare", "paper", "paper-row", "failed")])

    alone, together = 8, 9
    claim(alone)
    for r in outcomes(alone):
        journal.finished(r)
    claim(together)
    with CaptureQueriesContext(connection) as queries:
        journal.finished_all(outcomes(together))
    sql = [q["sql"] for q in queries.captured_queries]
    assert sum("synchronous_commit TO OFF" in q for q in sql) >= 1
    assert sum(q.startswith("UPDATE") and "WHERE chain_id = " in q for q in sql) <= 3  # one per set of fields

    def rows(block: int) -> dict[str, dict[str, Any]]:
        return {e.path_id: {k: v for k, v in model_to_dict(e).items() if k not in ("id", "created_at", "block_number")}
                for e in Execution.objects.filter(block_number=block)}

    expected, got = rows(alone), rows(together)
    assert set(expected) == {"sim", "drop", "bare", "paper", "paper-row", "failed", "unclaimed"}
    assert got == expected
    assert int(got["paper"]["realised_profit_native"]) == 3 * 10**15  # at the price the execute stage read
    assert got["sim"]["decision_latency_ms"] == pytest.approx(12.3)
    assert int(got["sim"]["final_amount_in"]) == 10**18 - 5


def test_one_failing_item_is_recorded_failed_and_the_batch_goes_on(
    node: RpcClient, signer: LocalSigner, runner: ExecutionRunner
) -> None:
    from webapp.core.models import Execution
    from webapp.core.services import DbJournal

    batch = [
        scored("cycle-a", (POOLS[0], POOLS[1])),
        scored("elsewhere", (POOLS[2], POOLS[3]), chain_id=5),  # no runner for chain 5: raises
        scored("cycle-c", (POOLS[4], POOLS[5])),
    ]
    results = stage.execute(batch, {31337: runner}.__getitem__, DbJournal())
    assert [(r.path_id, r.status) for r in results] == [
        ("cycle-a", "sent"), ("elsewhere", "failed"), ("cycle-c", "sent"),
    ]
    failed = Execution.objects.get(chain_id=5)
    assert (failed.status, failed.reason, failed.tx_hash) == ("failed", "KeyError: 5", "")
    assert int(failed.predicted_profit) == 4 * 10**15 and failed.profit_token == WETH
    assert sent_count(node, signer) == 2


def test_reconcile_fails_claims_with_nothing_signed_and_leaves_the_rest(
    node: RpcClient, signer: LocalSigner, runner: ExecutionRunner
) -> None:
    from django.utils import timezone

    from webapp.core.models import Execution
    from webapp.core.services import DbJournal

    journal = DbJournal()
    never_sent, sent, fresh = scored("never-sent", (POOLS[0], POOLS[1])), scored("sent", (POOLS[2], POOLS[3])), \
        scored("fresh", (POOLS[4], POOLS[5]))
    for s in (never_sent, sent, fresh):
        assert journal.claim(s)
    # The worker that claimed "sent" got its transaction signed and out, then died before
    # noting it sent: its row is the journal's (follow), not reconcile's.
    assert isinstance(runner.submit(sent, journal), Pending)
    Execution.objects.exclude(path_id="fresh").update(created_at=timezone.now() - dt.timedelta(minutes=10))

    results = stage.reconcile(journal, older_than_s=120.0)

    assert [(r.path_id, r.status) for r in results] == [("never-sent", "failed")]
    rows = {e.path_id: e for e in Execution.objects.all()}
    assert (rows["never-sent"].status, rows["never-sent"].reason, rows["never-sent"].tx_hash) == (
        "failed", "worker stopped before signing; nothing was sent", "",
    )
    assert rows["sent"].status == "pending" and rows["fresh"].status == "pending"
    assert stage.reconcile(journal, older_than_s=120.0) == []
    # follow finds the sent one on the node and settles it
    follow_until(runner, FollowPolicy(confirmations=1, signed_grace_s=0), lambda: status_of("sent") == "success")


class Died(BaseException):
    """Stands for the worker being killed at that instruction: nothing after it runs."""


def test_a_worker_dead_right_after_signing_sent_nothing_and_its_row_ends_dropped(
    node: RpcClient, signer: LocalSigner, runner: ExecutionRunner, hot: HotState
) -> None:
    from webapp.core.models import Transaction
    from webapp.core.services import DbJournal

    class DiesAfterSigning(DbJournal):
        def tx_signed(self, *recs: TxRecord) -> None:
            super().tx_signed(*recs)
            raise Died

    before = sent_count(node, signer)
    with pytest.raises(Died):
        stage.execute([scored("cycle-a", (POOLS[0], POOLS[1]))], {31337: runner}.__getitem__, DiesAfterSigning())
    row = Transaction.objects.get()
    assert row.state == "signed" and sent_count(node, signer) == before  # persisted, not sent

    # Young: its worker may still be sending; left alone.
    assert follow(runner, DbJournal(), FollowPolicy(signed_grace_s=30)).counts == {}
    report = follow(runner, DbJournal(), FollowPolicy(signed_grace_s=0)).counts
    assert report == {"never-sent": 1}
    row.refresh_from_db()
    assert row.state == "dropped" and status_of("cycle-a") == "dropped"
    assert sent_count(node, signer) == before
    # Its nonce was released: the next send takes it, no gap.
    stage.execute([scored("cycle-b", (POOLS[2], POOLS[3]))], {31337: runner}.__getitem__, DbJournal())
    assert Transaction.objects.get(path_id="cycle-b").nonce == row.nonce
    assert sent_count(node, signer) == before + 1


def test_a_worker_dead_right_after_sending_is_found_sent_and_settled(
    node: RpcClient, signer: LocalSigner, runner: ExecutionRunner, hot: HotState
) -> None:
    from webapp.core.models import Transaction
    from webapp.core.services import DbJournal

    class DiesAfterSending(DbJournal):
        def tx_sent(self, tx_hash: str, **kw: Any) -> None:
            raise Died

    with pytest.raises(Died):
        stage.execute([scored("cycle-a", (POOLS[0], POOLS[1]))], {31337: runner}.__getitem__, DiesAfterSending())
    row = Transaction.objects.get()
    assert row.state == "signed"
    # Its gas is reserved while it is open: the loss limit sees it.
    assert row.tx_hash in hot.open_txs(signer.address)
    reports = follow_until(runner, FollowPolicy(confirmations=1, signed_grace_s=0),
                           lambda: status_of("cycle-a") == "success", mine=False)
    assert reports[0].get("confirmed") == 1
    row.refresh_from_db()
    assert row.state == "confirmed"
    assert row.tx_hash not in hot.open_txs(signer.address)


def test_a_batch_marks_its_sends_after_its_last_decision_and_a_death_there_loses_none(
    node: RpcClient, signer: LocalSigner, runner: ExecutionRunner, hot: HotState
) -> None:
    """A decision does not wait for the one before it to be marked sent: both of a batch are
    out before the first mark. A worker that dies at that mark leaves both ``signed``; the
    follow pass finds both on the node and settles them."""
    from webapp.core.models import Transaction
    from webapp.core.services import DbJournal

    marked: list[str] = []

    class DiesMarkingSent(DbJournal):
        def tx_sent(self, tx_hash: str, **kw: Any) -> None:
            marked.append(tx_hash)
            raise Died

    batch = [scored("cycle-a", (POOLS[0], POOLS[1])), scored("cycle-b", (POOLS[2], POOLS[3]))]
    node.call("evm_setAutomine", [False])
    try:
        with pytest.raises(Died):
            stage.execute(batch, {31337: runner}.__getitem__, DiesMarkingSent())
        assert len(marked) == 1 and int(node.call("txpool_status")["pending"], 16) == 2
        rows = list(Transaction.objects.all())
        assert len(rows) == 2 and {r.state for r in rows} == {"signed"}
        assert set(hot.open_txs(signer.address)) == {r.tx_hash for r in rows}
    finally:
        node.call("evm_setAutomine", [True])
    follow_until(runner, FollowPolicy(confirmations=1, signed_grace_s=0),
                 lambda: status_of("cycle-a") == status_of("cycle-b") == "success", mine=True)
    assert {t.state for t in Transaction.objects.all()} == {"confirmed"}
    assert sent_count(node, signer) == 2


def test_a_stuck_low_fee_transaction_is_replaced_and_the_replacement_confirmed(
    node: RpcClient, signer: LocalSigner, runner: ExecutionRunner
) -> None:
    from webapp.core.models import Execution, Transaction
    from webapp.core.services import DbJournal

    node.call("evm_setAutomine", [False])
    try:
        [sent] = stage.execute([scored("cycle-a", (POOLS[0], POOLS[1]))], {31337: runner}.__getitem__, DbJournal())
        first = Transaction.objects.get()
        # The base fee jumps past what it offered: blocks come and leave it out.
        high = int(first.max_fee_per_gas) * 3
        for _ in range(3):
            node.call("anvil_setNextBlockBaseFeePerGas", [hex(high)])
            node.call("evm_mine")
        assert node.call("eth_getTransactionReceipt", [first.tx_hash]) is None
        node.call("anvil_setNextBlockBaseFeePerGas", [hex(high)])
        report = follow(runner, DbJournal(), FollowPolicy(confirmations=1, replace_after_blocks=3)).counts
        assert report == {"replaced": 1}
        second = Transaction.objects.exclude(tx_hash=first.tx_hash).get()
        assert (second.nonce, second.kind, second.state) == (first.nonce, "trade", "sent")
        assert int(second.max_fee_per_gas) >= int(first.max_fee_per_gas) * 9 // 8
        assert int(second.max_priority_fee_per_gas) >= int(first.max_priority_fee_per_gas) * 9 // 8
        node.call("evm_mine")
    finally:
        node.call("evm_setAutomine", [True])
    follow_until(runner, FollowPolicy(confirmations=1), lambda: status_of("cycle-a") == "success", mine=False)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, second.state) == ("replaced", "confirmed")
    e = Execution.objects.get()
    assert (e.tx_hash, int(e.realised_profit)) == (second.tx_hash, PROFIT)


def test_past_its_replacements_a_stuck_transaction_is_cancelled_and_its_gas_counted(
    node: RpcClient, signer: LocalSigner, runner: ExecutionRunner
) -> None:
    from webapp.core.models import Execution, Transaction
    from webapp.core.services import DbJournal

    node.call("evm_setAutomine", [False])
    try:
        stage.execute([scored("cycle-a", (POOLS[0], POOLS[1]))], {31337: runner}.__getitem__, DbJournal())
        first = Transaction.objects.get()
        high = int(first.max_fee_per_gas) * 3
        for _ in range(2):
            node.call("anvil_setNextBlockBaseFeePerGas", [hex(high)])
            node.call("evm_mine")
        node.call("anvil_setNextBlockBaseFeePerGas", [hex(high)])
        policy = FollowPolicy(confirmations=1, replace_after_blocks=2, max_replacements=0)
        assert follow(runner, DbJournal(), policy).counts == {"cancel-sent": 1}
        cancel = Transaction.objects.get(kind="cancel")
        raw = decode_raw_tx(cancel.raw_tx)
        assert (raw.nonce, raw.to, raw.value_wei, raw.data) == (first.nonce, signer.address, 0, "0x")
        node.call("evm_mine")
    finally:
        node.call("evm_setAutomine", [True])
    follow_until(runner, FollowPolicy(confirmations=1), lambda: status_of("cycle-a") == "cancelled", mine=False)
    e = Execution.objects.get()
    assert e.tx_hash == cancel.tx_hash and e.gas_used == 21_000 and int(e.gas_price_wei) > 0
    assert int(e.realised_profit) == 0
    from webapp.core.selectors import pnl_today_wei

    assert pnl_today_wei(31337, WETH) == -21_000 * int(e.gas_price_wei)


def test_a_transaction_reorged_out_after_its_receipt_is_reopened_then_settled(
    node: RpcClient, signer: LocalSigner, runner: ExecutionRunner
) -> None:
    from webapp.core.models import Transaction
    from webapp.core.services import DbJournal

    snapshot = node.call("evm_snapshot")
    stage.execute([scored("cycle-a", (POOLS[0], POOLS[1]))], {31337: runner}.__getitem__, DbJournal())
    row = Transaction.objects.get()
    policy = FollowPolicy(confirmations=3, replace_after_blocks=2)
    assert follow(runner, DbJournal(), policy).counts == {"mined": 1}
    assert status_of("cycle-a") == "mined"
    node.call("evm_revert", [snapshot])  # the block that held it is gone
    assert node.call("eth_getTransactionReceipt", [row.tx_hash]) is None
    report = follow(runner, DbJournal(), policy).counts
    assert report.get("reopened") == 1
    row.refresh_from_db()
    assert (row.state, row.mined_block) == ("sent", None) and status_of("cycle-a") == "sent"
    # Mined again (the node still has it, or it is re-broadcast): final once confirmed.
    follow_until(runner, policy, lambda: status_of("cycle-a") == "success")
    row.refresh_from_db()
    assert row.state == "confirmed"


def test_a_nonce_used_by_another_transaction_drops_the_execution_and_nothing_was_paid(
    node: RpcClient, signer: LocalSigner, runner: ExecutionRunner
) -> None:
    from webapp.core.models import Execution, Transaction
    from webapp.core.services import DbJournal

    node.call("evm_setAutomine", [False])
    try:
        stage.execute([scored("cycle-a", (POOLS[0], POOLS[1]))], {31337: runner}.__getitem__, DbJournal())
        ours = Transaction.objects.get()
        node.call("anvil_dropTransaction", [ours.tx_hash])
        # Someone else with the same key (another bot, a wallet) takes the nonce.
        other = signer.sign(to=signer.address, data="0x", gas=21_000, nonce=ours.nonce,
                            max_fee_per_gas=int(ours.max_fee_per_gas), max_priority_fee_per_gas=10**9)
        node.call("eth_sendRawTransaction", [other[0]])
        node.call("evm_mine")
    finally:
        node.call("evm_setAutomine", [True])
    assert follow(runner, DbJournal(), FollowPolicy(confirmations=1)).counts == {"dropped": 1}
    e = Execution.objects.get()
    assert e.status == "dropped" and "used by a transaction not in the journal" in e.reason
    assert (e.gas_used, e.tx_hash) == (0, "")


def test_a_second_trade_through_a_pool_waits_until_the_first_is_mined(
    node: RpcClient, signer: LocalSigner, runner: ExecutionRunner, hot: HotState
) -> None:
    """Simulated on the state before a trade of ours still in the mempool, a second trade
    through the same pool would revert on-chain once the first lands (gas paid for
    nothing): it is dropped until the first is mined, then sent. In the first's own batch it
    is dropped before anything is signed (the batch's sends go together); in a later batch,
    by the first's note in the hot state."""
    from webapp.core.services import DbJournal

    runner.hot = hot
    node.call("evm_setAutomine", [False])
    try:
        first = stage.execute(
            [scored("cycle-a", (POOLS[0], POOLS[1])), scored("cycle-a-again", (POOLS[0], POOLS[1]))],
            {31337: runner}.__getitem__, DbJournal(),
        )
        assert [(r.path_id, r.status) for r in first] == [("cycle-a", "sent"), ("cycle-a-again", "dropped")]
        assert first[1].reason == f"pool {POOLS[0]} is in flight: the trade of cycle-a through it goes in this turn"
        again = stage.execute([scored("cycle-a-next", (POOLS[0], POOLS[1]))], {31337: runner}.__getitem__,
                              DbJournal())
        assert [r.status for r in again] == ["dropped"]
        assert again[0].reason.startswith(f"pool {POOLS[0]} is in flight: trade {first[0].tx_hash}")
        # a cycle through other pools is not held back
        other = stage.execute([scored("cycle-b", (POOLS[2], POOLS[3]))], {31337: runner}.__getitem__, DbJournal())
        assert [r.status for r in other] == ["sent"]
        assert sent_count(node, signer) == 2
    finally:
        node.call("evm_setAutomine", [True])
    node.call("evm_mine")  # the first is mined: a trade simulated after it may go
    later = stage.execute([scored("cycle-a-later", (POOLS[0], POOLS[1]), block_number=8)],
                          {31337: runner}.__getitem__, DbJournal())
    assert [r.status for r in later] == ["sent"]
    assert sent_count(node, signer) == 3


def test_another_accounts_open_trade_holds_its_pools_until_it_settles(
    node: RpcClient, signer: LocalSigner, runner: ExecutionRunner, hot: HotState
) -> None:
    """A second signer of the fleet has a trade open through two of a cycle's pools: the
    cycle is dropped while it is open (its open transactions read once, not per pool) and
    sent once it is settled."""
    from webapp.core.services import DbJournal

    runner.hot = hot
    other, tx = "0x" + "0b" * 20, "0x" + "ab" * 32
    hot.note_traded([POOLS[0], POOLS[1]], other, 7, tx)
    hot.nonce_sent(other, 7, tx, 10**15)
    held = stage.execute([scored("held", (POOLS[0], POOLS[1]))], {31337: runner}.__getitem__, DbJournal())
    assert [r.status for r in held] == ["dropped"]
    assert held[0].reason.startswith(f"pool {POOLS[0]} is in flight: trade {tx} (nonce 7)")
    hot.open_close(other, tx)
    freed = stage.execute([scored("freed", (POOLS[0], POOLS[1]), block_number=8)], {31337: runner}.__getitem__,
                          DbJournal())
    assert [r.status for r in freed] == ["sent"]


def test_a_cycle_sized_ahead_is_sized_again_at_its_submit_only_if_its_pools_moved(
    node: RpcClient, signer: LocalSigner, runner: ExecutionRunner, hot: HotState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's cycles are re-sized and encoded once, ahead of the batch; a submit takes
    that work when its pools' newest states are the ones it was done on, and re-sizes on
    the newest states otherwise."""
    import dataclasses

    from arbbot.execution import runner as runner_module

    sized: list[str] = []

    def counted(states: Any, *args: Any, **kw: Any) -> Any:
        sized.append(states[0].address)
        return resize(states, *args, **kw)

    monkeypatch.setattr(runner_module, "resize", counted)
    runner.mode, runner.ahead_ttl_s = "dry-run", 60.0
    a, c = scored("cycle-a", (POOLS[0], POOLS[1])), scored("cycle-c", (POOLS[4], POOLS[5]))
    assert runner.revalidate_ahead([a, c]) == 2
    assert sized == [POOLS[0], POOLS[4]]
    pools = cycle_pools()
    moved = dataclasses.replace(pools[4], reserve0=pools[4].reserve0 * 101 // 100, block_number=8)
    hot.put_pools([moved], 8, "0x" + "08" * 32)  # after the batch was sized: c's first pool moves
    ra, rc = runner.submit(a), runner.submit(c)
    assert sized == [POOLS[0], POOLS[4], POOLS[4]], "a's work taken, c sized again"
    best_a = resize([pools[0], pools[1]], (WETH, USDC, WETH))
    best_c = resize([moved, pools[5]], (WETH, USDC, WETH))
    assert best_a is not None and best_c is not None
    assert (ra.status, ra.extra["final_amount_in"]) == ("simulated", best_a.amount_in)  # type: ignore[union-attr]
    assert (rc.status, rc.extra["final_amount_in"]) == ("simulated", best_c.amount_in)  # type: ignore[union-attr]
    assert best_c.amount_in != resize([pools[4], pools[5]], (WETH, USDC, WETH)).amount_in  # type: ignore[union-attr]
