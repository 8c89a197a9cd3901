"""Cycles with V3 hops: found, sized by the bounded integer search on the exact quote,
and exact."""

from __future__ import annotations

import math
import random

from tests.paths._paths_helpers import USDC, WETH, addr, evaluate, tok, v2
from arbbot import pools as pool_models
from arbbot.contracts.gas import GAS_BASE, GAS_PER_HOP
from arbbot.paths import PathEngine
from arbbot.math.tick_math import get_tick_at_sqrt_ratio
from arbbot.types import V3PoolState


def v3pool(i: int, t0: str, t1: str, price: float, positions: list[tuple[int, int, int]],
           fee: int = 3000, spacing: int = 60) -> V3PoolState:
    """``price`` is token1 per token0 in base units; positions ``(lower, upper, L)``."""
    sqrt_p = int(math.sqrt(price) * 2**96)
    tick = get_tick_at_sqrt_ratio(sqrt_p)
    net: dict[int, int] = {}
    liquidity = 0
    for lo, hi, liq in positions:
        net[lo] = net.get(lo, 0) + liq
        net[hi] = net.get(hi, 0) - liq
        if lo <= tick < hi:
            liquidity += liq
    return V3PoolState(address=addr(i), token0=t0, token1=t1, fee_pips=fee, tick_spacing=spacing,
                       sqrt_price_x96=sqrt_p, tick=tick, liquidity=liquidity,
                       ticks=tuple(sorted(net.items())))


def _positions(rng: random.Random, tick: int, spacing: int, n: int, liq: int) -> list[tuple[int, int, int]]:
    out = [(-887220, 887220, liq)]
    for _ in range(n):
        lo = (tick // spacing - rng.randint(1, 40)) * spacing
        hi = (tick // spacing + rng.randint(1, 40)) * spacing
        out.append((lo, hi, int(liq * rng.uniform(0.2, 3))))
    return out


def _profit(o_pools, states, start, x):  # type: ignore[no-untyped-def]
    t = start
    try:
        for p in o_pools:
            s = states[p]
            x2 = pool_models.amount_out(s, t, x)
            t = s.token1 if t == s.token0 else s.token0
            x = x2
    except Exception:
        return None
    return x


def test_mixed_two_hop_v2_v3_found_and_near_optimal() -> None:
    # WETH is token1 here (address order does not matter to the engine).
    rng = random.Random(3)
    for trial in range(6):
        price = 2000e6 / 1e18  # USDC units per wei
        tick = get_tick_at_sqrt_ratio(int(math.sqrt(price) * 2**96))
        pos = _positions(rng, tick, 60, 6, 10**15)
        pool3 = v3pool(1, WETH, USDC, price, pos)
        skew = rng.uniform(1.01, 1.05)
        pool2 = v2(2, WETH, USDC, 10**21, int(2000e6 * 1000 * skew))
        e = PathEngine(base_tokens=[USDC], weth=WETH, max_hops=2)
        e.upsert([pool3, pool2])
        opps = evaluate(e, gas_price_wei=0)
        assert opps, trial
        o = opps[0]
        assert o.hop_kinds in (("v3", "v2"), ("v2", "v3"))
        states = e.states
        assert _profit(o.pools, states, WETH, o.amount_in) == o.amount_out
        assert e.hop_amounts(o)[-1] == o.amount_out
        # a scan of a grid around the answer does not beat it by more than a few wei
        best = o.profit
        for f in [0.5, 0.8, 0.9, 0.99, 0.999, 1.001, 1.01, 1.1, 1.25, 2.0]:
            x = int(o.amount_in * f)
            out = _profit(o.pools, states, WETH, x)
            if out is not None:
                best = max(best, out - x)
        assert o.profit >= best - 2


def test_triangle_with_v3_crossing_ticks_is_exact() -> None:
    rng = random.Random(11)
    x = tok(0x61)
    found = 0
    for trial in range(8):
        p_wu = 2000e6 / 1e18
        t = get_tick_at_sqrt_ratio(int(math.sqrt(p_wu) * 2**96))
        a = v3pool(1, WETH, USDC, p_wu * rng.uniform(0.97, 1.03), _positions(rng, t, 10, 8, 3 * 10**14), fee=500, spacing=10)
        b = v2(2, USDC, x, 10**12, 10**24)  # 1 X = 1 USDC, X has 18 decimals
        p_xw = 1e18 / 2000 / 1e18 * rng.uniform(0.97, 1.03)  # WETH per X (base units)
        tx = get_tick_at_sqrt_ratio(int(math.sqrt(p_xw) * 2**96)) if x < WETH else 0
        c = v3pool(3, x, WETH, p_xw, _positions(rng, tx, 60, 5, 10**20))
        e = PathEngine(base_tokens=[USDC], weth=WETH, max_hops=3)
        e.upsert([a, b, c])
        assert e.cycle_counts()[3] == 2
        for o in evaluate(e, gas_price_wei=10**8):
            found += 1
            assert _profit(o.pools, e.states, WETH, o.amount_in) == o.amount_out
            assert o.net_profit > 0 and o.gas_estimate == GAS_BASE + GAS_PER_HOP["v2"] + 2 * GAS_PER_HOP["v3"]
    assert found >= 2


def test_v3_zero_liquidity_hop_never_profitable() -> None:
    price = 2000e6 / 1e18
    empty = v3pool(1, WETH, USDC, price * 1.5, [])  # no positions at all
    assert empty.liquidity == 0
    e = PathEngine(base_tokens=[USDC], weth=WETH, max_hops=2)
    e.upsert([empty, v2(2, WETH, USDC, 10**21, int(2000e6 * 1000))])
    assert evaluate(e) == []


def test_gas_model_defaults_are_the_executors_constants() -> None:
    """One source of truth: the screen prices gas exactly as the executor estimates it."""
    from arbbot.execution.executor import gas_estimate
    from arbbot.paths import GasModel

    for kinds in (["v2", "v2"], ["v2", "v3", "v2"], ["v3", "v3", "v3", "v2"]):
        assert GasModel().estimate(kinds) == gas_estimate(kinds)
