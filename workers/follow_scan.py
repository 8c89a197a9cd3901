"""The follower's own scan: each block the follower announces is scanned in the follower's
process, on one thread, instead of first crossing the scan queue to a scan worker.

Owns when a followed block is scanned here and when it goes to the scan queue instead.
A Celery hop costs 3.5-5 ms on the way from a block's arrival to the execute decision
(``bench/latency/README.md``); the follower already holds the head the moment it arrives,
so it runs the scan task's body (``workers.tasks.scan.scan_blocks``) itself, under the same
Redis scan lock and block claim as any scan worker. Nothing else changes: the deltas go to
the path queue as a scan worker's do, a scan worker (beat's fallback tick, a queued
announcement) may scan the chain between two of these, and the scanner adopts whatever
another process wrote (``Scanner._sync_from_store``).

- ``InlineScan(chain_id)`` is the follower's ``on_head``: it never blocks the follower's
  loop (that loop also renews the lease and the heartbeat). The newest head waits in one
  slot; a head arriving while a scan runs merges into it (``first`` the lowest, ``arrived_at``
  the earliest), so one scan covers both, as ``Scanner.poll`` processes every block since
  its cursor.
- A block not scanned yet (the lock held by a scan that started before it arrived, or the
  scan's node a few ms behind the follower's) is tried again every ``RETRY_S`` for about
  2 s, as the queued task retries, and sooner if a newer head arrives.
- A scan that raises (Redis, PostgreSQL or the node gone) hands its head to the scan queue
  (``workers.tasks.scan.announce``), whose task retries through outages and dead-letters
  what never works: nothing is lost that the queue would have kept. A head still waiting
  when the follower stops goes to the queue as well.

With ``through="ml"`` (``arbbot follow --through ml``, the default) the lane goes on with
each block it scanned, as a path task does (``workers.tasks.path.decide_here``): the path
stage and the ml stage's decision run here too, the chosen opportunities go straight to the
execute queue and the block's decisions to the analytics queue: one Celery hop fewer than
through the path queue. A big block goes on in two parts (``ARBBOT_PATH_FIRST_PART``): its
first part is decided and sent while the rest is sized; when it sent something to execute,
the lane first leaves the cores to the execute worker for ``ARBBOT_LANE_YIELD_MS`` (25 ms;
a newer head cuts it short). The stages are the workers' own code with their own state
(``runtime.path_stage``: an engine that missed the blocks another process took catches up
from the hot state, as a path worker's does). They run after the scan lock is released, so
a slow first block (the engine's build) never holds the chain's scan. What fails here goes
on through the queue whose worker would have run it, which retries outages and dead-letters
what never works (``workers.tasks.path.decide_here``): a path stage that raised hands the delta to the path
queue, a decision that raised hands the opportunities to the ml queue (a part of a block as
that part). When one scan covers several blocks (the lane fell behind, a gap, a head tried
again) only the newest is decided here; the older go to the path queue, so a lane that
falls behind on a busy chain never makes its newest block wait for them.
``through="scan"`` sends every scanned block to the path queue as a scan worker does.

What a crash costs: a follower killed between a block's scan and the publish of its
decisions (a few ms) loses that block's opportunities and their records, never its pool
states (they are in the hot state; every path stage's next block catches up on the pools
the lost one changed). A message on the path queue would have survived it (``acks_late``);
``through="scan"`` keeps that.

``arbbot follow --scan queue`` keeps the queue for every block (a follower too small to
hold the chain's pools, for one).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from arbbot import obs
from arbbot.chain.follower import Head, merge_heads
from arbbot.types import PoolDelta
from workers.stage import BATCHES, DURATION, ERRORS, Trace
from workers.tasks.scan import RETRIES, RETRY_S  # as the queued scan task retries

log = logging.getLogger(__name__)

#: how far the follower carries a block it scanned before a queue takes it on
THROUGH = ("scan", "ml")

#: where a block went that this lane scanned but did not decide: an older block of several
#: scanned at once (the others: ``workers.tasks.path.decide_here``'s)
BEHIND = "path queue, not the newest"


@dataclass
class Stats:
    scanned: int = 0  # heads whose scan ran here to the end
    retried: int = 0  # scans tried again (block not scanned yet)
    gave_up: int = 0  # heads left to the next scan after RETRIES
    queued: int = 0  # heads handed to the scan queue (a scan failed here, or at stop)
    blocks: dict[str, int] = field(default_factory=dict)  # through="ml": where each block went (decide_here)
    failed: dict[str, int] = field(default_factory=dict)  # exception name -> count


class InlineScan:
    """Scans announced heads on its own thread; ``scan(head)`` returns the blocks published
    or None when the head's block is not scanned yet; ``to_queue(head)`` announces it to the
    scan queue. Both default to the scan task's (``workers.tasks.scan``). ``warm`` (by
    default: with the scan task's own ``scan``) prepares the lane before the first head."""

    def __init__(self, chain_id: int, *, scan: Callable[[Head], int | None] | None = None,
                 to_queue: Callable[[Head], None] | None = None, retry_s: float = RETRY_S,
                 retries: int = RETRIES, through: str = "ml", warm: bool | None = None) -> None:
        if through not in THROUGH:
            raise ValueError(f"through: {through!r} is not one of {', '.join(THROUGH)}")
        self.chain_id = chain_id
        self.through = through
        self._scan = scan or self._scan_here
        self._warm = scan is None if warm is None else warm  # the workers' own stages: warmed before the first head
        self._to_queue = to_queue or self._announce
        self.retry_s = retry_s
        self.retries = retries
        self.stats = Stats()
        self._pending: Head | None = None
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _scan_here(self, head: Head) -> int | None:
        from workers.tasks import path, scan

        scanned: list[tuple[PoolDelta, Trace]] = []
        deliver = None if self.through == "scan" else (lambda d, tr: scanned.append((d, tr.mark("scan.sent"))))
        try:
            with obs.scope("block arrived", chain=self.chain_id, block=head.number):  # the block's trace starts
                return scan.scan_blocks(self.chain_id, head.number, head.first, head.arrived_at, deliver=deliver)
        finally:
            # after the scan lock's release; a block scanned before a failure is still this
            # lane's to carry on (it is claimed: no other scan publishes it). Several blocks at
            # once (the lane behind, a gap, a retried head): the newest is decided here at
            # once, the older go to the path queue, whose workers take them beside this lane
            for delta, trace in scanned[:-1]:
                try:
                    path.to_path_queue(delta, trace)
                    went = BEHIND
                except Exception as exc:
                    log.error("chain %s: block %d could not go to the path queue (%s: %s)",
                              self.chain_id, delta.block_number, type(exc).__name__, str(exc)[:200])
                    went = path.LOST
                self.stats.blocks[went] = self.stats.blocks.get(went, 0) + 1
            for delta, trace in scanned[-1:]:
                with obs.scope("block decided", chain=self.chain_id, block=delta.block_number):
                    went = path.decide_here(delta, trace, pause=self._yield)
                self.stats.blocks[went] = self.stats.blocks.get(went, 0) + 1
            if scanned:
                try:  # off the block's way, as the path task does after its publish
                    path.after_block(self.chain_id)
                except Exception:
                    log.exception("chain %s: the path stage's heap step failed", self.chain_id)

    def _yield(self, seconds: float) -> None:
        """``decide_here``'s pause: wait ``seconds``, or less if a newer head is waiting or
        arrives meanwhile (or the lane stops): the next block never waits for it."""
        with self._cv:
            self._cv.wait_for(lambda: self._pending is not None or self._stop.is_set(), seconds)

    def _announce(self, head: Head) -> None:
        from workers.tasks import scan

        scan.announce(self.chain_id, head)

    # ------------------------------------------------------------------ the follower's side

    def __call__(self, head: Head) -> None:
        """The follower's ``on_head``: never blocks, never raises. Should the scan thread be
        gone, the scan queue takes every block."""
        if self._thread is not None and not self._thread.is_alive() and not self._stop.is_set():
            self._queue(head)
            return
        with self._cv:
            self._pending = head if self._pending is None else merge_heads(self._pending, head)
            self._cv.notify()

    def start(self) -> InlineScan:
        """The lane's thread started, once the lane is prepared (``warm``, unless told not
        to): the follower takes its lease and subscribes after this, so no head waits for
        the preparation (beat's tick scans the chain meanwhile)."""
        if self._warm:
            self.warm()
        self._thread = threading.Thread(target=self._run, name=f"scan-{self.chain_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop after the scan under way; a head still waiting goes to the scan queue."""
        self._stop.set()
        with self._cv:
            self._cv.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)
        with self._cv:
            head, self._pending = self._pending, None
        if head is not None:
            self._queue(head)

    # ------------------------------------------------------------------ the scan thread

    def _take(self, timeout_s: float | None) -> Head | None:
        with self._cv:
            if self._pending is None and not self._stop.is_set():
                self._cv.wait(timeout_s)
            head, self._pending = self._pending, None
            return head

    def warm(self) -> None:
        """Before the first head: what the lane's first block would build on its way
        (measured on the devnet: that block decided ~0.4-0.9 s after its arrival against
        ~30 ms for the next ones): the stages' modules, the scanner and the hot state it
        adopts, and, carrying blocks on, the sizing and scoring kernels, the path stage
        primed with every pool, the decision's inputs, and the broker connection with the
        queues and tasks the lane sends to. Best effort: what fails here is built by the
        first block, which reports it."""
        from django.db import connections

        from workers.celery_app import warm_publisher
        from workers.tasks import ml, path, scan

        t0 = time.monotonic()
        log.info("chain %s: preparing the follower's lane (a first start compiles the sizing kernels)", self.chain_id)
        steps: list[tuple[str, Callable[[], object]]] = [("the scanner", lambda: scan.warm(self.chain_id))]
        if self.through == "ml":
            from arbbot.paths import _kernels
            from arbbot.scoring import kernel

            steps += [("the kernels", lambda: (_kernels.warm(), kernel.warm())),
                      ("the path stage", lambda: path.warm(self.chain_id)),
                      ("the decision's inputs", lambda: ml.warm(self.chain_id))]
        steps.append(("the broker", lambda: warm_publisher((*path.publishes(), scan.scan_chain))))
        for what, step in steps:
            try:
                step()
            except Exception as exc:
                log.warning("chain %s: could not prepare %s of the follower's lane (%s: %s); its first block will",
                            self.chain_id, what, type(exc).__name__, str(exc)[:200])
                connections.close_all()
        log.info("chain %s: the follower's lane is ready in %.2f s", self.chain_id, time.monotonic() - t0)

    def _run(self) -> None:
        from django.db import close_old_connections, connections

        try:
            while not self._stop.is_set():
                head = self._take(None)
                if head is None:
                    continue
                try:
                    close_old_connections()  # as a Celery task starts: a broken connection is made again
                    self._scan_until_done(head)
                except Exception:  # never let the thread die: the next head is scanned as usual
                    log.exception("chain %s: the follower's scan of block %d failed", self.chain_id, head.number)
        finally:
            connections.close_all()

    def _scan_until_done(self, head: Head) -> None:
        tries = 0
        while True:
            started = time.perf_counter()
            BATCHES.labels(stage="scan").inc()
            try:
                got = self._scan(head)
            except Exception as exc:
                ERRORS.labels(stage="scan").inc()
                name = type(exc).__name__
                self.stats.failed[name] = self.stats.failed.get(name, 0) + 1
                log.warning("chain %s: scanning block %d here failed (%s: %s); the scan queue takes it",
                            self.chain_id, head.number, name, str(exc)[:200])
                self._queue(head)
                return
            finally:
                DURATION.labels(stage="scan").observe(time.perf_counter() - started)
            if got is not None:
                self.stats.scanned += 1
                return
            tries += 1
            if tries > self.retries:
                self.stats.gave_up += 1
                log.info("chain %s: block %s still not scanned after %d retries; the next scan covers it",
                         self.chain_id, head.number, self.retries)
                return
            self.stats.retried += 1
            newer = self._take(self.retry_s)  # a newer head cuts the wait short and joins this scan
            if newer is not None:
                head = merge_heads(head, newer)
            if self._stop.is_set():
                self._queue(head)
                return

    def _queue(self, head: Head) -> None:
        try:
            self._to_queue(head)
            self.stats.queued += 1
        except Exception as exc:  # the broker too: the next head's scan covers this block
            log.error("chain %s: block %d could not go to the scan queue either (%s: %s)",
                      self.chain_id, head.number, type(exc).__name__, str(exc)[:200])
