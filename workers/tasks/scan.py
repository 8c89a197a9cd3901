"""scan queue: the collector. Beat fires ``tick``; ``scan_chain`` polls one chain under a
Redis lock (never two scans of a chain at once), and publishes each new block's
``PoolDelta`` to the path queue once (``claim_block``: several scan workers never
double-publish a block)."""

from __future__ import annotations

import logging

from arbbot.types import uint
from workers import runtime
from workers.celery_app import app
from workers.stage import ITEMS, rejects_malformed

log = logging.getLogger(__name__)
LOCK_TTL_S = 30


@app.task(name="workers.tasks.scan.tick", acks_late=True)
def tick() -> int:
    from webapp.core import selectors

    chains = selectors.chains_active()
    for chain in chains:
        scan_chain.delay(chain.chain_id)
    return len(chains)


@app.task(name="workers.tasks.scan.scan_chain", acks_late=True, reject_on_worker_lost=True)
@rejects_malformed
def scan_chain(chain_id: int) -> int:
    chain_id = uint(chain_id, bits=64)
    hot = runtime.hotstate(chain_id)
    published = 0
    with hot.scanning(ttl_s=LOCK_TTL_S) as got:
        if not got:
            return 0
        scanner = runtime.scanner(chain_id)
        for delta in scanner.poll():
            if hot.claim_block(delta.block_number, delta.block_hash):
                from workers.tasks import path

                path.find.delay(delta.to_wire())
                published += 1
                ITEMS.labels(stage="scan").inc(len(delta.states))
    return published
