"""Optimal input sizing: a float closed form to screen, exact integer math to decide.

Screening (vectorised). A constant-product hop with fee factor ``g`` maps
``x -> g*R_out*x / (R_in + g*x)``, written ``x -> p*x / (1 + q*x)`` with ``p = g*R_out/R_in``
(marginal rate at zero) and ``q = g/R_in``. Such Möbius maps compose in closed form:
``(p1, q1) then (p2, q2)`` is ``(p1*p2, q1 + p1*q2)``. For a whole cycle ``(P, Q)`` the
profit ``P*x/(1+Q*x) - x`` is maximal at ``x* = (sqrt(P) - 1)/Q`` with profit
``(sqrt(P) - 1)**2 / Q`` (positive iff ``P > 1``). The normalised ``(p, q)`` form keeps the
numbers near 1 instead of multiplying raw reserves, so four hops of 2**112 reserves stay
finite; anything that still overflows (extreme V3 prices) becomes inf/NaN and is masked.
A V3 pool is screened as the V2 pair with its *virtual* reserves ``L/sqrtP`` and
``L*sqrtP``, exact inside the current tick range.

Deciding (exact). The continuous optimum is an upper bound on the integer one (every floor
only loses), so screening has no false negatives beyond float rounding. Each survivor is
re-sized on the exact integer quote:
* V2-only (``size_v2_exact``): first the exact-integer closed form (``size_v2_closed``):
  compose the hops' Möbius maps with Python ints, ``x* = (isqrt(A*B) - B) // C``, and an
  integer upper bound ``Mub`` on the optimum. The integer optimum is always the *smallest*
  input reaching some output level of a hop (an exact ceil-division chain backwards), so
  the output levels of the coarsest hop are scanned outward from its level at ``x*``; the
  scan stops with a certificate (profit ``== Mub``; or the exact continuous bound shows no
  further level can do better; or, after a small budget, profit ``>= Mub - 1``). That
  decides almost every cycle in a few µs, and tiny pools exactly. It cannot certify when
  two or more tokens are much coarser than the input (nested staircases whose rounding
  noise is far above a wei); ``_rounding_noise`` predicts those from the float levels at
  ``x*``, and for them ``_size_v2_window`` runs first (and after the closed form for the
  few it did not predict): it screens every level of the coarsest hop whose continuous
  bound could beat the best found, in float64 with an error bound either side, and
  checks the few that could with integers: the exact optimum, certified, for ~98% of
  those cycles (about 10 µs: the float screen is a compiled kernel, ``_kernels``). Only
  if that also fails (window too wide, too many near-ties, uint112 overflow at ``x*``) the older
  level search runs too, and the better result wins: a few inputs around ``round(x*)``; for each hop,
  the smallest inputs of the levels next to its continuous level (golden-section over
  levels for a coarse token); a polish pass re-reading the exact levels at the best input.
  Known gap, in that fallback only: with nested coarse staircases in big pools the result
  is the best found, not a proven optimum (a fraction of a percent can be missed).
* with V3 hops (``size_search_exact``): golden-section search on the exact integer profit
  (concave up to rounding because every pool's output is concave in its input), bracket
  around the warm start, widened while the optimum sits on its edge, stopped once inside
  the predicted flat top, then a small local scan.
"""

from __future__ import annotations

import math
from math import isqrt
from typing import Any, Sequence

import numpy as np
import numpy.typing as npt

from arbbot.errors import ArbbotError
from arbbot.math.v2 import FEE_DENOMINATOR
from arbbot.types import PoolState, V2PoolState

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
#: Directed edge ids (the cycle index stores them as int32, callers may pass int64).
EdgeArray = npt.NDArray[np.int32] | npt.NDArray[np.int64]

Q96 = float(2**96)
UINT112_MAX = 2**112 - 1
_INV_PHI = (math.sqrt(5.0) - 1.0) / 2.0

#: One hop: the pool and the token going in.
Hop = tuple[PoolState, str]


# --------------------------------------------------------------------------- floats


