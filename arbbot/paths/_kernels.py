"""Compiled float kernels of the exact sizing (numba, no Python objects inside).

``window_keys`` is the float64 screen of ``v2_exact._size_v2_window``: for each output level
of one hop, the exact integer chain (ceil back to the input, floor forward to the output)
done in floats, with bounds either side on the exact profit. Error model (IEEE double,
no fast-math, no reassociation): a hop whose input is an exact integer computes its
value within ``HOP_ERR`` (relative); its ceil/floor is then the exact one unless the
value lies within that error of an integer (either side), and the rounded value is the
exact integer again. Only near a rounding can a level's chain drift from the integers:
by a unit of that token at most, which is a relative error carried down the chain.
Compiling takes about ten seconds on the 2-core machine; ``warm()`` does it ahead of time,
when a path worker starts, and numba keeps the machine code on disk (see ``_cache_location``),
so a later start loads it in well under a second. Float only: every decision stays with the integer checks in
``v2_exact``.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
from llvmlite import ir  # type: ignore[import-untyped]
from numba import config as numba_config
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


def _writable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=directory).close()
        return True
    except OSError:
        return False


def _cache_location() -> bool:
    """Where numba keeps the compiled kernels, and whether it can: ``NUMBA_CACHE_DIR`` if
    set, else ``__pycache__`` beside this file, else ``<tmp>/arbbot-numba`` (a read-only
    image whose /tmp is a volume). numba refuses to decorate a cached function with nowhere
    to write, so with none writable the kernels are compiled at each start instead. The
    cache is keyed on this file's hash and the CPU, so an edit or another machine recompiles."""
    chosen = getattr(numba_config, "CACHE_DIR", "")  # set from the environment at import
    if chosen:
        return _writable(Path(chosen))
    if _writable(Path(__file__).resolve().parent / "__pycache__"):
        return True
    fallback = Path(tempfile.gettempdir()) / "arbbot-numba"
    if _writable(fallback):
        setattr(numba_config, "CACHE_DIR", os.fspath(fallback))  # read when a kernel is decorated
        return True
    return False


_CACHE = _cache_location()

#: Relative error of one hop's float value when its input is exact: at most 6 roundings
#: (the float reserves, then the operations; 2**-53 each), the reserve's amplified at
#: most 16/15 in ``r_out - v`` (the back chain treats levels past 1/16 of a reserve as
#: unsure): under 2**-50; this is 2x wider.
HOP_ERR = 2.0**-49
#: How much a back hop can grow its input's relative error (the inverse map's elasticity
#: ``r_out / (r_out - v)`` below 1/16 of the reserve); a forward hop's is at most 1.
BACK_AMP = 16.0 / 15.0
#: A rounding near an integer may be off by a unit: where the value is below this (a unit
#: there is worth a lot) the level is unsure and checked with integers; above it the unit
#: (1/value, relative) joins the error carried down the chain.
EXACT_BELOW = 2.0**40


@njit(nogil=True, cache=_CACHE, error_model="numpy")
def _inv_bound(first):  # type: ignore[no-untyped-def]
    """An upper bound on ``1/exact`` for every level of a chunk whose hop value ``exact``
    is fine (``>= EXACT_BELOW``), from the chunk's first level's value ``first``: a hop's
    value never decreases with the level (every step of both chains is monotone, in
    floats too, as IEEE rounding is), so no fine level's value is below ``first``, nor
    below ``EXACT_BELOW``. One division per hop instead of one per level."""
    cap = 1.0 / EXACT_BELOW
    return min(cap, 1.0 / first) if first > 0.0 else cap


