"""Scenario helpers and the market simulator move prices the way tests rely on."""

from __future__ import annotations

from pathlib import Path

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
from arbbot.devnet.simulator import max_cross_dex_gap, read_prices, simulate

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
