"""The V3 swap simulation on synthetic pools built from positions: Hypothesis properties
(monotone, bounded by the reserve, exact-in/exact-out consistent, liquidity after a swap
equals the positions in range) and the exactness of the zero-liquidity shortcut."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from arbbot.errors import InsufficientLiquidity, MathError
from arbbot.math.sqrt_price_math import get_amount0_delta, get_amount1_delta
from arbbot.math.swap_math import compute_swap_step
from arbbot.math.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO, get_sqrt_ratio_at_tick, get_tick_at_sqrt_ratio
from arbbot.pools import amount_out as dispatch_amount_out
from arbbot.pools import v3
from arbbot.types import V3PoolState

T0 = "0x" + "a" * 40
T1 = "0x" + "b" * 40
SPACINGS = {100: 1, 500: 10, 3000: 60, 10000: 200}


@dataclass(frozen=True)
class Pool:
    state: V3PoolState
    positions: tuple[tuple[int, int, int], ...]

    def active_liquidity(self, tick: int) -> int:
        return sum(liq for lo, hi, liq in self.positions if lo <= tick < hi)

    def reserves(self, sqrt_p: int) -> tuple[int, int]:
        """Token amounts the positions hold at ``sqrt_p`` (rounded up, as minted)."""
        r0 = r1 = 0
        for lo, hi, liq in self.positions:
            sa, sb = get_sqrt_ratio_at_tick(lo), get_sqrt_ratio_at_tick(hi)
            if sqrt_p < sb:
                r0 += get_amount0_delta(max(sqrt_p, sa), sb, liq, True)
            if sqrt_p > sa:
                r1 += get_amount1_delta(sa, min(sqrt_p, sb), liq, True)
        return r0, r1


def make_pool(fee: int, positions: list[tuple[int, int, int]], sqrt_p: int) -> Pool:
    net: dict[int, int] = {}
    for lo, hi, liq in positions:
        net[lo] = net.get(lo, 0) + liq
        net[hi] = net.get(hi, 0) - liq
    tick = get_tick_at_sqrt_ratio(sqrt_p)
    state = V3PoolState(
        address="0x" + "1" * 40,
        token0=T0,
        token1=T1,
        fee_pips=fee,
        tick_spacing=SPACINGS[fee],
        sqrt_price_x96=sqrt_p,
        tick=tick,
        liquidity=sum(liq for lo, hi, liq in positions if lo <= tick < hi),
        ticks=tuple(sorted(net.items())),
    )
    return Pool(state, tuple(positions))


@st.composite
def pools(draw: st.DrawFn) -> Pool:
    fee = draw(st.sampled_from(sorted(SPACINGS)))
    spacing = SPACINGS[fee]
    center = draw(st.integers(-50_000, 50_000))
    width = draw(st.sampled_from([20, 200, 2_000, 20_000]))
    n = draw(st.integers(1, 6))
    positions = []
    for _ in range(n):
        a = draw(st.integers(-width, width)) + center
        b = draw(st.integers(-width, width)) + center
        lo, hi = sorted((a // spacing * spacing, b // spacing * spacing))
        if lo == hi:
            hi += spacing
        liq = draw(st.one_of(st.integers(1, 10**6), st.integers(10**15, 10**24)))
        positions.append((lo, hi, liq))
    # the start price: inside, between or outside the ranges, sometimes exactly on a tick
    tick = draw(st.integers(center - width - 3 * spacing, center + width + 3 * spacing))
    sqrt_p = get_sqrt_ratio_at_tick(tick)
    if draw(st.booleans()):
        sqrt_p += draw(st.integers(0, get_sqrt_ratio_at_tick(tick + 1) - sqrt_p - 1))
    return make_pool(fee, positions, sqrt_p)


amounts = st.one_of(st.integers(1, 10**6), st.integers(1, 10**21), st.integers(1, 10**30))


def check_state_after(pool: Pool, res: v3.SwapResult, zero_for_one: bool) -> None:
    after = res.state_after
    p, t = after.sqrt_price_x96, after.tick
    if zero_for_one:
        assert p <= pool.state.sqrt_price_x96
        # landing exactly on a crossed tick leaves the tick one below it
        assert get_sqrt_ratio_at_tick(t) <= p <= get_sqrt_ratio_at_tick(t + 1)
    else:
        assert p >= pool.state.sqrt_price_x96
        assert get_sqrt_ratio_at_tick(t) <= p < get_sqrt_ratio_at_tick(t + 1)
    assert after.liquidity == pool.active_liquidity(t)
    assert after.ticks is pool.state.ticks and after.address == pool.state.address


@settings(max_examples=150, deadline=None)
@given(pools(), amounts, st.booleans(), st.booleans())
def test_swap_properties(pool: Pool, amount: int, zero_for_one: bool, exact_in: bool) -> None:
    state = pool.state
    try:
        res = v3.swap(state, zero_for_one, amount if exact_in else -amount)
    except MathError:
        return
    # the shortcut over zero-liquidity words is exact: same as the step-by-step loop
    assert res == v3._swap(state, zero_for_one, amount if exact_in else -amount, None, False)
    check_state_after(pool, res, zero_for_one)
    paid, got = (res.amount0, -res.amount1) if zero_for_one else (res.amount1, -res.amount0)
    assert paid >= 0 and got >= 0
    if exact_in:
        assert paid <= amount
    else:
        assert got <= amount
    # never pays out more than the positions hold
    r0, r1 = pool.reserves(state.sqrt_price_x96)
    assert got <= (r1 if zero_for_one else r0)


@settings(max_examples=150, deadline=None)
@given(pools(), amounts, amounts, st.booleans())
def test_amount_out_non_decreasing(pool: Pool, a: int, b: int, zero_for_one: bool) -> None:
    lo, hi = sorted((a, b))
    token_in = T0 if zero_for_one else T1
    try:
        out_lo = v3.amount_out(pool.state, token_in, lo)
    except InsufficientLiquidity:
        with pytest.raises(InsufficientLiquidity):
            v3.amount_out(pool.state, token_in, hi)
        return
    assert v3.amount_out(pool.state, token_in, hi) >= out_lo


@settings(max_examples=150, deadline=None)
@given(pools(), amounts, st.booleans())
# a clean-clone CI run drew this: 150 wei in buys 1 unit, buying 1 unit back costs 159
@example(make_pool(100, [(-49936, -49892, 9133), (-49864, -49863, 1), (-49864, -49863, 1)],
                   6_615_437_726_203_242_315_704_994_259), 150, True)
def test_exact_in_and_exact_out_agree(pool: Pool, amount: int, zero_for_one: bool) -> None:
    state = pool.state
    token_in, token_out = (T0, T1) if zero_for_one else (T1, T0)
    try:
        out = v3.amount_out(state, token_in, amount)
    except InsufficientLiquidity:
        return
    assume(out > 0)
    res = v3.swap(state, zero_for_one, amount)
    used = res.amount0 if zero_for_one else res.amount1
    needed = v3.amount_in(state, token_out, out)
    # Buying `out` back costs what produced it, plus per swap step a wei or two of rounding
    # and up to one unit of output: exact output crosses a step's whole range whenever the
    # amount asked is at least that range's output rounded down, and so pays for the
    # range's unrounded output, up to a unit more than it counts. Where liquidity is tiny a
    # unit is worth many wei of input (QuoterV2 on anvil does the same: 1 unit out cost 294
    # wei where 148 wei in had bought it; tests/pools/test_v3_quoter.py). Steps: one per
    # initialized tick crossed and per bitmap word (256 tick spacings) entered, one for the
    # last step, and one more for a word edge the floored division can miss.
    back = v3.swap(state, zero_for_one, -out)
    end = back.state_after
    words = abs(end.tick // (256 * end.tick_spacing) - state.tick // (256 * state.tick_spacing))
    steps = back.ticks_crossed + words + 2
    q192 = 1 << 192
    p = end.sqrt_price_x96 ** 2
    unit = -(-q192 // p) if zero_for_one else -(-p // q192)  # input per output unit, at the worst (end) price
    unit = -(-unit * 1_000_000 // (1_000_000 - state.fee_pips))
    assert needed <= used + steps * (unit + 2)
    # ... and paying that much in yields at least `out`
    assert v3.amount_out(state, token_in, needed) >= out


@settings(max_examples=100, deadline=None)
@given(pools(), st.booleans(), st.integers(1, 10**30))
def test_amount_in_raises_beyond_reserve(pool: Pool, zero_for_one: bool, extra: int) -> None:
    r0, r1 = pool.reserves(pool.state.sqrt_price_x96)
    reserve_out = r1 if zero_for_one else r0
    with pytest.raises(InsufficientLiquidity):
        v3.amount_in(pool.state, T1 if zero_for_one else T0, reserve_out + extra)


@settings(max_examples=100, deadline=None)
@given(st.integers(10**12, 10**24), st.integers(-5, 5), st.integers(1, 10**18), st.booleans(), st.booleans())
def test_single_step_equals_swap_math(liq: int, tick: int, amount: int, zero_for_one: bool, exact_in: bool) -> None:
    # one wide position and a swap too small to reach a word edge: one SwapMath step
    pool = make_pool(3000, [(-887220, 887220, liq)], get_sqrt_ratio_at_tick(7680 + tick) + 7)
    state = pool.state
    specified = amount if exact_in else -amount
    res = v3.swap(state, zero_for_one, specified)
    # ticks 7675..7685 (compressed 127, 128) lie inside bitmap word 0: ticks 0 .. 255*60
    word_edge = 0 if zero_for_one else 60 * 255
    target = get_sqrt_ratio_at_tick(word_edge)
    sqrt_q, step_in, step_out, step_fee = compute_swap_step(state.sqrt_price_x96, target, liq, specified, 3000)
    assume(sqrt_q != target)
    paid, got = (res.amount0, -res.amount1) if zero_for_one else (res.amount1, -res.amount0)
    assert (paid, got) == (step_in + step_fee, step_out)
    assert res.state_after.sqrt_price_x96 == sqrt_q


def test_zero_liquidity_and_bad_input() -> None:
    empty = make_pool(3000, [(600, 1200, 10**18)], get_sqrt_ratio_at_tick(0))
    # price below the only range: token1 in moves up into it, token0 in finds nothing
    assert v3.amount_out(empty.state, T1, 10**15) > 0
    with pytest.raises(InsufficientLiquidity):
        v3.amount_out(empty.state, T0, 10**15)
    with pytest.raises(InsufficientLiquidity):
        v3.amount_in(empty.state, T1, 1)
    with pytest.raises(MathError):
        v3.amount_out(empty.state, "0x" + "c" * 40, 1)
    with pytest.raises(MathError):
        v3.amount_out(empty.state, T0, 0)
    with pytest.raises(MathError, match="AS"):
        v3.swap(empty.state, True, 0)
    with pytest.raises(MathError, match="SPL"):
        v3.swap(empty.state, True, 1, empty.state.sqrt_price_x96 + 1)
    with pytest.raises(MathError, match="SPL"):
        v3.swap(empty.state, False, 1, MAX_SQRT_RATIO)
    with pytest.raises(MathError, match="SPL"):
        v3.swap(empty.state, True, 1, MIN_SQRT_RATIO)
    # the dispatcher reaches the V3 model
    assert dispatch_amount_out(empty.state, T1, 10**15) == v3.amount_out(empty.state, T1, 10**15)


def test_price_limit_stops_the_swap() -> None:
    pool = make_pool(500, [(-10_000, 10_000, 10**20), (-200, 300, 10**21)], get_sqrt_ratio_at_tick(0))
    limit = get_sqrt_ratio_at_tick(-250)
    res = v3.swap(pool.state, True, 10**30, limit)
    assert res.state_after.sqrt_price_x96 == limit
    assert res.amount0 < 10**30 and res.ticks_crossed == 1
    assert res.state_after.liquidity == 10**20
    assert res.state_after.tick == -250
    # landing exactly on a word edge through empty words takes the pool's tick
    far = make_pool(10000, [(-1_000_000 // 200 * 200, -800_000, 10**18)], get_sqrt_ratio_at_tick(0))
    edge = -256 * 200 * 3
    res = v3.swap(far.state, True, 10**30, get_sqrt_ratio_at_tick(edge))
    assert res == v3._swap(far.state, True, 10**30, get_sqrt_ratio_at_tick(edge), False)
    assert res.state_after.tick == edge - 1 and res.amount0 == 0


def test_state_is_not_mutated() -> None:
    pool = make_pool(3000, [(-600, 600, 10**20)], get_sqrt_ratio_at_tick(0))
    before = pool.state.to_wire()
    v3.swap(pool.state, True, 10**22)
    assert pool.state.to_wire() == before
