"""PathStage keeps an engine in step with deltas, the hot state (real Redis) and the
recorded exclusions: it evaluates only what changed when blocks arrive in order, catches up
from the hot state when it missed a block, drops tokens the scan stage flagged before
evaluating through them (and hands them on to be recorded, once), and follows the record
when an exclusion is added or lifted."""

from __future__ import annotations

import uuid

import pytest
import redis

from arbbot.chain.token_checks import TransferCheck
from arbbot.chain.token_registry import TokenInfo
from arbbot.hotstate import HotState
from arbbot.paths.engine import PathEngine
from arbbot.paths.stage import PathResult, PathStage
from arbbot.types import PoolDelta, V2PoolState

WETH, USDC, FOT = ("0x" + c * 40 for c in "abc")
A, B, C, D = ("0x" + f"{i:040x}" for i in (1, 2, 3, 4))
H = "0x" + "00" * 32


def pool(addr: str, t0: str, t1: str, r0: int, r1: int) -> V2PoolState:
    return V2PoolState(addr, t0, t1, r0, r1)


@pytest.fixture()
def hot() -> HotState:
    h = HotState(redis.Redis.from_url("redis://127.0.0.1:6379/0"), f"test-stage-{uuid.uuid4().hex}", 1)
    yield h
    h.clear()


def delta(n: int, *states: V2PoolState) -> PoolDelta:
    return PoolDelta(chain_id=1, block_number=n, block_hash=H, states=tuple(states), gas_price_wei=1)


class Record:
    """The recorded exclusions (the database in production): what ``ExclusionSource`` reads."""

    def __init__(self) -> None:
        self.excluded: dict[str, str] = {}

    def __call__(self, chain_id: int) -> dict[str, str]:
        assert chain_id == 1
        return dict(self.excluded)

    def keep(self, result: PathResult) -> PathResult:
        """Record the result's exclusions, as the path task does."""
        self.excluded.update(result.exclusions)
        return result


def stage() -> PathStage:
    return PathStage(PathEngine(base_tokens=[WETH], weth=WETH))


def test_gap_found_incrementally_and_after_a_missed_block(hot: HotState) -> None:
    even = [pool(A, WETH, USDC, 10**21, 3 * 10**24), pool(B, WETH, USDC, 10**21, 3 * 10**24)]
    hot.put_pools(even, 1, H)
    s, record = stage(), Record()
    assert s.process(delta(1, *even), hot, record).opportunities == []  # bootstrap: no gap
    gapped = pool(B, WETH, USDC, 10**21, int(3.3 * 10**24))
    hot.put_pools([gapped], 2, H)
    opps = s.process(delta(2, gapped), hot, record).opportunities
    assert opps and {A, B} == set(opps[0].pools)
    # Block 3 went to another worker: block 4's delta names only an unrelated pool, yet the
    # stage catches up from the hot state and sees block 3's change (the gap closed).
    closed = pool(B, WETH, USDC, 10**21, 3 * 10**24)
    other = pool(C, WETH, FOT, 10**21, 10**21)
    hot.put_pools([closed], 3, H)
    hot.put_pools([other], 4, H)
    assert s.process(delta(4, other), hot, record).opportunities == []
    assert s.engine.states[B].reserve1 == 3 * 10**24


class CountingHot(HotState):
    """The real hot state, counting how the stage reads it."""

    snapshots = 0
    catch_ups = 0

    def snapshot(self):  # type: ignore[no-untyped-def]
        self.snapshots += 1
        return super().snapshot()

    def changed_since(self, after_block, after_hash=""):  # type: ignore[no-untyped-def]
        got = super().changed_since(after_block, after_hash)
        self.catch_ups += got is not None
        return got


