"""Hypothesis properties of the V3 math ports: exact rational rounding, tick <-> price
round trips, and the SqrtPriceMath / SwapMath invariants v3-core checks with echidna."""

from __future__ import annotations

from bisect import bisect_right

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arbbot.errors import MathError
from arbbot.math.full_math import mul_div, mul_div_rounding_up
from arbbot.math.liquidity_math import add_delta
from arbbot.math.sqrt_price_math import (
    get_amount0_delta,
    get_amount1_delta,
    get_next_sqrt_price_from_input,
    get_next_sqrt_price_from_output,
)
from arbbot.math.swap_math import compute_swap_step
from arbbot.math.tick_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
)

MAX_UINT256 = 2**256 - 1
uint256 = st.integers(min_value=0, max_value=MAX_UINT256)
# bias towards the small magnitudes real pools use, while still reaching the extremes
uint128 = st.one_of(st.integers(1, 10**30), st.integers(1, 2**128 - 1))
ticks = st.integers(MIN_TICK, MAX_TICK)
sqrt_prices = st.one_of(
    st.integers(MIN_SQRT_RATIO, MAX_SQRT_RATIO - 1),
    ticks.map(get_sqrt_ratio_at_tick).filter(lambda p: p < MAX_SQRT_RATIO),
    st.integers(2**80, 2**112),
)
fees = st.sampled_from([0, 1, 100, 500, 3000, 10000, 999_999])


@settings(max_examples=300)
@given(uint256, uint256, st.integers(1, MAX_UINT256))
def test_mul_div_is_exact_floor_and_ceil(a: int, b: int, d: int) -> None:
    floor, rem = divmod(a * b, d)
    ceil = floor + (1 if rem else 0)
    if floor > MAX_UINT256:
        with pytest.raises(MathError):
            mul_div(a, b, d)
    else:
        assert mul_div(a, b, d) == floor
    if ceil > MAX_UINT256:
        with pytest.raises(MathError):
            mul_div_rounding_up(a, b, d)
    else:
        assert mul_div_rounding_up(a, b, d) == ceil


@settings(max_examples=300)
@given(ticks)
def test_tick_round_trip(tick: int) -> None:
    sqrt_p = get_sqrt_ratio_at_tick(tick)
    if tick < MAX_TICK:
        assert get_tick_at_sqrt_ratio(sqrt_p) == tick
        assert get_sqrt_ratio_at_tick(tick + 1) > sqrt_p
        # one wei below the tick's price falls in the tick below
        if tick > MIN_TICK:
            assert get_tick_at_sqrt_ratio(sqrt_p - 1) == tick - 1


@settings(max_examples=300)
@given(sqrt_prices)
def test_get_tick_at_sqrt_ratio_is_greatest_tick_at_or_below(sqrt_p: int) -> None:
    tick = get_tick_at_sqrt_ratio(sqrt_p)
    assert get_sqrt_ratio_at_tick(tick) <= sqrt_p < get_sqrt_ratio_at_tick(tick + 1)


def test_get_tick_at_sqrt_ratio_matches_bisection_reference() -> None:
    # independent of the log2 algorithm: bisect on the monotone getSqrtRatioAtTick
    class Prices:
        def __getitem__(self, i: int) -> int:
            return get_sqrt_ratio_at_tick(MIN_TICK + i)

        def __len__(self) -> int:
            return MAX_TICK - MIN_TICK + 1

    prices = Prices()
    import random

    rng = random.Random(4)
    for _ in range(200):
        sqrt_p = rng.randrange(MIN_SQRT_RATIO, MAX_SQRT_RATIO)
        expected = MIN_TICK + bisect_right(prices, sqrt_p) - 1  # type: ignore[call-overload]
        assert get_tick_at_sqrt_ratio(sqrt_p) == expected


