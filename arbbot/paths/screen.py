"""The float screen: every cycle's optimal input and gross profit in closed form, vectorised.

Owns the per-edge coefficients the engine keeps (``edge_coefficients``), the numpy screen
over whole cycle arrays (``screen``, ``screen_profitable``), the unit-level cut for coarse
tokens (``unit_level_cut``) and the same closed form for one cycle (``compose``,
``closed_form_python``). Floats only: what survives is re-sized exactly by ``v2_exact``
(V2-only cycles) or ``exact_search`` (cycles with V3 hops).

A constant-product hop with fee factor ``g`` maps ``x -> g*R_out*x / (R_in + g*x)``,
written ``x -> p*x / (1 + q*x)`` with ``p = g*R_out/R_in`` (marginal rate at zero) and
``q = g/R_in``. Such Möbius maps compose in closed form: ``(p1, q1) then (p2, q2)`` is
``(p1*p2, q1 + p1*q2)``. For a whole cycle ``(P, Q)`` the profit ``P*x/(1+Q*x) - x`` is
maximal at ``x* = (sqrt(P) - 1)/Q`` with profit ``(sqrt(P) - 1)**2 / Q`` (positive iff
``P > 1``). The normalised ``(p, q)`` form keeps the numbers near 1 instead of multiplying
raw reserves, so four hops of 2**112 reserves stay finite; anything that still overflows
(extreme V3 prices) becomes inf/NaN and is masked. A V3 pool is screened as the V2 pair
with its *virtual* reserves ``L/sqrtP`` and ``L*sqrtP``, exact inside the current tick
range. The continuous optimum is an upper bound on the integer one (every floor only
loses), so the screen has no false negatives beyond float rounding.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import numpy.typing as npt

from arbbot.math.v2 import FEE_DENOMINATOR
from arbbot.types import PoolState, V2PoolState

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
#: Directed edge ids (the cycle index stores them as int32, callers may pass int64).
EdgeArray = npt.NDArray[np.int32] | npt.NDArray[np.int64]

Q96 = float(2**96)


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