def test_a_missed_block_is_caught_up_from_what_it_changed_not_every_pool(hot: HotState) -> None:
    h = CountingHot(hot.redis, hot.prefix, hot.chain_id)
    even = [pool(A, WETH, USDC, 10**21, 3 * 10**24), pool(B, WETH, USDC, 10**21, 3 * 10**24)]
    h.put_pools(even, 1, H)
    s, record = stage(), Record()
    s.process(delta(1, *even), h, record)
    assert (h.snapshots, h.catch_ups) == (1, 0), "the first block reads every pool"
    # a pool changed behind the stage's back without a block (never happens in the fleet)
    # is not seen by a catch-up: the catch-up reads only what blocks 2 and 3 wrote
    h.redis.hset(h.key("pools"), A, h.redis.hget(h.key("pools"), A).replace(b'"reserve0":"', b'"reserve0":"9'))
    gapped = pool(B, WETH, USDC, 10**21, int(3.3 * 10**24))
    h.put_pools([gapped], 2, H)
    h.put_pools([pool(C, WETH, FOT, 10**21, 10**21)], 3, H)
    opps = s.process(delta(3, pool(C, WETH, FOT, 10**21, 10**21)), h, record).opportunities
    assert (h.snapshots, h.catch_ups) == (1, 1)
    assert s.engine.states[B].reserve1 == int(3.3 * 10**24), "block 2's change was caught up"
    assert s.engine.states[A].reserve0 == 10**21, "only the blocks' pools were read"
    # block 2 was another worker's, which evaluated its gap: not evaluated again here ...
    assert opps == []
    # ... until this stage's own delta changes a pool of the cycle: then with block 2's state
    moved = pool(B, WETH, USDC, 10**21, int(3.31 * 10**24))
    h.put_pools([moved], 4, H)
    opps = s.process(delta(4, moved), h, record).opportunities
    assert (h.snapshots, h.catch_ups) == (1, 1) and opps and {A, B} == set(opps[0].pools)
    # the stage's block orphaned by a reorg another worker repaired: every pool again
    h.put_pools([], 5, "0x" + "44" * 32, orphaned=[H])
    h.put_pools([], 6, "0x" + "55" * 32)
    s.process(delta(6), h, record)
    assert (h.snapshots, h.catch_ups) == (2, 1)
    assert s.engine.states[A].reserve0 == int("9" + str(10**21)), "every pool, the one changed behind too"


def test_a_delta_the_stage_passed_over_is_evaluated_once_at_the_head_never_rolled_back(hot: HotState) -> None:
    """Two path processes share a chain's blocks; each holds deltas in its prefetch while it
    catches up past them. Block 3's delta comes first: the stage takes block 2's states on
    the way (block 2's gap through A is not evaluated: whoever holds block 2's delta does).
    Then block 2's own delta comes, behind: its pools are evaluated at the head, labelled
    with the head, its older states not taken; the same delta again finds nothing new."""
    h = CountingHot(hot.redis, hot.prefix, hot.chain_id)
    even = [pool(A, WETH, USDC, 10**21, 3 * 10**24), pool(B, WETH, USDC, 10**21, 3 * 10**24)]
    fot = [pool(C, WETH, FOT, 10**21, 10**21), pool(D, WETH, FOT, 10**21, 10**21)]
    h.put_pools([*even, *fot], 1, H)
    s, record = stage(), Record()
    s.process(delta(1, *even, *fot), h, record)
    gapped, d2 = pool(A, WETH, USDC, 10**21, int(3.3 * 10**24)), pool(D, WETH, FOT, 10**21, 11 * 10**20)
    h.put_pools([gapped, d2], 2, "0x" + "22" * 32)
    d3 = pool(D, WETH, FOT, 10**21, 10**21 + 1)
    head = "0x" + "33" * 32
    h.put_pools([d3], 3, head)
    three = PoolDelta(chain_id=1, block_number=3, block_hash=head, states=(d3,), gas_price_wei=1,
                      parent_hash="0x" + "22" * 32)  # past a gap its parent is not the block held: no fork
    assert s.process(three, h, record).opportunities == []  # block 2's gap: not this delta's
    assert s.engine.states[A].reserve1 == int(3.3 * 10**24) and s.synced_block == 3
    two = PoolDelta(chain_id=1, block_number=2, block_hash="0x" + "22" * 32, states=(gapped, d2), gas_price_wei=1)
    opps = s.process(two, h, record).opportunities
    assert opps and {A, B} == set(opps[0].pools)
    assert {(o.block_number, o.block_hash) for o in opps} == {(3, head)}, "the state evaluated is the head's"
    assert s.engine.states[D].reserve1 == 10**21 + 1, "block 2's older state of D not taken"
    assert s.process(two, h, record).opportunities == [], "a redelivery: evaluated already"
    assert h.snapshots == 1, "no pool read whole after the first block"


def test_the_next_block_on_another_parent_reads_every_pool(hot: HotState) -> None:
    """Block 1 as this stage saw it was orphaned; another worker took the correction. Block
    2's parent is not the block held: the stage reads every pool (its block 1 states may
    be of the dead branch) and evaluates what changed."""
    h = CountingHot(hot.redis, hot.prefix, hot.chain_id)
    even = [pool(A, WETH, USDC, 10**21, 3 * 10**24), pool(B, WETH, USDC, 10**21, 3 * 10**24)]
    h.put_pools(even, 1, H)
    s, record = stage(), Record()
    s.process(delta(1, *even), h, record)
    corrected = pool(A, WETH, USDC, 10**21, int(3.3 * 10**24))  # the new block 1's
    h.put_pools([corrected], 1, "0x" + "11" * 32)
    h.put_pools([], 2, "0x" + "02" * 32)
    two = PoolDelta(chain_id=1, block_number=2, block_hash="0x" + "02" * 32, states=(), gas_price_wei=1,
                    parent_hash="0x" + "11" * 32)
    opps = s.process(two, h, record).opportunities
    assert h.snapshots == 2 and opps and {A, B} == set(opps[0].pools)


