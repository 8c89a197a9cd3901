"""The ml stage's recent outcomes kept up to date block by block: ``OutcomeWindow``.

A fresh ``OutcomeHistory`` reads every outcome of its window (``WINDOW_BLOCKS`` blocks, up
to ~70,000 outcomes at the pipeline benchmark's ~240 executions a block) and counts each in
Python: its cost grows with the window, and it is read again every other block when blocks
come faster than twice a second. The window instead keeps each block's counts
(``BlockCounts``) and the totals over the blocks it holds; moved to a new block, it reads
only the outcomes of the blocks it lacks, plus a margin of recent blocks read again, and
adds and subtracts whole blocks. Its cost per block is that of the blocks it reads, not of
the window (a shallow copy of the two totals' dictionaries aside, in C: ~0.4 ms at 70,000
keys), and what it hands out equals a fresh ``OutcomeHistory`` over the same outcomes, bit
for bit (the counts are exact, the share sums exact integers: ``features.exact_share``).

What it reads on a move from the window ``[lo, hi]`` (``hi = as_of - LAG_BLOCKS``) to
``[lo', hi']``:
* the blocks of ``[lo', hi']`` outside ``[lo, hi]``: the new blocks going forward, the
  blocks coming back into the window going back (an old batch, a reorg); no overlap at all
  (the first read, a long pause): the whole window, as a fresh history would;
* the margin: the last ``MARGIN_BLOCKS`` of ``[lo, hi]``, read again (also when asked the
  same block again), each block's counts replaced when they changed. An outcome counts
  from ``LAG_BLOCKS`` after its block, but it can be recorded later: a live transaction is
  final ``confirmations`` (2 by default) after it is mined, one or more blocks after its
  opportunity's, and a replaced one later still; the execute stage's backlog delays every
  record. 8 blocks cover a live trade mined within a few blocks and made final after a
  few confirmations, at one block's reading each (~240 outcomes here);
* the sweep: the blocks under the margin read again once every ``SWEEP_S``, a few at each
  move (a cursor going down through them, then from the top again, its share of a lap for
  the time since the last move; a move after ``SWEEP_S`` unasked reads them all): an
  outcome recorded later than the margin allows is counted within about ``SWEEP_S``, or
  its block has left the window by then.

A read that fails changes nothing (the outcomes are read before any count is touched): the
caller fails closed. The history handed out is a snapshot nothing changes afterwards, so a
batch scored while the window moves on (the refresher's thread) reads consistent counts.
No I/O here: the reader is given (``webapp.core.selectors.ml_outcomes_in``).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from sys import intern
from typing import Any, Callable, Iterable, Sequence

from arbbot.scoring.features import (
    LAG_BLOCKS,
    WINDOW_BLOCKS,
    Outcome,
    OutcomeHistory,
    PathStats,
    PoolStats,
    exact_share,
)

MARGIN_BLOCKS = 8  # the last blocks read again at every move (outcomes recorded late)
SWEEP_S = 30.0  # every block under the margin read again about this often

#: reads the outcomes of the blocks of these ranges (first, last; inclusive), as
#: ``selectors.ml_outcomes`` does for a whole window: final executions, a (block, path) once
Reader = Callable[[Sequence[tuple[int, int]]], Iterable[Outcome]]

#: attempts, reverted, stale, successes, and their shares' sum: a lone success's own float
#: (exact as it is: ``exact_share`` when it is added), else the exact sum
_BlockPool = tuple[int, int, int, int, "int | float"]
#: the counts of a pool without a success in a block, and of a path: a few hundred kinds,
#: one tuple each (a window holds ~250,000 of them at the pipeline benchmark's rate)
_SHARED: dict[tuple[Any, ...], tuple[Any, ...]] = {}


def _exact(share: int | float) -> int:
    return share if type(share) is int else exact_share(share)


@dataclass(frozen=True, slots=True)
class BlockCounts:
    """One block's outcomes counted, per pool (lower case) and per path: what the window
    adds to its totals when the block comes in and subtracts when it leaves."""

    pools: dict[str, _BlockPool]
    paths: dict[str, PathStats]

    @classmethod
    def of(cls, outcomes: Iterable[Outcome]) -> BlockCounts:
        pools: dict[str, list[int | float]] = {}
        paths: dict[str, list[int]] = {}
        for o in outcomes:
            failed = o.kind != "success"
            for p in o.pools:
                s = pools.setdefault(intern(p.lower()), [0, 0, 0, 0, 0])  # one string a pool, not one a block
                s[0] += 1
                if failed:
                    s[1] += o.kind == "reverted"
                    s[2] += o.kind == "stale"
                else:
                    s[3] += 1
                    s[4] = o.share if s[3] == 1 else _exact(s[4]) + exact_share(o.share)
            t = paths.setdefault(intern(o.path_id), [0, 0])
            t[0] += 1
            t[1] += failed
        return cls({k: _one(v) for k, v in pools.items()}, {k: _one(v) for k, v in paths.items()})


def _one(counts: list[Any]) -> Any:
    """``counts`` as a tuple: the one of its kind when it holds no share (those with one
    are kept as they are: their kinds are as many as the shares)."""
    c = tuple(counts)
    return _SHARED.setdefault(c, c) if len(c) == 2 or c[3] == 0 else c


class OutcomeWindow:
    """One chain's recent outcomes as of the block last asked (``at``), kept block by block.
    Thread-safe: moves are serialised, and each hands out a snapshot of its own."""

    def __init__(self, read: Reader, *, margin_blocks: int = MARGIN_BLOCKS, sweep_s: float = SWEEP_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self.margin_blocks, self.sweep_s = margin_blocks, sweep_s
        self._clock = clock
        self._lock = threading.Lock()
        self._blocks: dict[int, BlockCounts] = {}  # the non-empty blocks of [lo, hi]
        self._pool: dict[str, PoolStats] = {}  # totals over _blocks
        self._path: dict[str, PathStats] = {}
        self._as_of: int | None = None
        self._lo = self._hi = 0
        self._moved_at = 0.0
        self._cursor = 0  # the sweep's next block
        #: the block ranges each move read (tests, the benchmark)
        self.last_read: tuple[tuple[int, int], ...] = ()

    @property
    def as_of(self) -> int | None:
        return self._as_of

    def at(self, block: int) -> OutcomeHistory:
        """The outcomes of ``[block - WINDOW_BLOCKS, block - LAG_BLOCKS]`` as a fresh
        ``OutcomeHistory`` would count them (those recorded later than the margin once the
        sweep has passed their block); raises what the reader raises, changing nothing."""
        with self._lock:
            now = self._clock()
            lo, hi = block - WINDOW_BLOCKS, block - LAG_BLOCKS
            wanted, cursor = self._wanted(block, lo, hi, now)
            ranges = _ranges(wanted)
            by_block: dict[int, list[Outcome]] = {}
            for o in self._read(ranges) if ranges else ():
                by_block.setdefault(o.block_number, []).append(o)
            # read: from here nothing can fail
            floor = lo if self._as_of is None else min(lo, self._lo)  # no block held under it
            for b in [b for b in self._blocks if not lo <= b <= hi]:
                self._remove(b, floor)
            for b in sorted(wanted):
                got = by_block.get(b)
                counts = BlockCounts.of(got) if got else None
                held = self._blocks.get(b)
                if counts != held:
                    if held is not None:
                        self._remove(b, floor)
                    if counts is not None:
                        self._add(b, counts)
            self._as_of, self._lo, self._hi, self._moved_at, self._cursor = block, lo, hi, now, cursor
            self.last_read = ranges
            return OutcomeHistory.of(dict(self._pool), dict(self._path))

    def _wanted(self, block: int, lo: int, hi: int, now: float) -> tuple[set[int], int]:
        """The blocks to read to move to ``block`` (see the module's docstring), and the
        sweep's next block."""
        if self._as_of is None or hi < self._lo or lo > self._hi:
            return set(range(lo, hi + 1)), hi - self.margin_blocks  # nothing held overlaps: all of it
        unsettled = self._hi - self.margin_blocks  # held blocks above this are read again
        wanted = {b for b in range(lo, hi + 1) if b < self._lo or b > unsettled}
        # the sweep goes down the blocks under the margin, [lo, top], from its cursor (back
        # to the top from the bottom), its share of a lap per SWEEP_S since the last move.
        # From any block, the way down to the bottom and from the top back to it is less
        # than a lap (the bottom comes up to meet it): it comes back within SWEEP_S, unless
        # the block has left the window first, whatever the block rate.
        top = hi - self.margin_blocks
        lap = top - lo + 1
        if lap <= 0:
            return wanted, top
        n = min(lap, math.ceil(lap * max(now - self._moved_at, 0.0) / self.sweep_s))
        start = self._cursor if lo <= self._cursor <= top else top
        wanted.update(lo + (start - lo - i) % lap for i in range(n))
        return wanted, lo + (start - lo - n) % lap

    def _add(self, b: int, counts: BlockCounts) -> None:
        self._blocks[b] = counts
        pool, path = self._pool, self._path
        for p, (a, r, s, k, share) in counts.pools.items():
            t = pool.get(p)
            failed = a > k
            sh = _exact(share)
            if t is None:
                pool[p] = (a, r, s, b if failed else -1, k, sh)
            else:
                pool[p] = (t[0] + a, t[1] + r, t[2] + s, max(t[3], b) if failed else t[3], t[4] + k, t[5] + sh)
        for q, (a, f) in counts.paths.items():
            u = path.get(q)
            path[q] = (a, f) if u is None else (u[0] + a, u[1] + f)

    def _remove(self, b: int, floor: int) -> None:
        counts = self._blocks.pop(b)
        pool, path = self._pool, self._path
        for p, (a, r, s, k, share) in counts.pools.items():
            t = pool[p]
            attempts, successes = t[0] - a, t[4] - k
            if attempts == 0:
                del pool[p]
                continue
            last = t[3]
            if a > k and last == b:  # its latest failure leaves: the one before, among the blocks held
                last = -1 if attempts == successes else self._last_failure(p, b, floor)
            pool[p] = (attempts, t[1] - r, t[2] - s, last, successes, t[5] - _exact(share))
        for q, (a, f) in counts.paths.items():
            u = path[q]
            if u[0] == a:
                del path[q]
            else:
                path[q] = (u[0] - a, u[1] - f)

    def _last_failure(self, pool: str, below: int, floor: int) -> int:
        """The latest block held under ``below`` (down to ``floor``) with a failure on
        ``pool`` (none above: ``below`` was its latest)."""
        for b in range(below - 1, floor - 1, -1):
            counts = self._blocks.get(b)
            s = None if counts is None else counts.pools.get(pool)
            if s is not None and s[0] > s[3]:
                return b
        return -1


def _ranges(blocks: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """Sorted blocks as the fewest inclusive ranges."""
    out: list[list[int]] = []
    for b in sorted(blocks):
        if out and out[-1][1] == b - 1:
            out[-1][1] = b
        else:
            out.append([b, b])
    return tuple((a, z) for a, z in out)
