"""The pipeline benchmark's chain: the path benchmark's synthetic market (bench/paths/synth.py,
10,176 V2/V3 pools), each pool re-addressed as the CREATE2 child of a DEX the chain has
configured (so the execute stage's pool guard passes them, as it would a real chain's), and
the block feed: per block, a few hundred pools moved by swaps, as ``PoolDelta``s.

A pair with several pools of one kind (the majors trade on several DEXes) gets one DEX per
pool: the n-th V2 pool of a pair is the n-th V2 DEX's pair."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from arbbot.chain.create2 import GENUINE_INIT_CODE_HASH, pool_address
from arbbot.types import PoolDelta, PoolState, V2PoolState
from bench.paths.synth import UINT112_MAX, WETH, build_market, perturb
from bench.pipeline.onchain import Mirror

__all__ = ["Market", "WETH", "build"]


@dataclass(frozen=True)
class Market:
    pools: list[PoolState]
    dexes: list[dict[str, str]]  # name, kind, factory, init_code_hash: the chain's DEX rows


def _factory(kind: str, n: int) -> str:
    return "0x" + ("f2" if kind == "v2" else "f3") + f"{n:038x}"


def build(seed: int = 7) -> Market:
    seen: dict[tuple[str, str, str, int], int] = {}
    pools = []
    for p in build_market(seed=seed):
        key = (p.kind, p.token0, p.token1, p.fee_pips if p.kind == "v3" else 0)
        n = seen.get(key, 0)
        seen[key] = n + 1
        address = pool_address(p.kind, _factory(p.kind, n), GENUINE_INIT_CODE_HASH[p.kind], p.token0, p.token1,
                               p.fee_pips)
        pools.append(dataclasses.replace(p, address=address))
    n_dex = {kind: 1 + max(n for (k, *_), n in seen.items() if k == kind) for kind in ("v2", "v3")}
    dexes = [
        {"name": f"bench-{kind}-{i}", "kind": kind, "factory": _factory(kind, i),
         "init_code_hash": "0x" + GENUINE_INIT_CODE_HASH[kind].hex()}
        for kind in ("v2", "v3") for i in range(n_dex[kind])
    ]
    return Market(pools, dexes)


def move(state: PoolState, rng: np.random.Generator, block: int, sigma: float) -> PoolState:
    """The pool after a block of swaps: a V2 pair's price moves by ~``sigma`` (its constant
    product kept), a V3 pool's as ``synth.perturb`` moves it."""
    if isinstance(state, V2PoolState):
        f = 1 + rng.normal(0, sigma)
        return dataclasses.replace(
            state, reserve0=max(1, min(int(state.reserve0 * f), UINT112_MAX)),
            reserve1=max(1, min(int(state.reserve1 / f), UINT112_MAX)), block_number=block,
        )
    return perturb(state, rng, block)


class Feed:
    """Blocks of ``changed`` moved pools over ``market``; keeps the current states. With a
    ``mirror`` (``onchain.Mirror``), each block's moved pools are written to the devnet too."""

    def __init__(self, market: Market, chain_id: int, changed: int, sigma: float, seed: int = 11,
                 mirror: Mirror | None = None) -> None:
        self.states = list(market.pools)
        self.chain_id, self.changed, self.sigma = chain_id, changed, sigma
        self.rng = np.random.default_rng(seed)
        self.mirror = mirror

    def block(self, number: int, observed_at: float | None, gas_price_wei: int) -> PoolDelta:
        """Block ``number``'s delta, arrived at ``observed_at`` (unix time; ``None``: now, once
        its pools have moved: the chain's swaps happen before a block arrives, so the time the
        bench takes to simulate them, and to write them to the devnet, is no part of the
        pipeline's latency)."""
        idx = self.rng.choice(len(self.states), size=self.changed, replace=False)
        moved = []
        for i in idx:
            self.states[i] = move(self.states[i], self.rng, number, self.sigma)
            moved.append(self.states[i])
        if self.mirror is not None:
            self.mirror.move(moved)
        return PoolDelta(
            chain_id=self.chain_id, block_number=number, block_hash=block_hash(number), states=tuple(moved),
            observed_at=time.time() if observed_at is None else observed_at, gas_price_wei=gas_price_wei,
            base_fee_wei=gas_price_wei,
        )


def block_hash(number: int) -> str:
    return "0x" + f"{number:064x}"
