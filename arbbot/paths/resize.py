"""One cycle re-sized on the newest pool states, for the execute stage to call just before
signing (issue 14, point 4).

Owns ``resize``: the cycle's pools in hop order and its tokens in, the exact integer
optimum out (``Sized``), or ``None`` when no input pays. The sizing is the path stage's
own, step for step: the screen's closed-form warm start computed with the same float
operations in the same order as ``screen_profitable`` (so the same ``x_float``, bit for
bit), then ``exact_search.size_cycle`` (the engine's ``_verify`` calls the same function),
then the amount out re-quoted through ``arbbot.pools.amount_out`` like the engine does. On
the same states it therefore returns what ``PathEngine.evaluate`` finds for that cycle
(gas and the profit threshold aside: the profit here is gross, ``amount_out - amount_in``).

A cap (``max_amount_in``, the risk limit on the input) is honoured: when the optimum lies
above it, the best input at or under it is searched with the same exact search, bounded
(``size_search_exact(max_input=cap)``), and for V2-only cycles also by the closed form's
level scan run downward from the cap with its exact stopping bound (certain unless it runs
out of levels). The profit rises up to the optimum, so the answer sits just under the cap.

Pure: no I/O; the states come from the caller (the hot state or the chain).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from arbbot import pools as pool_models
from arbbot.errors import ArbbotError
from arbbot.paths.exact_search import size_cycle, size_search_exact
from arbbot.paths.screen import compose, edge_coefficients
from arbbot.paths.v2_closed import Hop, _back, _fwd, _fwd_levels, _v2_table
from arbbot.types import PoolState, V2PoolState, V3PoolState


class BadCycle(ArbbotError, ValueError):
    """The states and tokens given do not make a cycle (the message names the bad entry)."""


@dataclass(frozen=True, slots=True)
class Sized:
    """A cycle's input and the exact output the pools pay for it, in ``tokens[0]`` base
    units; ``profit`` is gross (no gas)."""

    amount_in: int
    amount_out: int

    @property
    def profit(self) -> int:
        return self.amount_out - self.amount_in


def resize(
    states: Sequence[PoolState],
    tokens: Sequence[str],
    *,
    max_amount_in: int | None = None,
) -> Sized | None:
    """The best input of the cycle ``tokens[0] -states[0]-> tokens[1] ... -> tokens[0]`` on
    ``states``, at or under ``max_amount_in`` if given; ``None`` when no input pays.

    ``tokens`` is either one token per hop or, like ``Opportunity.tokens``, closed (one more,
    the last equal to the first); addresses match in any case. Raises ``BadCycle`` (an
    ``ArbbotError``) for input that is not a cycle: a hop whose pool does not hold its
    token, a pool twice, an unknown state kind, a cap below 1. A pool that cannot trade
    (empty, absurd) is no error: the cycle does not pay.
    """
    hops = cycle_hops(states, tokens)
    if max_amount_in is not None and (isinstance(max_amount_in, bool) or not isinstance(max_amount_in, int) or max_amount_in < 1):
        raise BadCycle(f"max_amount_in must be an int >= 1 or None, got {max_amount_in!r}")
    coeffs = [_edge(state, token_in) for state, token_in in hops]
    x_float = _warm_start(coeffs)
    if x_float is None:
        return None  # the screen would not send this cycle to the exact sizing either
    amount_in, amount_out = size_cycle(hops, x_float, coeffs)
    if amount_in <= 0 or amount_out <= amount_in:
        return None
    if max_amount_in is not None and amount_in > max_amount_in:
        amount_in, amount_out = _capped(hops, coeffs, max_amount_in)
        if amount_in <= 0 or amount_out <= amount_in:
            return None
    # As the engine does: the output is the exact chain of arbbot.pools.amount_out.
    x = amount_in
    try:
        for state, token_in in hops:
            x = pool_models.amount_out(state, token_in, x)
    except (ArbbotError, ArithmeticError, ValueError):
        return None  # a hop would revert at this input: it does not pay
    if x <= amount_in:
        return None
    return Sized(amount_in=amount_in, amount_out=x)


def cycle_hops(states: Sequence[PoolState], tokens: Sequence[str]) -> list[Hop]:
    """``(state, token_in)`` per hop, ``token_in`` spelled as the state spells it (the
    sizers compare addresses exactly); ``BadCycle`` names the first bad entry."""
    n = len(states)
    if n < 2:
        raise BadCycle(f"a cycle needs at least 2 pools, got {n}")
    toks = [str(t).lower() for t in tokens]
    if len(toks) == n + 1:
        if toks[-1] != toks[0]:
            raise BadCycle(f"tokens must end in the start token {tokens[0]}, not {tokens[-1]}")
        toks = toks[:-1]
    elif len(toks) != n:
        raise BadCycle(f"{n} pools need {n} or {n + 1} tokens, got {len(toks)}")
    hops: list[Hop] = []
    seen: set[str] = set()
    for i, state in enumerate(states):
        if not isinstance(state, (V2PoolState, V3PoolState)):
            raise BadCycle(f"hop {i}: not a pool state: {type(state).__name__}")
        address = state.address.lower()
        if address in seen:
            raise BadCycle(f"hop {i}: pool {state.address} appears twice in the cycle")
        seen.add(address)
        t0, t1 = state.token0.lower(), state.token1.lower()
        t_in, t_out = toks[i], toks[(i + 1) % n]
        if {t_in, t_out} != {t0, t1} or t0 == t1:
            raise BadCycle(f"hop {i}: pool {state.address} does not trade {tokens[i]} -> {tokens[(i + 1) % n]}")
        hops.append((state, state.token0 if t_in == t0 else state.token1))
    return hops


def warm() -> None:
    """Load what the first ``resize`` would otherwise load (the sizing's compiled kernels,
    about a second once per process; the V3 math): call it when a worker starts."""
    from arbbot.paths import _kernels
    from arbbot.pools import v3  # noqa: F401 - imported for its side effect: loaded

    _kernels.warm()


def _edge(state: PoolState, token_in: str) -> tuple[float, float]:
    """The hop's screen ``(p, q)``, as the engine keeps them per directed edge."""
    p01, q01, p10, q10 = edge_coefficients(state)
    return (p01, q01) if token_in == state.token0 else (p10, q10)


