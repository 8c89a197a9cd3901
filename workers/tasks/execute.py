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
            pending.append((s, runtime.runner(s.opportunity.chain_id).submit(s)))
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


def _failed(s: ScoredOpportunity, exc: Exception, tx_hash: str | None = None) -> ExecutionResult:
    o = s.opportunity
    return ExecutionResult(
        chain_id=o.chain_id, block_number=o.block_number, path_id=o.path_id, status="failed",
        predicted_profit=o.profit, profit_token=o.tokens[0], amount_in=o.amount_in, tx_hash=tx_hash,
        reason=f"{type(exc).__name__}: {exc}"[:300],
    )
