"""A V2-only cycle as exact integer rows, and its exact-integer closed form.

Owns the row of one V2 hop (``v2_edge_row``: ``(1e6*r_in, r_out, 1e6 - fee, cap)``, the
engine caches one per directed edge), a cycle's table of rows (``_v2_table``), the exact
chain over it (``_fwd`` floors forward like ``get_amount_out``, ``_back`` is the smallest
input reaching an output level, ceil-divided backwards; ``_fwd_levels`` every hop's
output) and ``size_v2_closed``: the hops' Möbius maps composed with Python ints give
``x* = (isqrt(A*B) - B) // C`` and an integer upper bound on the optimum, and the output
levels of the coarsest hop are scanned outward from ``x*`` until a certificate says the
best level found is the optimum. ``v2_exact`` decides what to do when it cannot certify.
"""

from __future__ import annotations

from math import isqrt
from typing import Sequence

from arbbot.math.v2 import FEE_DENOMINATOR
from arbbot.types import PoolState, V2PoolState

#: A V2 pair reverts (``UniswapV2: OVERFLOW``) when a balance would exceed this.
UINT112_MAX = 2**112 - 1

#: One hop: the pool and the token going in.
Hop = tuple[PoolState, str]


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


def _fwd_levels(tab: Sequence[tuple[int, int, int, int]], x: int) -> list[int] | None:
    """Every hop's exact output for input ``x`` (``_fwd``'s levels); ``None`` if a hop reverts."""
    out = []
    for a, r_out, g, cap in tab:
        if x <= 0 or x > cap:
            return None
        w = x * g
        x = w * r_out // (a + w)
        out.append(x)
    return out


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