def _warm_start(coeffs: Sequence[tuple[float, float]]) -> float | None:
    """The screen's ``x_opt`` for this cycle, or ``None`` where the screen drops it: the
    operations and the conditions of ``screen.screen_profitable`` (and the compiled
    ``_kernels.screen_rows``), in their order, so the float is the same to the bit."""
    big_p = 1.0
    for p, _q in coeffs:
        big_p = big_p * p
    if not big_p > 1.0:
        return None
    big_p, big_q = compose(coeffs)
    s = math.sqrt(big_p) - 1.0
    x = s / big_q if big_q != 0.0 else math.inf
    profit = s * x
    if not (s > 0.0 and math.isfinite(profit) and math.isfinite(x) and big_q > 0.0):
        return None
    return x


def _capped(hops: Sequence[Hop], coeffs: Sequence[tuple[float, float]], cap: int) -> tuple[int, int]:
    """The best input at or under ``cap`` when the optimum is above it: the exact search,
    bounded by the cap; for V2-only cycles also the level scan below the cap
    (``_v2_capped``), and the better of the two."""
    best_in, best_out = size_search_exact(hops, float(cap), coeffs, max_input=cap)
    tab = _v2_table(hops)
    if tab is not None:
        v_in, v_out = _v2_capped(tab, cap, best_out - best_in)
        if v_out - v_in > best_out - best_in:
            best_in, best_out = v_in, v_out
    return best_in, best_out


#: Most output levels ``_v2_capped`` scans below the cap.
_CAPPED_LEVELS = 512


def _v2_capped(tab: Sequence[tuple[int, int, int, int]], cap: int, best: int) -> tuple[int, int]:
    """``size_v2_closed``'s level scan, downward only, from the cap: an input's output
    depends on it only through the coarsest hop's output level ``y`` (at the cap), whose
    best input is the smallest one reaching it (``_back``), never above the cap for a
    level at or under the cap's. The cap is below the optimum, where the continuous bound
    rises with ``y``, so the scan stops at the first level whose exact bound cannot beat
    ``best`` (certain), or after ``_CAPPED_LEVELS`` levels (best found). ``(0, 0)`` if no
    level beats ``best``."""
    levels = _fwd_levels(tab, cap)
    if levels is None:
        return 0, 0
    j = min(range(len(levels)), key=lambda i: levels[i])
    a1, b1, c1 = 1, 1, 0  # hops 0..j: x -> a1*x / (b1 + c1*x), exact integers
    for a, r_out, g, _cap in tab[: j + 1]:
        c1 = a * c1 + a1 * g
        a1 *= g * r_out
        b1 *= a
    a2, b2, c2 = 1, 1, 0  # hops after j
    for a, r_out, g, _cap in tab[j + 1 :]:
        c2 = a * c2 + a2 * g
        a2 *= g * r_out
        b2 *= a
    best_v = 0
    for y in range(levels[j], max(0, levels[j] - _CAPPED_LEVELS), -1):
        den, dd = a1 - c1 * y, b2 + c2 * y
        # the continuous out(y) - in(y) cannot reach best + 1: nor can any lower level
        if den <= 0 or a2 * y * den - b1 * y * dd < (best + 1) * dd * den:
            break
        v = _back(tab, j, y)
        if not 1 <= v <= cap:
            continue
        out = _fwd(tab, v)
        if out - v > best:
            best, best_v = out - v, v
    if best_v == 0:
        return 0, 0
    return best_v, _fwd(tab, best_v)