@njit(nogil=True, cache=_CACHE, error_model="numpy")
def window_keys(lo, n, tab, j, key, low, work):  # type: ignore[no-untyped-def]
    """Levels ``lo .. lo+n-1`` of hop ``j`` -> ``key[i]``, an upper bound on the exact
    profit of level ``lo+i`` (``-inf``: the swap reverts; ``+inf``: a rounding too close to
    call, check it with integers), and ``low[i]``, a lower bound on it (``-inf`` for both
    kinds of level).

    ``tab``: per hop ``(1e6*r_in, r_out, 1e6-fee, cap)`` as floats; ``work``: scratch,
    5 rows of at least ``n``. Hops ``j`` down to 0 give the smallest input reaching the
    level (a ceil chain), hops after ``j`` the level's output (a floor chain). Each chain
    starts exact (the level) and carries a relative error bound: ``HOP_ERR`` per hop
    (grown by ``BACK_AMP`` on the way back) while its values are exact integers, reset to
    0 by every rounding that is not near an integer, plus a unit (``1/value``) for one
    that is. A level whose roundings were all clear has the exact profit (both amounts are
    integers below 2**53), so its bounds are tight; that is what keeps near-ties apart.

    Hop by hop over all levels, without branches, so the compiler vectorises the level
    loop (about 2.5x faster than level by level). A level flagged bad keeps computing on
    whatever values it has (inf/NaN, never trapped: ``error_model="numpy"``); its key is
    ``-inf`` whatever they are.
    """
    v = work[0]
    out = work[1]
    rel_v = work[2]
    rel_o = work[3]
    flag = work[4]  # 0 clear, 1 unsure, 2 bad (reverts)
    for i in range(n):
        v[i] = float(lo + i)
        out[i] = v[i]
        rel_v[i] = 0.0
        rel_o[i] = 0.0
        flag[i] = 0.0
    for h in range(j, -1, -1):
        a = tab[h, 0]
        r_out = tab[h, 1]
        g = tab[h, 2]
        cap = tab[h, 3]
        steep = r_out * 0.0625  # past 1/16 of the reserve the inverse amplifies float error
        inv = _inv_bound(v[0] * a / ((r_out - v[0]) * g))
        for i in range(n):
            vi = v[i]
            exact = vi * a / ((r_out - vi) * g)
            vn = np.ceil(exact)
            up = vn - exact
            t = rel_v[i] * BACK_AMP + HOP_ERR
            near = min(up, 1.0 - up) < t * exact + 1e-12
            fine = exact >= EXACT_BELOW
            rel_v[i] = (t + inv) if near else 0.0
            b = 2.0 if (vi >= r_out or vn > cap) else 0.0
            u = 1.0 if (vi > steep or (near and not fine)) else 0.0
            flag[i] = max(flag[i], max(b, u))
            v[i] = vn
    for h in range(j + 1, tab.shape[0]):
        a = tab[h, 0]
        r_out = tab[h, 1]
        g = tab[h, 2]
        cap = tab[h, 3]
        inv = _inv_bound(out[0] * g * r_out / (a + out[0] * g))
        for i in range(n):
            oi = out[i]
            w = oi * g
            exact = w * r_out / (a + w)
            on = np.floor(exact)
            down = exact - on
            t = rel_o[i] + HOP_ERR
            near = min(down, 1.0 - down) < t * exact + 1e-12
            fine = exact >= EXACT_BELOW
            rel_o[i] = (t + inv) if near else 0.0
            b = 2.0 if (oi > cap or on <= 0.0) else 0.0
            u = 1.0 if (near and not fine) else 0.0
            flag[i] = max(flag[i], max(b, u))
            out[i] = on
    for i in range(n):
        p = out[i] - v[i]
        # first-order error doubled, the subtraction's rounding, half a wei: a level
        # whose profit is exact keeps key > profit (it is among the candidates above it)
        err = 2.0 * (out[i] * rel_o[i] + v[i] * rel_v[i]) + (out[i] + v[i]) * 2.0**-52 + 0.5
        key[i] = -math.inf if flag[i] == 2.0 else (math.inf if flag[i] == 1.0 else p + err)
        low[i] = -math.inf if flag[i] > 0.0 else p - err


@njit(nogil=True, cache=_CACHE)
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


@njit(nogil=True, cache=_CACHE)
def window_bound(y, p1, q1, p2, q2, y_max):  # type: ignore[no-untyped-def]
    """The continuous profit at level ``y`` (>= the integer one), rounded up; ``-inf``
    outside ``1 <= y < y_max``. ``(p1, q1)``: input -> level, ``(p2, q2)``: level -> output."""
    if y >= y_max or y < 1.0:
        return -math.inf
    den = p1 - q1 * y
    d = p2 * y / (1.0 + q2 * y)
    b = y / den
    # Float error: the composed maps and these steps take about 50 roundings (2**-47);
    # 2**-44 is 8x that. The inverse's denominator cancels towards y_max, which grows
    # its relative error by (p1 + q1*y) / den.
    return d - b + 2.0**-44 * (d + b * (p1 + q1 * y) / den) + 1.0