def edge_coefficients(state: PoolState) -> tuple[float, float, float, float]:
    """``(p, q)`` of edge token0->token1 then token1->token0; zeros for an unusable pool.

    Zeros make every cycle through the pool screen as unprofitable (P = 0), which is how
    empty, broken or absurd pools are neutralised without special cases downstream.
    """
    try:
        g = (FEE_DENOMINATOR - state.fee_pips) / FEE_DENOMINATOR
        if not 0.0 < g <= 1.0:
            return 0.0, 0.0, 0.0, 0.0
        if isinstance(state, V2PoolState):
            r0, r1 = float(state.reserve0), float(state.reserve1)
            if not (r0 > 0 and r1 > 0 and math.isfinite(r0) and math.isfinite(r1)):
                return 0.0, 0.0, 0.0, 0.0
            return g * r1 / r0, g / r0, g * r0 / r1, g / r1
        liquidity = float(state.liquidity)
        sqrt_p = state.sqrt_price_x96 / Q96
        if not (liquidity > 0 and sqrt_p > 0 and math.isfinite(liquidity)):
            return 0.0, 0.0, 0.0, 0.0
        x_virtual, y_virtual = liquidity / sqrt_p, liquidity * sqrt_p
        out = (g * y_virtual / x_virtual, g / x_virtual, g * x_virtual / y_virtual, g / y_virtual)
        if not all(math.isfinite(v) for v in out):
            return 0.0, 0.0, 0.0, 0.0
        return out
    except (OverflowError, ZeroDivisionError, ValueError, TypeError):
        return 0.0, 0.0, 0.0, 0.0


