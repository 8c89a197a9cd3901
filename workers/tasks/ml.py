"""ml queue: score a batch of opportunities and decide (rule scorer for now, with the
chain's strategy margin and minimum net profit, both in the native token). Every decision is recorded; exactly those decided ``execute`` go
on to the execute queue."""

from __future__ import annotations

from arbbot import obs
from arbbot.scoring.rule import RuleScorer
from arbbot.types import Opportunity
from workers.celery_app import app
from workers.stage import ITEMS, MODEL_SCORE, Trace, as_list, bind_batch, rejects_malformed


def scorer(chain_id: int) -> RuleScorer:
    """The rule scorer with the chain's strategy in force (read once per batch: per block)."""
    from webapp.core import selectors

    strategy = selectors.strategy_for(chain_id)
    return RuleScorer(margin=strategy.margin, min_net_profit=strategy.min_profit_wei)


@app.task(name="workers.tasks.ml.score", acks_late=True, reject_on_worker_lost=True)
@rejects_malformed
def score(opportunities: list[dict], trace: list | None = None) -> int:
    tr = Trace(trace).mark("ml.start")
    opps = [Opportunity.from_wire(o) for o in as_list(opportunities, "opportunities")]
    bind_batch(opps)
    by_chain: dict[int, list[Opportunity]] = {}
    for o in opps:
        by_chain.setdefault(o.chain_id, []).append(o)
    decided = [s for chain_id, batch in by_chain.items() for s in scorer(chain_id).decide(batch)]
    ITEMS.labels(stage="ml").inc(len(decided))
    for s in decided:
        MODEL_SCORE.labels(chain=str(s.opportunity.chain_id), model=s.model, decision=s.decision).observe(s.score)
    from workers.tasks import analytics, execute

    chosen = [s.to_wire() for s in decided if s.decision == "execute"]
    obs.note(opportunities=len(decided), chosen=len(chosen))
    if chosen:  # first: the execute decision waits on this publish, the records do not
        execute.execute.delay(chosen, trace=tr.wire("ml.sent"))
    analytics.record_opportunities.delay([s.to_wire() for s in decided])
    return len(chosen)
