"""Paper fills move the recorded pools (``arbbot.replay.fills``): a backtest does not take the
same gap twice, the moved pools are published with the next block, and the recording's own
next change of a pool overrides the moved state."""

from __future__ import annotations

import dataclasses

import pytest

from arbbot.math import v2 as v2math
from arbbot.paths.resize import resize
from arbbot.replay.backtest import BacktestStrategy, ReplayState, run
from arbbot.replay.fills import fill
from arbbot.replay.recording import RecordedBlock, Recording, RecordingWriter
from arbbot.replay.report import executed_cycles
from arbbot.types import Opportunity, V2PoolState
from tests.replay.market import CHAIN_ID, E18, POOL_A, POOL_B, USDC, WETH, delta, meta, pool

POOL_E = "0x" + "05" * 20  # a third WETH/USDC pair
PAR = 4_000_000 * 10**6
SKEWED = PAR * 106 // 100


def _blocks() -> list[RecordedBlock]:
    """100: A, B, E at par; 101: B 6% off (a gap); 102: E nudged by one wei of USDC (its
    cycles are evaluated again); 103: B back at par as recorded."""
    return [
        RecordedBlock(delta(100, [pool(a, USDC, WETH, PAR, 1000 * E18, 100) for a in (POOL_A, POOL_B, POOL_E)])),
        RecordedBlock(delta(101, [pool(POOL_B, USDC, WETH, SKEWED, 1000 * E18, 101)])),
        RecordedBlock(delta(102, [pool(POOL_E, USDC, WETH, PAR + 1, 1000 * E18, 102)])),
        RecordedBlock(delta(103, [pool(POOL_B, USDC, WETH, PAR, 1000 * E18, 103)])),
    ]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    writer = RecordingWriter(tmp_path_factory.mktemp("fills"), CHAIN_ID)
    paths = {writer.append(b, lambda block, p: meta()) for b in _blocks()}
    return Recording.open(paths.pop())


def _best(states: list[V2PoolState]) -> int:
    """Independently: the best WETH -> USDC -> WETH round between any two of ``states``."""
    best = 0
    for x in states:
        for y in states:
            if x is not y:
                sized = resize([x, y], [WETH, USDC, WETH])
                best = max(best, sized.profit if sized else 0)
    return best


def test_a_gap_is_taken_once_and_the_next_block_sees_the_pools_it_moved(recording: Recording) -> None:
    moved = executed_cycles(run(recording, BacktestStrategy()))
    unmoved = executed_cycles(run(recording, BacktestStrategy(), move_pools=False))
    first = {k: v for k, v in moved.items() if k[0] == 101}
    assert first and first == {k: v for k, v in unmoved.items() if k[0] == 101}
    # recorded states only: block 102 takes the E-B gap, as big as the A-B one just taken
    again = sum(v for k, v in unmoved.items() if k[0] == 102)
    assert abs(again - sum(first.values())) < sum(first.values()) // 10**6
    # moved: block 102 sees A and B where the fill left them, E nudged: only what is left
    (a0, _, e0), b1 = _blocks()[0].delta.states, _blocks()[1].delta.states[0]
    assert isinstance(a0, V2PoolState) and isinstance(b1, V2PoolState) and isinstance(e0, V2PoolState)
    cycle = next(c for c in ([a0, b1], [b1, a0]) if resize(c, [WETH, USDC, WETH]) is not None)
    sized = resize(cycle, [WETH, USDC, WETH])
    assert sized is not None and sized.profit == sum(first.values())
    after_101 = [s for s in fill(cycle, [WETH, USDC, WETH], sized.amount_in, 101) if isinstance(s, V2PoolState)]
    e1 = dataclasses.replace(e0, reserve0=PAR + 1)
    left = _best([*after_101, e1])
    assert 0 < left < sum(first.values()) // 2
    assert sum(v for k, v in moved.items() if k[0] == 102) == left


def test_the_recordings_next_change_of_a_pool_overrides_the_moved_state() -> None:
    state = ReplayState()
    blocks = _blocks()
    state.apply(blocks[0])
    published = state.apply(blocks[1])
    assert [s.address for s in published.states] == [POOL_B]
    a, b = state.pools[POOL_A], state.pools[POOL_B]
    assert isinstance(a, V2PoolState) and isinstance(b, V2PoolState)
    opp = Opportunity(chain_id=CHAIN_ID, block_number=101, block_hash=blocks[1].delta.block_hash,
                      path_id="x", pools=(POOL_A, POOL_B), tokens=(WETH, USDC, WETH), amount_in=10 * E18,
                      amount_out=0, gas_estimate=0, gas_price_wei=0, gas_cost=0)
    state.fill(opp, 10 * E18)
    usdc_out = v2math.get_amount_out(10 * E18, a.reserve1, a.reserve0)
    moved_a = state.pools[POOL_A]
    assert isinstance(moved_a, V2PoolState)
    assert (moved_a.reserve0, moved_a.reserve1) == (a.reserve0 - usdc_out, a.reserve1 + 10 * E18)  # at once
    moved_b = state.pools[POOL_B]
    # the next block publishes both moved pools beside its own recorded change (E)
    published = state.apply(blocks[2])
    assert {s.address: s for s in published.states} == {
        POOL_E: blocks[2].delta.states[0],
        POOL_A: dataclasses.replace(moved_a, block_number=102),
        POOL_B: dataclasses.replace(moved_b, block_number=102),
    }
    assert state.pools[POOL_B] == dataclasses.replace(moved_b, block_number=102)
    published = state.apply(blocks[3])  # the recording changes B: its state wins; A stays moved
    assert published.states == blocks[3].delta.states
    assert state.pools[POOL_B] == blocks[3].delta.states[0]
    assert state.pools[POOL_A] == dataclasses.replace(moved_a, block_number=102)

