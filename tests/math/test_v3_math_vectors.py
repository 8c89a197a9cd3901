"""Upstream test vectors of Uniswap/v3-core (test/*.spec.ts and their snapshots), ported
as data: TickMath, FullMath, SqrtPriceMath, SwapMath, LiquidityMath."""

from __future__ import annotations

from decimal import Decimal, localcontext
from math import isqrt

import pytest

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
MAX_UINT128 = 2**128 - 1
Q128 = 2**128
E18 = 10**18


def encode_price_sqrt(reserve1: int, reserve0: int) -> int:
    """v3-core test/shared/utilities.ts ``encodePriceSqrt``: floor(sqrt(r1/r0) * 2**96)."""
    return isqrt(reserve1 * 2**192 // reserve0)


# test/__snapshots__/TickMath.spec.ts.snap
SQRT_RATIO_AT_TICK = (
    (-50, 79030349367926598376800521322),
    (-100, 78833030112140176575862854579),
    (-250, 78244023372248365697264290337),
    (-500, 77272108795590369356373805297),
    (-1000, 75364347830767020784054125655),
    (-2500, 69919044979842180277688105136),
    (-3000, 68192822843687888778582228483),
    (-4000, 64867181785621769311890333195),
    (-5000, 61703726247759831737814779831),
    (-50000, 6504256538020985011912221507),
    (-150000, 43836292794701720435367485),
    (-250000, 295440463448801648376846),
    (-500000, 1101692437043807371),
    (-738203, 7409801140451),
    (50, 79426470787362580746886972461),
    (100, 79625275426524748796330556128),
    (250, 80224679980005306637834519095),
    (500, 81233731461783161732293370115),
    (1000, 83290069058676223003182343270),
    (2500, 89776708723587163891445672585),
    (3000, 92049301871182272007977902845),
    (4000, 96768528593268422080558758223),
    (5000, 101729702841318637793976746270),
    (50000, 965075977353221155028623082916),
    (150000, 143194173941309278083010301478497),
    (250000, 21246587762933397357449903968194344),
    (500000, 5697689776495288729098254600827762987878),
    (738203, 847134979253254120489401328389043031315994541),
)
TICK_AT_SQRT_RATIO = (
    (4295128739, -887272),
    (79228162514264337593543, -276325),
    (79228162514264337593543950, -138163),
    (9903520314283042199192993792, -41591),
    (28011385487393069959365969113, -20796),
    (56022770974786139918731938227, -6932),
    (79228162514264337593543950336, 0),
    (112045541949572279837463876454, 6931),
    (224091083899144559674927752909, 20795),
    (633825300114114700748351602688, 41590),
    (79228162514264337593543950336000, 138162),
    (79228162514264337593543950336000000, 276324),
    (1461446703485210103287273052203988822378723970341, 887271),
)


# ------------------------------------------------------------------ TickMath


@pytest.mark.parametrize(("tick", "expected"), SQRT_RATIO_AT_TICK)
def test_get_sqrt_ratio_at_tick_snapshot(tick: int, expected: int) -> None:
    assert get_sqrt_ratio_at_tick(tick) == expected


@pytest.mark.parametrize(("ratio", "expected"), TICK_AT_SQRT_RATIO)
def test_get_tick_at_sqrt_ratio_snapshot(ratio: int, expected: int) -> None:
    assert get_tick_at_sqrt_ratio(ratio) == expected
    assert get_sqrt_ratio_at_tick(expected) <= ratio < get_sqrt_ratio_at_tick(expected + 1)


def test_tick_math_bounds() -> None:
    assert get_sqrt_ratio_at_tick(MIN_TICK) == MIN_SQRT_RATIO == 4295128739
    assert get_sqrt_ratio_at_tick(MIN_TICK + 1) == 4295343490
    assert get_sqrt_ratio_at_tick(MAX_TICK - 1) == 1461373636630004318706518188784493106690254656249
    assert get_sqrt_ratio_at_tick(MAX_TICK) == MAX_SQRT_RATIO
    assert get_tick_at_sqrt_ratio(MIN_SQRT_RATIO) == MIN_TICK
    assert get_tick_at_sqrt_ratio(4295343490) == MIN_TICK + 1
    assert get_tick_at_sqrt_ratio(1461373636630004318706518188784493106690254656249) == MAX_TICK - 1
    assert get_tick_at_sqrt_ratio(MAX_SQRT_RATIO - 1) == MAX_TICK - 1
    # the snapshot's ratios are encodePriceSqrt of these prices
    assert encode_price_sqrt(1, 2) == 56022770974786139918731938227
    assert encode_price_sqrt(10**12, 1) == 79228162514264337593543950336000000


@pytest.mark.parametrize("tick", [MIN_TICK - 1, MAX_TICK + 1])
def test_get_sqrt_ratio_at_tick_reverts_t(tick: int) -> None:
    with pytest.raises(MathError, match="T"):
        get_sqrt_ratio_at_tick(tick)


@pytest.mark.parametrize("ratio", [MIN_SQRT_RATIO - 1, MAX_SQRT_RATIO, 0])
def test_get_tick_at_sqrt_ratio_reverts_r(ratio: int) -> None:
    with pytest.raises(MathError, match="R"):
        get_tick_at_sqrt_ratio(ratio)


@pytest.mark.parametrize(
    "abs_tick", [50, 100, 250, 500, 1_000, 2_500, 3_000, 4_000, 5_000, 50_000, 150_000, 250_000, 500_000, 738_203]
)
def test_get_sqrt_ratio_at_tick_close_to_real(abs_tick: int) -> None:
    with localcontext() as ctx:
        ctx.prec = 90
        for tick in (-abs_tick, abs_tick):
            ref = (Decimal("1.0001") ** tick).sqrt() * Decimal(2**96)
            got = Decimal(get_sqrt_ratio_at_tick(tick))
            assert abs(got - ref) / ref < Decimal("0.000001")


# ------------------------------------------------------------------ FullMath


def test_mul_div_vectors() -> None:
    with pytest.raises(MathError):
        mul_div(Q128, 5, 0)
    with pytest.raises(MathError):
        mul_div(Q128, Q128, 0)
    with pytest.raises(MathError):
        mul_div(Q128, Q128, 1)
    with pytest.raises(MathError):
        mul_div(MAX_UINT256, MAX_UINT256, MAX_UINT256 - 1)
    assert mul_div(MAX_UINT256, MAX_UINT256, MAX_UINT256) == MAX_UINT256
    assert mul_div(Q128, 50 * Q128 // 100, 150 * Q128 // 100) == Q128 // 3
    assert mul_div(Q128, 35 * Q128, 8 * Q128) == 4375 * Q128 // 1000
    assert mul_div(Q128, 1000 * Q128, 3000 * Q128) == Q128 // 3


def test_mul_div_rounding_up_vectors() -> None:
    with pytest.raises(MathError):
        mul_div_rounding_up(Q128, 5, 0)
    with pytest.raises(MathError):
        mul_div_rounding_up(Q128, Q128, 0)
    with pytest.raises(MathError):
        mul_div_rounding_up(Q128, Q128, 1)
    with pytest.raises(MathError):
        mul_div_rounding_up(MAX_UINT256, MAX_UINT256, MAX_UINT256 - 1)
    with pytest.raises(MathError):  # overflows 256 bits only after rounding up
        mul_div_rounding_up(535006138814359, 432862656469423142931042426214547535783388063929571229938474969, 2)
    with pytest.raises(MathError):
        mul_div_rounding_up(
            115792089237316195423570985008687907853269984659341747863450311749907997002549,
            115792089237316195423570985008687907853269984659341747863450311749907997002550,
            115792089237316195423570985008687907853269984653042931687443039491902864365164,
        )
    assert mul_div_rounding_up(MAX_UINT256, MAX_UINT256, MAX_UINT256) == MAX_UINT256
    assert mul_div_rounding_up(Q128, 50 * Q128 // 100, 150 * Q128 // 100) == Q128 // 3 + 1
    assert mul_div_rounding_up(Q128, 35 * Q128, 8 * Q128) == 4375 * Q128 // 1000
    assert mul_div_rounding_up(Q128, 1000 * Q128, 3000 * Q128) == Q128 // 3 + 1


# ------------------------------------------------------------------ LiquidityMath


def test_add_delta_vectors() -> None:
    assert add_delta(1, 0) == 1
    assert add_delta(1, -1) == 0
    assert add_delta(1, 1) == 2
    with pytest.raises(MathError, match="LA"):
        add_delta(2**128 - 15, 15)
    with pytest.raises(MathError, match="LS"):
        add_delta(0, -1)
    with pytest.raises(MathError, match="LS"):
        add_delta(3, -4)


# ------------------------------------------------------------------ SqrtPriceMath


def test_get_next_sqrt_price_from_input_vectors() -> None:
    with pytest.raises(MathError):
        get_next_sqrt_price_from_input(0, 0, E18 // 10, False)
    with pytest.raises(MathError):
        get_next_sqrt_price_from_input(1, 0, E18 // 10, True)
    with pytest.raises(MathError):  # input overflows the price
        get_next_sqrt_price_from_input(2**160 - 1, 1024, 1024, False)
    assert get_next_sqrt_price_from_input(1, 1, 2**255, True) == 1
    price = encode_price_sqrt(1, 1)
    assert get_next_sqrt_price_from_input(price, E18 // 10, 0, True) == price
    assert get_next_sqrt_price_from_input(price, E18 // 10, 0, False) == price
    sqrt_p = 2**160 - 1
    max_amount_no_overflow = MAX_UINT256 - ((MAX_UINT128 << 96) // sqrt_p)
    assert get_next_sqrt_price_from_input(sqrt_p, MAX_UINT128, max_amount_no_overflow, True) == 1
    assert get_next_sqrt_price_from_input(price, E18, E18 // 10, False) == 87150978765690771352898345369
    assert get_next_sqrt_price_from_input(price, E18, E18 // 10, True) == 72025602285694852357767227579
    assert get_next_sqrt_price_from_input(price, 10 * E18, 2**100, True) == 624999999995069620
    assert get_next_sqrt_price_from_input(price, 1, MAX_UINT256 // 2, True) == 1


def test_get_next_sqrt_price_from_output_vectors() -> None:
    with pytest.raises(MathError):
        get_next_sqrt_price_from_output(0, 0, E18 // 10, False)
    with pytest.raises(MathError):
        get_next_sqrt_price_from_output(1, 0, E18 // 10, True)
    price = 20282409603651670423947251286016
    for amount_out, zero_for_one in ((4, False), (5, False), (262145, True), (262144, True)):
        with pytest.raises(MathError):
            get_next_sqrt_price_from_output(price, 1024, amount_out, zero_for_one)
    assert get_next_sqrt_price_from_output(price, 1024, 262143, True) == 77371252455336267181195264
    one = encode_price_sqrt(1, 1)
    assert get_next_sqrt_price_from_output(one, E18 // 10, 0, True) == one
    assert get_next_sqrt_price_from_output(one, E18 // 10, 0, False) == one
    assert get_next_sqrt_price_from_output(one, E18, E18 // 10, False) == 88031291682515930659493278152
    assert get_next_sqrt_price_from_output(one, E18, E18 // 10, True) == 71305346262837903834189555302
    for zero_for_one in (True, False):
        with pytest.raises(MathError):
            get_next_sqrt_price_from_output(one, 1, MAX_UINT256, zero_for_one)


def test_get_amount_deltas_vectors() -> None:
    one, p121 = encode_price_sqrt(1, 1), encode_price_sqrt(121, 100)
    assert get_amount0_delta(one, encode_price_sqrt(2, 1), 0, True) == 0
    assert get_amount0_delta(one, one, 0, True) == 0
    assert get_amount0_delta(one, p121, E18, True) == 90909090909090910
    assert get_amount0_delta(one, p121, E18, False) == 90909090909090909
    up = get_amount0_delta(encode_price_sqrt(2**90, 1), encode_price_sqrt(2**96, 1), E18, True)
    down = get_amount0_delta(encode_price_sqrt(2**90, 1), encode_price_sqrt(2**96, 1), E18, False)
    assert up == down + 1
    assert get_amount1_delta(one, encode_price_sqrt(2, 1), 0, True) == 0
    assert get_amount1_delta(one, p121, E18, True) == 100000000000000000
    assert get_amount1_delta(one, p121, E18, False) == 99999999999999999


def test_sqrt_p_times_sqrt_q_overflows() -> None:
    sqrt_p = 1025574284609383690408304870162715216695788925244
    liquidity = 50015962439936049619261659728067971248
    sqrt_q = get_next_sqrt_price_from_input(sqrt_p, liquidity, 406, True)
    assert sqrt_q == 1025574284609383582644711336373707553698163132913
    assert get_amount0_delta(sqrt_q, sqrt_p, liquidity, True) == 406


# ------------------------------------------------------------------ SwapMath


def test_swap_step_exact_in_capped_one_for_zero() -> None:
    price, target = encode_price_sqrt(1, 1), encode_price_sqrt(101, 100)
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(price, target, 2 * E18, E18, 600)
    assert (amount_in, fee, amount_out) == (9975124224178055, 5988667735148, 9925619580021728)
    assert amount_in + fee < E18
    assert sqrt_q == target < get_next_sqrt_price_from_input(price, 2 * E18, E18, False)


def test_swap_step_exact_out_capped_one_for_zero() -> None:
    price, target = encode_price_sqrt(1, 1), encode_price_sqrt(101, 100)
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(price, target, 2 * E18, -E18, 600)
    assert (amount_in, fee, amount_out) == (9975124224178055, 5988667735148, 9925619580021728)
    assert amount_out < E18
    assert sqrt_q == target < get_next_sqrt_price_from_output(price, 2 * E18, E18, False)


def test_swap_step_exact_in_fully_spent_one_for_zero() -> None:
    price, target = encode_price_sqrt(1, 1), encode_price_sqrt(1000, 100)
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(price, target, 2 * E18, E18, 600)
    assert (amount_in, fee, amount_out) == (999400000000000000, 600000000000000, 666399946655997866)
    assert amount_in + fee == E18
    assert sqrt_q < target
    assert sqrt_q == get_next_sqrt_price_from_input(price, 2 * E18, E18 - fee, False)


def test_swap_step_exact_out_fully_received_one_for_zero() -> None:
    price, target = encode_price_sqrt(1, 1), encode_price_sqrt(10000, 100)
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(price, target, 2 * E18, -E18, 600)
    assert (amount_in, fee, amount_out) == (2 * E18, 1200720432259356, E18)
    assert sqrt_q < target
    assert sqrt_q == get_next_sqrt_price_from_output(price, 2 * E18, E18, False)


def test_swap_step_amount_out_capped() -> None:
    got = compute_swap_step(
        417332158212080721273783715441582, 1452870262520218020823638996, 159344665391607089467575320103, -1, 1
    )
    assert got == (417332158212080721273783715441581, 1, 1, 1)


def test_swap_step_target_price_of_one_uses_partial_input() -> None:
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(2, 1, 1, 3915081100057732413702495386755767, 1)
    assert (sqrt_q, amount_in, amount_out, fee) == (1, 39614081257132168796771975168, 0, 39614120871253040049813)
    assert amount_in + fee <= 3915081100057732413702495386755767


def test_swap_step_entire_input_taken_as_fee() -> None:
    got = compute_swap_step(2413, 79887613182836312, 1985041575832132834610021537970, 10, 1872)
    assert got == (2413, 0, 0, 10)


def test_swap_step_intermediate_insufficient_liquidity_zero_for_one_exact_out() -> None:
    sqrt_p = 20282409603651670423947251286016
    target = sqrt_p * 11 // 10
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(sqrt_p, target, 1024, -4, 3000)
    assert (sqrt_q, amount_in, amount_out, fee) == (target, 26215, 0, 79)


def test_swap_step_intermediate_insufficient_liquidity_one_for_zero_exact_out() -> None:
    sqrt_p = 20282409603651670423947251286016
    target = sqrt_p * 9 // 10
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(sqrt_p, target, 1024, -263000, 3000)
    assert (sqrt_q, amount_in, amount_out, fee) == (target, 1, 26214, 1)
