"""Pool models: state in, amounts out, no I/O.

``amount_out(state, token_in, amount_in)`` is the one entry point the path engine and
execution use; it dispatches on the state's kind. V3 lives in ``arbbot.pools.v3``.
"""

from __future__ import annotations

from arbbot.errors import MathError
from arbbot.math import v2 as v2math
from arbbot.types import PoolState, V2PoolState


def amount_out(state: PoolState, token_in: str, amount_in: int) -> int:
    """Exact output of swapping ``amount_in`` of ``token_in`` through ``state``."""
    if isinstance(state, V2PoolState):
        if token_in == state.token0:
            return v2math.get_amount_out(amount_in, state.reserve0, state.reserve1, state.fee_pips)
        if token_in == state.token1:
            return v2math.get_amount_out(amount_in, state.reserve1, state.reserve0, state.fee_pips)
        raise MathError(f"token {token_in} not in pool {state.address}")
    from arbbot.pools import v3  # V3 math is heavier; import on first use

    return v3.amount_out(state, token_in, amount_in)