def test_flagged_token_is_excluded_before_evaluation(hot: HotState) -> None:
    pools = [pool(C, WETH, FOT, 10**21, 10**21), pool(D, WETH, FOT, 10**21, 2 * 10**21)]  # a 2x gap
    hot.put_pools(pools, 1, H)
    check = TransferCheck(ok=False, reason="fee-on-transfer: received 98/100", sent=100, received=98, amount=100)
    hot.put_tokens([TokenInfo(FOT, "FOT", 18, (), check)])
    s, record = stage(), Record()
    first = record.keep(s.process(delta(1, *pools), hot, record))
    assert first.opportunities == []
    assert first.exclusions == {FOT: "fee-on-transfer: received 98/100"}
    assert s.engine.excluded[FOT].startswith("fee-on-transfer")
    # Recorded once: a later delta does not report it again.
    second = s.process(delta(2, *pools), hot, record)
    assert second.opportunities == [] and second.exclusions == {}


def test_catch_up_past_the_delta_is_labelled_with_the_hot_state_head(hot: HotState) -> None:
    """A path worker that starts late takes the first queued delta while the hot state is
    already blocks ahead (a gap planted meanwhile): what it evaluates is the head's state,
    so its opportunities carry the head's block and hash, not the stale delta's; the next
    queued delta (behind the synced block) is a catch-up that finds nothing new."""
    even = [pool(A, WETH, USDC, 10**21, 3 * 10**24), pool(B, WETH, USDC, 10**21, 3 * 10**24)]
    hot.put_pools(even, 1, H)
    head_hash = "0x" + "77" * 32
    gapped = pool(B, WETH, USDC, 10**21, int(3.3 * 10**24))
    hot.put_pools([gapped], 2, head_hash)
    s, record = stage(), Record()
    opps = s.process(delta(1, *even), hot, record).opportunities
    assert opps and {A, B} == set(opps[0].pools)
    assert {(o.block_number, o.block_hash) for o in opps} == {(2, head_hash)}
    assert s.synced_block == 2
    assert s.process(delta(2, gapped), hot, record).opportunities == []


def gap_pools() -> list[V2PoolState]:
    """A WETH/USDC price gap between A and B, and one between C and D through a third token."""
    return [
        pool(A, WETH, USDC, 10**21, 3 * 10**24), pool(B, WETH, USDC, 10**21, int(3.3 * 10**24)),
        pool(C, WETH, FOT, 10**21, 10**21), pool(D, WETH, FOT, 10**21, 2 * 10**21),
    ]


def cycles(result: PathResult) -> set[frozenset[str]]:
    return {frozenset(o.pools) for o in result.opportunities}


def test_gas_is_priced_with_the_delta_gas_price(hot: HotState) -> None:
    hot.put_pools(gap_pools(), 1, H)
    cheap = stage().process(delta(1, *gap_pools()), hot, Record()).opportunities
    dear_delta = PoolDelta(chain_id=1, block_number=1, block_hash=H, states=tuple(gap_pools()), gas_price_wei=7)
    dear = stage().process(dear_delta, hot, Record()).opportunities
    assert cheap and {o.gas_price_wei for o in cheap} == {1} and {o.gas_price_wei for o in dear} == {7}
    by_path = {o.path_id: o for o in cheap}
    assert all(o.gas_cost == 7 * by_path[o.path_id].gas_cost for o in dear)


def test_recorded_exclusions_follow_the_record_both_ways(hot: HotState) -> None:
    """An exclusion recorded (by an operator) between blocks takes the pool or token out of
    the next delta's evaluation; lifting it brings its cycles back, though no delta names
    its pools (the stage re-reads them from the hot state)."""
    hot.put_pools(gap_pools(), 1, H)
    s, record = stage(), Record()
    assert cycles(s.process(delta(1, *gap_pools()), hot, record)) == {frozenset({A, B}), frozenset({C, D})}
    record.excluded[B] = "operator: router rejects it"
    assert cycles(s.process(delta(2), hot, record)) == set()  # nothing changed, and B is out
    assert s.engine.excluded == {B: "operator: router rejects it"} and B not in s.engine.states
    record.excluded[FOT] = "operator: paused"
    del record.excluded[B]
    assert cycles(s.process(delta(3), hot, record)) == {frozenset({A, B})}
    assert set(s.engine.excluded) == {FOT} and C not in s.engine.states
    record.excluded.clear()
    assert cycles(s.process(delta(4), hot, record)) == {frozenset({C, D})}
    assert s.engine.excluded == {} and {A, B, C, D} <= set(s.engine.states)


