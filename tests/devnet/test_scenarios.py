"""Scenario helpers and the market simulator move prices the way tests rely on."""

from __future__ import annotations

from pathlib import Path

import pytest

from arbbot.devnet.anvil import Anvil
from arbbot.devnet.record import Deployment
from arbbot.devnet.scenarios import (
    balance_of,
    fund_token,
    plant_price_gap,
    read_v2_reserves,
    revert_to,
    snapshot,
    v2_state,
)
from arbbot.devnet.simulator import (
    Competitor,
    closing_trade,
    max_cross_dex_gap,
    parse_competitors,
    read_prices,
    simulate,
)

Devnet = tuple[Anvil, Deployment, Path]


def _price(dep: Deployment, state, token: str) -> float:  # type: ignore[no-untyped-def]
    a = dep._addr(token)
    return state.reserve1 / state.reserve0 if a == state.token0 else state.reserve0 / state.reserve1


def test_plant_price_gap_moves_one_dex_only(devnet: Devnet) -> None:
    anvil, dep, _ = devnet
    rpc = anvil.rpc()
    snap = snapshot(rpc)
    try:
        uni = dep.pool("uniswap", "WETH", "USDC")
        uni_before = v2_state(rpc, uni)
        out = plant_price_gap(rpc, dep, "WETH", "USDC", 3.0, dex="sushiswap")
        drop = 1 - _price(dep, out["after"], "WETH") / _price(dep, out["before"], "WETH")
        assert 0.025 < drop < 0.031  # ~3%, a little less because of the fee
        assert v2_state(rpc, uni).reserve0 == uni_before.reserve0
    finally:
        revert_to(rpc, snap)


def test_fund_token_mints_and_wraps(devnet: Devnet) -> None:
    anvil, dep, _ = devnet
    rpc = anvil.rpc()
    who = "0x" + "42" * 20
    snap = snapshot(rpc)
    try:
        fund_token(rpc, dep, "WETH", who, 5 * 10**18)
        fund_token(rpc, dep, "LINK", who, 7)
        assert balance_of(rpc, dep.weth, who) == 5 * 10**18
        assert balance_of(rpc, dep.token("LINK"), who) == 7
    finally:
        revert_to(rpc, snap)


def test_simulator_opens_cross_dex_gaps(devnet: Devnet) -> None:
    anvil, dep, _ = devnet
    rpc = anvil.rpc()
    snap = snapshot(rpc)
    try:
        pools = [p["address"] for p in dep.pools if p["kind"] == "v2"]
        v3_pools = [p for p in dep.pools if p["kind"] == "v3"]
        v3_before = read_prices(rpc, v3_pools)
        before = read_v2_reserves(rpc, pools)
        assert max_cross_dex_gap(dep, before)[0] < 1e-6
        lines: list[str] = []
        counters = simulate(anvil.url, rounds=3, seed=7, deployment=dep, swaps_per_block=8,
                            report_every=8, progress=lines.append)
        assert counters["swaps"] == 24 and counters["failed"] == 0
        after = read_v2_reserves(rpc, pools)
        assert sum(before[p] != after[p] for p in pools) >= 8
        v3_after = read_prices(rpc, v3_pools)
        assert sum(v3_before[a] != v3_after[a] for a in v3_before) >= 2  # V3 pools trade too
        gap, _ = max_cross_dex_gap(dep, after)
        assert 0.002 < gap < 0.2
        assert any("cross-pool gap" in line for line in lines)
    finally:
        revert_to(rpc, snap)


def _gap(rpc, dep: Deployment) -> float:  # type: ignore[no-untyped-def]
    uni, sushi = dep.pool("uniswap", "WETH", "USDC"), dep.pool("sushiswap", "WETH", "USDC")
    return _price(dep, v2_state(rpc, sushi), "WETH") / _price(dep, v2_state(rpc, uni), "WETH") - 1


@pytest.mark.parametrize("latency_s", [0.0, 1.0])
def test_a_competitor_closes_a_watched_gap_unless_as_slow_as_a_block(devnet: Devnet, latency_s: float) -> None:
    anvil, dep, _ = devnet
    rpc = anvil.rpc()
    snap = snapshot(rpc)
    try:
        plant_price_gap(rpc, dep, "WETH", "USDC", 3.0, dex="sushiswap")
        assert _gap(rpc, dep) < -0.025
        sushi = dep.pool("sushiswap", "WETH", "USDC")["address"]
        rival = Competitor(pools=(sushi,), latency_s=latency_s)
        counters = simulate(anvil.url, rounds=1, seed=3, deployment=dep, swaps_per_block=0, progress=None,
                            competitors=[rival])
        if latency_s == 0.0:
            assert counters["taken"] == 1
            assert abs(_gap(rpc, dep)) < 0.001  # the rival took the dislocation first
        else:
            assert rival.take_probability(1.0) == 0.0
            assert counters["taken"] == 0 and _gap(rpc, dep) < -0.025
    finally:
        revert_to(rpc, snap)


def test_competitors_are_seeded_and_take_less_the_slower_they_are(devnet: Devnet) -> None:
    _, dep, _ = devnet
    a = parse_competitors("0.1:3,0.5:all", dep, seed=11)
    assert a == parse_competitors("0.1:3,0.5:all", dep, seed=11)
    assert len(a[0].pools) == 3 and len(a[1].pools) >= 3
    assert a[0].take_probability() > a[1].take_probability() > 0
    assert closing_trade((10**18, 2 * 10**18), 2.0)[1] < 10**6  # already there: nothing to trade
    direction, amount = closing_trade((10**18, 2 * 10**18), 1.9)
    assert direction == 0 and 0.025 * 10**18 < amount < 0.027 * 10**18  # sqrt(2/1.9) - 1 = 2.6%
