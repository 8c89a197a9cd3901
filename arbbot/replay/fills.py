"""What a paper fill leaves behind: the cycle's pools after the trade, by the exact pool math
(``arbbot.math.v2``'s ``getAmountOut`` and ``arbbot.pools.v3.swap``, each equal to the
genuine contract to the wei), so a backtest's later blocks see the pools its own trades moved.

The rule a backtest applies (``arbbot.replay.backtest``): a paper fill decided at block N
moves its pools at once (a later re-validation in block N re-sizes on the moved state) and
is published with block N+1, as the scan stage would publish a live trade mined in the next
block: the path stage sees the moved pools as changed in N+1. A moved pool keeps its moved
state until the recording's own next change of that pool, which overrides it: the recorded
state is what the chain was, and a recording of the fleet trading live holds its trades.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from arbbot.math import v2 as v2math
from arbbot.paths.resize import cycle_hops
from arbbot.pools import v3
from arbbot.types import PoolState, V2PoolState


def fill(states: Sequence[PoolState], tokens: Sequence[str], amount_in: int, block_number: int) -> list[PoolState]:
    """The cycle's pools (in hop order) after ``amount_in`` of ``tokens[0]`` went round it,
    each hop paying the next its exact output; stamped with ``block_number``."""
    moved: list[PoolState] = []
    amount = amount_in
    for state, token_in in cycle_hops(states, tokens):
        if isinstance(state, V2PoolState):
            zero_in = token_in == state.token0
            r_in, r_out = (state.reserve0, state.reserve1) if zero_in else (state.reserve1, state.reserve0)
            out = v2math.get_amount_out(amount, r_in, r_out, state.fee_pips)
            r_in, r_out = r_in + amount, r_out - out
            after: PoolState = dataclasses.replace(
                state, reserve0=r_in if zero_in else r_out, reserve1=r_out if zero_in else r_in,
                block_number=block_number,
            )
        else:
            zero_for_one = token_in == state.token0
            swapped = v3.swap(state, zero_for_one, amount)
            out = -(swapped.amount1 if zero_for_one else swapped.amount0)
            after = dataclasses.replace(swapped.state_after, block_number=block_number)
        moved.append(after)
        amount = out
    return moved