def test_a_flagged_token_stays_out_until_recorded_and_the_record_may_lift_it(hot: HotState) -> None:
    pools = gap_pools()[2:]
    hot.put_pools(pools, 1, H)
    check = TransferCheck(ok=False, reason="fee-on-transfer: received 98/100", sent=100, received=98, amount=100)
    hot.put_tokens([TokenInfo(FOT, "FOT", 18, (), check)])
    s, record = stage(), Record()
    assert s.process(delta(1, *pools), hot, record).exclusions == {FOT: "fee-on-transfer: received 98/100"}
    # The task failed to record it: still out, not handed on twice.
    second = s.process(delta(2, *pools), hot, record)
    assert (second.opportunities, second.exclusions) == ([], {}) and FOT in s.engine.excluded
    record.excluded[FOT] = "fee-on-transfer: received 98/100"  # recorded now (a retry, or another worker)
    assert s.process(delta(3, *pools), hot, record).opportunities == []
    # An operator clears it: the record decides, the scan stage's flag does not come back.
    record.excluded.clear()
    third = s.process(delta(4, *pools), hot, record)
    assert cycles(third) == {frozenset({C, D})} and third.exclusions == {} and s.engine.excluded == {}


def test_a_primed_stage_finds_on_its_first_block_what_a_fresh_one_finds(hot: HotState) -> None:
    """A process primes its stage at start (``PathStage.prime``): every pool of the hot
    state taken, no cycle evaluated. Its first delta, which names neither gapped pool, still
    evaluates every cycle, as a fresh stage's first does: the gaps that stood before the start
    are found, with the same opportunities, and a block past the primed head is caught up.
    A recorded exclusion is in force from the prime on."""
    hot.put_pools(gap_pools(), 1, H)
    s, record = stage(), Record()
    record.excluded[FOT] = "operator: paused"
    assert s.prime(hot, record, 1) and s.synced_block == 1 and {A, B} <= set(s.engine.states)
    assert C not in s.engine.states  # excluded before it was taken
    assert not s.prime(hot, record, 1)  # primed once: a stage that holds pools is not primed again
    # block 2 went to another process; block 3's delta names only an unrelated pool
    moved = pool(B, WETH, USDC, 10**21, int(3.31 * 10**24))
    hot.put_pools([moved], 2, H)
    other = pool("0x" + "ee" * 20, USDC, FOT, 10**21, 10**21)
    hot.put_pools([other], 3, H)
    primed = s.process(delta(3, other), hot, record)
    fresh = stage().process(delta(3, other), hot, record)
    assert cycles(primed) == cycles(fresh) == {frozenset({A, B})}
    assert [(o.path_id, o.amount_in, o.amount_out) for o in primed.opportunities] == \
        [(o.path_id, o.amount_in, o.amount_out) for o in fresh.opportunities]
    assert s.engine.states[B].reserve1 == int(3.31 * 10**24)  # block 2, caught up
    # from then on only what changes: the next delta with nothing in it finds nothing
    assert s.process(delta(4), hot, record).opportunities == []


def test_a_backlog_queued_before_the_start_is_evaluated_once_at_the_head(hot: HotState) -> None:
    """Blocks mined while the fleet was down wait as deltas on the path queue. A primed
    stage takes the first as a fresh stage would: evaluated at the hot state's head and
    labelled with it, the deltas behind it finding nothing new (not each block in turn,
    seconds stale, each to the execute stage ahead of the fresh ones)."""
    even = [pool(A, WETH, USDC, 10**21, 3 * 10**24), pool(B, WETH, USDC, 10**21, 3 * 10**24)]
    hot.put_pools(even, 1, H)
    s, record = stage(), Record()
    assert s.prime(hot, record, 1)
    head_hash = "0x" + "77" * 32
    gapped = pool(B, WETH, USDC, 10**21, int(3.3 * 10**24))
    hot.put_pools([gapped], 2, H)
    hot.put_pools([pool(B, WETH, USDC, 10**21, int(3.31 * 10**24))], 3, head_hash)
    opps = s.process(delta(2, gapped), hot, record).opportunities
    assert opps and {(o.block_number, o.block_hash) for o in opps} == {(3, head_hash)}
    assert s.synced_block == 3
    assert s.process(delta(3, pool(B, WETH, USDC, 10**21, int(3.31 * 10**24))), hot, record).opportunities == []


def test_a_stage_is_not_primed_from_an_empty_hot_state(hot: HotState) -> None:
    s = stage()
    assert not s.prime(hot, Record(), 1)
    assert s.synced_block == -1 and not s.engine.states  # still fresh: its first block reads every pool
