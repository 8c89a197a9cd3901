"""execute queue: decode a batch of scored opportunities, run the execute stage
(``arbbot.execution.stage``) with the database journal, count the outcomes; follow the
sent transactions to their final outcome (``arbbot.execution.follow``, every second from
beat, one pass per chain at a time).

Idempotent: each Execution row for (chain, block, path) is claimed first (a database
unique constraint); a redelivered message finds the claims and does nothing."""

from __future__ import annotations

from arbbot.execution import stage
from arbbot.execution.follow import follow as follow_pass
from arbbot.types import ExecutionResult, scored_from_wire
from workers import runtime, serializer
from workers.celery_app import app
from workers.stage import BLOCK_TO_DECISION, EXECUTIONS, GAS_SPENT, ITEMS, Trace, bind_batch, rejects_malformed


@app.task(name="workers.tasks.execute.execute", acks_late=True, reject_on_worker_lost=True, serializer=serializer.NAME)
@rejects_malformed
def execute(scored: dict | list[dict], trace: list | None = None) -> int:
    from webapp.core.services import DbJournal

    tr = Trace(trace).mark("execute.start")
    batch = scored_from_wire(scored)  # a columnar batch (or an older producer's list)
    bind_batch([s.opportunity for s in batch])
    results = stage.execute(batch, runtime.runner, DbJournal())
    _count([r for r in results if r.status != "sent"])  # sent ones are counted once final
    for r in results:
        if r.extra.get("decision_latency_s") is not None:
            BLOCK_TO_DECISION.labels(chain=str(r.chain_id)).observe(r.extra["decision_latency_s"])
    if batch:
        tr.done(batch[0].opportunity.chain_id, batch[0].opportunity.block_number,
                [r.extra["decided_at"] for r in results if r.extra.get("decided_at")])
    ITEMS.labels(stage="execute").inc(len(results))
    return len(results)


@app.task(name="workers.tasks.execute.reconcile", acks_late=True)
def reconcile(older_than_s: float = 120.0) -> int:
    """Finish executions left ``pending`` (nothing signed) by a worker that died."""
    from webapp.core.services import DbJournal

    return len(stage.reconcile(DbJournal(), older_than_s))


@app.task(name="workers.tasks.execute.follow", expires=5.0)
def follow() -> int:
    """One follow pass over each chain with open transactions; skipped for a chain whose
    previous pass still runs. The number of transitions."""
    from webapp.core import selectors
    from webapp.core.services import DbJournal

    done = 0
    for chain_id in selectors.chains_following():
        with runtime.hotstate(chain_id).journal_lock() as mine:
            if mine:
                report = follow_pass(runtime.runner(chain_id), DbJournal(), runtime.follow_policy(chain_id))
                _count(report.results)
                done += sum(report.counts.values())
    return done


def _count(results: list[ExecutionResult]) -> None:
    for r in results:
        EXECUTIONS.labels(chain=str(r.chain_id), status=r.status).inc()
        if r.gas_used:
            GAS_SPENT.labels(chain=str(r.chain_id)).inc(r.gas_used * r.gas_price_wei)
