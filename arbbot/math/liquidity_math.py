"""Port of v3-core 1.0.1 ``contracts/libraries/LiquidityMath.sol``."""

from __future__ import annotations

from arbbot.math.exceptions import LiquidityMathError

UINT128_MAX = (1 << 128) - 1


def add_delta(x: int, y: int) -> int:
    """``LiquidityMath.addDelta``: uint128 ``x`` plus int128 ``y``; reverts 'LS' on
    underflow and 'LA' on overflow instead of wrapping."""
    if y < 0:
        if -y > x:
            raise LiquidityMathError("LS")
        return x + y
    z = x + y
    if z > UINT128_MAX:
        raise LiquidityMathError("LA")
    return z
