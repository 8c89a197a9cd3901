"""Scanner on genuine Uniswap V3 pools (npm UniswapV3Factory): PoolCreated discovery,
Swap-driven slot0/liquidity sync, Mint/Burn-driven re-reads with ticks, exact equality
with on-chain slot0()/liquidity() and with the positions' liquidityNet after random swaps."""

from __future__ import annotations

import random

from arbbot.chain.discovery import Factory
from arbbot.chain.scanner import Scanner, ScannerConfig
from arbbot.chain.tx import deploy_unlocked, encode_call, send_unlocked
from arbbot.devnet import artifacts
from arbbot.types import V3PoolState
from tests.chain.devchain import DevChain, compile_solidity

V3_HELPER_SOL = """
// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
interface IPool {
    function mint(address, int24, int24, uint128, bytes calldata) external returns (uint256, uint256);
    function burn(int24, int24, uint128) external returns (uint256, uint256);
    function swap(address, bool, int256, uint160, bytes calldata) external returns (int256, int256);
    function token0() external view returns (address);
    function token1() external view returns (address);
}
interface IERC20 { function transferFrom(address, address, uint256) external returns (bool); }
contract V3Helper {
    function mint(address pool, int24 lo, int24 hi, uint128 amt) external {
        IPool(pool).mint(address(this), lo, hi, amt, abi.encode(msg.sender));
    }
    function burn(address pool, int24 lo, int24 hi, uint128 amt) external { IPool(pool).burn(lo, hi, amt); }
    function swap(address pool, bool zeroForOne, int256 amt) external {
        IPool(pool).swap(msg.sender, zeroForOne, amt,
            zeroForOne ? 4295128740 : 1461446703485210103287273052203988822378723970341, abi.encode(msg.sender));
    }
    function _pay(address pool, uint256 a0, uint256 a1, bytes calldata data) internal {
        address payer = abi.decode(data, (address));
        if (a0 > 0) IERC20(IPool(pool).token0()).transferFrom(payer, pool, a0);
        if (a1 > 0) IERC20(IPool(pool).token1()).transferFrom(payer, pool, a1);
    }
    function uniswapV3MintCallback(uint256 a0, uint256 a1, bytes calldata data) external { _pay(msg.sender, a0, a1, data); }
    function uniswapV3SwapCallback(int256 d0, int256 d1, bytes calldata data) external {
        _pay(msg.sender, d0 > 0 ? uint256(d0) : 0, d1 > 0 ? uint256(d1) : 0, data);
    }
}
"""


def test_v3_pools_stay_exact(dev: DevChain) -> None:
    rng = random.Random(11)
    mc = dev.deploy_multicall()
    factory = deploy_unlocked(dev.rpc, dev.sender, artifacts.load("UniswapV3Factory").bytecode)
    helper = deploy_unlocked(dev.rpc, dev.sender, compile_solidity(V3_HELPER_SOL)["V3Helper"])
    tokens = [dev.deploy_token(f"V{i}", f"V{i}") for i in range(3)]
    for t in tokens:
        send_unlocked(dev.rpc, dev.sender, to=t, data=encode_call("approve(address,uint256)", [helper, 2**256 - 1]))
    scanner = Scanner(ScannerConfig(chain_id=31337, rpc_urls=(dev.rpc.url,), multicall=mc,
                                    factories=(Factory(factory, "v3"),)))
    assert scanner.poll()[0].states == ()

    pools: list[str] = []
    for (a, b), fee in zip([(tokens[0], tokens[1]), (tokens[1], tokens[2])], [3000, 500]):
        send_unlocked(dev.rpc, dev.sender, to=factory, data=encode_call("createPool(address,address,uint24)", [a, b, fee]))
        raw = dev.rpc.eth_call(factory, encode_call("getPool(address,address,uint24)", [a, b, fee]))
        pool = "0x" + raw[-40:]
        send_unlocked(dev.rpc, dev.sender, to=pool, data=encode_call("initialize(uint160)", [2**96]))
        pools.append(pool)
    deltas = scanner.poll()
    assert {p for d in deltas for p in (s.address for s in d.states)} == set(pools)

    positions: dict[str, list[tuple[int, int, int]]] = {p: [] for p in pools}
    spacing = {pools[0]: 60, pools[1]: 10}
    for block in range(12):
        txs = []
        for p in pools:
            sp = spacing[p]
            if block < 3 or rng.random() < 0.3:
                lo = rng.randint(-60, -1) * sp
                hi = rng.randint(1, 60) * sp
                amt = rng.randint(10**20, 10**21)
                positions[p].append((lo, hi, amt))
                txs.append(dev.tx(helper, encode_call("mint(address,int24,int24,uint128)", [p, lo, hi, amt]), 1_000_000))
            elif positions[p] and rng.random() < 0.2:
                lo, hi, amt = positions[p].pop(rng.randrange(len(positions[p])))
                txs.append(dev.tx(helper, encode_call("burn(address,int24,int24,uint128)", [p, lo, hi, amt]), 500_000))
            for _ in range(rng.randint(1, 8)):
                txs.append(dev.tx(helper, encode_call("swap(address,bool,int256)",
                                                      [p, rng.random() < 0.5, rng.randint(10**14, 10**17)]), 3_000_000))
        dev.send_many(txs)
        scanner.poll()

    for p in pools:
        s = scanner.pools[p]
        assert isinstance(s, V3PoolState)
        slot0 = bytes.fromhex(dev.rpc.eth_call(p, encode_call("slot0()"))[2:])
        liq = int(dev.rpc.eth_call(p, encode_call("liquidity()")), 16)
        assert s.sqrt_price_x96 == int.from_bytes(slot0[0:32], "big")
        assert s.tick == int.from_bytes(slot0[32:64], "big", signed=True)
        assert s.liquidity == liq
        net: dict[int, int] = {}
        for lo, hi, amt in positions[p]:
            net[lo] = net.get(lo, 0) + amt
            net[hi] = net.get(hi, 0) - amt
        assert dict(s.ticks) == net  # every initialized tick with its liquidityNet, exactly
        assert s.fee_pips == (3000 if p == pools[0] else 500) and s.tick_spacing == spacing[p]
