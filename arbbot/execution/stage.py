"""The execute stage over a batch, and the ``Journal`` it keeps: what was claimed, every
transaction signed (before it is sent), how each attempt ended. The fleet's journal is the
database (``webapp.core.services.DbJournal``); this module is free of Celery and Django.

``execute`` claims each opportunity once (a second delivery of the same batch claims
nothing and sends nothing) and submits every claimed one; a sent one is ``sent`` and
``arbbot.execution.follow`` makes it final from its receipts, asynchronously: no task
waits for a block. One item that raises is recorded as failed and the batch goes on.

Each result carries the moment its decision was taken (``extra["decided_at"]``, unix time:
when ``ExecutionRunner.submit`` returned dropped, simulated, failed or sent) and
``extra["decision_latency_s"]``, the time from the block's arrival
(``Opportunity.observed_at``, stamped by the follower or the scan) to that decision, or
None when the arrival is unknown. The journal keeps it on the execution
(``Journal.decided`` for a sent one, whose outcome is recorded later).

``reconcile`` finishes claims a dead worker left with no transaction signed: failed,
nothing was sent (one with a signed transaction is ``follow``'s).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from arbbot import obs
from arbbot.obs import logs
from arbbot.execution.follow import TxJournal
from arbbot.execution.runner import Attempt, ExecutionRunner, Pending, Ready, TurnSends, attempt_of
from arbbot.types import ExecutionResult, ScoredOpportunity

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Unfinished:
    """A claimed attempt with no recorded outcome and no transaction, as the journal holds it."""

    attempt: Attempt


class Journal(TxJournal, Protocol):
    def claim(self, scored: ScoredOpportunity) -> bool:
        """Take ``scored`` for execution; False when it was claimed before (by anyone)."""

    def claim_all(self, batch: Sequence[ScoredOpportunity]) -> list[bool]:
        """``claim`` of each of ``batch``, in one go (one commit): True for each taken here."""

    def stale_pending(self, older_than_s: float) -> list[Unfinished]:
        """Attempts claimed over ``older_than_s`` ago with no outcome and no transaction."""

    def decided(self, result: ExecutionResult) -> None:
        """Keep the decision latency of a ``sent`` result (its outcome comes later)."""

    def finished_all(self, results: Sequence[ExecutionResult]) -> None:
        """``finished`` of each of ``results`` (a batch's outcomes, none ``sent``), in one go."""


Runners = Callable[[int], ExecutionRunner]  # chain id -> that chain's runner


def execute(batch: Sequence[ScoredOpportunity], runners: Runners, journal: Journal) -> list[ExecutionResult]:
    """Claim every opportunity of ``batch`` at once, then take each claimed one through its
    checks, in one turn of its chain's nonce lock (``ExecutionRunner.turn``: taken at the
    first live send), and send the turn's live ones together (``TurnSends.flush``: signed at
    consecutive nonces, recorded in one commit, sent in order); the results of the ones this
    call claimed, in order: final, or ``sent`` (its transaction is in the journal). A
    decision's time is when its send was done with, or its checks refused it.

    Only what a send needs is written on the way to the decisions (the claims, and the live
    sends' signed transactions, before their bytes leave). What is written after the batch:
    the outcomes of the ones not sent (dropped, simulated, failed: nothing left the
    process), and for each sent one that it was sent and its decision latency. A worker that
    dies before that leaves the claims ``pending`` with nothing signed, which ``reconcile``
    finishes, and its recorded transactions ``signed``, which ``follow`` finds on the node
    (marked ``sent``) or not (dropped) once ``signed_grace_s`` has passed."""
    results = []
    unsent: list[ExecutionResult] = []  # written after the batch: no next decision waits on them
    sent: list[tuple[ExecutionResult, Pending]] = []
    claimed = []
    with contextlib.ExitStack() as turns:
        submits: dict[int, TurnSends] = {}  # chain -> its runner's ``turn``: one nonce lock turn a batch

        def turn_of(chain_id: int, prime: bool = False) -> TurnSends:
            if chain_id not in submits:
                submits[chain_id] = turns.enter_context(runners(chain_id).turn(journal, prime=prime))
            return submits[chain_id]

        # The re-validation's round trip (its pools read, cycles re-sized and encoded first)
        # runs while the batch is claimed: a simulation signs and sends nothing, so it need
        # not wait for the claim (a redelivered batch's ones already claimed elsewhere are
        # simulated for nothing, not submitted). Then, still before it is done, each chain
        # with a claimed opportunity to execute takes its turn of the nonce lock and reads
        # what its first live send checks under it (``Turn.prime``).
        ahead = _revalidate_ahead(batch, runners)
        try:
            claims = journal.claim_all(batch)
            for chain_id in dict.fromkeys(s.opportunity.chain_id for s, mine in zip(batch, claims)
                                          if mine and s.decision == "execute"):
                try:
                    turn_of(chain_id, prime=True)
                except Exception:  # its submits take the turn themselves, and fail as they would
                    log.exception("chain %s: could not take the nonce lock turn ahead of the batch", chain_id)
        finally:
            ahead()
        for s, mine in zip(batch, claims):
            if mine:
                claimed.append(s)
            else:
                log.info("already executed or claimed: %s", s.opportunity.key)

        for chain_id in dict.fromkeys(s.opportunity.chain_id for s in claimed):
            try:
                turn_of(chain_id).read_ahead([s for s in claimed if s.opportunity.chain_id == chain_id])
            except Exception:  # each submit reads its own
                log.exception("chain %s: could not read the batch's hot state ahead", chain_id)
        checked: list[tuple[ScoredOpportunity, ExecutionResult | Ready, float]] = []
        for s in claimed:
            o = s.opportunity
            with obs.scope("execute.opportunity", chain=o.chain_id, block=o.block_number, path_id=o.path_id):
                try:
                    outcome = turn_of(o.chain_id).defer(s)
                except Exception as exc:
                    log.exception("execution of %s failed", o.key)
                    outcome = ExecutionResult.failed(attempt_of(o), _why(exc))
                obs.note(status=outcome.status if isinstance(outcome, ExecutionResult) else "ready")
            checked.append((s, outcome, time.time()))
        with obs.scope("execute.sends", count=sum(isinstance(o, Ready) for _, o, _ in checked)):
            sends = {id(r): (outcome, at) for t in submits.values() for r, outcome, at in t.flush()}
        for s, checks, checked_at in checked:
            decision, at = sends[id(checks)] if isinstance(checks, Ready) else (checks, checked_at)
            o = s.opportunity
            with logs.bound(chain=o.chain_id, block=o.block_number, path_id=o.path_id):  # its log line's fields
                result, pending = _decided(s, decision, at)
            if pending is None:
                unsent.append(result)
            else:
                sent.append((result, pending))
            results.append(result)
    for _, pending in sent:  # first: what is out on the chain
        journal.tx_sent(pending.tx_hash, sent_block=pending.sent_block, submission=pending.submission)
    journal.finished_all(unsent)
    for r, _ in sent:
        try:
            journal.decided(r)
        except Exception:  # a measurement: never worth failing the batch over
            log.exception("could not record the decision latency of %s", r.path_id)
    return results


def _decided(
    s: ScoredOpportunity, outcome: ExecutionResult | Pending, at: float,
) -> tuple[ExecutionResult, Pending | None]:
    """A claimed opportunity's result, decided at ``at``: ``sent`` with its ``Pending`` (its
    transaction in the journal as signed; the caller marks it sent), or its final result,
    which the caller records after the batch."""
    decided = _decision(s, at)
    pending = outcome if isinstance(outcome, Pending) else None
    if isinstance(outcome, Pending):
        result = ExecutionResult(status="sent", reason=f"sent, re-validated profit {outcome.simulated_profit}",
                                 tx_hash=outcome.tx_hash, extra={"mode": "live", **decided}, **outcome.attempt)
    else:
        result = dataclasses.replace(outcome, extra={**outcome.extra, **decided})
    log.info(
        "execution %s: %s tx=%s predicted=%s realised=%s %s",
        s.opportunity.key, result.status, result.tx_hash, result.predicted_profit,
        result.realised_profit, result.reason,
    )
    return result, pending


def _revalidate_ahead(batch: Sequence[ScoredOpportunity], runners: Runners) -> Callable[[], None]:
    """Each chain's re-validation ahead of the batch: its pools read, its cycles re-sized and
    encoded here (``ExecutionRunner.prepare_ahead``), then its round trip started on the
    stage's background thread, which the batch's claim runs beside; the callable returned
    waits for them. Only waits on the node and the database run side by side: the reading
    and computing, done beside the claim, made each wait for the other's hold of the GIL (in
    the fleet the claim took ~4 ms against ~1 alone). On any failure each submit asks for
    itself."""
    by_chain: dict[int, list[ScoredOpportunity]] = {}
    for s in batch:
        by_chain.setdefault(s.opportunity.chain_id, []).append(s)
    trips = []
    for chain_id, items in by_chain.items():
        try:
            trips.append(runners(chain_id).prepare_ahead(items))
        except Exception:
            log.exception("chain %s: re-validation ahead of the batch failed", chain_id)
    if not trips:
        return lambda: None

    def run() -> None:
        for trip in trips:
            try:
                trip()
            except Exception:
                log.exception("re-validation ahead of the batch failed")

    future = _background().submit(run)
    return lambda: future.result()


def warm(runner: ExecutionRunner) -> None:
    """What a first batch reads on the runner's chain, read now on this thread
    (``ExecutionRunner.warm``), and the background thread made, opening its own connection
    to the node (the round trips ahead run there) without being waited for: a process's
    start."""
    runner.warm()

    def connect() -> None:
        try:
            runner.rpc.call("eth_blockNumber")
        except Exception as exc:  # the first round trip asks again, and reports it
            log.warning("execute: the node is not reachable yet: %s: %s", type(exc).__name__, exc)

    _background().submit(connect)


_pool: tuple[int, ThreadPoolExecutor] | None = None


def _background() -> ThreadPoolExecutor:
    """The process's one background thread (made again in a forked child: a pool process
    does not inherit its parent's threads). It asks the node (and keeps a learned gas
    estimate in the hot state): no database, no shared state but the runner's replies,
    which nothing reads before it is done."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="revalidate"))
    return _pool[1]


def reconcile(journal: Journal, older_than_s: float) -> list[ExecutionResult]:
    """Finish every claim left with no outcome and no transaction for over ``older_than_s``."""
    results = []
    for u in journal.stale_pending(older_than_s):
        result = ExecutionResult.failed(u.attempt, "worker stopped before signing; nothing was sent")
        journal.finished(result)
        log.warning("reconciled %s:%s:%s -> %s", result.chain_id, result.block_number, result.path_id, result.status)
        results.append(result)
    return results


def _decision(scored: ScoredOpportunity, decided_at: float) -> dict[str, float | None]:
    observed_at = scored.opportunity.observed_at
    return {
        "decided_at": decided_at,
        # 0.0 is "not stamped" (an old message, a test); a clock step back is not a latency
        "decision_latency_s": max(0.0, decided_at - observed_at) if observed_at > 0 else None,
    }


def _why(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