@njit(nogil=True, cache=_CACHE)
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


@njit(nogil=True, cache=_CACHE)
def _window_chunk(lo, hi, tab, j, lb, key, low, work, lv, ky, m):  # type: ignore[no-untyped-def]
    """Keys of levels ``lo..hi``; raises the lower bound ``lb`` to the best level's lower
    bound, then appends the levels whose key exceeds it to ``lv``/``ky`` (from ``m``;
    grown when full). Returns ``(lb, lv, ky, m)``."""
    n = hi - lo + 1
    window_keys(lo, n, tab, j, key, low, work)
    for i in range(n):
        lb = max(lb, low[i])
    extra = 0
    for i in range(n):
        extra += key[i] > lb
    if m + extra > lv.size:
        size = max(2 * lv.size, m + extra)
        lv2 = np.empty(size, dtype=np.int64)
        ky2 = np.empty(size)
        lv2[:m] = lv[:m]
        ky2[:m] = ky[:m]
        lv, ky = lv2, ky2
    for i in range(n):
        if key[i] > lb:
            lv[m] = lo + i
            ky[m] = key[i]
            m += 1
    return lb, lv, ky, m


@njit(nogil=True, cache=_CACHE)
def _window_prune(lv, ky, m, lb):  # type: ignore[no-untyped-def]
    """Drops the candidates whose key no longer exceeds ``lb``; returns how many remain."""
    n = 0
    for i in range(m):
        if ky[i] > lb:
            lv[n] = lv[i]
            ky[n] = ky[i]
            n += 1
    return n


@njit(nogil=True, cache=_CACHE)
def window_run(tab, best, first, chunk, max_levels, max_cands):  # type: ignore[no-untyped-def]
    """The level window of a cycle ``tab`` (rows as in ``window_keys``), screened in one
    call: ``(status, j, levels, keys)``.

    ``best`` is a float no larger than a known exact profit. Levels of the coarsest hop
    ``j`` are keyed from the model's optimum outward (``first`` levels, then ``chunk``
    more on a side at a time) while the continuous bound there exceeds ``lb``, the
    largest of ``best`` and the lower bounds seen (the best level is at least that good,
    so the window only shrinks). ``levels``/``keys``: every scanned level whose key exceeds
    the final ``lb``, best key first; the exact optimum is among them or is ``best``'s.
    ``status``: 1 the whole window was scanned; 0 it was given up, the candidates are
    then only those scanned, because the window is wider than ``max_levels`` (more than
    that scanned, or still wider after ``4 * chunk``) or more than ``max_cands`` levels
    could beat ``lb`` (near-ties the float bounds cannot tell apart); -1 the float model
    is unusable or its bound at the optimum does not exceed ``best`` (nothing scanned).
    """
    ok, j, p1, q1, p2, q2, y_max, y0 = window_setup(tab)
    if not ok or y0 > 2.0**50 or not window_bound(y0, p1, q1, p2, q2, y_max) > best:
        return -1, j, np.empty(0, dtype=np.int64), np.empty(0)
    center = int(y0)
    key = np.empty(max(first, chunk) + 1)
    low = np.empty(key.size)
    work = np.empty((5, key.size))
    lv = np.empty(64, dtype=np.int64)
    ky = np.empty(64)
    half = first // 2
    done_lo = max(1, center - half)
    done_hi = center + half
    lb, lv, ky, m = _window_chunk(done_lo, done_hi, tab, j, best, key, low, work, lv, ky, 0)
    scanned = done_hi - done_lo + 1
    status = 1
    while True:
        lo = window_edge(center, -1, lb, p1, q1, p2, q2, y_max, max_levels)
        hi = window_edge(center, 1, lb, p1, q1, p2, q2, y_max, max_levels)
        if lo >= done_lo and hi <= done_hi:
            break
        if scanned > max_levels or (hi - lo > max_levels and scanned >= 4 * chunk):
            status = 0  # too wide, even after a few chunks have raised ``lb``
            break
        if m > max_cands:
            m = _window_prune(lv, ky, m, lb)
            if m > max_cands:
                status = 0  # too many alike to check them all
                break
        if done_hi < hi:
            nxt = min(hi, done_hi + chunk)
            lb, lv, ky, m = _window_chunk(done_hi + 1, nxt, tab, j, lb, key, low, work, lv, ky, m)
            scanned += nxt - done_hi
            done_hi = nxt
        if done_lo > lo:
            nxt = max(lo, done_lo - chunk)
            lb, lv, ky, m = _window_chunk(nxt, done_lo - 1, tab, j, lb, key, low, work, lv, ky, m)
            scanned += done_lo - nxt
            done_lo = nxt
    sel = np.flatnonzero(ky[:m] > lb)
    if sel.size > max_cands:
        status = 0
    order = np.argsort(-ky[sel], kind="mergesort")
    return status, j, lv[sel][order], ky[sel][order]


