"""The devnet's genuine Uniswap V3 pools: addresses from the factory + init-code hash,
prices consistent with the V2 pools, several positions per pool so swaps cross ticks, and
SwapRouter delivering exactly what QuoterV2 quotes."""

from __future__ import annotations

from pathlib import Path

from eth_abi import decode

from arbbot.chain.tx import encode_call
from arbbot.devnet import v3
from arbbot.devnet.anvil import Anvil
from arbbot.devnet.artifacts import load
from arbbot.devnet.record import Deployment
from arbbot.devnet.scenarios import balance_of, fund_token, revert_to, snapshot, v2_state

Devnet = tuple[Anvil, Deployment, Path]


def test_v3_dex_and_pools_are_recorded(devnet: Devnet) -> None:
    _, dep, _ = devnet
    d = dep.dex("uniswap-v3")
    assert d["kind"] == "v3" and {"factory", "quoter", "position_manager", "swap_router"} <= set(d)
    pools = [p for p in dep.pools if p["kind"] == "v3"]
    assert {p["fee_pips"] for p in pools} >= {500, 3000}
    for p in pools:
        assert p["dex"] == "uniswap-v3" and p["tick_spacing"] == v3.FEE_TICK_SPACING[p["fee_pips"]]
        assert v3.compute_pool_address(d["factory"], p["token1"], p["token0"], p["fee_pips"]) == p["address"]


def test_pool_init_code_hash_is_the_genuine_one() -> None:
    from eth_utils import keccak

    assert keccak(bytes.fromhex(load("UniswapV3Pool").bytecode[2:])) == v3.POOL_INIT_CODE_HASH
    assert v3.POOL_INIT_CODE_HASH.hex() in load("NonfungiblePositionManager").bytecode


def test_v3_prices_agree_with_v2(devnet: Devnet) -> None:
    anvil, dep, _ = devnet
    rpc = anvil.rpc()
    for p in (p for p in dep.pools if p["kind"] == "v3"):
        sqrt_p, _ = v3.slot0(rpc, p["address"])
        v2 = v2_state(rpc, dep.pool("uniswap", p["token0"], p["token1"]))
        assert abs(v3.pool_price(sqrt_p) / (v2.reserve1 / v2.reserve0) - 1) < 1e-6


def test_several_positions_and_initialized_ticks(devnet: Devnet) -> None:
    anvil, dep, _ = devnet
    rpc = anvil.rpc()
    for p in (p for p in dep.pools if p["kind"] == "v3"):
        _, tick = v3.slot0(rpc, p["address"])
        boundaries = set()
        for lower, upper, _, _ in v3.ladder(tick, p["tick_spacing"], 1.0, 1.0):
            boundaries |= {lower, upper}
        initialized = 0
        for t in sorted(boundaries):
            raw = rpc.eth_call(p["address"], encode_call("ticks(int24)", [t]))
            gross = decode(["uint128"], bytes.fromhex(raw[2:66]))[0]
            initialized += gross > 0
        assert initialized >= 8  # 6 positions -> up to 12 boundaries, a few coincide


def test_router_swap_delivers_the_quote_and_big_swaps_cross_ticks(devnet: Devnet) -> None:
    anvil, dep, _ = devnet
    rpc = anvil.rpc()
    d = dep.dex("uniswap-v3")
    p = dep.pool("uniswap-v3", "WETH", "USDC", 3000)
    trader = rpc.call("eth_accounts")[6].lower()
    snap = snapshot(rpc)
    try:
        amount = 300 * 10**18  # ~$900k of WETH: walks through several ranges
        out, _, crossed, _ = v3.quote_exact_input_single(rpc, d["quoter"], dep.weth, dep.token("USDC"), 3000, amount)
        assert crossed >= 2
        fund_token(rpc, dep, "WETH", trader, amount)
        rpc_data = encode_call("approve(address,uint256)", [d["swap_router"], amount])
        rpc.call("eth_sendTransaction", [{"from": trader, "to": dep.weth, "data": rpc_data}])
        before = balance_of(rpc, dep.token("USDC"), trader)
        v3.swap_exact_input_single(rpc, trader, d["swap_router"], dep.weth, dep.token("USDC"), 3000, amount)
        assert balance_of(rpc, dep.token("USDC"), trader) - before == out
        assert p["address"]
    finally:
        revert_to(rpc, snap)
