"""Compiled float kernels of the exact sizing (numba, no Python objects inside).

``window_keys`` is the float64 screen of ``sizing._size_v2_window``: the same operations,
in the same order, as the numpy formulation it replaced, so the same error analysis holds
(IEEE double, no fast-math, no reassociation). Compiling happens on first use (about a
second); ``warm()`` does it ahead of time, e.g. when a worker starts. Float only: every decision stays with the integer checks in ``sizing``.
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


@njit(nogil=True, cache=False, error_model="numpy")
def window_keys(lo, n, tab, j, key):  # type: ignore[no-untyped-def]
    """Levels ``lo .. lo+n-1`` of hop ``j`` -> ``key[i]``, an upper bound on the exact
    profit of level ``lo+i`` (``-inf``: the swap reverts; ``+inf``: a rounding too close to
    call, check it with integers).

    ``tab``: per hop ``(1e6*r_in, r_out, 1e6-fee, cap)`` as floats. Hops ``j`` down to 0 give
    the smallest input reaching the level (a ceil chain), hops after ``j`` the level's
    output (a floor chain). A rounding whose float value lies within its
    error of an integer may be off by one: below ``EXACT_BELOW`` the level is unsure,
    above it 1/value joins the level's error bound.

    Hop by hop over all levels, without branches, so the compiler vectorises the level
    loop (about 2.5x faster than level by level). A level flagged bad keeps computing on
    whatever values it has (inf/NaN, never trapped: ``error_model="numpy"``); its key is
    ``-inf`` whatever they are.
    """
    v = np.empty(n)
    out = np.empty(n)
    flips = np.zeros(n)
    bad = np.zeros(n)
    unsure = np.zeros(n)
    for i in range(n):
        v[i] = float(lo + i)
        out[i] = v[i]
    for h in range(j, -1, -1):
        a = tab[h, 0]
        r_out = tab[h, 1]
        g = tab[h, 2]
        cap = tab[h, 3]
        steep = r_out * 0.0625  # past 1/16 of the reserve the inverse amplifies float error
        for i in range(n):
            vi = v[i]
            exact = vi * a / ((r_out - vi) * g)
            vn = np.ceil(exact)
            near = (vn - exact) < REL_ERR * exact + 1e-12
            fine = exact >= EXACT_BELOW
            flips[i] += (1.0 / exact) if (near and fine) else 0.0
            b = 1.0 if (vi >= r_out or vn > cap) else 0.0
            u = 1.0 if (vi > steep or (near and not fine)) else 0.0
            bad[i] = max(bad[i], b)
            unsure[i] = max(unsure[i], u)
            v[i] = vn
    for h in range(j + 1, tab.shape[0]):
        a = tab[h, 0]
        r_out = tab[h, 1]
        g = tab[h, 2]
        cap = tab[h, 3]
        for i in range(n):
            oi = out[i]
            w = oi * g
            exact = w * r_out / (a + w)
            on = np.floor(exact)
            near = (exact - on) < REL_ERR * exact + 1e-12
            fine = exact >= EXACT_BELOW
            flips[i] += (1.0 / exact) if (near and fine) else 0.0
            b = 1.0 if (oi > cap or on <= 0.0) else 0.0
            u = 1.0 if (near and not fine) else 0.0
            bad[i] = max(bad[i], b)
            unsure[i] = max(unsure[i], u)
            out[i] = on
    for i in range(n):
        k = out[i] - v[i] + (out[i] + v[i]) * (REL_ERR + 4.0 * flips[i]) + 16.0
        k = math.inf if unsure[i] > 0.0 else k
        key[i] = -math.inf if bad[i] > 0.0 else k


@njit(nogil=True, cache=False)
def window_scan(lo, n, tab, j, best, idx, keys):  # type: ignore[no-untyped-def]
    """``window_keys`` of levels ``lo .. lo+n-1``, then the levels whose key exceeds
    ``best``, best key first: their offsets from ``lo`` in ``idx[:m]`` and keys in
    ``keys[:m]`` (both at least ``n`` long); returns ``m``."""
    key = np.empty(n)
    window_keys(lo, n, tab, j, key)
    sel = np.flatnonzero(key > best)
    order = np.argsort(-key[sel], kind="mergesort")
    m = order.size
    for t in range(m):
        i = sel[order[t]]
        idx[t] = i
        keys[t] = key[i]
    return m


@njit(nogil=True, cache=False)
def window_setup(tab):  # type: ignore[no-untyped-def]
    """The window's float model of a cycle ``tab`` (rows as in ``window_keys``):
    ``(ok, j, p1, q1, p2, q2, y_max, y0)``. Each hop is ``x -> p*x/(1 + q*x)`` with
    ``p = g*r_out/a``, ``q = g/a``; ``j`` is the coarsest intermediate hop at the continuous
    optimum, ``(p1, q1)`` maps the input to its level and ``(p2, q2)`` the level to the
    output, ``y_max`` bounds the inverse's domain and ``y0`` is the optimum's level
    (floored, at least 1). ``ok`` is False where the model is unusable."""
    k = tab.shape[0]
    big_p = 1.0
    big_q = 0.0
    for h in range(k):
        p = tab[h, 2] * tab[h, 1] / tab[h, 0]
        q = tab[h, 2] / tab[h, 0]
        big_q += big_p * q
        big_p *= p
    if not (big_p > 1.0 and big_q > 0.0 and math.isfinite(big_p) and math.isfinite(big_q)):
        return False, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    m = (math.sqrt(big_p) - 1.0) / big_q
    j = 0
    y_j = math.inf
    for h in range(k - 1):
        m = tab[h, 2] * tab[h, 1] / tab[h, 0] * m / (1.0 + tab[h, 2] / tab[h, 0] * m)
        if m < y_j:
            j = h
            y_j = m
    p1 = 1.0
    q1 = 0.0
    for h in range(j + 1):
        q1 += p1 * (tab[h, 2] / tab[h, 0])
        p1 *= tab[h, 2] * tab[h, 1] / tab[h, 0]
    p2 = 1.0
    q2 = 0.0
    for h in range(j + 1, k):
        q2 += p2 * (tab[h, 2] / tab[h, 0])
        p2 *= tab[h, 2] * tab[h, 1] / tab[h, 0]
    y_max = min(p1 / q1, tab[j, 1]) * (1.0 - 1e-12)
    if not (math.isfinite(y_j) and math.isfinite(y_max) and q1 > 0.0):
        return False, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    y0 = min(max(1.0, np.floor(y_j)), np.floor(y_max))
    return True, j, p1, q1, p2, q2, y_max, y0


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
    tab = np.array([[1e12, 1e6, 997_000.0, 1e30], [1e12, 1.1e6, 997_000.0, 1e30]], dtype=np.float64)
    idx = np.empty(2, dtype=np.int64)
    keys = np.empty(2, dtype=np.float64)
    window_scan(1, 2, tab, 0, 0.0, idx, keys)
    window_setup(tab)
    window_edge(10, 1, 0.0, 2.0, 0.1, 2.0, 0.1, 1e9, 1 << 17)  # compiles window_bound too
    _warm = True
