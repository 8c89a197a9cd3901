"""Compiled float kernels of the exact sizing (numba, no Python objects inside).

``window_keys`` is the float64 screen of ``sizing._size_v2_window`` level by level: the
same operations, in the same order, as the numpy formulation it replaced, so the same
error analysis holds (IEEE double, no fast-math, no reassociation). Compiling happens
on first use (about a second); ``warm()`` does it ahead of time, e.g. when a worker
starts. Float only: every decision stays with the integer checks in ``sizing``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: Relative error of the float chain of one level before its roundings: at most 16 IEEE
#: operations (2**-53 each) and a subtraction, amplified at most (16/15)**4 (the back
#: chain treats levels past 1/16 of a reserve as unsure): under 2**-48; this is 2x wider.
REL_ERR = 2.0**-47
#: A rounding (ceil/floor) done in float is the exact one unless the float value lies
#: within its error of an integer. Such levels are checked with integers when the value
#: is below this (a unit there is worth a lot); above it, the one unit it may miss is
#: worth about 1/value of the amounts, and is added to that level's error bound.
EXACT_BELOW = 2.0**40


@njit(nogil=True, cache=False)
def window_keys(lo, n, back, post, key):  # type: ignore[no-untyped-def]
    """Levels ``lo .. lo+n-1`` of the coarsest hop -> ``key[i]``, an upper bound on the
    exact profit of level ``lo+i`` (``-inf``: the swap reverts; ``+inf``: a rounding too
    close to call, check it with integers).

    ``back`` rows ``(1e6*r_in, r_out, 1e6-fee, cap)`` from that hop down to the first
    (smallest input reaching the level: a ceil chain), ``post`` rows for the hops after it
    (the level's output: a floor chain). A rounding whose float value lies within its
    error of an integer may be off by one: below ``EXACT_BELOW`` the level is unsure,
    above it 1/value joins the level's error bound.
    """
    for i in range(n):
        y = float(lo + i)
        bad = False
        unsure = False
        flips = 0.0
        v = y
        for h in range(back.shape[0]):
            a = back[h, 0]
            r_out = back[h, 1]
            g = back[h, 2]
            if v >= r_out:
                bad = True
                break
            if v > r_out / 16.0:
                unsure = True  # steep inverse: float error amplified
            exact = v * a / ((r_out - v) * g)
            v = np.ceil(exact)
            if (v - exact) < REL_ERR * exact + 1e-12:
                if exact >= EXACT_BELOW:
                    flips += 1.0 / exact
                else:
                    unsure = True
            if v > back[h, 3]:
                bad = True
                break
        out = y
        if not bad:
            for h in range(post.shape[0]):
                a = post[h, 0]
                r_out = post[h, 1]
                g = post[h, 2]
                if out > post[h, 3]:
                    bad = True
                    break
                w = out * g
                exact = w * r_out / (a + w)
                out = np.floor(exact)
                if (exact - out) < REL_ERR * exact + 1e-12:
                    if exact >= EXACT_BELOW:
                        flips += 1.0 / exact
                    else:
                        unsure = True
                if out <= 0.0:
                    bad = True
                    break
        if bad:
            key[i] = -math.inf
        elif unsure:
            key[i] = math.inf
        else:
            key[i] = out - v + (out + v) * (REL_ERR + 4.0 * flips) + 16.0


@njit(nogil=True, cache=False)
def window_bound(y, p1, q1, p2, q2, y_max):  # type: ignore[no-untyped-def]
    """The continuous profit at level ``y`` (>= the integer one), rounded up; ``-inf``
    outside ``1 <= y < y_max``. ``(p1, q1)``: input -> level, ``(p2, q2)``: level -> output."""
    if y >= y_max or y < 1.0:
        return -math.inf
    d = p2 * y / (1.0 + q2 * y)
    b = y / (p1 - q1 * y)
    return d - b + 2.0**-40 * (d + b) + 16.0


@njit(nogil=True, cache=False)
def window_edge(center, direction, best, p1, q1, p2, q2, y_max, max_steps):  # type: ignore[no-untyped-def]
    """Last level from ``center`` in ``direction`` whose bound exceeds ``best`` (the bound
    is concave, so those levels form one interval): gallop, then bisect."""
    y = center
    step = 1
    while step <= max_steps and y + direction * step >= 1 and window_bound(
        float(y + direction * step), p1, q1, p2, q2, y_max
    ) > best:
        y += direction * step
        step *= 2
    while step > 1:
        step //= 2
        if y + direction * step >= 1 and window_bound(float(y + direction * step), p1, q1, p2, q2, y_max) > best:
            y += direction * step
    return y


_warm = False


def warm() -> None:
    """Compile the kernels now (a second or so) instead of on the first sizing."""
    global _warm
    if _warm:
        return
    rows = np.array([[1e6 * 1e6, 1e6, 997_000.0, 1e30]], dtype=np.float64)
    key = np.empty(2, dtype=np.float64)
    window_keys(1, 2, rows, rows, key)
    window_edge(10, 1, 0.0, 2.0, 0.1, 2.0, 0.1, 1e9, 1 << 17)
    window_edge(10, -1, 0.0, 2.0, 0.1, 2.0, 0.1, 1e9, 1 << 17)
    _warm = True
