"""Exact sizing of a cycle with V3 hops: golden-section search on the integer profit.

Owns the path stage's choice of exact sizer for one cycle (``size_cycle``: V2-only cycles
to ``v2_exact``, the rest to the search here; the engine and ``resize`` both call it), the
exact chain quote of any cycle (``_chain`` over per-hop ``_hop_quoter``s, built once per
search: V2 pairs with their own guards, V3 pools through ``arbbot.pools.v3.out_quoter``; -1
where a hop would revert) and
``size_search_exact``: the profit is concave up to rounding because every pool's output is
concave in its input, so from the screen's warm start it fits parabolas, then brackets
(widened while the optimum sits on its edge), stops once inside the predicted flat top, and
finishes with a small local scan. A cycle that reverts at its warm start and on both sides
of it (a drained pool, a capped amount) stops after those three quotes. A cycle through a
token coarse next to its input (one unit of it worth many input wei) is searched over that
token's levels instead (``_size_by_levels``, with each hop's exact inverse ``_hop_least``):
over inputs its profit is a staircase, whose steps hide the curvature the fits and the
golden-section search need. V2-only cycles go to ``v2_exact`` instead.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from arbbot.errors import ArbbotError
from arbbot.math.v2 import FEE_DENOMINATOR
from arbbot.paths.screen import compose
from arbbot.paths.v2_closed import UINT112_MAX, Hop, _back, _v2_table, v2_edge_row
from arbbot.paths.v2_exact import _INV_PHI, size_v2_table
from arbbot.types import PoolState, V2PoolState


def _v2_out(state: V2PoolState, token_in: str, amount_in: int) -> int:
    """``get_amount_out`` plus the pair's own guards; -1 where the swap would revert.

    Same arithmetic as ``arbbot.math.v2.get_amount_out``; inlined because the sizing
    search calls it thousands of times. Extra guard the library lacks: the pair reverts
    ``UniswapV2: OVERFLOW`` if a balance exceeds uint112, and on a zero output.
    """
    if token_in == state.token0:
        r_in, r_out = state.reserve0, state.reserve1
    else:
        r_in, r_out = state.reserve1, state.reserve0
    if amount_in <= 0 or r_in <= 0 or r_out <= 0 or r_in + amount_in > UINT112_MAX:
        return -1
    with_fee = amount_in * (FEE_DENOMINATOR - state.fee_pips)
    out = with_fee * r_out // (r_in * FEE_DENOMINATOR + with_fee)
    return out if out > 0 else -1


#: ``arbbot.pools.v3`` once a V3 hop was quoted (imported lazily like ``arbbot.pools``
#: does; looked up once, not per quote: the search quotes thousands of times a block).
_V3: Any = None

#: One hop as a function of its input: its exact output, or <= 0 where it would revert.
Quoter = Callable[[int], int]


def _v3() -> Any:
    """``arbbot.pools.v3``, imported on first use."""
    global _V3
    if _V3 is None:
        from arbbot.pools import v3

        _V3 = v3
    return _V3


def _never(amount_in: int) -> int:
    return -1


def _hop_quoter(state: PoolState, token_in: str) -> Quoter:
    """The hop's exact output as a function of its input (``_v2_out``, or
    ``arbbot.pools.v3.amount_out`` with -1 where it raises), its state read once."""
    if isinstance(state, V2PoolState):
        row = v2_edge_row(state, token_in == state.token0)
        if row is None:  # unusable as a table row: the pair's own guards, per quote
            return lambda amount_in: _v2_out(state, token_in, amount_in)
        a, r_out, g, cap = row

        def v2(amount_in: int) -> int:  # _v2_out on the row: r_in + amount_in <= uint112
            if amount_in > cap:
                return -1
            w = amount_in * g
            return w * r_out // (a + w)

        return v2
    try:
        return _v3().out_quoter(state, token_in)  # type: ignore[no-any-return]
    except (ArbbotError, ArithmeticError, ValueError):  # token not in the pool
        return _never


def _chain(quoters: Sequence[Quoter]) -> Quoter:
    """The cycle's exact final output as a function of its input; -1 if any hop would
    revert. (Unrolled for 2 and 3 hops it was 30-50 ns a call faster, about 2% of a V3
    cycle's quotes: not worth a copy per length.)"""

    def chain(x: int) -> int:
        if x <= 0:
            return -1
        for quote in quoters:
            x = quote(x)
            if x <= 0:
                return -1
        return x

    return chain


def _hop_least(state: PoolState, token_in: str) -> Quoter | None:
    """The hop's least input whose output reaches a given amount (-1 where none does), the
    inverse of its ``_hop_quoter``; ``None`` for a V2 pair that is no table row (the
    level search then does not run). V2: ``v2_closed._back`` on the hop's row (the
    pair's rounding turned round exactly), within the row's uint112 cap; V3:
    ``arbbot.pools.v3.least_in_quoter``."""
    if isinstance(state, V2PoolState):
        row = v2_edge_row(state, token_in == state.token0)
        if row is None:
            return None
        tab, cap = (row,), row[3]

        def v2(need: int) -> int:
            x = _back(tab, 0, need) if need >= 1 else -1
            return x if x <= cap else -1

        return v2
    try:
        return _v3().least_in_quoter(state, token_in)  # type: ignore[no-any-return]
    except (ArbbotError, ArithmeticError, ValueError):  # token not in the pool
        return None


#: ``_size_by_levels`` tries every level when the warm start's is at most this many (a token
#: so coarse that the next one's rounding, if also coarse, breaks the levels' concavity)
_FEW_LEVELS = 16

#: ``_size_by_levels`` climbs over the ends of the runs when the warm start's level is at
#: least this many runs (fewer: its first step is a run, and a fit rarely crosses a tooth)
_MANY_RUNS = 2

#: ``size_search_exact``'s ``max_input`` when the caller sets none
_UNCAPPED = 2**128

#: ``size_search_exact``'s profit of an input at which a hop would revert
_REVERTS = -(1 << 300)


def _coarse_hop(quoters: Sequence[Quoter], x0: int) -> tuple[int, int] | None:
    """``(j, y)``: the hop whose output is the coarsest next to the cycle's input at
    ``x0`` (most input wei to one unit of it: at least 2) and that output; ``None`` if
    there is none or a hop reverts at ``x0``."""
    best, x = None, x0
    for j, quote in enumerate(quoters[:-1]):
        x = quote(x)
        if x <= 0:
            return None
        if x0 >= 2 * x and (best is None or x < best[1]):
            best = (j, x)
    return best


def _size_by_levels(
    hops: Sequence[Hop],
    j: int,
    y0: int,
    profit: Callable[[int], int],
    max_input: int,
) -> bool:
    """The search over the levels of hop ``j``'s output, a token coarse next to the
    input (each of its units needs many input wei). False (nothing done) if a hop before
    it has no exact inverse.

    All inputs that give hop ``j`` the same output ``y`` give the rest of the cycle the
    same input, so of them only the least pays most: ``profit`` of the least input of
    ``y`` (``_hop_least`` back through hops ``j..0``, exact), a function of the level
    that is concave up to a few wei where the input-space profit is a staircase whose
    steps hide its curvature.

    At most ``_FEW_LEVELS`` levels at the warm start: every level up to four times as
    many. Else ``_climb`` from ``y0`` (the level at the warm start), a step of one level
    after a V2 pair. A V3 hop right after the coarse token rounds its input less fee
    down: one level in every ``run = 1e6 / fee`` buys nothing, so the profit drops there
    and climbs through the next run, a sawtooth on the concave curve. Within two runs
    of the start, the climb's first step is a run (a shorter one could take a tooth's
    drop for a top). Further out, fits that crossed a tooth fell back to a
    golden-section search (25-45 quotes where the top was a run's end, as it was in ~9
    of 10 such cycles of the pipeline benchmark's market), so the climb goes over the
    runs' ends instead (the level before each wasted one: no tooth between two of them),
    from the warm start's run, and then inside each of the best end's run, the one
    before and the one after only when its level before its end pays more than its end
    (its top lies inside it, where no level is wasted). Last, the run ends either side
    of the best level and the levels next to the best. Capped (``max_input``) and still
    climbing at the warm start's level with the next one over the cap, those last two
    steps only.
    """
    inverse = [_hop_least(state, token_in) for state, token_in in hops[: j + 1]]
    if any(least is None for least in inverse):
        return False
    back = inverse[::-1]
    levels: dict[int, int] = {}  # level -> the profit of its least input
    top, top_profit = y0, _REVERTS - 1  # the best level so far (the lowest on a tie)

    def at(y: int) -> int:
        nonlocal top, top_profit
        got = levels.get(y)
        if got is None:
            x = y
            for least in back:
                x = least(x)  # type: ignore[misc]
                if x < 1:
                    break
            got = levels[y] = profit(x) if 1 <= x <= max_input else _REVERTS
            if got > top_profit or (got == top_profit and y < top):
                top, top_profit = y, got
        return got

    if y0 <= _FEW_LEVELS:  # a handful: each of them, up to four times as many
        for y in range(1, 4 * y0 + 1):
            at(y)
        return True
    after = hops[j + 1][0]  # a V3 pool wastes one level of its input in each `run` (fee: pips)
    fee = after.fee_pips if not isinstance(after, V2PoolState) and 0 < after.fee_pips < FEE_DENOMINATOR else 0
    run = FEE_DENOMINATOR // fee if fee else 1
    # Capped (``resize``: the warm start is the cap) and still climbing at the last level
    # under the cap: the top is there, no fit needed (they would pull away from the wall).
    walled = max_input < _UNCAPPED and at(y0 + 1) == _REVERTS and at(y0) >= at(y0 - 1)
    if walled:
        pass
    elif fee and y0 >= _MANY_RUNS * run:

        def end(m: int) -> int:  # the last level of run m: the next one is wasted
            return m * FEE_DENOMINATOR // fee

        def at_end(m: int) -> int:
            return at(end(m)) if m >= 1 else _REVERTS

        m = _climb(at_end, max(1, -(-y0 * fee // FEE_DENOMINATOR)), 1)
        for k in (m - 1, m, m + 1):  # the best end's run, the one after it and the one before
            e, start = end(k), end(k - 1) + 1
            if k >= 1 and at(e - 1) > at(e):  # this run's top lies inside it
                _climb(lambda y: at(y) if start <= y <= e else _REVERTS, e - 1, max(1, (e - start) // 8))
    else:  # a step of a run: a shorter one could take a wasted level's drop for a top
        _climb(at, y0, run)
    if fee:
        m = top * fee // FEE_DENOMINATOR
        for last in (m * FEE_DENOMINATOR // fee, (m + 1) * FEE_DENOMINATOR // fee):  # levels that end a run
            at(last)
    best = top
    for v in range(best - 2, best + 3):
        at(v)
    return True


def _climb(value: Callable[[int], int], y: int, h: int) -> int:
    """The top of ``value`` (concave up to a little noise) near ``y``; every point it
    tries is ``value``'s to remember. Uphill from ``y`` in steps of ``h`` that double
    after two moves until three points bracket a top, then parabola fits, 8x narrower a
    turn down to a step of 1; if a fit stops bracketing (a kink: a tick crossing, or a
    tooth of rounding), golden-section over the last bracket. Returns the last centre
    (the top when the fits ended on a step of 1)."""
    moves = 0
    bracket: tuple[int, int] | None = None
    for _ in range(24):
        left, mid, right = value(y - h), value(y), value(y + h)
        if mid < left or mid < right:
            if bracket is not None:
                break  # a kink: golden-section on the last bracket below
            y = y - h if left >= right else y + h  # not bracketed yet: walk uphill
            moves += 1
            if moves > 2:
                h *= 2
            continue
        bracket = (y - h, y + h)
        curv = left - 2 * mid + right
        if h == 1:
            return y
        if curv < 0:
            y = max(1, y + h * (left - right) // (2 * curv))
        h = max(1, h // 8)
    if bracket is not None:
        a, b = bracket
        c, d = b - int((b - a) * _INV_PHI), a + int((b - a) * _INV_PHI)
        while b - a > 4:
            if value(c) >= value(d):
                b = d
            else:
                a = c
            c, d = b - int((b - a) * _INV_PHI), a + int((b - a) * _INV_PHI)
        return (a + b) // 2
    return y


def size_cycle(
    hops: Sequence[Hop],
    x_float: float,
    coeffs: Sequence[tuple[float, float]] | None = None,
    *,
    tab: Sequence[tuple[int, int, int, int] | None] | None = None,
) -> tuple[int, int]:
    """The path stage's exact integer optimum ``(amount_in, amount_out)`` of one cycle;
    ``(0, 0)`` when no input pays (or a V2 pool in it is unusable).

    V2-only cycles go to ``v2_exact.size_v2_table`` on ``tab`` (the hops' ``v2_edge_row``s,
    built from ``hops`` when ``None``; that sizer derives its own floats from the rows),
    cycles with a V3 hop to ``size_search_exact`` warm-started at ``x_float`` with
    ``coeffs`` (the hops' screen ``(p, q)``).
    """
    if all(isinstance(state, V2PoolState) for state, _ in hops):
        rows = _v2_table(hops) if tab is None else tab
        if rows is None or any(row is None for row in rows):
            return 0, 0
        return size_v2_table(rows, x_float)  # type: ignore[arg-type]
    return size_search_exact(hops, x_float, coeffs)


def size_search_exact(
    hops: Sequence[Hop],
    x_float: float,
    coeffs: Sequence[tuple[float, float]] | None = None,
    *,
    max_input: int = _UNCAPPED,
) -> tuple[int, int]:
    """Integer optimum of any cycle (V3 hops included) by golden-section search.

    The warm start ``x_float`` comes from the virtual-reserve screen. The bracket
    ``[x/2, 2x]`` is widened while the best point sits on its edge (liquidity beyond the
    current tick can move the real optimum). The search stops once the bracket is inside
    the flat top the warm-start model predicts (``coeffs``): there the continuous profit
    varies by less than a wei, so more exact quotes (costly for V3) would buy nothing.
    A cycle through a coarse token (``_coarse_hop`` at the warm start) is searched over
    that token's levels first (``_size_by_levels``), and over inputs only if no level
    pays. No input above ``max_input`` is tried (``resize``'s cap): the result is the
    best found at or under it.
    """
    cache: dict[int, int] = {}
    quoters = [_hop_quoter(state, token_in) for state, token_in in hops]
    chain = _chain(quoters)
    # the best input tried so far: highest profit, then smallest input
    best_profit, best_x = -(1 << 301), 1

    def profit(x: int) -> int:
        nonlocal best_profit, best_x
        got = cache.get(x)
        if got is None:
            out = chain(x)
            got = cache[x] = out - x if out >= 0 else _REVERTS
            if got > best_profit or (got == best_profit and x < best_x):
                best_profit, best_x = got, x
        return got

    x0 = int(x_float) if math.isfinite(x_float) and x_float >= 1 else 1
    x0 = max(1, min(x0, max_input))
    tol = 32
    if coeffs:
        big_p, big_q = compose(coeffs)
        if big_p > 0 and big_q > 0:
            flat = math.sqrt(math.sqrt(big_p) / big_q)  # continuous loss < 1 wei within this
            if math.isfinite(flat):
                tol = max(tol, int(flat / 4))
    # Fast path: near its optimum the profit is close to a parabola, and the warm start is
    # usually good (exact for V2 hops and inside a V3 pool's current tick range). Fit a
    # parabola through x-h, x, x+h, jump to its vertex, shrink h, repeat; leave for the
    # bracketing search below as soon as the three points do not bracket a maximum.
    # The first try is narrow (2**-20 of the input, still far above the rounding noise at
    # that distance for any trade worth making): when the warm start is right, two fits
    # land inside the flat top. If that bracket fails (a tick crossing moved the optimum),
    # the fits restart wide, from 1/256 of the input. A narrow fit that stops bracketing
    # after one did is rounding in a top flatter than ``tol`` says: the top is inside the
    # last bracket, so the search finishes there (restarting wide took up to ~90 quotes
    # to find the same profit).
    x, h = x0, max(tol, x0 >> 20)
    wide = h >= x0 // 256
    if profit(x) == _REVERTS and max(profit(max(1, x - h)), profit(min(x + h, max_input))) == _REVERTS:
        # The cycle cannot run at its warm start nor around it: a hop's output rounds to
        # nothing (a drained pool: smaller inputs too, each hop being monotone) or a hop
        # refuses the amount (a cap: larger ones too). The fits would only close in on the
        # same point (8 more quotes) and find the same. (The first fit takes these three
        # from the cache. The sides are quoted only when the warm start reverts: a cycle
        # through a coarse token is searched over its levels, and never needs them.)
        return 0, 0
    coarse = _coarse_hop(quoters, x0)
    if coarse is not None and _size_by_levels(hops, *coarse, profit, max_input) and best_profit > 0:
        return best_x, best_x + best_profit
    # (a level search that found nothing paying goes on here, to the search over inputs)
    def finish() -> tuple[int, int]:  # the integers next to the best input seen
        top = best_x
        for v in range(max(1, top - 2), min(top + 3, max_input + 1)):
            profit(v)
        return (0, 0) if best_profit <= 0 else (best_x, best_x + best_profit)

    fitted = False  # a fit bracketed a top
    for _ in range(14):
        left, mid, right = profit(max(1, x - h)), profit(x), profit(min(x + h, max_input))
        if not (mid >= left and mid >= right) or x - h < 1:
            if fitted and not wide:
                return finish()  # rounding in a top flatter than tol: it is inside the last bracket
            if wide:
                break
            x, h, wide = x0, max(tol, x0 // 256), True
            continue
        fitted = True
        curv = left - 2 * mid + right
        if curv < 0:
            x = min(max(1, x + h * (left - right) // (2 * curv)), max_input)
        if h <= tol:
            return finish()
        h = max(tol, h // 32)
    lo, hi = max(1, x0 // 2), min(max(2 * x0, 16), max_input)
    for _ in range(24):
        if hi >= max_input or profit(hi) <= profit(max(1, (lo + hi) // 2)):
            break
        lo, hi = (lo + hi) // 2, min(hi * 4, max_input)
    if lo > 1 and profit(lo) > profit((lo + hi) // 2):
        lo = 1
    a, b = lo, hi
    c = b - int((b - a) * _INV_PHI)
    d = a + int((b - a) * _INV_PHI)
    for _ in range(400):
        if b - a <= tol:
            break
        if profit(c) >= profit(d):
            b = d
        else:
            a = c
        c = b - int((b - a) * _INV_PHI)
        d = a + int((b - a) * _INV_PHI)
    # Rounding makes the top a little noisy: try a few integers around the best seen
    # (never the whole bracket, which may still be wide if the search hit reverts).
    top = best_x
    for x in range(max(1, top - 4), min(top + 5, max_input + 1)):
        profit(x)
    if best_profit <= 0:
        return 0, 0
    return best_x, best_x + best_profit
