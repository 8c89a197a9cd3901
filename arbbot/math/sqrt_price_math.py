"""Port of v3-core 1.0.1 ``contracts/libraries/SqrtPriceMath.sol``.

Prices are Q64.96 (uint160), liquidity uint128, amounts uint256. Every operand here is
non-negative except the liquidity of the signed ``get_amount*_delta_signed`` helpers,
whose sign is split off before any division, so ``//`` (floor) equals Solidity's
truncating ``/``. Overflow checks of the 256-bit EVM arithmetic are reproduced
explicitly, because the contract's control flow depends on them.
"""

from __future__ import annotations

from arbbot.math.exceptions import SafeCastError, SqrtPriceMathError
from arbbot.math.full_math import mul_div, mul_div_rounding_up
from arbbot.math.unsafe_math import div_rounding_up

RESOLUTION = 96
Q96 = 1 << 96
_UINT160_MAX = (1 << 160) - 1
_UINT256_LIMIT = 1 << 256
_INT256_LIMIT = 1 << 255


def get_next_sqrt_price_from_amount0_rounding_up(sqrt_px96: int, liquidity: int, amount: int, add: bool) -> int:
    """``getNextSqrtPriceFromAmount0RoundingUp``: price after adding/removing ``amount``
    of token0. Always rounds up: exact input (price falls) must not move too far, exact
    output (price rises) must move at least far enough."""
    if amount == 0:
        return sqrt_px96
    numerator1 = liquidity << RESOLUTION
    if add:
        product = amount * sqrt_px96
        if product < _UINT256_LIMIT:  # the contract's `product / amount == sqrtPX96`
            denominator = numerator1 + product
            if denominator < _UINT256_LIMIT:  # `denominator >= numerator1`: no wrap
                return mul_div_rounding_up(numerator1, sqrt_px96, denominator)
        if sqrt_px96 == 0:
            raise SqrtPriceMathError("SqrtPriceMath: division by zero price")
        denominator = numerator1 // sqrt_px96 + amount
        if denominator >= _UINT256_LIMIT:  # LowGasSafeMath.add
            raise SqrtPriceMathError("SqrtPriceMath: add overflow")
        return div_rounding_up(numerator1, denominator)
    product = amount * sqrt_px96
    # if the product overflows, the denominator underflows
    if product >= _UINT256_LIMIT or numerator1 <= product:
        raise SqrtPriceMathError("SqrtPriceMath: token0 output exceeds virtual reserve")
    result = mul_div_rounding_up(numerator1, sqrt_px96, numerator1 - product)
    if result > _UINT160_MAX:
        raise SafeCastError("SafeCast.toUint160")
    return result


def get_next_sqrt_price_from_amount1_rounding_down(sqrt_px96: int, liquidity: int, amount: int, add: bool) -> int:
    """``getNextSqrtPriceFromAmount1RoundingDown``: price after adding/removing
    ``amount`` of token1. Always rounds down (the quotient down when adding, up when
    removing), for the mirror-image reasons of the token0 case."""
    if add:
        if amount <= _UINT160_MAX:
            if liquidity == 0:
                raise SqrtPriceMathError("SqrtPriceMath: division by zero liquidity")
            quotient = (amount << RESOLUTION) // liquidity
        else:
            quotient = mul_div(amount, Q96, liquidity)
        result = sqrt_px96 + quotient
        if result > _UINT160_MAX:  # LowGasSafeMath.add, then SafeCast.toUint160
            raise SafeCastError("SafeCast.toUint160")
        return result
    if amount <= _UINT160_MAX:
        quotient = div_rounding_up(amount << RESOLUTION, liquidity)
    else:
        quotient = mul_div_rounding_up(amount, Q96, liquidity)
    if sqrt_px96 <= quotient:
        raise SqrtPriceMathError("SqrtPriceMath: token1 output exceeds virtual reserve")
    return sqrt_px96 - quotient


