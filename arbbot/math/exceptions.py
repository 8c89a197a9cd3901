"""Typed reverts of the V3 math ports: each mirrors a Solidity ``require`` (or a checked
cast / checked arithmetic) that would make the on-chain call revert."""

from __future__ import annotations

from arbbot.errors import MathError


class FullMathError(MathError):
    """``FullMath``: zero denominator, or a result that does not fit in uint256."""


class TickMathError(MathError):
    """``TickMath``: tick outside ``[MIN_TICK, MAX_TICK]`` ('T') or sqrt price outside
    ``[MIN_SQRT_RATIO, MAX_SQRT_RATIO)`` ('R')."""


class SqrtPriceMathError(MathError):
    """``SqrtPriceMath``: zero price or liquidity, or a next price out of uint160 range."""


class LiquidityMathError(MathError):
    """``LiquidityMath.addDelta``: underflow ('LS') or overflow ('LA') of uint128."""


class SafeCastError(MathError):
    """``SafeCast``: a value does not fit the target integer type."""


class SwapError(MathError):
    """``UniswapV3Pool.swap``: zero amount ('AS') or a bad price limit ('SPL')."""