@intrinsic
def _prefetch_row(typingctx, arr, i):  # type: ignore[no-untyped-def]
    """Asks the CPU to start loading row ``i`` of the 2-D array ``arr`` into cache
    (``llvm.prefetch``: read, high locality); no effect on results."""
    sig = types.void(arr, i)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        aryty, ity = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        idx = context.cast(builder, args[1], ity, types.intp)
        zero = context.get_constant(types.intp, 0)
        ptr = cgutils.get_item_pointer2(
            context, builder, ary.data, cgutils.unpack_tuple(builder, ary.shape),
            cgutils.unpack_tuple(builder, ary.strides), aryty.layout, [idx, zero], wraparound=False,
        )
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0"
        )
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


#: ``screen_rows`` asks for a row's edges this many rows ahead: the cycles through a
#: changed pool are scattered over the whole index (tens of MB), so nearly every row is a
#: cache miss, and waiting for them one by one took twice as long (about 3.6 vs 1.7 ms
#: for 130k rows of a 3.6M-row index).
PREFETCH_AHEAD = 32


@njit(nogil=True, cache=_CACHE, error_model="numpy")
def screen_rows(edges, rows, p, q):  # type: ignore[no-untyped-def]
    """``screen.screen_profitable`` on the cycles ``edges[rows]`` in one pass, without
    gathering their edges first: ``(idx, x_opt, gross_profit)``, ``idx`` into ``rows``.
    The same float operations in the same order, so the same results, bit for bit."""
    n = rows.size
    k = edges.shape[1]
    size = 256
    idx = np.empty(size, dtype=np.int64)
    xs = np.empty(size)
    ps = np.empty(size)
    m = 0
    for t in range(n):
        if t + PREFETCH_AHEAD < n:
            _prefetch_row(edges, rows[t + PREFETCH_AHEAD])
        r = rows[t]
        bp = p[edges[r, 0]]
        for h in range(1, k):
            bp = bp * p[edges[r, h]]
        if not bp > 1.0:
            continue
        e = edges[r, 0]
        bp = p[e]
        bq = q[e]
        for h in range(1, k):
            e = edges[r, h]
            bq = bq + bp * q[e]
            bp = bp * p[e]
        s = math.sqrt(bp) - 1.0
        x = s / bq
        pr = s * x
        if not (s > 0.0 and math.isfinite(pr) and math.isfinite(x) and bq > 0.0):
            continue
        if m == size:
            size *= 2
            idx2 = np.empty(size, dtype=np.int64)
            xs2 = np.empty(size)
            ps2 = np.empty(size)
            idx2[:m] = idx
            xs2[:m] = xs
            ps2[:m] = ps
            idx, xs, ps = idx2, xs2, ps2
        idx[m] = t
        xs[m] = x
        ps[m] = pr
        m += 1
    return idx[:m], xs[:m], ps[:m]


_warm = False


def warm() -> None:
    """Compile the kernels now (a second or so) instead of on the first sizing."""
    global _warm
    if _warm:
        return
    tab = np.array([[1e12, 1e6, 997_000.0, 1e30], [1e12, 1.1e6, 997_000.0, 1e30]], dtype=np.float64)
    window_run(tab, 0.0, 64, 1024, 1 << 17, 256)  # compiles every kernel it calls
    edges = np.zeros((1, 2), dtype=np.int32)
    screen_rows(edges, np.zeros(1, dtype=np.int64), np.ones(1), np.ones(1))
    _warm = True
