"""Port of v3-core 1.0.1 ``contracts/libraries/UnsafeMath.sol``.

Operands are uint256, so Python's ``//`` and ``%`` (flooring) agree with the EVM's
truncating ``div``/``mod`` here.
"""

from __future__ import annotations


def div_rounding_up(x: int, y: int) -> int:
    """``UnsafeMath.divRoundingUp``: ``ceil(x / y)``.

    Like the EVM ``div``/``mod`` opcodes it returns 0 for ``y == 0`` (the library leaves
    that case to its callers, which check it); it never raises.
    """
    if y == 0:
        return 0
    q, r = divmod(x, y)
    return q + 1 if r else q
