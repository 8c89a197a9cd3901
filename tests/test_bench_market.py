"""The pipeline bench's feed reverts to the mean (``bench.pipeline.market``): a settled market
starts at the walk's stationary spread and stays there, where the plain random walk (the
feed's ``revert=0``, the path benchmark's) spreads further with every block. The bench's
figures rest on it: runs of different lengths are comparable only if the market holds level."""

from __future__ import annotations

import math

import numpy as np
import pytest

from arbbot.types import PoolState, V2PoolState
from bench.pipeline.market import REVERT, Feed, Market, build

SIGMA = 0.01


@pytest.fixture(scope="module")
def market() -> Market:
    return build()


def _spread(states: list[PoolState], centre: list[PoolState]) -> float:
    """RMS over the V2 pairs of the log distance of their price from the centre's (pairs of
    a million units a side at least: in a smaller one the reserves' rounding to whole units
    moves the price too)."""
    d = [math.log((s.reserve1 * c.reserve0) / (s.reserve0 * c.reserve1))
         for s, c in zip(states, centre) if isinstance(c, V2PoolState) and min(c.reserve0, c.reserve1) >= 10**6]
    return float(np.sqrt(np.mean(np.square(d))))


def _walk(market: Market, revert: float, blocks: int) -> list[float]:
    """The spread after each tenth of ``blocks`` blocks of the feed over ``market``."""
    feed = Feed(market, 1, 300, SIGMA, seed=3, revert=revert)
    out = []
    for b in range(1, blocks + 1):
        feed.block(b, 0.0, 1)
        if b % (blocks // 10) == 0:
            out.append(_spread(feed.states, feed.centre))
    return out


def test_a_settled_market_holds_the_walks_stationary_spread(market: Market) -> None:
    settled = market.settled(SIGMA, REVERT)
    assert settled.centre is market.pools and len(settled.pools) == len(market.pools)
    again = settled.settled(SIGMA, REVERT)  # around the centre again, not around its own draws
    assert again.centre is market.pools and again.pools == settled.pools
    stationary = 2 * SIGMA / math.sqrt(2 * REVERT - REVERT**2)  # a V2 pair's log price
    start = _spread(settled.pools, market.pools)
    assert abs(start / stationary - 1) < 0.05
    # ~12 moves of each pool: the random walk from the centre would spread by sqrt(12)
    spreads = _walk(settled, REVERT, 400)
    assert all(abs(s / stationary - 1) < 0.1 for s in spreads), spreads


def test_without_reversion_the_market_drifts_further_each_block(market: Market) -> None:
    assert market.settled(SIGMA, 0.0) is market
    spreads = _walk(market, 0.0, 400)
    assert spreads == sorted(spreads) and spreads[-1] > 2.5 * spreads[0], spreads


@pytest.mark.parametrize("revert", [-0.1, 1.0, 1.5])
def test_a_reversion_outside_zero_to_one_is_refused(market: Market, revert: float) -> None:
    with pytest.raises(ValueError, match="revert must be in"):
        market.settled(SIGMA, revert)
