"""analytics queue: batched writes of records to the database."""

from __future__ import annotations

from arbbot.types import scored_from_wire
from workers import serializer
from workers.celery_app import app
from workers.stage import ITEMS, rejects_malformed


# idempotent (the service skips what is recorded): a batch whose worker died is delivered again
@app.task(name="workers.tasks.analytics.record_opportunities", acks_late=True, reject_on_worker_lost=True, serializer=serializer.NAME)
@rejects_malformed
def record_opportunities(scored: dict | list[dict]) -> int:
    from webapp.core import services

    batch = scored_from_wire(scored)  # a columnar batch (or an older producer's list)
    n = services.opportunities_record(batch)
    ITEMS.labels(stage="analytics").inc(n)
    return n
