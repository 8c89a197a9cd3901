"""ml queue: score a batch of opportunities and decide (rule scorer for now)."""

from __future__ import annotations

import logging

from arbbot.scoring.rule import RuleScorer, select_non_overlapping
from arbbot.types import Opportunity
from workers.celery_app import app
from workers.stage import ITEMS, as_list, rejects_malformed

log = logging.getLogger(__name__)
SCORER = RuleScorer()


@app.task(name="workers.tasks.ml.score", acks_late=True, reject_on_worker_lost=True)
@rejects_malformed
def score(opportunities: list[dict]) -> int:
    opps = [Opportunity.from_wire(o) for o in as_list(opportunities, "opportunities")]
    scored = SCORER.score_batch(opps)
    ITEMS.labels(stage="ml").inc(len(scored))
    from workers.tasks import analytics, execute

    analytics.record_opportunities.delay([s.to_wire() for s in scored])
    chosen = select_non_overlapping(scored)
    if chosen:
        execute.execute.delay([s.to_wire() for s in chosen])
    return len(chosen)
