"""execute queue: risk checks, re-validation, signing and sending, receipt, record.

Idempotent: the Execution row for (chain, block, path) is claimed first (a database
unique constraint); a redelivered message finds the claim and does nothing."""

from __future__ import annotations

import logging

from arbbot.types import ExecutionResult, ScoredOpportunity
from workers import runtime
from workers.celery_app import app
from workers.stage import EXECUTIONS, GAS_SPENT, ITEMS, as_list, rejects_malformed

log = logging.getLogger(__name__)


@app.task(name="workers.tasks.execute.execute", acks_late=True, reject_on_worker_lost=True)
@rejects_malformed
def execute(scored: list[dict]) -> int:
    from webapp.core import services

    batch = [ScoredOpportunity.from_wire(s) for s in as_list(scored, "scored")]
    claimed = []
    for s in batch:
        if services.execution_claim(s) is None:
            log.info("already executed or claimed: %s", s.opportunity.key)
        else:
            claimed.append(s)
    # Submit everything, then settle: the batch's transactions can share a block.
    pending = []
    for s in claimed:
        try:
            outcome = runtime.runner(s.opportunity.chain_id).submit(s)
            if not isinstance(outcome, ExecutionResult):
                o = s.opportunity
                services.execution_sent(o.chain_id, o.block_number, o.path_id, outcome.tx_hash)
            pending.append((s, outcome))
        except Exception as exc:  # one failing item is recorded, the batch goes on
            log.exception("execution of %s failed", s.opportunity.key)
            pending.append((s, _failed(s, exc)))
    done = 0
    for s, outcome in pending:
        if isinstance(outcome, ExecutionResult):
            result = outcome
        else:
            try:
                result = runtime.runner(s.opportunity.chain_id).settle(outcome)
            except Exception as exc:
                log.exception("settling %s failed", s.opportunity.key)
                result = _failed(s, exc, tx_hash=outcome.tx_hash)
        services.execution_finish(result)
        EXECUTIONS.labels(chain=str(result.chain_id), status=result.status).inc()
        if result.gas_used:
            GAS_SPENT.labels(chain=str(result.chain_id)).inc(result.gas_used * result.gas_price_wei)
        log.info(
            "execution %s: %s tx=%s predicted=%s realised=%s %s",
            s.opportunity.key, result.status, result.tx_hash, result.predicted_profit,
            result.realised_profit, result.reason,
        )
        done += 1
    ITEMS.labels(stage="execute").inc(done)
    return done


@app.task(name="workers.tasks.execute.reconcile", acks_late=True)
def reconcile(older_than_s: float = 120.0) -> int:
    """Finish executions left ``pending`` by a worker that died: from the chain when the
    transaction was sent (its receipt decides), else as failed (nothing was sent)."""
    from webapp.core import selectors, services
    from arbbot.execution.runner import Pending

    n = 0
    for row in selectors.executions_stale_pending(older_than_s):
        base = {
            "chain_id": row.chain_id, "block_number": row.block_number, "path_id": row.path_id,
            "predicted_profit": int(row.predicted_profit), "profit_token": row.profit_token,
            "amount_in": int(row.amount_in),
        }
        if row.tx_hash:
            result = runtime.runner(row.chain_id).settle(Pending(base, row.tx_hash, "", 0), timeout_s=5.0)
        else:
            result = ExecutionResult(status="failed", reason="worker stopped before sending; nothing was sent",
                                     **base)  # type: ignore[arg-type]
        services.execution_finish(result)
        log.warning("reconciled %s:%s:%s -> %s", row.chain_id, row.block_number, row.path_id, result.status)
        n += 1
    return n


def _failed(s: ScoredOpportunity, exc: Exception, tx_hash: str | None = None) -> ExecutionResult:
    o = s.opportunity
    return ExecutionResult(
        chain_id=o.chain_id, block_number=o.block_number, path_id=o.path_id, status="failed",
        predicted_profit=o.profit, profit_token=o.tokens[0], amount_in=o.amount_in, tx_hash=tx_hash,
        reason=f"{type(exc).__name__}: {exc}"[:300],
    )
