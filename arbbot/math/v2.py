"""Uniswap V2 swap math, exact.

Mirrors ``UniswapV2Library.getAmountOut`` / ``getAmountIn`` (v2-periphery) for the genuine
pair's 0.3% fee, generalised to ``fee_pips`` out of 1_000_000 for forks. All operands are
non-negative, so Python's ``//`` (floor) equals Solidity's truncating division here.
"""

from __future__ import annotations

from arbbot.errors import InsufficientLiquidity, MathError

FEE_DENOMINATOR = 1_000_000


def get_amount_out(amount_in: int, reserve_in: int, reserve_out: int, fee_pips: int = 3000) -> int:
    """``UniswapV2Library.getAmountOut``: rounds down (the pool keeps the dust)."""
    if amount_in <= 0:
        raise MathError("UniswapV2Library: INSUFFICIENT_INPUT_AMOUNT")
    if reserve_in <= 0 or reserve_out <= 0:
        raise InsufficientLiquidity("UniswapV2Library: INSUFFICIENT_LIQUIDITY")
    amount_in_with_fee = amount_in * (FEE_DENOMINATOR - fee_pips)
    numerator = amount_in_with_fee * reserve_out
    denominator = reserve_in * FEE_DENOMINATOR + amount_in_with_fee
    return numerator // denominator


def get_amount_in(amount_out: int, reserve_in: int, reserve_out: int, fee_pips: int = 3000) -> int:
    """``UniswapV2Library.getAmountIn``: rounds up (+1), so the pool is never short."""
    if amount_out <= 0:
        raise MathError("UniswapV2Library: INSUFFICIENT_OUTPUT_AMOUNT")
    if reserve_in <= 0 or reserve_out <= 0:
        raise InsufficientLiquidity("UniswapV2Library: INSUFFICIENT_LIQUIDITY")
    if amount_out >= reserve_out:
        raise InsufficientLiquidity("UniswapV2: INSUFFICIENT_LIQUIDITY")
    numerator = reserve_in * amount_out * FEE_DENOMINATOR
    denominator = (reserve_out - amount_out) * (FEE_DENOMINATOR - fee_pips)
    return numerator // denominator + 1


def get_amounts_out(amount_in: int, hops: list[tuple[int, int, int]]) -> list[int]:
    """``getAmountsOut`` over ``[(reserve_in, reserve_out, fee_pips), ...]``."""
    amounts = [amount_in]
    for reserve_in, reserve_out, fee in hops:
        amounts.append(get_amount_out(amounts[-1], reserve_in, reserve_out, fee))
    return amounts
