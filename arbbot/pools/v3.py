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

``amount_out`` and ``amount_in`` return ``swap``'s amounts without building the post-swap
state. ``amount_out`` (the path engine's hot call) also records, per state object, the
steps a swap completes and reuses them for the next quotes (``_Walk``); ``out_quoter`` is
``amount_out`` for one state and input token as a function of the amount, for the sizing
search, which quotes a state dozens of times per cycle; ``least_in_quoter`` is its inverse
(the least input whose quote reaches an output), on the same recorded walk.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, replace
from typing import Callable

from arbbot.errors import ArbbotError, InsufficientLiquidity, MathError
from arbbot.math.exceptions import LiquidityMathError, SwapError
from arbbot.math.liquidity_math import UINT128_MAX, add_delta
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
_FEE_DEN = 1_000_000
_UINT256_LIMIT = 1 << 256
# what `limit_tick_floor` works out to for the default (no) price limit
_NO_LIMIT_TICK_ZFO = MIN_TICK + 1  # get_sqrt_ratio_at_tick(MIN_TICK) == MIN_SQRT_RATIO < limit
_NO_LIMIT_TICK_OFZ = MAX_TICK - 1  # get_tick_at_sqrt_ratio(MAX_SQRT_RATIO - 1)


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
    amount0, amount1, sqrt_price, tick, liquidity, crossed = _run(
        state, zero_for_one, amount_specified, sqrt_price_limit_x96, skip_empty, True
    )
    after = replace(state, sqrt_price_x96=sqrt_price, tick=tick, liquidity=liquidity)
    return SwapResult(amount0, amount1, after, crossed)


def _run(
    state: V3PoolState,
    zero_for_one: bool,
    amount_specified: int,
    sqrt_price_limit_x96: int | None,
    skip_empty: bool,
    final_tick: bool,
) -> tuple[int, int, int, int, int, int]:
    """The swap loop -> ``(amount0, amount1, sqrt_price, tick, liquidity, crossed)``.

    With ``final_tick=False`` the tick after a last, partial step is not computed (the
    returned tick is then stale): only the next iteration or the post-swap state reads it,
    never the amounts.
    """
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
        elif sqrt_price != sqrt_price_start and (final_tick or remaining != 0):
            # with nothing remaining the loop ends here: only the post-swap state would
            # read this tick
            tick = get_tick_at_sqrt_ratio(sqrt_price)

    if zero_for_one == exact_input:
        return amount_specified - remaining, calculated, sqrt_price, tick, liquidity, crossed
    return calculated, amount_specified - remaining, sqrt_price, tick, liquidity, crossed


class _Walk:
    """The steps of an exact-input swap with no price limit through one pool state, in
    one direction, recorded as far as quotes have needed them.

    With exact input, every step but the last one runs to its target, and where the steps
    start, how much input completes each and what it pays out do not depend on the
    amount swapped. So step ``j`` (0-based) is recorded once: ``ends[j]``, the input that
    completes steps ``0..j`` (which is also what they consume, fees included);
    ``outs[j]``, their output; ``starts[j]``, ``(price, target, liquidity)`` where step
    ``j`` begins. A quote takes the steps it completes from here and computes only its
    last, partial step.

    Why this equals the loop: with ``remaining`` left, a step reaches its target iff
    ``remaining * (1e6 - fee) // 1e6 >= amount_in_max``, i.e. iff ``remaining >=
    ceil(amount_in_max * 1e6 / (1e6 - fee))``, which is exactly ``amount_in_max +
    fee_amount`` of the completed step. Short of that, the next price never lands on the
    target (``getNextSqrtPriceFromInput`` would have needed at least ``amount_in_max``),
    so the step takes all the rest as input and fee and the loop ends.
    """

    __slots__ = ("state", "zero_for_one", "ends", "outs", "starts", "price", "tick", "liquidity", "finished", "error")

    def __init__(self, state: V3PoolState, zero_for_one: bool) -> None:
        self.state = state  # held: while cached, no other object can have its id()
        self.zero_for_one = zero_for_one
        self.ends: list[int] = []
        self.outs: list[int] = []
        self.starts: list[tuple[int, int, int]] = []
        # where the next, unrecorded step begins
        self.price = state.sqrt_price_x96
        self.tick = state.tick
        self.liquidity = state.liquidity
        self.finished = False  # the price reached the limit: there is no further step
        # LiquidityMath.addDelta's revert ('LS'/'LA') crossing the tick that ends the last
        # recorded step; the walk stops there
        self.error: str | None = None

    def extend(self, amount: int) -> None:
        """Record steps until they consume at least ``amount``, or the walk stops.

        This is ``_run``'s loop for exact input, zero-liquidity shortcut on, no limit,
        with ``computeSwapStep`` inlined for a step that reaches its target. The caller
        checked the operands are in range, so none of the library's checks can fail: the
        divisors are prices >= MIN_SQRT_RATIO and every checked result is far below
        2**256. ``-(-x // y)`` is ``ceil(x / y)`` for ``y > 0`` (``mulDivRoundingUp``,
        ``divRoundingUp``). A turn of the loop can only raise (malformed state: a tick
        spacing of 0, ticks beyond the range; ``swap`` raises the same) before it changes
        anything, so the walk then stays where that turn began.
        """
        zero_for_one = self.zero_for_one
        state = self.state
        ticks = state.ticks
        n_ticks = len(ticks)
        spacing = state.tick_spacing
        word_span = spacing << 8
        fee = state.fee_pips
        fee_keep = _FEE_DEN - fee
        limit = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
        ends, outs, starts = self.ends, self.outs, self.starts
        sqrt_price, tick, liquidity = self.price, self.tick, self.liquidity
        used = ends[-1] if ends else 0
        got = outs[-1] if outs else 0
        if self.error is not None:
            return
        try:
            while used < amount:
                if sqrt_price == limit:
                    self.finished = True
                    break
                compressed = tick // spacing
                if zero_for_one:
                    word_edge = (compressed - (compressed & 0xFF)) * spacing
                    i = bisect_right(ticks, (compressed * spacing, _NET_HI)) - 1
                    if i >= 0 and ticks[i][0] >= word_edge:
                        tick_next, initialized = ticks[i][0], True
                    else:
                        tick_next, initialized = word_edge, False
                        if liquidity == 0:
                            floor_tick = max(ticks[i][0] + 1 if i >= 0 else MIN_TICK, _NO_LIMIT_TICK_ZFO)
                            if word_edge - word_span >= floor_tick:
                                edge = word_edge - ((word_edge - floor_tick) // word_span) * word_span
                                sqrt_price = get_sqrt_ratio_at_tick(edge)
                                tick = edge - 1
                                continue
                    if tick_next < MIN_TICK:
                        tick_next = MIN_TICK
                    sqrt_price_next = get_sqrt_ratio_at_tick(tick_next)
                    target = limit if sqrt_price_next < limit else sqrt_price_next
                else:
                    c1 = compressed + 1
                    word_edge = (c1 - (c1 & 0xFF) + 255) * spacing
                    i = bisect_left(ticks, (c1 * spacing, _NET_LO))
                    if i < n_ticks and ticks[i][0] <= word_edge:
                        tick_next, initialized = ticks[i][0], True
                    else:
                        tick_next, initialized = word_edge, False
                        if liquidity == 0:
                            ceil_tick = min(ticks[i][0] - 1 if i < n_ticks else MAX_TICK, _NO_LIMIT_TICK_OFZ)
                            if word_edge + word_span <= ceil_tick:
                                edge = word_edge + ((ceil_tick - word_edge) // word_span) * word_span
                                sqrt_price = get_sqrt_ratio_at_tick(edge)
                                tick = edge
                                continue
                    if tick_next > MAX_TICK:
                        tick_next = MAX_TICK
                    sqrt_price_next = get_sqrt_ratio_at_tick(tick_next)
                    target = limit if sqrt_price_next > limit else sqrt_price_next

                # computeSwapStep(sqrt_price, target, L, ., fee) reaching the target; as in
                # the library, the direction is `price >= target`
                cur = sqrt_price
                if cur >= target:  # getAmount0Delta(target, cur, L, up), getAmount1Delta(down)
                    step_in = -((-((liquidity << 96) * (cur - target)) // cur) // target)
                    step_out = (liquidity * (cur - target)) >> 96
                else:  # getAmount1Delta(cur, target, L, up), getAmount0Delta(down)
                    step_in = -(-(liquidity * (target - cur)) >> 96)
                    step_out = (((liquidity << 96) * (target - cur)) // target) // cur
                used += step_in - (-(step_in * fee) // fee_keep)  # + mulDivRoundingUp fee
                got += step_out
                starts.append((cur, target, liquidity))
                outs.append(got)
                ends.append(used)  # last: a reader that sees ends[j] finds starts[j], outs[j]
                sqrt_price = target
                if target == sqrt_price_next:
                    if initialized:
                        net = ticks[i][1]
                        delta = -net if zero_for_one else net  # LiquidityMath.addDelta
                        if delta < 0 and -delta > liquidity:
                            self.error = "LS"
                            break
                        if delta > 0 and liquidity + delta > UINT128_MAX:
                            self.error = "LA"
                            break
                        liquidity += delta
                    tick = tick_next - 1 if zero_for_one else tick_next
                # else the target is the limit: `finished` on the next turn
        finally:
            self.price, self.tick, self.liquidity = sqrt_price, tick, liquidity


_WALKS: dict[int, _Walk] = {}
_WALKS_MAX = 4096  # walks (pool state x direction) kept; all dropped at once when full
_WALK_LOCK = threading.Lock()  # held to extend a walk and to read its end


def _quote_exact_in(state: V3PoolState, zero_for_one: bool, amount: int) -> tuple[int, int]:
    """``(input used, fee included; output)`` of ``swap(state, zero_for_one, amount)``
    (exact input, no price limit), without the post-swap state.

    The steps the swap completes are recorded per state object and direction (``_Walk``)
    and reused: the path engine quotes a state dozens of times per cycle, with nearby
    amounts. States are frozen, so a recorded walk never goes stale. A state whose
    operands are out of range (price outside ``[MIN_SQRT_RATIO, MAX_SQRT_RATIO]``,
    liquidity not uint128, fee not below 100%) or an ``amount`` not in ``(0, 2**255)``
    takes the general loop instead, which raises wherever ``swap`` would.
    """
    if not (_walkable(state) and 0 < amount <= _INT256_MAX):
        a0, a1, *_ = _run(state, zero_for_one, amount, None, True, False)
        return (a0, -a1) if zero_for_one else (a1, -a0)
    _check_no_limit(state, zero_for_one)
    return _walk_quote(_walk_of(state, zero_for_one, amount), state.fee_pips, amount)


def _walkable(state: V3PoolState) -> bool:
    """The state's operands are in the range ``_Walk.extend`` assumes."""
    return (
        MIN_SQRT_RATIO <= state.sqrt_price_x96 <= MAX_SQRT_RATIO
        and 0 <= state.liquidity <= UINT128_MAX
        and 0 <= state.fee_pips < _FEE_DEN
    )


def _check_no_limit(state: V3PoolState, zero_for_one: bool) -> None:
    """``swap``'s 'SPL' check for the default limit: the price is not already at it."""
    if zero_for_one:
        if not MIN_SQRT_RATIO + 1 < state.sqrt_price_x96:
            raise SwapError("SPL")
    elif not state.sqrt_price_x96 < MAX_SQRT_RATIO - 1:
        raise SwapError("SPL")


def _walk_of(state: V3PoolState, zero_for_one: bool, amount: int) -> _Walk:
    """The recorded walk of ``state`` in that direction; a new one, extended to ``amount``,
    if there is none yet."""
    key = id(state) << 1 | zero_for_one
    walk = _WALKS.get(key)
    if walk is None or walk.state is not state:
        walk = _Walk(state, zero_for_one)
        walk.extend(amount)  # not shared yet: no lock
        if len(_WALKS) >= _WALKS_MAX:
            _WALKS.clear()
        _WALKS[key] = walk  # a racing thread may replace it: both walks are right
    return walk


def _walk_quote(walk: _Walk, fee: int, amount: int) -> tuple[int, int]:
    """``_quote_exact_in`` of ``walk``'s state (fee ``fee``) once the checks passed."""
    ends = walk.ends
    k = bisect_right(ends, amount)  # steps 0..k-1 complete; the lists only ever grow
    if k == len(ends):
        with _WALK_LOCK:
            walk.extend(amount)
            k = bisect_right(ends, amount)
            n = len(ends)
            error = walk.error
        if k == n and error is not None and amount > (ends[n - 2] if n > 1 else 0):
            # the swap completes the last recorded step (its `remaining` was not 0 when it
            # began) and so crosses the tick that reverts
            raise LiquidityMathError(error)
    used, got = (ends[k - 1], walk.outs[k - 1]) if k else (0, 0)
    if used == amount or k == len(ends):
        # nothing left, or the price reached the limit with input left unused
        return used, got
    return amount, got + _partial_out(_step_operands(walk.starts[k]), fee, amount - used)


#: A partial step's operands (``_step_operands``): direction (price falling), price,
#: liquidity, ``L << 96``, ``(L << 96) * price``, ``2**256 - (L << 96)``.
StepOperands = tuple[bool, int, int, int, int, int]


def _step_operands(start: tuple[int, int, int]) -> StepOperands:
    """What every partial step from ``start`` = ``_Walk.starts[j]`` computes alike."""
    cur, target, liquidity = start
    num1 = liquidity << 96
    return cur >= target, cur, liquidity, num1, num1 * cur, _UINT256_LIMIT - num1


def _partial_out(start: StepOperands, fee: int, remaining: int) -> int:
    """Output of the last, partial step of a walk, from ``start``:
    ``computeSwapStep(price, target, L, remaining, fee)`` short of the target (hence L > 0);
    its input and fee are all of ``remaining``."""
    down, cur, liquidity, num1, num1_cur, room = start
    less_fee = remaining * (_FEE_DEN - fee) // _FEE_DEN
    if down:
        if less_fee == 0:
            return 0
        # getNextSqrtPriceFromAmount0RoundingUp(cur, L, less_fee, add)
        product = less_fee * cur
        if product < room:  # product < 2**256 and num1 + product < 2**256
            nxt = -(-num1_cur // (num1 + product))
        else:
            nxt = -(-num1 // (num1 // cur + less_fee))
        return (liquidity * (cur - nxt)) >> 96  # getAmount1Delta, down
    # getNextSqrtPriceFromAmount1RoundingDown(cur, L, less_fee, add); getAmount0Delta, down
    nxt = cur + (less_fee << 96) // liquidity
    return ((num1 * (nxt - cur)) // nxt) // cur


def out_quoter(state: V3PoolState, token_in: str) -> Callable[[int], int]:
    """``amount_out(state, token_in, .)`` as one function of the amount, for a caller that
    quotes one state many times (the path engine's sizing search): the direction, the
    operand checks and the walk are looked up once, not per quote.

    The function returns ``amount_out``'s value (which may be 0), or -1 wherever
    ``amount_out`` raises ``ArbbotError``, ``ArithmeticError`` or ``ValueError`` (a revert,
    no liquidity, a malformed state). Raises ``MathError`` if ``token_in`` is not in the pool.
    """
    zero_for_one = _direction(state, token_in, is_input=True)

    def general(amount: int) -> int:
        try:
            return amount_out(state, token_in, amount)
        except (ArbbotError, ArithmeticError, ValueError):
            return -1

    if not _walkable(state):
        return general
    try:
        _check_no_limit(state, zero_for_one)
    except SwapError:
        return lambda amount: -1  # amount_out raises InsufficientLiquidity for any amount
    walk = _walk_of(state, zero_for_one, 0)
    ends, outs, starts = walk.ends, walk.outs, walk.starts
    fee = state.fee_pips
    steps: list[StepOperands] = []  # _step_operands of the walk's steps, as quotes reach them

    def operands(k: int) -> StepOperands:
        while len(steps) <= k:
            steps.append(_step_operands(starts[len(steps)]))
        return steps[k]

    def quote(amount: int) -> int:
        if not 0 < amount <= _INT256_MAX:
            return -1  # amount_out: MathError (not positive) or SwapError (not int256)
        k = bisect_right(ends, amount)
        if k < len(ends):  # inside the recorded walk: _walk_quote's usual case, inlined
            if not k:
                return _partial_out(steps[0] if steps else operands(0), fee, amount)
            used = ends[k - 1]
            if used == amount:
                return outs[k - 1]
            return outs[k - 1] + _partial_out(steps[k] if k < len(steps) else operands(k), fee, amount - used)
        try:
            used, out = _walk_quote(walk, fee, amount)
        except (ArbbotError, ArithmeticError, ValueError):
            return -1
        return out if used else -1  # used 0: InsufficientLiquidity

    return quote


def _partial_in(start: tuple[int, int, int], fee: int, need: int) -> int:
    """The least input of a partial step from ``start`` (``_Walk.starts[j]``) whose
    ``_partial_out`` reaches ``need``, by turning that formula round exactly: 0 where no
    partial input of the step reaches it (only the whole step does), -1 where the step's
    price falls and the input is large enough that ``_partial_out`` takes its other
    branch (the caller then settles it on the quote). Each inequality is
    ``_partial_out``'s: ``(L * (cur - nxt)) >> 96 >= need`` iff ``cur - nxt >=
    ceil(need * 2**96 / L)``; ``ceil(a / b) <= n`` iff ``a <= n * b``; ``floor(a / b) >= c``
    iff ``a >= c * b``; the fee's ``floor(r * (1e6 - fee) / 1e6) >= less_fee`` iff ``r >=
    ceil(less_fee * 1e6 / (1e6 - fee))``."""
    cur, target, liquidity = start
    if liquidity <= 0:
        return 0
    num1 = liquidity << 96
    if cur >= target:  # price falling: output token1
        nxt = cur - -(-(need << 96) // liquidity)  # the highest next price that pays `need`
        if nxt <= 0:
            return 0
        less_fee = -(-(num1 * (cur - nxt)) // (nxt * cur))
        if less_fee * cur >= _UINT256_LIMIT - num1:
            return -1  # _partial_out's other branch (its product would overflow)
    else:  # price rising: output token0
        room = num1 - need * cur
        if room <= 0:
            return 0
        nxt = -(-(num1 * cur) // room)  # the lowest next price that pays `need`
        less_fee = -(-((nxt - cur) * liquidity) >> 96)
    return -(-(less_fee * _FEE_DEN) // (_FEE_DEN - fee))


def _settle(quote: Callable[[int], int], need: int, guess: int) -> int:
    """The least amount ``a >= 1`` with ``quote(a) >= need``, from a guess near it
    (gallop away from the guess, then bisect); -1 if there is none. ``quote`` is
    non-decreasing, then -1 from the amount where it starts failing (a crossing that
    reverts, or beyond ``_INT256_MAX``) on."""
    a = min(max(guess, 1), _INT256_MAX)
    if quote(a) < need:  # up, to an amount that reaches it
        lo, step = a, 1
        while True:
            a = lo + step
            got = quote(a) if a <= _INT256_MAX else -1
            if got < 0:
                return -1
            if got >= need:
                break
            lo, step = a, step * 2
    else:  # down, to an amount that does not
        lo, step = a - 1, 1
        while lo >= 1 and quote(lo) >= need:
            a, step = lo, step * 2
            lo = a - step
        lo = max(lo, 0)
    while a - lo > 1:  # quote(lo) < need (or lo == 0) and quote(a) >= need
        mid = (lo + a) // 2
        if quote(mid) >= need:
            a = mid
        else:
            lo = mid
    return a


def _nowhere(need: int) -> int:
    return -1


def least_in_quoter(state: V3PoolState, token_in: str) -> Callable[[int], int]:
    """The inverse of ``out_quoter(state, token_in)``, for the sizing search: for an output
    ``need >= 1``, the least input ``a`` whose quote is at least ``need``; -1 if no input
    up to ``2**255 - 1`` reaches it (or ``need < 1``). A malformed state (operands out of
    the swap's range: negative liquidity, say, where ``amount_out``'s results are not
    monotone) gives -1 for every output.

    It reads the same recorded walk (``_Walk``): the first step whose outputs reach
    ``need``, then the exact inverse of that step's partial formula (``_partial_in``);
    where that formula would take its overflow branch, a search on the quote itself
    (``_settle``). That is what Uniswap's exact-output quote does not give: its input
    pays at least ``need`` but may be a few wei above the least one.
    """
    zero_for_one = _direction(state, token_in, is_input=True)
    if not _walkable(state):
        return _nowhere  # operands out of range: the quote is not monotone there
    try:
        _check_no_limit(state, zero_for_one)
    except SwapError:
        return _nowhere  # amount_out raises InsufficientLiquidity for any amount
    walk = _walk_of(state, zero_for_one, 0)
    ends, outs, starts = walk.ends, walk.outs, walk.starts
    fee = state.fee_pips

    def least(need: int) -> int:
        if need < 1:
            return -1
        # steps below len(ends) only: `extend` appends a step's end last (another thread
        # may be extending the walk)
        n = len(ends)
        k = bisect_left(outs, need, 0, n)
        while k == n:  # not recorded that far yet
            # the walk stopped: the output stops at outs[-1] (the price is at its limit),
            # or the quote fails from ends[-1] on (the crossing after it reverts)
            stopped = walk.finished or walk.error is not None or (ends and ends[-1] >= _INT256_MAX)
            if stopped and n == len(ends):
                return -1  # out of reach (the flags are set after the last step's append)
            if not stopped:
                try:
                    _walk_quote(walk, fee, min(2 * ends[-1], _INT256_MAX) if ends else 1 << 64)
                except (ArbbotError, ArithmeticError, ValueError):
                    pass  # the walk recorded where it stops (its error)
            n = len(ends)
            k = bisect_left(outs, need, 0, n)
        used, got = (ends[k - 1], outs[k - 1]) if k else (0, 0)
        step_in = _partial_in(starts[k], fee, need - got)
        if step_in < 0:  # rare (inputs near 2**256 / price): a quoter for it alone
            return _settle(out_quoter(state, token_in), need, used + 1)
        # exact: a partial step's least input, or the whole step's if none of it is enough
        if 0 < step_in < ends[k] - used:
            return used + step_in
        if k == n - 1 and walk.error is not None and n == len(ends):
            return -1  # completing this step crosses the tick that reverts
        return ends[k]

    return least


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
        used, out = _quote_exact_in(state, zero_for_one, amount_in)
    except SwapError as exc:  # price already at the end of the range
        raise InsufficientLiquidity(f"V3 pool {state.address}: {exc}") from exc
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
    try:  # the amounts of `swap`, without building the post-swap state
        amount0, amount1, *_ = _run(state, zero_for_one, -amount_out, None, True, False)
    except SwapError as exc:
        raise InsufficientLiquidity(f"V3 pool {state.address}: {exc}") from exc
    if zero_for_one:
        paid, received = amount0, -amount1
    else:
        paid, received = amount1, -amount0
    if received != amount_out:
        raise InsufficientLiquidity(
            f"V3 pool {state.address} can deliver only {received} of the {amount_out} asked"
        )
    return paid
