"""A synthetic DEX market for the path benchmark: many tokens, >= 10,000 V2/V3 pools.

Shape (roughly a mainnet long tail): a handful of majors (WETH, USDC, USDT, DAI, WBTC)
fully connected on several DEXes and fee tiers; every tail token trades against WETH on
1-3 DEXes, about half also against a stable, some against WBTC, plus tail-tail pools.
Reserves follow a hidden fair price per token with log-uniform depth and ~0.15% noise per
pool, so most cycles are unprofitable after fees and a few are not. Token decimals vary
(0, 6, 8, 9, 18, 24) so reserves span many magnitudes.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from arbbot.math.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO, get_tick_at_sqrt_ratio
from arbbot.types import PoolState, V2PoolState, V3PoolState

SPACING = {100: 1, 500: 10, 3000: 60, 10000: 200}
UINT112_MAX = 2**112 - 1


def _addr(prefix: int, i: int) -> str:
    return "0x" + f"{prefix:02x}" + f"{i:038x}"


WETH = _addr(0xEE, 0)
USDC = _addr(0xEE, 1)
USDT = _addr(0xEE, 2)
DAI = _addr(0xEE, 3)
WBTC = _addr(0xEE, 4)
BASES = [USDC, USDT, DAI]


def v3_state(address: str, t0: str, t1: str, fee: int, r0: float, r1: float, block: int = 0) -> V3PoolState:
    """A V3 pool whose full-range position gives virtual reserves ~(r0, r1)."""
    price = r1 / r0  # token1 per token0, base units
    sqrt_p = int(math.sqrt(price) * 2**96)
    sqrt_p = min(max(sqrt_p, MIN_SQRT_RATIO + 1), MAX_SQRT_RATIO - 1)
    liquidity = int(math.sqrt(r0 * r1))
    liquidity = min(max(liquidity, 1), 2**127)
    spacing = SPACING[fee]
    edge = 887272 // spacing * spacing
    return V3PoolState(
        address=address, token0=t0, token1=t1, fee_pips=fee, tick_spacing=spacing,
        sqrt_price_x96=sqrt_p, tick=get_tick_at_sqrt_ratio(sqrt_p), liquidity=liquidity,
        ticks=((-edge, liquidity), (edge, -liquidity)), block_number=block,
    )


def build_market(seed: int = 7, n_tail: int = 2600, n_tail_tail: int = 3300) -> list[PoolState]:
    rng = np.random.default_rng(seed)
    majors = [WETH, USDC, USDT, DAI, WBTC]
    decimals = {WETH: 18, USDC: 6, USDT: 6, DAI: 18, WBTC: 8}
    price_eth = {WETH: 1.0, USDC: 1 / 3000, USDT: 1 / 3000, DAI: 1 / 3000, WBTC: 20.0}
    tails = [_addr(0xA0, i) for i in range(n_tail)]
    for t in tails:
        decimals[t] = int(rng.choice([18, 18, 18, 18, 18, 6, 8, 9, 0, 24]))
        price_eth[t] = float(10 ** rng.uniform(-7, 0))
    # base units of the token per wei of WETH
    unit = {t: 10 ** decimals[t] / 1e18 / price_eth[t] for t in decimals}

    pools: list[PoolState] = []

    def add(t0: str, t1: str, kind: str, fee: int, depth_eth: float) -> None:
        if t0 > t1:
            t0, t1 = t1, t0
        wei = depth_eth * 1e18
        r0 = wei * unit[t0] * (1 + rng.normal(0, 0.0015))
        r1 = wei * unit[t1] * (1 + rng.normal(0, 0.0015))
        # Keep far below uint112: a clipped reserve would be a fake price (overflow-sized
        # reserves are a unit-test case, not market shape).
        top = max(r0, r1)
        if top > 2.0**100:
            r0, r1 = r0 * 2.0**100 / top, r1 * 2.0**100 / top
        r0, r1 = max(r0, 1.0), max(r1, 1.0)
        address = _addr(0xB0, len(pools))
        if kind == "v2":
            pools.append(V2PoolState(address=address, token0=t0, token1=t1,
                                     reserve0=min(int(r0), UINT112_MAX), reserve1=min(int(r1), UINT112_MAX),
                                     fee_pips=fee))
        else:
            pools.append(v3_state(address, t0, t1, fee, r0, r1))

    for i, a in enumerate(majors):
        for b in majors[i + 1:]:
            for kind, fee in (("v2", 3000), ("v2", 2500), ("v2", 3000), ("v3", 500), ("v3", 3000), ("v3", 100)):
                add(a, b, kind, fee, 10 ** rng.uniform(3, 4.5))
    for t in tails:
        for _ in range(int(rng.choice([1, 2, 2, 3]))):
            kind = "v3" if rng.random() < 0.3 else "v2"
            fee = int(rng.choice([500, 3000, 10000])) if kind == "v3" else int(rng.choice([3000, 3000, 2500]))
            add(WETH, t, kind, fee, 10 ** rng.uniform(0, 3))
        if rng.random() < 0.5:
            add(str(rng.choice(BASES)), t, "v2", 3000, 10 ** rng.uniform(0, 2.5))
        if rng.random() < 0.15:
            add(WBTC, t, "v2", 3000, 10 ** rng.uniform(0, 2))
    for _ in range(n_tail_tail):
        a, b = rng.choice(len(tails), 2, replace=False)
        add(tails[a], tails[b], "v2", 3000, 10 ** rng.uniform(0, 2))
    return pools


#: ``perturb``'s move of a V3 pool's sqrt price (std dev)
V3_SIGMA = 0.001


def perturb(state: PoolState, rng: np.random.Generator, block: int, lean: float = 1.0) -> PoolState:
    """The state after some swaps: reserves / price move by ~0.2%. ``lean`` multiplies the
    move's factor (a V2 pair's reserve0 and a V3 pool's sqrt price go up with it; 1: none)."""
    if isinstance(state, V2PoolState):
        f = (1 + rng.normal(0, 0.002)) * lean
        r0 = max(1, min(int(state.reserve0 * f), UINT112_MAX))
        r1 = max(1, min(int(state.reserve1 / f), UINT112_MAX))
        return replace(state, reserve0=r0, reserve1=r1, block_number=block)
    f = (1 + rng.normal(0, V3_SIGMA)) * lean
    sqrt_p = min(max(int(state.sqrt_price_x96 * f), MIN_SQRT_RATIO + 1), MAX_SQRT_RATIO - 1)
    return replace(state, sqrt_price_x96=sqrt_p, tick=get_tick_at_sqrt_ratio(sqrt_p), block_number=block)