def screen(
    edges: EdgeArray, p: FloatArray, q: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Closed-form optimum for cycles ``edges[:, i]``: ``(x_opt, gross_profit)``, floats.

    Unprofitable or numerically broken cycles get profit ``-inf`` (never NaN).
    """
    with np.errstate(all="ignore"):
        e0 = edges[0]
        big_p = p[e0]
        big_q = q[e0]
        for j in range(1, edges.shape[0]):
            ej = edges[j]
            big_q += big_p * q[ej]
            big_p *= p[ej]
        s = np.sqrt(big_p)
        s -= 1.0
        x_opt = s / big_q
        profit = s * x_opt
        bad = ~((s > 0.0) & np.isfinite(profit) & np.isfinite(x_opt) & (big_q > 0.0))
        profit[bad] = -np.inf
    return x_opt, profit


def screen_profitable(
    edge_cols: Sequence[EdgeArray], p: FloatArray, q: FloatArray
) -> tuple[IntArray, FloatArray, FloatArray]:
    """Two-stage screen: ``(idx, x_opt, gross_profit)`` only for cycles with ``P > 1``.

    Stage one multiplies the marginal rates (k gathers of one array); only the few cycles
    with a round-trip rate above 1 pay for ``Q``, the square root and the division. A
    cycle with ``P <= 1`` has optimum "no trade", so nothing is lost. Dead pools have
    ``p = 0``, so their cycles fall out here without a liveness mask.
    """
    with np.errstate(all="ignore"):
        big_p = p[edge_cols[0]]
        for col in edge_cols[1:]:
            big_p = big_p * p[col]
        idx = np.flatnonzero(big_p > 1.0)
        if idx.size == 0:
            empty = np.empty(0, dtype=np.float64)
            return idx, empty, empty
        sub = [col[idx] for col in edge_cols]
        bp = p[sub[0]]
        bq = q[sub[0]]
        for col in sub[1:]:
            bq = bq + bp * q[col]
            bp = bp * p[col]
        s = np.sqrt(bp) - 1.0
        x_opt = s / bq
        profit = s * x_opt
        ok = (s > 0.0) & np.isfinite(profit) & np.isfinite(x_opt) & (bq > 0.0)
    return idx[ok], x_opt[ok], profit[ok]


def unit_level_cut(
    edge_cols: Sequence[EdgeArray], p: FloatArray, q: FloatArray, x_opt: FloatArray, profit: FloatArray
) -> FloatArray:
    """``profit`` of V2-only cycles lowered to what an integer trade can still reach
    when a token is coarse (``edge_cols[i]``: hop i's edges of the cycles, ``x_opt`` and
    ``profit`` as ``screen_profitable`` gave them for those cycles).

    A swap that pays out 0 units reverts, so every intermediate hop must output at least
    one unit of its token. Where the continuous optimum gives a hop less than one unit
    (a token worth far more per unit than the trade: 0-decimal tokens), every real trade
    sits at level >= 1 of that hop, which is past the optimum, where the continuous
    profit (an upper bound on the integer one) falls with the level: so the cycle's
    profit is at most its continuous profit at level 1, ``d(1) - b(1)`` (``b``: the input
    reaching one unit, the prefix map inverted; ``d``: what one unit yields through the
    remaining hops). Rounded up: ``2**-45`` relative margins (the float error of a few
    dozen operations is under ``2**-47``), +1 wei, and no cut where ``P - Q`` (the inverse's
    denominator) is within its error of 0. ``-inf`` where one unit is out of reach.
    Usually this shows no trade at all is profitable, and the exact stage never sees the
    cycle.

    Only for V2 pools: a V3 pool's coefficients model its current tick range only, which
    is no bound beyond it.
    """
    k = len(edge_cols)
    with np.errstate(all="ignore"):
        hp = [p[col] for col in edge_cols]
        hq = [q[col] for col in edge_cols]
        # suffix maps (p, q): output of hop i -> cycle output, i.e. hops i+1..k-1
        sp, sq = np.ones_like(x_opt), np.zeros_like(x_opt)
        suffix = [(sp, sq)]
        for i in range(k - 1, 0, -1):
            sp, sq = hp[i] * sp, hq[i] + hp[i] * sq
            suffix.append((sp, sq))
        suffix.reverse()
        bp, bq = np.ones_like(x_opt), np.zeros_like(x_opt)  # prefix: input -> output of hop i
        for i in range(k - 1):
            bq = bq + bp * hq[i]
            bp = bp * hp[i]
            # the continuous level at x_opt, with a margin far above its float error
            below = bp * x_opt / (1.0 + bq * x_opt) < 1.0 - 2.0**-30
            if not below.any():
                continue
            sp, sq = suffix[i]
            # b(1) = 1 / (P - Q): P - Q may cancel, so bound its error and take b's
            # lower end (a smaller input is a larger profit bound); unknown -> no cut.
            den = bp - bq
            err = (bp + bq) * 2.0**-45
            b_low = 1.0 / (den + err)
            d_up = sp / (1.0 + sq) * (1.0 + 2.0**-45)
            cut = d_up - b_low + (d_up + b_low) * 2.0**-45 + 1.0
            cut = np.where(den > err, cut, np.where(den + err <= 0.0, -np.inf, np.inf))
            profit = np.where(below, np.minimum(profit, cut), profit)
    return profit


def compose(coeffs: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """``(P, Q)`` of hops ``(p, q)`` applied in order (see the module docstring)."""
    big_p, big_q = 1.0, 0.0
    for p, q in coeffs:
        big_q += big_p * q
        big_p *= p
    return big_p, big_q


def closed_form_python(coeffs: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """The same optimum for one cycle in pure Python (the benchmark's baseline)."""
    big_p, big_q = 1.0, 0.0
    for p, q in coeffs:
        big_q += big_p * q
        big_p *= p
    if big_p <= 1.0 or big_q <= 0.0:
        return 0.0, -math.inf
    s = math.sqrt(big_p) - 1.0
    x = s / big_q
    return x, s * x


# --------------------------------------------------------------------------- exact


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


def _hop_out(state: PoolState, token_in: str, amount_in: int) -> int:
    if isinstance(state, V2PoolState):
        return _v2_out(state, token_in, amount_in)
    if amount_in <= 0:
        return -1
    from arbbot.pools import v3  # imported lazily like arbbot.pools does

    try:
        out = v3.amount_out(state, token_in, amount_in)
    except (ArbbotError, ArithmeticError, ValueError):
        return -1
    return out if out > 0 else -1


def chain_amounts(hops: Sequence[Hop], amount_in: int) -> list[int] | None:
    """Exact per-hop outputs, or ``None`` if any hop would revert."""
    amounts = []
    x = amount_in
    for state, token_in in hops:
        x = _hop_out(state, token_in, x)
        if x < 0:
            return None
        amounts.append(x)
    return amounts


def chain_out(hops: Sequence[Hop], amount_in: int) -> int:
    """Exact final output; -1 if any hop would revert."""
    x = amount_in
    for state, token_in in hops:
        x = _hop_out(state, token_in, x)
        if x < 0:
            return -1
    return x


def v2_edge_row(state: PoolState, zero_for_one: bool) -> tuple[int, int, int, int] | None:
    """One V2 hop as ``(r_in * 1e6, r_out, 1e6 - fee, max input before uint112 overflow)``;
    ``None`` for a V3 pool or one no swap can go through (empty, fee >= 100%, r_in at
    uint112)."""
    if not isinstance(state, V2PoolState):
        return None
    if zero_for_one:
        r_in, r_out = state.reserve0, state.reserve1
    else:
        r_in, r_out = state.reserve1, state.reserve0
    g = FEE_DENOMINATOR - state.fee_pips
    if r_in <= 0 or r_out <= 0 or g <= 0 or g > FEE_DENOMINATOR or r_in >= UINT112_MAX:
        return None
    return (r_in * FEE_DENOMINATOR, r_out, g, UINT112_MAX - r_in)


def _v2_table(hops: Sequence[Hop]) -> list[tuple[int, int, int, int]] | None:
    """Per hop ``v2_edge_row``; ``None`` if any hop is not a usable V2 pair.

    Precomputed once per cycle so the sizing's inner loop is bare integer arithmetic.
    """
    tab = []
    for state, token_in in hops:
        row = v2_edge_row(state, token_in == state.token0)
        if row is None:
            return None
        tab.append(row)
    return tab


def _fwd(tab: Sequence[tuple[int, int, int, int]], x: int) -> int:
    """Exact chain output (same arithmetic as ``get_amount_out``); -1 if a hop reverts."""
    for a, r_out, g, cap in tab:
        if x <= 0 or x > cap:
            return -1
        w = x * g
        x = w * r_out // (a + w)
    return x if x > 0 else -1


def _back(tab: Sequence[tuple[int, int, int, int]], j: int, need: int) -> int:
    """Smallest cycle input making hop j's output >= ``need``; -1 if unreachable."""
    for i in range(j, -1, -1):
        a, r_out, g, _ = tab[i]
        if need <= 0:
            need = 1
            continue
        if need >= r_out:
            return -1
        need = -(-(need * a) // ((r_out - need) * g))
    return need


#: ``size_v2_closed`` gives up after this many levels while its best is still more than
#: ``_CLOSED_FAR`` wei below the bound (rounding noise that large means nested coarse
#: staircases, which the window screen handles; a cycle that certifies later was close).
_CLOSED_EARLY = 6
_CLOSED_FAR = 64


def size_v2_closed(
    tab: Sequence[tuple[int, int, int, int]], budget: int = 24
) -> tuple[int, int, bool]:
    """``(amount_in, amount_out, certified)`` from the exact-integer closed form.

    ``tab`` is ``_v2_table``'s per-hop ``(1e6*r_in, r_out, 1e6 - fee, cap)``. ``certified``
    means the result is the integer optimum, or within 1 wei of it (see below); otherwise
    it is the best point seen (``(0, 0)`` if none was profitable) and the caller should
    also run the level search (``size_v2_exact`` does).

    Each hop is the Möbius map ``x -> a*x / (b + c*x)`` with ``a = g*r_out``, ``b = 1e6*r_in``,
    ``c = g``; maps compose exactly in integers: ``(A, B, C) then (a, b, c)`` is
    ``(A*a, B*b, b*C + A*c)``. The continuous profit ``A*x/(B + C*x) - x`` peaks at
    ``x* = (sqrt(AB) - B)/C`` with value ``M = (sqrt(A) - sqrt(B))**2 / C``, and every floor
    only loses, so ``Mub = (A + B - 2*isqrt(AB)) // C >= M`` bounds the integer optimum.

    The integer chain depends on the input only through the output level ``y`` of any one
    hop ``j``: for that level the best input is the smallest one reaching it, ``back(y)``
    (an exact ceil-division chain), and the profit is ``fwd_after_j(y) - back(y)``. We take
    ``j`` = the hop whose output token is coarsest at ``x*`` (fewest units), so the levels
    we step through are the widest steps of the staircase and the remaining rounding noise
    is only the other hops' (a few units when they are fine). Levels are scanned outward
    from the level at ``x*``; the scan stops with a certificate:
    * ``best == Mub``: nothing can be better (exact optimum);
    * both directions dead: a direction dies at ``y`` when the exact integer upper bound
      continuous ``d(y) - b(y) < best + 1`` (``d``/``b``: the forward / inverse composed
      maps after / up to hop ``j``, which bound the integer chain) and ``y`` is past the
      continuous optimum; ``d - b`` is concave, so no level further out can beat ``best``
      (exact optimum);
    * after ``budget`` levels, ``best >= Mub - 1``: within 1 wei of the optimum.
    Otherwise (in practice: two or more tokens much coarser than the input, whose
    staircases nest, so the rounding noise is far above a wei) it is not certified.
    A cycle the floor chain cannot carry at ``x*`` (uint112 overflow) is not certified.
    """
    big_a, big_b, big_c = 1, 1, 0
    pre: list[tuple[int, int, int]] = []
    for a, r_out, g, _cap in tab:
        big_c = a * big_c + big_a * g
        big_a *= g * r_out
        big_b *= a
        pre.append((big_a, big_b, big_c))
    if big_a <= big_b:
        return 0, 0, True
    s = isqrt(big_a * big_b)
    m_ub = (big_a + big_b - 2 * s) // big_c
    if m_ub <= 0:
        return 0, 0, True
    x0 = (s - big_b) // big_c
    if x0 < 1:
        x0 = 1
    # Levels at x0 (floor chain) and the coarsest hop.
    x = x0
    j = -1
    y0 = 0
    for i, (a, r_out, g, cap) in enumerate(tab):
        if x > cap:
            return 0, 0, False
        w = x * g
        x = w * r_out // (a + w)
        if j < 0 or x <= y0:
            j, y0 = i, x
        if x <= 0:
            break  # not even one unit of this token at x0: scan its levels from 1
    a1, b1, c1 = pre[j]
    # Post part (hops after j) composed separately.
    a2, b2, c2 = 1, 1, 0
    post = tab[j + 1 :]
    for a, r_out, g, _cap in post:
        c2 = a * c2 + a2 * g
        a2 *= g * r_out
        b2 *= a
    back = tab[j::-1]
    # The continuous optimum level is below f_pre(x0 + 1) < y_right: levels >= y_right are
    # past it (the bound decreases there); levels <= y0 are before it.
    x1 = x0 + 1
    y_right = a1 * x1 // (b1 + c1 * x1) + 1
    neg = -(1 << 400)

    def cand(y: int) -> int:
        v = y
        for a, r_out, g, cap in back:
            if v >= r_out:
                return neg
            v = -(-(v * a) // ((r_out - v) * g))
            if v > cap:
                return neg
        out = y
        for a, r_out, g, cap in post:
            if out > cap:
                return neg
            w = out * g
            out = w * r_out // (a + w)
            if out <= 0:
                return neg
        return out - v

    def above(y: int, level: int) -> bool:
        """Exact: may the continuous ``d(y) - b(y)`` reach ``level + 1``? (If not, no
        integer profit at ``y`` exceeds ``level``: the integer one is below it.)"""
        den = a1 - c1 * y
        if den <= 0:
            return False  # level y is out of the first hops' reach
        dd = b2 + c2 * y
        return a2 * y * den - b1 * y * dd >= (level + 1) * dd * den

    best = neg
    best_y = 0
    up, down = max(y0, 1), y0 - 1
    up_alive, down_alive = True, down >= 1
    n = 0
    while (up_alive or down_alive) and n < budget:
        if n == _CLOSED_EARLY and best < m_ub - _CLOSED_FAR:
            break  # still far from the bound: nested staircases, leave it to the window
        # A level whose exact continuous bound cannot beat ``best`` is not evaluated (the
        # bound is the cheaper test); past the optimum it also ends its direction.
        if up_alive:
            n += 1
            if up >= y_right and not above(up, best):
                up_alive = False
            else:
                p = cand(up)
                if p > best:
                    best, best_y = p, up
                    if best >= m_ub:
                        break
                up += 1
        if down_alive:
            n += 1
            if not above(down, best):
                down_alive = False
            else:
                p = cand(down)
                if p > best:
                    best, best_y = p, down
                    if best >= m_ub:
                        break
                down -= 1
                if down < 1:
                    down_alive = False
    certified = best >= m_ub - 1 or not (up_alive or down_alive)
    if best <= 0:
        return 0, 0, certified
    # Smallest input reaching best_y, and its exact output (may be above the level's).
    v = best_y
    for a, r_out, g, _cap in back:
        v = -(-(v * a) // ((r_out - v) * g))
    out = _fwd(tab, v)
    if out < 0:
        return 0, 0, False
    return v, out, certified


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


def _fwd_levels(tab: Sequence[tuple[int, int, int, int]], x: int) -> list[int] | None:
    out = []
    for a, r_out, g, cap in tab:
        if x <= 0 or x > cap:
            return None
        w = x * g
        x = w * r_out // (a + w)
        out.append(x)
    return out




def size_search_exact(
    hops: Sequence[Hop],
    x_float: float,
    coeffs: Sequence[tuple[float, float]] | None = None,
    *,
    max_input: int = 2**128,
) -> tuple[int, int]:
    """Integer optimum of any cycle (V3 hops included) by golden-section search.

    The warm start ``x_float`` comes from the virtual-reserve screen. The bracket
    ``[x/2, 2x]`` is widened while the best point sits on its edge (liquidity beyond the
    current tick can move the real optimum). The search stops once the bracket is inside
    the flat top the warm-start model predicts (``coeffs``): there the continuous profit
    varies by less than a wei, so more exact quotes (costly for V3) would buy nothing.
    """
    cache: dict[int, int] = {}

    def profit(x: int) -> int:
        if x not in cache:
            out = chain_out(hops, x)
            cache[x] = out - x if out >= 0 else -(1 << 300)
        return cache[x]

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
    # the fits restart wide, from 1/256 of the input.
    x, h = x0, max(tol, x0 >> 20)
    wide = h >= x0 // 256
    for _ in range(14):
        left, mid, right = profit(max(1, x - h)), profit(x), profit(min(x + h, max_input))
        if not (mid >= left and mid >= right) or x - h < 1:
            if wide:
                break
            x, h, wide = x0, max(tol, x0 // 256), True
            continue
        curv = left - 2 * mid + right
        if curv < 0:
            x = min(max(1, x + h * (left - right) // (2 * curv)), max_input)
        if h <= tol:
            best_x = max(cache, key=lambda v: (cache[v], -v))
            for v in range(max(1, best_x - 2), best_x + 3):
                profit(v)
            best_x = max(cache, key=lambda v: (cache[v], -v))
            if cache[best_x] <= 0:
                return 0, 0
            return best_x, best_x + cache[best_x]
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
    best_x = max(cache, key=lambda x: (cache[x], -x), default=1)
    for x in range(max(1, best_x - 4), best_x + 5):
        profit(x)
    best_x = max(cache, key=lambda x: (cache[x], -x))
    if cache[best_x] <= 0:
        return 0, 0
    return best_x, best_x + cache[best_x]