def get_next_sqrt_price_from_input(sqrt_px96: int, liquidity: int, amount_in: int, zero_for_one: bool) -> int:
    """``getNextSqrtPriceFromInput``: rounds so the price never passes the target."""
    if sqrt_px96 <= 0:
        raise SqrtPriceMathError("SqrtPriceMath: zero price")
    if liquidity <= 0:
        raise SqrtPriceMathError("SqrtPriceMath: zero liquidity")
    if zero_for_one:
        return get_next_sqrt_price_from_amount0_rounding_up(sqrt_px96, liquidity, amount_in, True)
    return get_next_sqrt_price_from_amount1_rounding_down(sqrt_px96, liquidity, amount_in, True)


def get_next_sqrt_price_from_output(sqrt_px96: int, liquidity: int, amount_out: int, zero_for_one: bool) -> int:
    """``getNextSqrtPriceFromOutput``: rounds so the price always reaches the target."""
    if sqrt_px96 <= 0:
        raise SqrtPriceMathError("SqrtPriceMath: zero price")
    if liquidity <= 0:
        raise SqrtPriceMathError("SqrtPriceMath: zero liquidity")
    if zero_for_one:
        return get_next_sqrt_price_from_amount1_rounding_down(sqrt_px96, liquidity, amount_out, False)
    return get_next_sqrt_price_from_amount0_rounding_up(sqrt_px96, liquidity, amount_out, False)


def get_amount0_delta(sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int, round_up: bool) -> int:
    """``getAmount0Delta`` (unsigned): ``L * (sqrtB - sqrtA) / (sqrtB * sqrtA)``, rounded
    up (amounts owed to the pool) or down (amounts paid by it)."""
    if sqrt_ratio_a_x96 > sqrt_ratio_b_x96:
        sqrt_ratio_a_x96, sqrt_ratio_b_x96 = sqrt_ratio_b_x96, sqrt_ratio_a_x96
    if sqrt_ratio_a_x96 <= 0:
        raise SqrtPriceMathError("SqrtPriceMath: zero price")
    numerator1 = liquidity << RESOLUTION
    numerator2 = sqrt_ratio_b_x96 - sqrt_ratio_a_x96
    if round_up:
        return div_rounding_up(mul_div_rounding_up(numerator1, numerator2, sqrt_ratio_b_x96), sqrt_ratio_a_x96)
    return mul_div(numerator1, numerator2, sqrt_ratio_b_x96) // sqrt_ratio_a_x96


def get_amount1_delta(sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int, round_up: bool) -> int:
    """``getAmount1Delta`` (unsigned): ``L * (sqrtB - sqrtA)``, rounded up or down."""
    if sqrt_ratio_a_x96 > sqrt_ratio_b_x96:
        sqrt_ratio_a_x96, sqrt_ratio_b_x96 = sqrt_ratio_b_x96, sqrt_ratio_a_x96
    if round_up:
        return mul_div_rounding_up(liquidity, sqrt_ratio_b_x96 - sqrt_ratio_a_x96, Q96)
    return mul_div(liquidity, sqrt_ratio_b_x96 - sqrt_ratio_a_x96, Q96)


def _to_int256(value: int) -> int:
    if value >= _INT256_LIMIT:
        raise SafeCastError("SafeCast.toInt256")
    return value


def get_amount0_delta_signed(sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int) -> int:
    """``getAmount0Delta`` (int128 liquidity): a negative liquidity (removed) rounds the
    magnitude down, a positive one (added) rounds it up: the pool always keeps the dust."""
    if liquidity < 0:
        return -_to_int256(get_amount0_delta(sqrt_ratio_a_x96, sqrt_ratio_b_x96, -liquidity, False))
    return _to_int256(get_amount0_delta(sqrt_ratio_a_x96, sqrt_ratio_b_x96, liquidity, True))


def get_amount1_delta_signed(sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int) -> int:
    """``getAmount1Delta`` (int128 liquidity): rounding as for token0."""
    if liquidity < 0:
        return -_to_int256(get_amount1_delta(sqrt_ratio_a_x96, sqrt_ratio_b_x96, -liquidity, False))
    return _to_int256(get_amount1_delta(sqrt_ratio_a_x96, sqrt_ratio_b_x96, liquidity, True))
