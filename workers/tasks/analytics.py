"""analytics queue: batched writes of records to the database."""

from __future__ import annotations

from arbbot.types import ScoredOpportunity
from workers.celery_app import app
from workers.stage import ITEMS, as_list, rejects_malformed


# idempotent (the service skips what is recorded): a batch whose worker died is delivered again
@app.task(name="workers.tasks.analytics.record_opportunities", acks_late=True, reject_on_worker_lost=True)
@rejects_malformed
def record_opportunities(scored: list[dict]) -> int:
    from webapp.core import services

    batch = [ScoredOpportunity.from_wire(s) for s in as_list(scored, "scored")]
    n = services.opportunities_record(batch)
    ITEMS.labels(stage="analytics").inc(n)
    return n
