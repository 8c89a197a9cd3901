"""Uniswap V3 pool model: a swap simulation equal to ``UniswapV3Pool.swap`` (v3-core
1.0.1), state in, amounts and post-swap state out, no I/O.

The loop mirrors the contract step for step, including its one-bitmap-word stride: a
step ends at the next initialized tick *or* at the edge of the current 256-tick bitmap
word, whichever is nearer. The rounding of each ``computeSwapStep`` depends on where
steps end, so skipping the empty word edges would drift by a few wei. The one shortcut
taken is exact: while in-range liquidity is zero every step moves the price and nothing
else, so the loop jumps straight to the last word edge it would have reached.

The state's ``ticks`` must hold *every* initialized tick in the range the swap can reach
(with its ``liquidity_net``, even if 0); a tick missing from the list is treated as
uninitialized, exactly as a missing bitmap bit would be.

Signs follow the pool: ``amount_specified > 0`` is exact input, ``< 0`` exact output;
in the result, positive amounts go into the pool and negative ones come out.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, replace

from arbbot.errors import InsufficientLiquidity, MathError
from arbbot.math.exceptions import SwapError
from arbbot.math.liquidity_math import add_delta
from arbbot.math.swap_math import compute_swap_step
from arbbot.math.tick_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
)
from arbbot.types import V3PoolState

_INT256_MIN = -(1 << 255)
_INT256_MAX = (1 << 255) - 1
# sentinels that sort after / before any (tick, liquidity_net) pair with the same tick
_NET_HI = 1 << 200
_NET_LO = -(1 << 200)


@dataclass(frozen=True, slots=True)
class SwapResult:
    """What ``UniswapV3Pool.swap`` returns and leaves behind.

    ``amount0``/``amount1``: the pool's deltas (positive: paid in, negative: paid out).
    ``ticks_crossed``: initialized ticks crossed (liquidity_net applied).
    """

    amount0: int
    amount1: int
    state_after: V3PoolState
    ticks_crossed: int


def swap(
    state: V3PoolState,
    zero_for_one: bool,
    amount_specified: int,
    sqrt_price_limit_x96: int | None = None,
) -> SwapResult:
    """Simulate ``UniswapV3Pool.swap``; never mutates ``state``.

    ``sqrt_price_limit_x96=None`` means no limit (``MIN_SQRT_RATIO + 1`` or
    ``MAX_SQRT_RATIO - 1``, what the periphery passes for 0). Like the pool, a swap that
    runs out of liquidity stops at the limit and consumes only part of the amount: check
    ``amount0``/``amount1``. Raises ``SwapError`` ('AS', 'SPL') where the pool reverts.
    """
    return _swap(state, zero_for_one, amount_specified, sqrt_price_limit_x96, True)


def _swap(
    state: V3PoolState,
    zero_for_one: bool,
    amount_specified: int,
    sqrt_price_limit_x96: int | None,
    skip_empty: bool,
) -> SwapResult:
    if amount_specified == 0:
        raise SwapError("AS")
    if not _INT256_MIN <= amount_specified <= _INT256_MAX:
        raise SwapError("amountSpecified does not fit int256")
    sqrt_price = state.sqrt_price_x96
    if sqrt_price_limit_x96 is None:
        limit = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
    else:
        limit = sqrt_price_limit_x96
    if zero_for_one:
        if not (MIN_SQRT_RATIO < limit < sqrt_price):
            raise SwapError("SPL")
    elif not (sqrt_price < limit < MAX_SQRT_RATIO):
        raise SwapError("SPL")

    exact_input = amount_specified > 0
    remaining = amount_specified
    calculated = 0
    tick = state.tick
    liquidity = state.liquidity
    ticks = state.ticks
    n_ticks = len(ticks)
    spacing = state.tick_spacing
    word_span = spacing << 8  # ticks covered by one bitmap word
    fee = state.fee_pips
    crossed = 0
    limit_tick_floor: int | None = None  # lazily: lowest/highest word edge the limit allows

    while remaining != 0 and sqrt_price != limit:
        # TickBitmap.nextInitializedTickWithinOneWord over the sorted `ticks`. Python's
        # `//` floors, which is the contract's "round towards negative infinity" for
        # negative ticks; `% 256` likewise equals its uint8(int24 % 256).
        compressed = tick // spacing
        if zero_for_one:
            word_edge = (compressed - (compressed & 0xFF)) * spacing
            i = bisect_right(ticks, (compressed * spacing, _NET_HI)) - 1
            if i >= 0 and ticks[i][0] >= word_edge:
                tick_next, initialized = ticks[i][0], True
            else:
                tick_next, initialized = word_edge, False
                if skip_empty and liquidity == 0:
                    # Zero-liquidity steps only move the price: land on the last word
                    # edge the loop would visit (above the next initialized tick, at or
                    # above MIN_TICK and the limit) and carry on from there.
                    floor_tick = ticks[i][0] + 1 if i >= 0 else MIN_TICK
                    if limit_tick_floor is None:
                        lt = get_tick_at_sqrt_ratio(limit)
                        limit_tick_floor = lt if get_sqrt_ratio_at_tick(lt) == limit else lt + 1
                    floor_tick = max(floor_tick, MIN_TICK, limit_tick_floor)
                    if word_edge - word_span >= floor_tick:
                        edge = word_edge - ((word_edge - floor_tick) // word_span) * word_span
                        sqrt_price = get_sqrt_ratio_at_tick(edge)
                        tick = edge - 1
                        continue
            if tick_next < MIN_TICK:
                tick_next = MIN_TICK
        else:
            c1 = compressed + 1
            word_edge = (c1 - (c1 & 0xFF) + 255) * spacing
            i = bisect_left(ticks, (c1 * spacing, _NET_LO))
            if i < n_ticks and ticks[i][0] <= word_edge:
                tick_next, initialized = ticks[i][0], True
            else:
                tick_next, initialized = word_edge, False
                if skip_empty and liquidity == 0:
                    ceil_tick = ticks[i][0] - 1 if i < n_ticks else MAX_TICK
                    if limit_tick_floor is None:
                        limit_tick_floor = get_tick_at_sqrt_ratio(limit)  # sqrt(edge) <= limit
                    ceil_tick = min(ceil_tick, MAX_TICK, limit_tick_floor)
                    if word_edge + word_span <= ceil_tick:
                        edge = word_edge + ((ceil_tick - word_edge) // word_span) * word_span
                        sqrt_price = get_sqrt_ratio_at_tick(edge)
                        tick = edge
                        continue
            if tick_next > MAX_TICK:
                tick_next = MAX_TICK

        sqrt_price_start = sqrt_price
        sqrt_price_next = get_sqrt_ratio_at_tick(tick_next)
        if zero_for_one:
            target = limit if sqrt_price_next < limit else sqrt_price_next
        else:
            target = limit if sqrt_price_next > limit else sqrt_price_next
        sqrt_price, step_in, step_out, step_fee = compute_swap_step(sqrt_price, target, liquidity, remaining, fee)

        if exact_input:
            remaining -= step_in + step_fee
            calculated -= step_out
        else:
            remaining += step_out
            calculated += step_in + step_fee

        if sqrt_price == sqrt_price_next:
            if initialized:
                net = ticks[i][1]
                # moving leftward, liquidity_net is read with the opposite sign
                liquidity = add_delta(liquidity, -net if zero_for_one else net)
                crossed += 1
            tick = tick_next - 1 if zero_for_one else tick_next
        elif sqrt_price != sqrt_price_start:
            tick = get_tick_at_sqrt_ratio(sqrt_price)

    if zero_for_one == exact_input:
        amount0, amount1 = amount_specified - remaining, calculated
    else:
        amount0, amount1 = calculated, amount_specified - remaining
    after = replace(state, sqrt_price_x96=sqrt_price, tick=tick, liquidity=liquidity)
    return SwapResult(amount0, amount1, after, crossed)


def _direction(state: V3PoolState, token: str, *, is_input: bool) -> bool:
    if token == state.token0:
        return is_input
    if token == state.token1:
        return not is_input
    raise MathError(f"token {token} not in pool {state.address}")


def amount_out(state: V3PoolState, token_in: str, amount_in: int) -> int:
    """Exact input: the output of swapping ``amount_in`` of ``token_in`` with no price
    limit, equal to ``QuoterV2.quoteExactInputSingle`` (limit 0).

    If the pool's liquidity runs out part-way, the result is the output of the part it
    absorbed (as on chain, where the pool only charges that part). Raises
    ``InsufficientLiquidity`` when it can absorb none of it.
    """
    if amount_in <= 0:
        raise MathError("amount_in must be positive")
    zero_for_one = _direction(state, token_in, is_input=True)
    try:
        res = swap(state, zero_for_one, amount_in)
    except SwapError as exc:  # price already at the end of the range
        raise InsufficientLiquidity(f"V3 pool {state.address}: {exc}") from exc
    if zero_for_one:
        used, out = res.amount0, -res.amount1
    else:
        used, out = res.amount1, -res.amount0
    if used == 0:
        raise InsufficientLiquidity(f"V3 pool {state.address} has no liquidity in that direction")
    return out


def amount_in(state: V3PoolState, token_out: str, amount_out: int) -> int:
    """Exact output: the input (fee included) needed to receive ``amount_out`` of
    ``token_out``, equal to ``QuoterV2.quoteExactOutputSingle`` (limit 0). Raises
    ``InsufficientLiquidity`` if the pool cannot deliver all of it."""
    if amount_out <= 0:
        raise MathError("amount_out must be positive")
    zero_for_one = _direction(state, token_out, is_input=False)
    try:
        res = swap(state, zero_for_one, -amount_out)
    except SwapError as exc:
        raise InsufficientLiquidity(f"V3 pool {state.address}: {exc}") from exc
    if zero_for_one:
        paid, received = res.amount0, -res.amount1
    else:
        paid, received = res.amount1, -res.amount0
    if received != amount_out:
        raise InsufficientLiquidity(
            f"V3 pool {state.address} can deliver only {received} of the {amount_out} asked"
        )
    return paid
