"""PathStage keeps an engine in step with deltas and the hot state (real Redis): it
evaluates only what changed when blocks arrive in order, catches up from the hot state when
it missed a block, and drops tokens the scan stage flagged before evaluating through them."""

from __future__ import annotations

import uuid

import pytest
import redis

from arbbot.chain.token_checks import TransferCheck
from arbbot.chain.token_registry import TokenInfo
from arbbot.hotstate import HotState
from arbbot.paths.engine import PathEngine
from arbbot.paths.stage import PathStage
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
    return PoolDelta(chain_id=1, block_number=n, block_hash=H, states=tuple(states))


def stage() -> PathStage:
    return PathStage(PathEngine(base_tokens=[WETH], weth=WETH))


def test_gap_found_incrementally_and_after_a_missed_block(hot: HotState) -> None:
    even = [pool(A, WETH, USDC, 10**21, 3 * 10**24), pool(B, WETH, USDC, 10**21, 3 * 10**24)]
    hot.put_pools(even, 1, H)
    s = stage()
    assert s.process(delta(1, *even), hot, gas_price_wei=1) == []  # bootstrap: no gap
    gapped = pool(B, WETH, USDC, 10**21, int(3.3 * 10**24))
    hot.put_pools([gapped], 2, H)
    opps = s.process(delta(2, gapped), hot, gas_price_wei=1)
    assert opps and {A, B} == set(opps[0].pools)
    # Block 3 went to another worker: block 4's delta names only an unrelated pool, yet the
    # stage catches up from the hot state and sees block 3's change (the gap closed).
    closed = pool(B, WETH, USDC, 10**21, 3 * 10**24)
    other = pool(C, WETH, FOT, 10**21, 10**21)
    hot.put_pools([closed], 3, H)
    hot.put_pools([other], 4, H)
    assert s.process(delta(4, other), hot, gas_price_wei=1) == []
    assert s.engine.states[B].reserve1 == 3 * 10**24


def test_flagged_token_is_excluded_before_evaluation(hot: HotState) -> None:
    pools = [pool(C, WETH, FOT, 10**21, 10**21), pool(D, WETH, FOT, 10**21, 2 * 10**21)]  # a 2x gap
    hot.put_pools(pools, 1, H)
    check = TransferCheck(ok=False, reason="fee-on-transfer: received 98/100", sent=100, received=98, amount=100)
    hot.put_tokens([TokenInfo(FOT, "FOT", 18, (), check)])
    s = stage()
    assert s.process(delta(1, *pools), hot, gas_price_wei=1) == []
    assert s.newly_excluded == {FOT: "fee-on-transfer: received 98/100"}
    assert s.engine.excluded[FOT].startswith("fee-on-transfer")
    # Recorded once: a later delta does not report it again.
    assert s.process(delta(2, *pools), hot, gas_price_wei=1) == [] and s.newly_excluded == {}


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
    s = stage()
    opps = s.process(delta(1, *even), hot, gas_price_wei=1)
    assert opps and {A, B} == set(opps[0].pools)
    assert {(o.block_number, o.block_hash) for o in opps} == {(2, head_hash)}
    assert s.synced_block == 2
    assert s.process(delta(2, gapped), hot, gas_price_wei=1) == []
