"""The recent outcomes kept block by block (``arbbot.scoring.history.OutcomeWindow``) equal a
fresh ``OutcomeHistory`` over the same outcomes, bit for bit: moving forward, asked the same
block again, moving back, jumping past the window, with outcomes recorded late (within the
margin: at once; later: once the sweep has passed), revised, and with fractional success
shares. The reader here is a ledger in memory; tests/webapp/test_ml_history.py reads
PostgreSQL."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arbbot.scoring.features import LAG_BLOCKS, WINDOW_BLOCKS, Outcome, OutcomeHistory, columns
from arbbot.scoring import history
from arbbot.scoring.history import MARGIN_BLOCKS, SWEEP_S, BlockCounts, OutcomeWindow
from arbbot.scoring.synthetic import make_opp, pool

KINDS = ("success", "reverted", "stale")
SHARES = (1.0, 0.1, 0.25, 1 / 3, -1.0, 2.0, 0.7000000000000001, 5e-324, 1e-300)


@dataclass
class Ledger:
    """What the database holds as the chain goes: each (block, path)'s versions, each
    recorded once the head reaches a block; the reader returns what is recorded by then."""

    head: int = 0
    versions: dict[tuple[int, str], list[tuple[int, Outcome]]] = field(default_factory=dict)
    reads: list[tuple[tuple[int, int], ...]] = field(default_factory=list)

    def record(self, at_head: int, o: Outcome) -> None:
        self.versions.setdefault((o.block_number, o.path_id), []).append((at_head, o))

    def visible(self) -> list[Outcome]:
        out = []
        for versions in self.versions.values():
            seen = [o for at, o in sorted(versions, key=lambda v: v[0]) if at <= self.head]
            if seen:
                out.append(seen[-1])
        return out

    def read(self, ranges: tuple[tuple[int, int], ...]) -> list[Outcome]:
        self.reads.append(tuple(ranges))
        return [o for o in self.visible() if any(a <= o.block_number <= z for a, z in ranges)]


def same(kept: OutcomeHistory, fresh: OutcomeHistory) -> bool:
    """The same counts, and the same tables for a batch naming every pool and path."""
    if kept.pool != fresh.pool or kept.path != fresh.path:
        return False
    pools, paths = sorted(fresh.pool) or [pool(0)], sorted(fresh.path) or ["none"]
    opps = [replace(make_opp(1, 0, 1, 10**16), path_id=paths[i % len(paths)],
                    pools=(pools[i % len(pools)], pools[(i + 1) % len(pools)]))
            for i in range(max(len(pools), len(paths)))]
    c = columns(opps)
    return all(np.array_equal(a, b) for a, b in zip(kept.tables(c), fresh.tables(c)))


def outcome(rng: random.Random, block: int, path: int, shares: tuple[float, ...]) -> Outcome:
    pools = tuple(pool(p) if rng.random() < 0.8 else pool(p).upper().replace("0X", "0x")
                  for p in rng.sample(range(8), rng.randint(1, 3)))
    kind = rng.choice(KINDS)
    return Outcome(block, f"path-{path}", pools, kind, rng.choice(shares) if kind == "success" else 1.0)


@settings(deadline=None, max_examples=120)
@given(
    seed=st.integers(0, 2**32),
    span=st.integers(5, 700),
    per_block=st.integers(0, 4),
    late=st.integers(0, MARGIN_BLOCKS),
    revised=st.floats(0.0, 0.3),
    shares=st.lists(st.sampled_from(SHARES) | st.floats(-1.0, 2.0), min_size=1, max_size=6).map(tuple),
    steps=st.lists(st.tuples(st.one_of(st.integers(0, 3), st.integers(-8, -1), st.integers(4, 400)),
                             st.floats(0.0, 3.0)), min_size=1, max_size=40),
)
def test_kept_block_by_block_it_equals_a_fresh_history_at_every_block(
    seed: int, span: int, per_block: int, late: int, revised: float, shares: tuple[float, ...],
    steps: list[tuple[int, float]],
) -> None:
    """Outcomes recorded up to the margin after they count (``LAG_BLOCKS`` after their
    block), some revised within it: the window equals the fresh history at every ask,
    whatever the path of the asks."""
    rng = random.Random(seed)
    ledger, now = Ledger(), [0.0]
    first = 1000
    for b in range(first, first + span):
        for path in rng.sample(range(10), min(per_block, 10)):
            o = outcome(rng, b, path, shares)
            at = b + LAG_BLOCKS + rng.randint(0, late)
            ledger.record(at, o)
            if rng.random() < revised:  # revised before it leaves the margin
                ledger.record(rng.randint(at, b + LAG_BLOCKS + late), outcome(rng, b, path, shares))
    window = OutcomeWindow(ledger.read, clock=lambda: now[0])
    block = first + rng.randint(0, span)
    for step, dt in steps:
        block = max(first, block + step)
        ledger.head = max(ledger.head, block)  # asks may go back; what is recorded stays
        now[0] += dt
        assert same(window.at(block), OutcomeHistory(ledger.visible(), as_of=block)), (block, ledger.reads[-1])


@settings(deadline=None, max_examples=60)
@given(seed=st.integers(0, 2**32), span=st.integers(50, 500), very_late=st.integers(MARGIN_BLOCKS + 1, 200),
       steps=st.lists(st.integers(0, 5), min_size=1, max_size=30))
def test_outcomes_recorded_after_the_margin_are_counted_once_the_sweep_has_passed(
    seed: int, span: int, very_late: int, steps: list[int],
) -> None:
    """However late an outcome is recorded, a move ``SWEEP_S`` after the last one reads every
    block again: the window then equals the fresh history."""
    rng = random.Random(seed)
    ledger, now = Ledger(), [0.0]
    for b in range(1000, 1000 + span):
        for path in rng.sample(range(10), 2):
            ledger.record(b + LAG_BLOCKS + rng.randint(0, very_late), outcome(rng, b, path, (0.1, 0.3, 1.0)))
    window = OutcomeWindow(ledger.read, clock=lambda: now[0])
    block = 1000 + span // 2
    for step in steps:
        block += step
        ledger.head = block
        now[0] += 0.25
        window.at(block)
    now[0] += SWEEP_S
    assert same(window.at(block), OutcomeHistory(ledger.visible(), as_of=block))


def test_a_move_reads_the_new_blocks_the_margin_and_a_few_of_the_sweep_not_the_window() -> None:
    ledger, now = Ledger(), [0.0]
    window = OutcomeWindow(ledger.read, clock=lambda: now[0])
    window.at(2000)
    assert ledger.reads[-1] == ((2000 - WINDOW_BLOCKS, 2000 - LAG_BLOCKS),), "the first read: the whole window"
    now[0] += 0.5
    window.at(2002)
    held_hi, hi = 2000 - LAG_BLOCKS, 2002 - LAG_BLOCKS
    lap = hi - MARGIN_BLOCKS - (2002 - WINDOW_BLOCKS) + 1
    swept = math.ceil(lap * 0.5 / SWEEP_S)
    cursor = held_hi - MARGIN_BLOCKS  # the sweep starts under the margin of the first read
    assert blocks(ledger.reads[-1]) == (set(range(held_hi - MARGIN_BLOCKS + 1, hi + 1))  # the margin, the new two
                                        | set(range(cursor - swept + 1, cursor + 1))), ledger.reads[-1]
    window.at(2002)
    assert ledger.reads[-1] == ((hi - MARGIN_BLOCKS + 1, hi),), "asked again at once: the margin alone"
    window.at(1999)
    lo = 1999 - WINDOW_BLOCKS
    assert ledger.reads[-1] == ((lo, lo + 2), (hi - MARGIN_BLOCKS + 1, 1999 - LAG_BLOCKS)), \
        "back three blocks: the three coming back in at the bottom, and the margin"
    window.at(2999)
    assert ledger.reads[-1] == ((2999 - WINDOW_BLOCKS, 2999 - LAG_BLOCKS),), "past the window: all of it"


def blocks(ranges: tuple[tuple[int, int], ...]) -> set[int]:
    return {b for a, z in ranges for b in range(a, z + 1)}


@pytest.mark.parametrize("blocks_per_s", [0.25, 1.0, 4.5, 40.0])
def test_the_sweep_reads_every_settled_block_again_within_its_period_at_any_block_rate(blocks_per_s: float) -> None:
    """Whenever an outcome is recorded in a block under the margin, a move within
    ``SWEEP_S`` reads that block again, or the block has left the window by then."""
    ledger, now = Ledger(), [0.0]
    window = OutcomeWindow(ledger.read, clock=lambda: now[0])
    window.at(5000)
    asks: list[tuple[float, int]] = []
    while now[0] < 4 * SWEEP_S:
        now[0] += 0.5
        block = 5000 + int(now[0] * blocks_per_s)
        window.at(block)
        asks.append((now[0], block))
    read = [blocks(r) for r in ledger.reads[1:]]
    checked = 0
    for i, (t, block) in enumerate(asks):  # recorded just after the move i
        if t + SWEEP_S > asks[-1][0]:
            break
        later = [j for j in range(i + 1, len(asks)) if asks[j][0] <= t + SWEEP_S]
        for b in range(block - WINDOW_BLOCKS, block - LAG_BLOCKS - MARGIN_BLOCKS + 1):
            checked += 1
            assert any(b in read[j] or b < asks[j][1] - WINDOW_BLOCKS for j in later), (blocks_per_s, t, b)
    assert checked > 10_000


def test_an_outcome_recorded_after_the_margin_waits_for_the_sweep() -> None:
    ledger, now = Ledger(), [0.0]
    window = OutcomeWindow(ledger.read, clock=lambda: now[0])
    late = Outcome(1500, "p", (pool(1), pool(2)), "reverted")
    ledger.head = 1600
    window.at(1600)
    ledger.record(1600, late)  # recorded now, 98 blocks after its block
    now[0] += 0.5
    assert pool(1) not in window.at(1600).pool, "not in the margin: not read yet"
    now[0] += SWEEP_S
    assert window.at(1600).pool[pool(1)] == (1, 1, 0, 1500, 0, 0), "the sweep read its block again"


def test_a_failed_read_changes_nothing() -> None:
    ledger, now = Ledger(), [0.0]
    for b in range(1000, 1400):
        ledger.record(b, Outcome(b, f"p{b % 7}", (pool(b % 5), pool(5 + b % 3)), KINDS[b % 3], 0.1))
    down = [False]

    def read(ranges: tuple[tuple[int, int], ...]) -> list[Outcome]:
        if down[0]:
            raise ConnectionError("database down")
        return ledger.read(ranges)

    window = OutcomeWindow(read, clock=lambda: now[0])
    twin = OutcomeWindow(ledger.read, clock=lambda: now[0])  # the same moves, never failing
    ledger.head = 1300
    window.at(1300), twin.at(1300)
    ledger.head = 1310
    now[0] += 1.0
    down[0] = True
    with pytest.raises(ConnectionError):
        window.at(1310)
    assert window.as_of == 1300
    down[0] = False
    assert same(window.at(1310), twin.at(1310))
    assert window.last_read == twin.last_read, "it moved as if the failed read had never been"
    assert same(window.at(1310), OutcomeHistory(ledger.visible(), as_of=1310))


def test_the_latest_failure_of_a_pool_is_found_again_when_its_block_leaves_or_changes() -> None:
    ledger, now = Ledger(), [0.0]
    p = pool(1)
    for b, kind in ((1700, "reverted"), (1750, "stale"), (1790, "success"), (1796, "reverted")):
        ledger.record(b, Outcome(b, f"x{b}", (p,), kind, 0.5))  # type: ignore[arg-type]
    ledger.head = 2000
    window = OutcomeWindow(ledger.read, clock=lambda: now[0])
    assert window.at(1800).pool[p][3] == 1796
    ledger.record(2000, Outcome(1796, "x1796", (p,), "success", 0.5))  # revised within the margin
    assert window.at(1800).pool[p][3] == 1750, "its block changed: the failure before it"
    assert window.at(2051).pool[p][3] == -1, "1750 left the window: no failure left"
    assert same(window.at(2051), OutcomeHistory(ledger.visible(), as_of=2051))


def test_a_blocks_counts_share_their_tuples_but_never_grow_the_shared_ones_with_shares() -> None:
    """A window holds a block's counts per pool and path (~250,000 at the pipeline
    benchmark's rate): those without a share are one tuple per kind; a success's share is
    kept as its float, made exact when added."""
    rng = random.Random(2)
    outs = [Outcome(7, f"p{i}", (pool(i % 3000), pool(3000 + i % 17)), rng.choice(KINDS), rng.uniform(-1, 2))
            for i in range(5000)]
    before = len(history._SHARED)
    counts = BlockCounts.of(outs)
    assert len(history._SHARED) - before < 300
    lone = next(c for c in counts.pools.values() if c[3] == 1)
    assert type(lone[4]) is float and all(type(c[4]) is int for c in counts.pools.values() if c[3] != 1)
