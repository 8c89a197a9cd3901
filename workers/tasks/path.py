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
    slot = runtime.engine(d.chain_id)
    if d.reorg:
        runtime.mark_orphaned(d.chain_id, list(d.orphaned_hashes))
    hot = runtime.hotstate(d.chain_id)
    catch_up = slot.synced_block < 0 or d.block_number != slot.synced_block + 1 or d.reorg
    # Tokens the scan stage found unfit (fee-on-transfer, reverting transfers) leave the
    # graph before anything through them is evaluated; the reason is recorded once.
    tokens = None if catch_up else {t for st in d.states for t in (st.token0, st.token1)}
    for token, reason in hot.excluded_tokens(tokens).items():
        if token not in slot.engine.excluded:
            slot.engine.exclude(token, reason)
            from webapp.core import services

            services.token_exclude(d.chain_id, token, reason)
    changed = slot.engine.upsert(d.states)
    if catch_up:
        # This process missed blocks (they went to another worker) or a reorg replaced
        # state: catch up on every pool from the hot state before evaluating.
        changed |= slot.engine.upsert(hot.get_pools().values())
    fresh = slot.synced_block < 0
    slot.synced_block = max(slot.synced_block, d.block_number)
    gas_price = int(runtime.rpc(d.chain_id).call("eth_gasPrice"), 16)
    opps = slot.engine.evaluate(
        None if fresh else changed,
        chain_id=d.chain_id,
        block_number=d.block_number,
        block_hash=d.block_hash,
        gas_price_wei=gas_price,
        observed_at=d.observed_at,
    )
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
