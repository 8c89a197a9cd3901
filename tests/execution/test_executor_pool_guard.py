"""The off-chain pool guard (defence in depth behind the executor's own checks): the CREATE2
rule against known real addresses, and the runner on anvil dropping a cycle whose pool no
configured (factory, init-code hash) made (a pair of a genuine factory nobody configured, a
state injected under a real pool's address with other tokens or fee) before anything is
simulated or signed, while a cycle of configured DEXes goes on to the simulation."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import pytest

from arbbot.chain.create2 import (
    GENUINE_V2_INIT_CODE_HASH,
    GENUINE_V3_INIT_CODE_HASH,
    Factory,
    PoolGuard,
    parse_init_code_hash,
    v2_pair_address,
    v3_pool_address,
)
from arbbot.chain.tx import deploy_unlocked, encode_call, send_unlocked
from arbbot.devnet.artifacts import load
from arbbot.devnet.scenarios import fund_token, v2_state
from arbbot.execution.runner import ExecutionRunner
from arbbot.types import Opportunity, PoolState, ScoredOpportunity, V2PoolState, V3PoolState
from tests.execution.executor_helpers import planted_cycle

MAINNET_WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
MAINNET_USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"


def test_create2_gives_the_real_mainnet_pools() -> None:
    """Uniswap V2 WETH/USDC and Uniswap V3 USDC/WETH 0.05%, as deployed on Ethereum."""
    assert v2_pair_address("0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f", GENUINE_V2_INIT_CODE_HASH,
                           MAINNET_WETH, MAINNET_USDC) == "0xb4e16d0168e52d35cacd2c6185b44281ec28c9dc"
    assert v3_pool_address("0x1f98431c8ad98523631ae4a59f267346ea31f984", GENUINE_V3_INIT_CODE_HASH,
                           MAINNET_USDC, MAINNET_WETH, 500) == "0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640"


def test_the_guard_accepts_only_children_of_configured_factories() -> None:
    v2 = Factory.configured("v2", "0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f", "", "uniswap-v2")
    v3 = Factory.configured("v3", "0x1f98431c8ad98523631ae4a59f267346ea31f984", "", "uniswap-v3")
    pair = V2PoolState("0xb4e16d0168e52d35cacd2c6185b44281ec28c9dc", MAINNET_USDC, MAINNET_WETH, 1, 1)
    pool = V3PoolState("0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640", MAINNET_USDC, MAINNET_WETH, 500, 10, 2**96, 0, 1)
    guard = PoolGuard([v2, v3])
    assert guard([pair, pool]) is None
    assert guard([pair, pool]) is None  # remembered, same answer
    # the same address claimed with another fee tier, kind or tokens is no child of anything
    for fake in (dataclasses.replace(pool, fee_pips=3000), dataclasses.replace(pair, token1=MAINNET_USDC[:-1] + "0")):
        reason = guard([pair, fake])
        assert reason is not None and fake.address in reason and "not the CREATE2 child" in reason
    assert PoolGuard([v2])([pair, pool]) is not None  # no V3 DEX configured
    assert PoolGuard([])([pair]) is not None  # nothing configured: nothing trades
    with pytest.raises(ValueError, match="not 32 bytes of hex"):
        parse_init_code_hash("0x1234")
    with pytest.raises(ValueError, match="unknown kind"):
        Factory.configured("v4", v2.factory, "")


# --------------------------------------------------------------------------- the runner, on anvil


def dry_runner(chain: Any, guard: PoolGuard, states: Mapping[str, PoolState]) -> ExecutionRunner:
    rpc, dep, signer = chain
    return ExecutionRunner(rpc=rpc, executor=dep.executor, mode="dry-run", signer=signer,
                           pools=lambda addresses: {a: states[a] for a in addresses}, pool_guard=guard,
                           native_token=dep.weth)


def scored(dep: Any, pools: list[str], tokens: list[str]) -> ScoredOpportunity:
    opp = Opportunity(chain_id=dep.chain_id, block_number=1, block_hash="0x" + "00" * 32, path_id="guard",
                      pools=tuple(pools), tokens=tuple(tokens), amount_in=10**18, amount_out=10**18 + 10**16,
                      gas_estimate=200_000, gas_price_wei=1, gas_cost=1)
    return ScoredOpportunity(opportunity=opp, score=1.0, decision="execute")


def devnet_guard(dep: Any) -> PoolGuard:
    return PoolGuard([Factory.configured(d["kind"], d["factory"], d["init_code_hash"], d["name"]) for d in dep.dexes])


def test_the_runner_simulates_a_cycle_of_configured_dexes(chain: Any) -> None:
    rpc, dep, _ = chain
    pools, tokens = planted_cycle(rpc, dep)
    states = {p["address"]: v2_state(rpc, p) for p in pools}
    result = dry_runner(chain, devnet_guard(dep), states).submit(scored(dep, list(states), tokens))
    assert result.status == "simulated", result.reason


def test_the_runner_drops_a_pool_no_configured_dex_made(chain: Any) -> None:
    """A genuine UniswapV2Factory nobody configured, its pair priced for a gap: dropped by the
    guard, with the reason, before the simulation (the executor would refuse it too)."""
    rpc, dep, _ = chain
    weth, usdc = dep.weth, dep.token("USDC")
    factory = deploy_unlocked(rpc, dep.deployer, load("UniswapV2Factory").bytecode, ["address"], [dep.deployer])
    send_unlocked(rpc, dep.deployer, to=factory, data=encode_call("createPair(address,address)", [weth, usdc]))
    stray = "0x" + rpc.eth_call(factory, encode_call("getPair(address,address)", [weth, usdc]))[-40:]
    fund_token(rpc, dep, "WETH", stray, 100 * 10**18)
    fund_token(rpc, dep, "USDC", stray, 330_000 * 10**18)
    send_unlocked(rpc, dep.deployer, to=stray, data=encode_call("mint(address)", [dep.deployer]))
    genuine = dep.pool("uniswap", "WETH", "USDC")
    t0, t1 = sorted((weth, usdc))
    states: dict[str, PoolState] = {genuine["address"]: v2_state(rpc, genuine),
                                    stray: v2_state(rpc, {"address": stray, "token0": t0, "token1": t1})}
    result = dry_runner(chain, devnet_guard(dep), states).submit(scored(dep, [genuine["address"], stray],
                                                                        [usdc, weth, usdc]))
    assert result.status == "dropped"
    assert result.reason == (f"pool {stray} (v2) is not the CREATE2 child of any configured v2 DEX's factory and "
                             "init-code hash: refused")
    # configured, the same cycle goes on to the simulation
    with_stray = PoolGuard([*devnet_guard(dep).factories, Factory.configured("v2", factory, "", "stray")])
    result = dry_runner(chain, with_stray, states).submit(scored(dep, [genuine["address"], stray], [usdc, weth, usdc]))
    assert "CREATE2" not in result.reason


def test_a_state_injected_under_a_real_address_is_dropped(chain: Any) -> None:
    """The hot state says a real pair trades other tokens (how a poisoned state would look)."""
    rpc, dep, _ = chain
    pools, tokens = planted_cycle(rpc, dep)
    states: dict[str, PoolState] = {p["address"]: v2_state(rpc, p) for p in pools}
    real = pools[1]["address"]
    dai = dep.token("DAI")
    s = states[real]
    assert isinstance(s, V2PoolState)
    states[real] = dataclasses.replace(s, token0=dai) if s.token0 != dep.weth else dataclasses.replace(s, token1=dai)
    result = dry_runner(chain, devnet_guard(dep), states).submit(scored(dep, list(states), tokens))
    assert result.status == "dropped" and f"pool {real} (v2) is not the CREATE2 child" in result.reason
