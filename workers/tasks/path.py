"""path queue: a ``PoolDelta`` in, the profitable cycles through the changed pools out
(to the ml queue), as one batch."""

from __future__ import annotations

import logging

from arbbot.types import PoolDelta
from workers import runtime
from workers.celery_app import app
from workers.stage import BLOCKS_SINCE_OPPORTUNITY, ITEMS, OPPORTUNITIES, rejects_malformed

log = logging.getLogger(__name__)


@app.task(name="workers.tasks.path.find", acks_late=True, reject_on_worker_lost=True)
@rejects_malformed
def find(delta: dict) -> int:
    d = PoolDelta.from_wire(delta)
    stage = runtime.path_stage(d.chain_id)
    gas_price = int(runtime.rpc(d.chain_id).call("eth_gasPrice"), 16)
    opps = stage.process(d, runtime.hotstate(d.chain_id), gas_price_wei=gas_price)
    if stage.newly_excluded:
        from webapp.core import services

        for token, reason in stage.newly_excluded.items():
            services.token_exclude(d.chain_id, token, reason)
    ITEMS.labels(stage="path").inc(len(d.states))
    chain = str(d.chain_id)
    OPPORTUNITIES.labels(chain=chain).inc(len(opps))
    if opps:
        BLOCKS_SINCE_OPPORTUNITY.labels(chain=chain).set(0)
    else:
        BLOCKS_SINCE_OPPORTUNITY.labels(chain=chain).inc()
    if opps:
        from workers.tasks import ml

        ml.score.delay([o.to_wire() for o in opps])
    return len(opps)
