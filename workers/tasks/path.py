"""path queue: a ``PoolDelta`` in, the profitable cycles through the changed pools out (to
the ml queue) as one batch. The stage reads the recorded exclusions (``runtime.exclusions``,
kept a second) and hands back the tokens the scan stage flagged, which are recorded here.

``evaluate`` is the stage's body, without the queue: the task runs it on a delta it
decoded, and the block follower runs it on a delta it scanned itself
(``workers.follow_scan``, ``arbbot follow --through ml``)."""

from __future__ import annotations

from arbbot import obs
from arbbot.types import Opportunity, PoolDelta, opportunities_to_wire
from workers import heap, runtime
from workers.celery_app import app
from workers.stage import BLOCKS_SINCE_OPPORTUNITY, ITEMS, OPPORTUNITIES, Trace, rejects_malformed


@app.task(name="workers.tasks.path.find", acks_late=True, reject_on_worker_lost=True)
@rejects_malformed
def find(delta: dict, trace: list | None = None) -> int:
    tr = Trace(trace).mark("path.start")
    d = PoolDelta.from_wire(delta)
    opps = evaluate(d)
    if opps:
        from workers.tasks import ml

        ml.score.delay(opportunities_to_wire(opps), trace=tr.wire("path.sent"))
    after_block(d.chain_id)  # off the block's way
    return len(opps)


#: chain -> the pools its stage's engine knew after its last block (``after_block``)
_known: dict[int, int] = {}


def evaluate(d: PoolDelta) -> list[Opportunity]:
    """The opportunities of one delta, best first; the tokens the scan stage flagged are
    recorded, and the stage's counters moved."""
    obs.bind(chain=d.chain_id, block=d.block_number)
    from webapp.core import services

    stage = runtime.path_stage(d.chain_id)
    result = stage.process(d, runtime.hotstate(d.chain_id), runtime.exclusions)
    _known[d.chain_id] = stage.engine.pools_known
    for token, reason in result.exclusions.items():
        services.token_exclude(d.chain_id, token, reason)
    opps = result.opportunities
    obs.note(pools=len(d.states), opportunities=len(opps))
    chain = str(d.chain_id)
    ITEMS.labels(stage="path").inc(len(d.states))
    OPPORTUNITIES.labels(chain=chain).inc(len(opps))
    if opps:
        BLOCKS_SINCE_OPPORTUNITY.labels(chain=chain).set(0)
    else:
        BLOCKS_SINCE_OPPORTUNITY.labels(chain=chain).inc()
    return opps


def after_block(chain_id: int) -> None:
    """The heap step (``workers.heap``) after a block's publish, for the engine that just
    evaluated it (not a stage a newer strategy would build now)."""
    if chain_id in _known:
        heap.after_block(chain_id, _known[chain_id])