@settings(max_examples=200)
@given(st.integers(0, 2**128 - 1), st.integers(-(2**127) + 1, 2**127 - 1))
def test_add_delta(x: int, y: int) -> None:
    z = x + y
    if 0 <= z < 2**128:
        assert add_delta(x, y) == z
    else:
        with pytest.raises(MathError):
            add_delta(x, y)


@settings(max_examples=300)
@given(sqrt_prices, uint128, st.integers(1, 2**200), st.booleans())
def test_next_price_from_input_never_overspends(sqrt_p: int, liquidity: int, amount_in: int, zero_for_one: bool) -> None:
    try:
        sqrt_q = get_next_sqrt_price_from_input(sqrt_p, liquidity, amount_in, zero_for_one)
    except MathError:
        return
    if zero_for_one:
        assert sqrt_q <= sqrt_p
        assert get_amount0_delta(sqrt_q, sqrt_p, liquidity, True) <= amount_in
    else:
        assert sqrt_q >= sqrt_p
        assert get_amount1_delta(sqrt_p, sqrt_q, liquidity, True) <= amount_in


@settings(max_examples=300)
@given(sqrt_prices, uint128, st.integers(1, 2**200), st.booleans())
def test_next_price_from_output_always_delivers(sqrt_p: int, liquidity: int, amount_out: int, zero_for_one: bool) -> None:
    try:
        sqrt_q = get_next_sqrt_price_from_output(sqrt_p, liquidity, amount_out, zero_for_one)
    except MathError:
        return
    if zero_for_one:
        assert sqrt_q <= sqrt_p
        assert get_amount1_delta(sqrt_q, sqrt_p, liquidity, False) >= amount_out
    else:
        assert sqrt_q >= sqrt_p
        assert get_amount0_delta(sqrt_p, sqrt_q, liquidity, False) >= amount_out


@settings(max_examples=300)
@given(sqrt_prices, sqrt_prices, uint128)
def test_amount_delta_rounding(a: int, b: int, liquidity: int) -> None:
    lo, hi = min(a, b), max(a, b)
    up0, down0 = get_amount0_delta(a, b, liquidity, True), get_amount0_delta(a, b, liquidity, False)
    up1, down1 = get_amount1_delta(a, b, liquidity, True), get_amount1_delta(a, b, liquidity, False)
    # exact: L*2^96*(hi-lo)/(hi*lo) and L*(hi-lo)/2^96
    num0, den0 = (liquidity << 96) * (hi - lo), hi * lo
    # nested floors (ceilings) of positive rationals equal the single floor (ceiling)
    assert down0 == num0 // den0
    assert up0 == -(-num0 // den0)
    assert down1 == liquidity * (hi - lo) >> 96
    assert up1 == -((-liquidity * (hi - lo)) >> 96)


@settings(max_examples=400)
@given(sqrt_prices, sqrt_prices, uint128, st.integers(-(2**200), 2**200).filter(bool), fees)
def test_compute_swap_step_invariants(current: int, target: int, liquidity: int, remaining: int, fee: int) -> None:
    try:
        sqrt_q, amount_in, amount_out, fee_amount = compute_swap_step(current, target, liquidity, remaining, fee)
    except MathError:
        return
    zero_for_one = current >= target
    exact_in = remaining >= 0
    # never passes the target, moves the right way
    if zero_for_one:
        assert target <= sqrt_q <= current
    else:
        assert current <= sqrt_q <= target
    if exact_in:
        assert amount_in + fee_amount <= remaining
    else:
        assert amount_out <= -remaining
    if sqrt_q != target:  # the amount ran out before the target
        if exact_in:
            assert amount_in + fee_amount == remaining
        else:
            assert amount_out == -remaining
    # the input pays for the move, the output never exceeds what the move releases
    if zero_for_one:
        assert amount_in >= get_amount0_delta(sqrt_q, current, liquidity, True) or (exact_in and sqrt_q == target)
        assert amount_out <= get_amount1_delta(sqrt_q, current, liquidity, False)
    else:
        assert amount_out <= get_amount0_delta(current, sqrt_q, liquidity, False)
