"""scan queue: the collector. The block follower (``manage.py arbbot follow``) scans each
block the moment it arrives, in its own process (``workers.follow_scan``, running
``scan_blocks``), and sends ``scan_chain`` (``announce``) when that fails or with
``--scan queue``; beat's ``tick`` sends it once a second only for a chain whose follower
lease nobody holds (the fallback). ``scan_chain``
polls one chain under a Redis lock (never two scans of a chain at once), and publishes each
new block's ``PoolDelta`` to the path queue once (``claim_block``: several scan workers,
or a follower's announcement and a fallback tick, never double-publish a block).

An announced scan carries the block's arrival time: the deltas of the blocks it announced
(``first``..``block``) get it as ``observed_at``, so latency downstream counts from the
block's arrival, not from when a scan got round to it. An announced scan retries shortly
(every 20 ms, for about 2 s) when its block is not scanned yet because the lock was held
(the holder started before the block arrived) or because the scan's node is behind the
follower's (another endpoint, a few ms later): a block is never left waiting for the next.

With ``ARBBOT_RECORD_DIR`` set, each published block is also appended to the chain's
recording (``workers.runtime.record_block``, ``arbbot.replay``): the backtests' input.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Callable

from arbbot import obs
from arbbot.chain.follower import LEASE_TTL_S, Head
from arbbot.types import PoolDelta, uint, unix_time
from workers import runtime
from workers.celery_app import app
from workers.stage import ITEMS, Trace, rejects_malformed

log = logging.getLogger(__name__)
RETRY_S = 0.02  # the lock holder is mid-scan (one block takes ~10-50 ms), or the node lags
RETRIES = 100  # ~2 s; after that the next block's scan (or beat's tick) covers this one


@app.task(name="workers.tasks.scan.tick", acks_late=True)
def tick() -> int:
    """Beat's fallback: scan every active chain that no follower is following."""
    from webapp.core import selectors

    sent = 0
    for chain in selectors.chains_active():
        if runtime.hotstate(chain.chain_id).follower_lock(LEASE_TTL_S).locked():
            continue
        scan_chain.delay(chain.chain_id)
        sent += 1
    return sent


def announce(chain_id: int, head: Head) -> None:
    """The follower's callback: scan ``chain_id`` now for ``head`` (and the blocks of a
    gap before it). The block's trace starts here."""
    with obs.scope("block arrived", chain=chain_id, block=head.number):
        scan_chain.apply_async(
            (chain_id,), {"block": head.number, "first": head.first, "arrived_at": head.arrived_at}
        )


@app.task(name="workers.tasks.scan.scan_chain", bind=True, acks_late=True, reject_on_worker_lost=True)
def scan_chain(
    self: Any, chain_id: int, block: int | None = None, first: int | None = None, arrived_at: float | None = None
) -> int:
    published = _scan_in_task(chain_id, block, first, arrived_at)
    if published is None:  # the announced block is not scanned yet
        if self.request.retries < RETRIES:
            raise self.retry(countdown=RETRY_S, max_retries=RETRIES)
        log.info("chain %s: block %s still not scanned after %d retries; the next scan covers it",
                 chain_id, block, RETRIES)
        return 0
    return published


def warm(chain_id: int) -> None:
    """The chain's scanner built and what its first poll reads taken now (``Scanner.warm``,
    under the scan lock), before the first block: a process's start. Left to the first
    poll when another scan holds the lock."""
    hot = runtime.hotstate(chain_id)
    scanner = runtime.scanner(chain_id)
    with hot.scanning() as got:
        if got:
            scanner.warm()


def scan_blocks(chain_id: int, block: int | None, first: int | None, arrived_at: float | None,
                deliver: Callable[[PoolDelta, Trace], None] | None = None) -> int | None:
    """One scan; the number of blocks published, or None when an announced block is
    still not scanned (lock held elsewhere, or the node behind): retry. The task's body, and
    what the follower runs in its own process (``workers.follow_scan``). Each new block's
    delta goes to the path queue, or to ``deliver`` (the follower's own path stage, which
    then owns it: the block is claimed, no other scan publishes it)."""
    chain_id = uint(chain_id, bits=64)
    announced = None
    if block is not None:
        block = uint(block, bits=64)
        first = block if first is None else uint(first, bits=64)
        arrived = unix_time(arrived_at if arrived_at is not None else 0.0, "arrived_at")
        announced = (min(first, block), block, arrived)
    obs.bind(chain=chain_id, block=block)
    hot = runtime.hotstate(chain_id)
    started = time.time()
    published = 0
    with hot.scanning() as got:
        if not got:
            if announced is not None:
                head = hot.head()
                if head is None or head[0] < announced[1]:
                    return None
            return 0
        scanner = runtime.scanner(chain_id)
        for delta in scanner.poll():
            if announced is not None and announced[0] <= delta.block_number <= announced[1] and announced[2]:
                # the block arrived before this scan saw it: latency counts from arrival
                delta = dataclasses.replace(delta, observed_at=min(delta.observed_at, announced[2]))
            if hot.claim_block(delta.block_number, delta.block_hash):
                trace = Trace.start(delta.observed_at).mark("scan.start", started)
                if deliver is not None:
                    deliver(delta, trace)
                else:
                    from workers.tasks import path

                    with obs.scope("scan.publish", chain=chain_id, block=delta.block_number):
                        path.find.delay(delta.to_wire(), trace=trace.wire("scan.sent"))
                runtime.record_block(chain_id, delta)
                published += 1
                ITEMS.labels(stage="scan").inc(len(delta.states))
        if announced is not None and (scanner.last_block is None or scanner.last_block < announced[1]):
            return None  # this node has not got the block the follower saw yet
    return published


_scan_in_task = rejects_malformed(scan_blocks)  # in a task: bad input dead-lettered, outages retried
