"""Exact sizing of a V2-only cycle: the integer optimum ``(amount_in, amount_out)``.

Owns the decision every V2 cycle the screen keeps goes through (``size_v2_exact``, or
``size_v2_table`` on the engine's cached rows) and the two fallbacks it has when the closed
form cannot certify. The closed form (``v2_closed.size_v2_closed``) decides almost every
cycle in a few µs, tiny pools exactly; it cannot certify when two or more tokens are much
coarser than the input (nested staircases whose rounding noise is far above a wei).
``_rounding_noise`` predicts those from the float levels at ``x*``, and for them
``_size_v2_window`` runs first (and after the closed form for the few it did not
predict): it screens every level of the coarsest hop whose continuous bound could beat the
best found, in float64 with an error bound either side, and checks the few that could with
integers: the exact optimum, certified, for ~98% of those cycles (about 10 µs: the float
screen is a compiled kernel, ``_kernels``). Only if that also fails (window too wide, too
many near-ties, uint112 overflow at ``x*``) the older level search (``_size_v2_search``)
runs too, and the better result wins: a few inputs around ``round(x*)``; for each hop,
the smallest inputs of the levels next to its continuous level (golden-section over
levels for a coarse token); a polish pass re-reading the exact levels at the best input.
Known gap, in that fallback only: with nested coarse staircases in big pools the result
is the best found, not a proven optimum (a fraction of a percent can be missed).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from arbbot.paths.v2_closed import _CLOSED_FAR, Hop, _back, _fwd, _fwd_levels, _v2_table, size_v2_closed

#: Golden-section step (also used by ``exact_search``).
_INV_PHI = (math.sqrt(5.0) - 1.0) / 2.0


def size_v2_exact(
    hops: Sequence[Hop], x_float: float, coeffs: Sequence[tuple[float, float]]
) -> tuple[int, int]:
    """Integer optimum ``(amount_in, amount_out)`` of a V2-only cycle.

    The exact-integer closed form (``size_v2_closed``: a few µs, certified optimal or
    within 1 wei) and, for nested coarse tokens (``_rounding_noise`` at ``x_float``
    above ``_CLOSED_FAR``: first), the level window (``_size_v2_window``); only if neither
    certifies, also the level search near ``x_float`` (``_size_v2_search``), and the best
    result is returned.
    For the search, ``coeffs`` are the hops' ``(p, q)``: they give the profit curvature (how wide the flat
    top is that rounding can move the integer optimum across) and each hop's continuous
    output level (the integer chain may not even get through at ``x*`` when a token is
    coarse, so levels come from the floats). Returns ``(0, 0)`` when nothing is profitable.
    """
    tab = _v2_table(hops)
    if tab is None:
        return 0, 0
    return size_v2_table(tab, x_float, coeffs)


def size_v2_table(
    tab: Sequence[tuple[int, int, int, int]],
    x_float: float,
    coeffs: Sequence[tuple[float, float]] | None = None,
) -> tuple[int, int]:
    """``size_v2_exact`` on a prebuilt ``_v2_table`` (the engine caches one per edge).

    ``coeffs`` (the hops' float ``(p, q)``) are only read by the last fallback, the level
    search; ``None`` derives them from ``tab``.
    """
    best = (0, 0)
    seed = -1  # the best profit the window last started from (-1: not run)
    if _rounding_noise(tab, x_float) > _CLOSED_FAR:
        # the closed form would give up on this one (see _CLOSED_FAR): the window first
        seed = 0
        window = _size_v2_window(tab, seed)
        if window is not None:
            best = window[:2]
            if window[2]:
                return best
    amount_in, amount_out, certified = size_v2_closed(tab)
    if amount_out - amount_in > best[1] - best[0]:
        best = (amount_in, amount_out)
    if certified:
        return best
    if best[1] - best[0] > seed:  # a higher start narrows the window
        window = _size_v2_window(tab, best[1] - best[0])
        if window is not None:
            w_in, w_out, certified = window
            if w_out - w_in > best[1] - best[0]:
                best = (w_in, w_out)
            if certified:
                return best
    if coeffs is None:
        coeffs = [(g * r_out / a, g / a) for a, r_out, g, _cap in tab]
    found = _size_v2_search(tab, x_float, coeffs)
    if best[1] - best[0] >= found[1] - found[0]:
        return best
    return found


def _rounding_noise(tab: Sequence[tuple[int, int, int, int]], x: float) -> float:
    """Roughly how many wei the floors of the intermediate tokens other than the coarsest
    cost at input ``x`` (a unit of each, valued at the continuous rates; ``inf`` if one
    has less than a unit there). Far above a wei, ``size_v2_closed`` cannot certify."""
    if not (math.isfinite(x) and x > 0):
        return 0.0
    m = x
    total = top = 0.0
    for a, r_out, g, _cap in tab[:-1]:
        w = m * g
        m = w * r_out / (a + w)
        if not m >= 1.0:
            return math.inf
        total += 1.0 / m
        top = max(top, 1.0 / m)
    return x * (total - top)


#: ``_size_v2_window``: most levels it scans, levels keyed first (around the model's
#: optimum) and per step outward after that, most integer checks.
_WINDOW_MAX = 1 << 17
_WINDOW_FIRST = 1 << 6
_WINDOW_CHUNK = 1 << 9
_WINDOW_CHECKS = 256


#: ``arbbot.paths._kernels`` once a window has run (numba is imported on first use).
_KERNELS: Any = None


def _below(best: int) -> float:
    """``best`` as a float no larger than it (float comparisons then never skip a level
    whose bound or key exceeds the integer ``best``)."""
    f = float(best)
    return math.nextafter(f, -math.inf) if f > best else f


def _size_v2_window(tab: Sequence[tuple[int, int, int, int]], best: int) -> tuple[int, int, bool] | None:
    """Every level of the coarsest hop that could beat ``best``, screened at once.

    For nested coarse tokens (what ``size_v2_closed`` cannot certify) the integer profit
    over the coarsest hop's levels is the concave continuous bound minus a quasi-random
    rounding loss of up to a unit of another coarse token, so the best level can sit
    anywhere in the window where the bound exceeds ``best``. That window is found with
    the continuous maps; the exact chain of every level in it (ceil back to the input,
    floor forward to the output) is evaluated in float64 by a compiled kernel
    (``_kernels.window_run``) with an error bound either side. The best lower bound
    shrinks the window as it is scanned; levels whose upper bound could reach it come
    back best first and are checked with integers until the bound rules out the rest.
    Levels where a float rounding sits too close to an integer to trust are checked
    exactly too.

    Returns ``(amount_in, amount_out, certified)`` (``certified``: the exact optimum over
    all inputs), or ``None`` when the float model is unusable; the caller then runs the
    level search. A window over ``_WINDOW_MAX`` levels, or more than ``_WINDOW_CHECKS``
    levels to check, is not certified.
    """
    global _KERNELS
    if _KERNELS is None:  # numba: loaded where cycles are sized, not on import
        from arbbot.paths import _kernels

        _KERNELS = _kernels
    status, j, levels, keys = _KERNELS.window_run(
        np.array(tab, dtype=np.float64), _below(best), _WINDOW_FIRST, _WINDOW_CHUNK, _WINDOW_MAX, 2 * _WINDOW_CHECKS
    )
    if status < 0:
        return None
    # Exact checks, best key first. A level's profit P(y) is the output floored forward
    # from y minus the smallest input reaching y (ceil chain back): the kernel bounds
    # exactly that, and the best P(y) over all levels is the best profit over all inputs
    # (any input's output is P of its own level, and it is not below that level's
    # smallest input). Given up (status 0), only the first few are checked.
    budget = _WINDOW_CHECKS if status == 1 else 4
    certified = status == 1
    back = tab[j::-1]
    post = tab[j + 1 :]
    v = 0
    for level, key in zip(levels.tolist(), keys.tolist()):
        if key <= best:
            break
        if budget == 0:
            certified = False
            break
        budget -= 1
        need = level
        for a, r_out, g, cap in back:
            if need >= r_out:
                need = -1
                break
            need = -(-(need * a) // ((r_out - need) * g))
            if need > cap:
                need = -1
                break
        if need <= 0:
            continue
        got = level
        for a, r_out, g, cap in post:
            if got > cap:
                got = 0
                break
            w = got * g
            got = w * r_out // (a + w)
        if got > 0 and got - need > best:
            best, v = got - need, need
    if v == 0:
        return 0, 0, certified
    out = _fwd(tab, v)  # at least the level's output (v may reach a higher level)
    if out <= v:
        return 0, 0, False
    return v, out, certified


def _size_v2_search(
    tab: Sequence[tuple[int, int, int, int]], x_float: float, coeffs: Sequence[tuple[float, float]]
) -> tuple[int, int]:
    """The level search, for what the closed form cannot certify (nested coarse tokens)."""
    if not (math.isfinite(x_float) and x_float > 0):
        return 0, 0
    x0 = max(1, int(round(x_float)))
    k = len(tab)
    big_p, big_q = 1.0, 0.0
    levels: list[int] = []
    m = float(x0)
    for p, q in coeffs:
        big_q += big_p * q
        big_p *= p
        m = p * m / (1.0 + q * m)
        levels.append(int(m) if math.isfinite(m) else 0)
    rates = [lv / x0 for lv in levels]
    # A floor at hop j loses < 1 unit of token j, worth ~1/rate_j input units: the total
    # is the rounding budget. Curvature |g''(x*)| = 2Q/sqrt(P), so inputs within `plateau`
    # of x* lose less continuous profit than that budget: the integer optimum lies there.
    budget = 1.0 + sum(max(1.0, 1.0 / r) if r > 0 else 1.0 for r in rates)
    curvature = 2.0 * big_q / math.sqrt(big_p) if big_p > 0 else 0.0
    plateau = math.sqrt(2.0 * budget / curvature) if curvature > 0 else 0.0

    seen: dict[int, int] = {}

    def profit(x: int) -> int:
        got = seen.get(x)
        if got is None:
            out = _fwd(tab, x) if x > 0 else -1
            got = seen[x] = out - x if out >= 0 else -(1 << 300)
        return got

    small = plateau <= 256
    # Tiny pools: the quadratic model of the top is rough, so scan twice its width, every
    # input and every level (cheap at this size). Otherwise a few around x*.
    width = int(2 * plateau) + 2 if small else 2
    for x in range(max(1, x0 - width), x0 + width + 1):
        profit(x)
    for j in range(k):
        lv = levels[j]
        if small:
            span = int(min(2 * plateau * rates[j], 128.0)) + 2
            for level in range(lv - span, lv + span + 1):
                profit(_back(tab, j, level))
            continue
        if rates[j] >= 0.5:
            # Token j about as fine as the input (or finer): its floors cost ~1 wei, the
            # nearest levels' smallest inputs are enough.
            lo_d, hi_d = (-1, 2) if rates[j] <= 2.0 else (0, 1)
            for d in range(lo_d, hi_d + 1):
                profit(_back(tab, j, lv + d))
            continue
        # Token j coarse: the optimum is the smallest input of some level near lv. Profit
        # over levels is concave up to the other hops' rounding: golden-section on levels.
        span = int(min(plateau * rates[j], 2.0**62)) + 2

        def at_level(level: int, j: int = j) -> int:
            return profit(_back(tab, j, level))

        a, b = lv - span, lv + span
        while b - a > 6:
            c = b - int((b - a) * _INV_PHI)
            d = a + int((b - a) * _INV_PHI)
            if at_level(c) >= at_level(d):
                b = d
            else:
                a = c
        for level in range(a - 1, b + 2):
            at_level(level)
    # Polish: several coarse hops interact (the best level of one moves another's), so
    # re-read the exact levels at the best input and try their neighbours' smallest
    # inputs, until nothing improves.
    best_x = max(seen, key=lambda x: (seen[x], -x))
    for _ in range(4):
        amounts = _fwd_levels(tab, best_x)
        if amounts is None:
            break
        for j, lv in enumerate(amounts):
            for d in (-2, -1, 0, 1, 2):
                profit(_back(tab, j, lv + d))
        new_best = max(seen, key=lambda x: (seen[x], -x))
        if new_best == best_x:
            break
        best_x = new_best
    best_profit = seen[best_x]
    if best_profit <= 0:
        return 0, 0
    return best_x, best_x + best_profit
