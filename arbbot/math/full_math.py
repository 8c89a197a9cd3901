"""Port of v3-core 1.0.1 ``contracts/libraries/FullMath.sol`` (512-bit ``mulDiv``).

Python integers are unbounded, so the 512-bit product needs no Chinese-remainder trick:
``a * b // d`` is exact. What must be kept are the reverts: a zero denominator and a
result that does not fit in uint256. All operands are uint256 (non-negative), so ``//``
(floor) is the EVM's truncating division.
"""

from __future__ import annotations

from arbbot.math.exceptions import FullMathError

UINT256_MAX = (1 << 256) - 1


def mul_div(a: int, b: int, denominator: int) -> int:
    """``FullMath.mulDiv``: ``floor(a * b / denominator)``; rounds down (toward zero)."""
    if denominator <= 0:
        raise FullMathError("FullMath.mulDiv: denominator == 0")
    result = a * b // denominator
    if result > UINT256_MAX:
        raise FullMathError("FullMath.mulDiv: result overflows uint256")
    return result


def mul_div_rounding_up(a: int, b: int, denominator: int) -> int:
    """``FullMath.mulDivRoundingUp``: ``ceil(a * b / denominator)``; rounds up so the
    protocol side of a computation is never short."""
    if denominator <= 0:
        raise FullMathError("FullMath.mulDivRoundingUp: denominator == 0")
    result, remainder = divmod(a * b, denominator)
    if remainder:
        # Solidity: require(result < type(uint256).max); result++
        result += 1
    if result > UINT256_MAX:
        raise FullMathError("FullMath.mulDivRoundingUp: result overflows uint256")
    return result
