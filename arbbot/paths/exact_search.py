"""Exact sizing of a cycle with V3 hops: a search on the integer profit.

Owns the path stage's choice of exact sizer for one cycle (``size_cycle``: V2-only cycles
to ``v2_exact``, the rest to the search here; the engine and ``resize`` both call it), the
exact chain quote of any cycle (``chain_out``: V2 pairs with their own guards,
V3 pools through ``arbbot.pools.v3``; -1 where a hop would revert) and
``size_search_exact``: the profit is concave up to rounding because every pool's output is
concave in its input, so from the screen's warm start it fits parabolas (walking uphill
when they do not bracket), then golden-section inside the last bracket, and a small local
scan. Through a coarse intermediate token it searches that token's levels instead (the
best input is the smallest one reaching some level). V2-only cycles go to ``v2_exact``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from arbbot.errors import ArbbotError
from arbbot.math.v2 import FEE_DENOMINATOR
from arbbot.paths.screen import compose
from arbbot.paths.v2_closed import UINT112_MAX, Hop, _v2_table, v2_edge_row
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


def _hop_out(state: PoolState, token_in: str, amount_in: int) -> int:
    global _V3
    if isinstance(state, V2PoolState):
        return _v2_out(state, token_in, amount_in)
    if amount_in <= 0:
        return -1
    if _V3 is None:
        from arbbot.pools import v3

        _V3 = v3
    try:
        out = _V3.amount_out(state, token_in, amount_in)
    except (ArbbotError, ArithmeticError, ValueError):
        return -1
    return out if out > 0 else -1


def chain_out(hops: Sequence[Hop], amount_in: int) -> int:
    """Exact final output; -1 if any hop would revert."""
    x = amount_in
    for state, token_in in hops:
        x = _hop_out(state, token_in, x)
        if x < 0:
            return -1
    return x


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


#: A profit that marks a revert (below any real one, and exact in Python's ints).
_REVERT = -(1 << 300)
#: ``_maximize``: most parabola fits before golden-section over the wide bracket.
_FIT_STEPS = 24


def size_search_exact(
    hops: Sequence[Hop],
    x_float: float,
    coeffs: Sequence[tuple[float, float]] | None = None,
    *,
    max_input: int = 2**128,
) -> tuple[int, int]:
    """Integer optimum of any cycle (V3 hops included): the best input found, with its exact
    output (``chain_out``).

    The warm start ``x_float`` comes from the virtual-reserve screen, and ``coeffs`` (the
    hops' screen ``(p, q)``) give the curvature of the profit and each intermediate token's
    continuous level there. Where a unit of an intermediate token is worth more input than
    the flat top is wide (a coarse token: 0-6 decimals against an 18-decimal input), the
    profit over inputs is a staircase whose best point is the smallest input reaching some
    level of that token: the search then runs over the levels of the coarsest one
    (``_back_hops``: the smallest input reaching a level, V3 hops by their exact-output
    quote), where the profit is smooth again. Otherwise over inputs, no finer than the
    rounding noise of the other tokens lets a fit read the curve. Either way ``_maximize``:
    parabola fits from the warm start, then golden-section. No input above ``max_input``
    is tried (``resize``'s cap): the result is the best found at or under it.
    """
    cache: dict[int, int] = {}

    def profit(x: int) -> int:
        if x not in cache:
            out = chain_out(hops, x)
            cache[x] = out - x if out >= 0 else _REVERT
        return cache[x]

    x0 = int(x_float) if math.isfinite(x_float) and x_float >= 1 else 1
    x0 = max(1, min(x0, max_input))
    tol = 32
    curv = 0.0  # |profit''| at the optimum, per input unit squared
    units: list[tuple[float, int, float]] = []  # (input per unit, hop, level at x0), coarsest first
    if coeffs:
        big_p, big_q = compose(coeffs)
        if big_p > 0 and big_q > 0:
            flat = math.sqrt(math.sqrt(big_p) / big_q)  # continuous loss < 1 wei within this
            if math.isfinite(flat):
                tol = max(tol, int(flat / 4))
            curv = 2.0 * big_q / math.sqrt(big_p)
            m = float(x0)
            for j, (p, q) in enumerate(coeffs[:-1]):
                m = p * m / (1.0 + q * m)
                if math.isfinite(m) and m > 0:
                    units.append((x0 / m, j, m))
            units.sort(reverse=True)
    if units and units[0][0] > tol and math.isfinite(curv) and curv > 0:
        unit, j, level = units[0]
        noise = units[1][0] if len(units) > 1 else 1.0
        by_level: dict[int, int] = {}

        def at_level(y: int) -> int:
            if y not in by_level:
                x = _back_hops(hops, j, y)
                by_level[y] = profit(x) if 0 < x <= max_input else _REVERT
            return by_level[y]

        # over levels the curvature is the input's times unit**2
        h_min = max(1, int(math.sqrt(8.0 * noise / (curv * unit * unit))))
        _maximize(at_level, max(1, int(level)), h_min, 2, 1 << 256, by_level)
    if not cache:
        h_min = tol
        if units and math.isfinite(curv) and curv > 0:
            # a fit narrower than where the curve falls by a few units of the coarsest
            # token reads its floors, not the curve
            h_min = max(tol, int(math.sqrt(8.0 * units[0][0] / curv)))
        _maximize(profit, x0, h_min, tol, max_input, cache)
    best_x = max(cache, key=lambda v: (cache[v], -v))
    if cache[best_x] <= 0:
        return 0, 0
    return best_x, best_x + cache[best_x]


def _maximize(f: Callable[[int], int], x0: int, h_min: int, tol: int, max_x: int, cache: dict[int, int]) -> int:
    """The best ``x`` found for the integer function ``f`` (memoised in ``cache``: its
    argument -> value), concave up to noise that a fit over ``h_min`` does not read.

    Near its optimum the function is close to a parabola, and the warm start ``x0`` is
    usually good. Fit a parabola through x-h, x, x+h; when the three bracket a maximum, jump
    to its vertex and shrink h (by 32, to ``h_min``); when they do not (the optimum is
    further off: a tick crossing moved it, or the vertex missed the shrunk bracket), walk
    uphill to the parabola's vertex (at most 64 h; 4 h where the three are not concave) and
    fit again. The profit is concave and C1 (a tick crossing changes the curvature, not the
    slope), so this takes a few fits where golden-section over [x/2, 2x] took ~70 exact
    quotes. The first try is narrow (2**-20 of x0): when the warm start is right, two fits
    land inside the flat top; if it does not bracket, the fits restart wide, from 1/256 of
    x0. Then golden-section down to ``tol`` in the last bracket (+-2h; +-4h around a center
    the walk came back to); where the best ends on that bracket's edge, or after a revert
    among the three, the floor at 1, or ``_FIT_STEPS`` fits without a bracket, also in
    [x0/2, 2x0] widened while the best sits on its upper edge; last, the integers next to
    the best seen (rounding makes the top a little noisy).
    """
    x, h = x0, max(h_min, x0 >> 20)
    wide = h >= x0 // 256
    bracket: tuple[int, int] | None = None
    centers: set[int] = set()
    for _ in range(_FIT_STEPS):
        if x in centers:  # walked back: the steps follow the noise, not the curve
            bracket = (max(1, x - 4 * h), min(x + 4 * h, max_x))
            break
        centers.add(x)
        lo_x, hi_x = max(1, x - h), min(x + h, max_x)
        left, mid, right = f(lo_x), f(x), f(hi_x)
        if min(left, mid, right) <= _REVERT or lo_x == x or hi_x == x:
            break
        curv = left - 2 * mid + right
        if mid >= left and mid >= right:
            if curv < 0:
                x = min(max(1, x + h * (left - right) // (2 * curv)), max_x)
            if h <= h_min:
                bracket = (max(1, x - 2 * h), min(x + 2 * h, max_x))
                break
            h = max(h_min, h // 32)
            continue
        if not wide:
            x, h, wide = x0, max(h_min, x0 // 256), True
            centers.clear()
            continue
        step = 4 * h
        if curv < 0:
            step = min(max(abs(h * (left - right) // (2 * curv)), h), 64 * h)
        x = min(max(1, x + (step if right > left else -step)), max_x)
    wide_search = True
    if bracket is not None:
        lo_b, hi_b = bracket
        _golden(f, lo_b, hi_b, tol)
        best = max(cache, key=lambda v: (cache[v], -v))
        # the best on an edge of the fits' bracket: they misread the curve (a far tick
        # crossing), the optimum may lie outside it: the wide search below as well
        edge = max(2 * tol, (hi_b - lo_b) >> 5)
        wide_search = not ((lo_b == 1 or best - lo_b > edge) and (hi_b == max_x or hi_b - best > edge))
    if wide_search:
        lo, hi = max(1, x0 // 2), min(max(2 * x0, 16), max_x)
        for _ in range(24):
            if hi >= max_x or f(hi) <= f(max(1, (lo + hi) // 2)):
                break
            lo, hi = (lo + hi) // 2, min(hi * 4, max_x)
        if lo > 1 and f(lo) > f((lo + hi) // 2):
            lo = 1
        _golden(f, lo, hi, tol)
    best = max(cache, key=lambda v: (cache[v], -v), default=x0)
    for v in range(max(1, best - 4), min(best + 5, max_x + 1)):
        f(v)
    return max(cache, key=lambda v: (cache[v], -v))


def _golden(f: Callable[[int], int], a: int, b: int, tol: int) -> None:
    """Golden-section for the maximum of ``f`` in [a, b], down to ``tol`` wide."""
    c = b - int((b - a) * _INV_PHI)
    d = a + int((b - a) * _INV_PHI)
    for _ in range(400):
        if b - a <= tol:
            break
        if f(c) >= f(d):
            b = d
        else:
            a = c
        c = b - int((b - a) * _INV_PHI)
        d = a + int((b - a) * _INV_PHI)


def _back_hops(hops: Sequence[Hop], j: int, need: int) -> int:
    """The smallest cycle input making hop ``j``'s output at least ``need`` (V2 hops: the
    ceiling of the inverse, as ``v2_closed._back``; V3 hops: the exact-output quote, which
    the exact-input chain then checks); -1 if out of reach."""
    global _V3
    for i in range(j, -1, -1):
        state, token_in = hops[i]
        if need <= 0:
            need = 1
            continue
        if isinstance(state, V2PoolState):
            row = v2_edge_row(state, token_in == state.token0)
            if row is None:
                return -1
            a, r_out, g, _cap = row
            if need >= r_out:
                return -1
            need = -(-(need * a) // ((r_out - need) * g))
            continue
        if _V3 is None:
            from arbbot.pools import v3

            _V3 = v3
        token_out = state.token1 if token_in == state.token0 else state.token0
        try:
            need = _V3.amount_in(state, token_out, need)
        except (ArbbotError, ArithmeticError, ValueError):
            return -1
    return need
