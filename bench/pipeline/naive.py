"""The pipeline benchmark's naive baseline: what the fleet would be without batches. One
Celery task per opportunity on the ml queue (decode, score it alone, hand it on), one task
per opportunity on the analytics queue, one ORM ``create`` per row. Started as a real worker
(``celery -A bench.pipeline.naive worker -Q ml,analytics``) with the fleet's own app, broker
settings and database; the benchmark's phase 4 sends to it. Never part of the fleet."""

from __future__ import annotations

import time
from decimal import Decimal

from arbbot.scoring.rule import RuleScorer
from arbbot.types import Opportunity, ScoredOpportunity
from workers.celery_app import app

__all__ = ["app", "record_one", "score_one"]


@app.task(name="bench.pipeline.naive.score_one")
def score_one(opportunity: dict) -> str:
    scored = RuleScorer().score(Opportunity.from_wire(opportunity))
    record_one.apply_async((scored.to_wire(),), queue="analytics")
    return scored.decision


@app.task(name="bench.pipeline.naive.record_one")
def record_one(scored: dict) -> int:
    from webapp.core.models import Opportunity as Row
    from webapp.core.services import _ts

    s = ScoredOpportunity.from_wire(scored)
    o, now = s.opportunity, time.time()
    Row.objects.create(
        created_at=_ts(now), chain_id=o.chain_id, block_number=o.block_number, block_hash=o.block_hash,
        path_id=o.path_id, pools=list(o.pools), tokens=list(o.tokens), profit_token=o.tokens[0],
        amount_in=Decimal(o.amount_in), amount_out=Decimal(o.amount_out), gas_cost=Decimal(o.gas_cost),
        net_profit=Decimal(o.net_profit),
        profit_native=None if o.profit_native is None else Decimal(o.profit_native),
        net_profit_native=None if o.net_profit_native is None else Decimal(o.net_profit_native),
        score=s.score, decision=s.decision, reason=s.reason[:200],
        latency_ms=(now - o.observed_at) * 1000 if o.observed_at else None,
    )
    return 1
