"""The pipeline benchmark's chain: the path benchmark's synthetic market (bench/paths/synth.py,
10,176 V2/V3 pools), each pool re-addressed as the CREATE2 child of a DEX the chain has
configured (so the execute stage's pool guard passes them, as it would a real chain's), and
the block feed: per block, a few hundred pools moved by swaps, as ``PoolDelta``s.

A pair with several pools of one kind (the majors trade on several DEXes) gets one DEX per
pool: the n-th V2 pool of a pair is the n-th V2 DEX's pair.

The moves revert to the mean (``Market.settled``, ``Feed(revert=)``): with no arbitrageur
closing the gaps, a plain random walk spreads the prices further with every block, so the
opportunities a block grew with a run's length (~390 a block over a 22 s phase, ~520 over
52 s) and runs of different lengths could not be compared. Each move now pulls a pool's log
price back toward where the market was built by ``revert`` of its distance, and a settled
market starts every pool at a draw of that walk's stationary spread, so the opportunities a
block hold level from the first block. ``revert=0`` is the random walk (``bench/paths``
keeps it)."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np

from arbbot.chain.create2 import GENUINE_INIT_CODE_HASH, pool_address
from arbbot.types import PoolDelta, PoolState, V2PoolState
from bench.paths.synth import UINT112_MAX, V3_SIGMA, WETH, build_market, perturb
from bench.pipeline.onchain import Mirror

__all__ = ["Market", "WETH", "build"]


#: The pipeline benchmark's pull back toward the centre, a fraction of a moved pool's log
#: distance from it: its stationary spread (2 sigma / sqrt(2 revert - revert^2) in a V2
#: pair's log price, ~3.2 moves' worth) is where the random walk had drifted after ~10
#: moves of each pool, a 40 s phase 1 on session 47's machine.
REVERT = 0.05

#: ``Market.settled``'s draws (the feeds have seeds of their own)
SETTLE_SEED = 5


@dataclass(frozen=True)
class Market:
    pools: list[PoolState]
    dexes: list[dict[str, str]]  # name, kind, factory, init_code_hash: the chain's DEX rows
    #: the pools as built, which the moves revert to (``pools`` itself until ``settled``)
    centre: list[PoolState]

    def settled(self, sigma: float, revert: float) -> Market:
        """The market with every pool at a draw of the stationary spread of ``Feed``'s
        walk (V2 moves of ``sigma``, pulled back by ``revert``) around where it was built,
        kept as ``centre``; itself when ``revert`` is 0 (the walk has no stationary spread)."""
        if not revert:
            return self
        if not 0 < revert < 1:
            raise ValueError(f"revert must be in [0, 1), got {revert}")
        rng = np.random.default_rng(SETTLE_SEED)
        spread = 1 / math.sqrt(2 * revert - revert * revert)
        pools = []
        for state in self.centre:  # a settled market settles again around where it was built
            if isinstance(state, V2PoolState):  # the log price r1/r0 moves by ~2 sigma a step
                state = _v2_scaled(state, math.exp(-rng.normal(0, 2 * sigma * spread) / 2), state.block_number)
            else:
                state = perturb(state, rng, state.block_number, math.exp(rng.normal(0, V3_SIGMA * spread)))
            pools.append(state)
        return Market(pools, self.dexes, self.centre)


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
    return Market(pools, dexes, pools)


def _v2_scaled(state: V2PoolState, f: float, block: int) -> V2PoolState:
    """The pair with reserve0 times ``f`` and reserve1 over it (its constant product kept),
    each clamped to [1, uint112]."""
    return dataclasses.replace(
        state, reserve0=max(1, min(int(state.reserve0 * f), UINT112_MAX)),
        reserve1=max(1, min(int(state.reserve1 / f), UINT112_MAX)), block_number=block,
    )


def move(state: PoolState, rng: np.random.Generator, block: int, sigma: float, centre: PoolState,
         revert: float = 0.0) -> PoolState:
    """The pool after a block of swaps: a V2 pair's price moves by ~``sigma`` (its constant
    product kept), a V3 pool's as ``synth.perturb`` moves it; pulled back toward the price of
    ``centre`` (the same pool as built) by ``revert`` of the log distance first."""
    if isinstance(state, V2PoolState):
        f = 1 + rng.normal(0, sigma)
        if revert:  # price r1/r0: divided by f^2
            f *= math.exp(revert * math.log((state.reserve1 * centre.reserve0) / (state.reserve0 * centre.reserve1)) / 2)
        return _v2_scaled(state, f, block)
    if revert:
        return perturb(state, rng, block, math.exp(-revert * math.log(state.sqrt_price_x96 / centre.sqrt_price_x96)))
    return perturb(state, rng, block)


class Feed:
    """Blocks of ``changed`` moved pools over ``market``; keeps the current states. With a
    ``mirror`` (``onchain.Mirror``), each block's moved pools are written to the devnet too.
    ``revert``: each move pulls the pool back toward the market's ``centre`` (module
    docstring; 0: a random walk)."""

    def __init__(self, market: Market, chain_id: int, changed: int, sigma: float, seed: int = 11,
                 mirror: Mirror | None = None, revert: float = 0.0) -> None:
        self.states = list(market.pools)
        self.centre = market.centre
        self.revert = revert
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
            self.states[i] = move(self.states[i], self.rng, number, self.sigma, self.centre[i], self.revert)
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
