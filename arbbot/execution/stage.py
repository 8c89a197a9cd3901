"""The execute stage over a batch, and the ``Journal`` it keeps: what was claimed, what was
sent, how each attempt ended. The fleet's journal is the database
(``webapp.core.services.DbJournal``); this module is free of Celery and Django.

``execute`` claims each opportunity once (a second delivery of the same batch claims
nothing and sends nothing), submits every claimed one, then waits for the receipts: the
batch's cycles use disjoint pools (the ml stage selects them so), so their transactions
can share a block instead of each waiting for the previous one to be mined. One item that
raises is recorded as failed and the batch goes on.

``reconcile`` finishes attempts a dead worker left unfinished: from the chain when the
transaction was sent (its receipt decides), else as failed (nothing was sent).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from arbbot.execution.runner import Attempt, ExecutionRunner, Pending, attempt_of
from arbbot.types import ExecutionResult, ScoredOpportunity

log = logging.getLogger(__name__)

RECONCILE_RECEIPT_TIMEOUT_S = 5.0  # a stale transaction is mined by now, or never will be


@dataclass(frozen=True)
class Unfinished:
    """A claimed attempt with no recorded outcome, as the journal holds it."""

    attempt: Attempt
    tx_hash: str | None  # set once the transaction was sent


class Journal(Protocol):
    def claim(self, scored: ScoredOpportunity) -> bool:
        """Take ``scored`` for execution; False when it was claimed before (by anyone)."""

    def sent(self, pending: Pending) -> None:
        """Note a transaction's hash as soon as it is sent, before its receipt."""

    def finished(self, result: ExecutionResult) -> None:
        """Record an attempt's outcome."""

    def stale_pending(self, older_than_s: float) -> list[Unfinished]:
        """Attempts claimed over ``older_than_s`` ago that have no outcome."""


Runners = Callable[[int], ExecutionRunner]  # chain id -> that chain's runner


def execute(batch: Sequence[ScoredOpportunity], runners: Runners, journal: Journal) -> list[ExecutionResult]:
    """Claim, submit, note what was sent, settle and record every opportunity of ``batch``;
    the results of the ones this call claimed, in order."""
    claimed = []
    for s in batch:
        if journal.claim(s):
            claimed.append(s)
        else:
            log.info("already executed or claimed: %s", s.opportunity.key)
    submitted: list[ExecutionResult | Pending] = []
    for s in claimed:
        try:
            outcome = runners(s.opportunity.chain_id).submit(s)
            if isinstance(outcome, Pending):
                journal.sent(outcome)
        except Exception as exc:
            log.exception("execution of %s failed", s.opportunity.key)
            outcome = ExecutionResult.failed(attempt_of(s.opportunity), _why(exc))
        submitted.append(outcome)
    results = []
    for s, outcome in zip(claimed, submitted):
        result = outcome if isinstance(outcome, ExecutionResult) else _settle(runners, s, outcome)
        journal.finished(result)
        log.info(
            "execution %s: %s tx=%s predicted=%s realised=%s %s",
            s.opportunity.key, result.status, result.tx_hash, result.predicted_profit,
            result.realised_profit, result.reason,
        )
        results.append(result)
    return results


def reconcile(runners: Runners, journal: Journal, older_than_s: float) -> list[ExecutionResult]:
    """Finish every attempt left unfinished for over ``older_than_s``; their results."""
    results = []
    for u in journal.stale_pending(older_than_s):
        if u.tx_hash:
            pending = Pending(u.attempt, u.tx_hash, "", 0)
            result = runners(u.attempt["chain_id"]).settle(pending, timeout_s=RECONCILE_RECEIPT_TIMEOUT_S)
        else:
            result = ExecutionResult.failed(u.attempt, "worker stopped before sending; nothing was sent")
        journal.finished(result)
        log.warning("reconciled %s:%s:%s -> %s", result.chain_id, result.block_number, result.path_id, result.status)
        results.append(result)
    return results


def _settle(runners: Runners, s: ScoredOpportunity, pending: Pending) -> ExecutionResult:
    try:
        return runners(s.opportunity.chain_id).settle(pending)
    except Exception as exc:
        log.exception("settling %s failed", s.opportunity.key)
        return ExecutionResult.failed(pending.attempt, _why(exc), tx_hash=pending.tx_hash)


def _why(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
