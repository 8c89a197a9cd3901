"""ArbExecutor on anvil with the genuine Uniswap V2 and V3 contracts: a planted cross-DEX
gap, sized by exact integer math, executes through the bot's signer and the contract's
balance rises by exactly the predicted profit; guards (roles, callbacks, minProfit, genuine
V3 pools) hold. Mixed V2/V3 cycles run with V3 as the flash source, as a middle hop paid in
the callback and as the last hop; V3 hop amounts are predicted with the genuine QuoterV2."""

from __future__ import annotations

from typing import Any

import pytest

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import LocalSigner, encode_call, send_unlocked
from arbbot.devnet.record import Deployment
from arbbot.devnet.scenarios import (
    approve,
    balance_of,
    fund_token,
    plant_price_gap,
    plant_v3_price_gap,
    swap_v2,
    v2_state,
)
from arbbot.errors import RpcError
from arbbot.execution.executor import (
    Hop,
    decode_revert,
    encode_cycle,
    encode_execute,
    encode_withdraw,
    gas_estimate,
)
from tests.execution.executor_helpers import (
    cycle_amounts,
    cycle_quoter,
    planted_cycle,
    revert_reason,
    send,
    size,
    size_cycle,
)


def test_flash_cycle_realises_exactly_the_predicted_profit(chain: Any) -> None:
    rpc, dep, signer = chain
    pools, tokens = planted_cycle(rpc, dep)
    states = [v2_state(rpc, p) for p in pools]
    amount_in, amounts = size_cycle(states, tokens, states[0].reserve0 // 5)
    predicted = amounts[-1] - amount_in
    assert predicted > 10**16  # 3% gap minus two 0.3% fees on $800k depth: ~0.03 WETH
    before = balance_of(rpc, dep.weth, dep.executor)
    assert before == 0  # flash: no inventory needed
    receipt = send(signer, dep.executor, encode_cycle(pools, tokens, amount_in, amounts, predicted))
    assert int(receipt["status"], 16) == 1
    assert balance_of(rpc, dep.weth, dep.executor) - before == predicted
    gas_used = int(receipt["gasUsed"], 16)
    assert gas_used <= gas_estimate(["v2", "v2"])
    # the exact-math neighbours are no better: the sizing really is the integer optimum region
    assert cycle_amounts(states, tokens, amount_in + 1000)[-1] - (amount_in + 1000) <= predicted


def test_inventory_triangle_realises_exactly_the_predicted_profit(chain: Any) -> None:
    """3 hops, from the contract's own inventory: WETH -> USDC -> DAI -> WETH."""
    rpc, dep, signer = chain
    plant_price_gap(rpc, dep, "DAI", "WETH", 4.0, dex="uniswap")  # DAI cheap in WETH on uniswap
    pools = [dep.pool("uniswap", "WETH", "USDC"), dep.pool("uniswap", "USDC", "DAI"), dep.pool("uniswap", "DAI", "WETH")]
    tokens = [dep.weth, dep.token("USDC"), dep.token("DAI"), dep.weth]
    # DAI cheap on the DAI/WETH pool: buy it there instead (reverse direction)
    tokens = [dep.weth, dep.token("DAI"), dep.token("USDC"), dep.weth]
    pools = pools[::-1]
    states = [v2_state(rpc, p) for p in pools]
    amount_in, amounts = size_cycle(states, tokens, 10**20)
    predicted = amounts[-1] - amount_in
    assert predicted > 0
    fund_token(rpc, dep, "WETH", dep.executor, amount_in)
    before = balance_of(rpc, dep.weth, dep.executor)
    receipt = send(signer, dep.executor,
                   encode_cycle(pools, tokens, amount_in, amounts, predicted, flash=False, strict_hops=True))
    assert int(receipt["status"], 16) == 1
    assert balance_of(rpc, dep.weth, dep.executor) - before == predicted
    assert int(receipt["gasUsed"], 16) <= gas_estimate(["v2", "v2", "v2"])


def test_only_an_executor_may_execute_and_only_the_owner_withdraw(chain: Any) -> None:
    rpc, dep, signer = chain
    pools, tokens = planted_cycle(rpc, dep)
    states = [v2_state(rpc, p) for p in pools]
    amount_in, amounts = size_cycle(states, tokens, states[0].reserve0 // 5)
    data = encode_cycle(pools, tokens, amount_in, amounts, 0)
    stranger = rpc.call("eth_accounts")[3]
    assert revert_reason(rpc, stranger, dep.executor, data) == "NotExecutor()"
    assert revert_reason(rpc, dep.deployer, dep.executor, data) == "NotExecutor()"  # the owner is cold
    for who in (stranger, signer.address):  # the hot key cannot withdraw either
        assert revert_reason(rpc, who, dep.executor, encode_withdraw(dep.weth, who, 1)) == "NotOwner()"
    # the executor's simulation of the same call succeeds
    rpc.call("eth_call", [{"from": signer.address, "to": dep.executor, "data": data}, "latest"])


def test_callbacks_from_anyone_but_the_called_pool_revert(chain: Any) -> None:
    rpc, dep, _ = chain
    stranger = rpc.call("eth_accounts")[4]
    v2 = encode_call("uniswapV2Call(address,uint256,uint256,bytes)", [dep.executor, 1, 0, b""])
    v3 = encode_call("uniswapV3SwapCallback(int256,int256,bytes)", [1, -1, b""])
    pool = dep.pools[0]["address"]
    for sender in (stranger, pool):  # even a genuine pair, outside an execute() in flight
        rpc.call("anvil_setBalance", [sender, hex(10**18)])
        assert revert_reason(rpc, sender, dep.executor, v2) == "BadCallback()"
        assert revert_reason(rpc, sender, dep.executor, v3) == "BadCallback()"


def test_stale_opportunity_reverts_on_the_min_profit_guard(chain: Any) -> None:
    rpc, dep, signer = chain
    pools, tokens = planted_cycle(rpc, dep)
    states = [v2_state(rpc, p) for p in pools]
    amount_in, amounts = size_cycle(states, tokens, states[0].reserve0 // 5)
    predicted = amounts[-1] - amount_in
    data = encode_cycle(pools, tokens, amount_in, amounts, predicted)
    # someone else closes most of the gap first: buy WETH on sushiswap
    trader = rpc.call("eth_accounts")[5].lower()
    usdc = dep.token("USDC")
    fund_token(rpc, dep, usdc, trader, 10**24)
    approve(rpc, trader, usdc, dep.dex("sushiswap")["router"])
    swap_v2(rpc, dep, trader, pools[1], usdc, 10_000 * 10**18)
    reason = revert_reason(rpc, signer.address, dep.executor, data)
    assert reason.startswith("ProfitTooLow(")
    receipt = send(signer, dep.executor, data)
    assert int(receipt["status"], 16) == 0  # mined, reverted: nothing moved
    assert balance_of(rpc, dep.weth, dep.executor) == 0


def test_owner_withdraws_profit(chain: Any) -> None:
    rpc, dep, signer = chain
    pools, tokens = planted_cycle(rpc, dep)
    states = [v2_state(rpc, p) for p in pools]
    amount_in, amounts = size_cycle(states, tokens, states[0].reserve0 // 5)
    send(signer, dep.executor, encode_cycle(pools, tokens, amount_in, amounts, 1))
    profit = balance_of(rpc, dep.weth, dep.executor)
    assert profit == amounts[-1] - amount_in
    cold = rpc.call("eth_accounts")[6].lower()
    send_unlocked(rpc, dep.deployer, to=dep.executor, data=encode_withdraw(dep.weth, cold, profit))
    assert balance_of(rpc, dep.weth, cold) == profit
    assert balance_of(rpc, dep.weth, dep.executor) == 0


# --------------------------------------------------------------------------- V3 hops


def execute_and_check(rpc: RpcClient, dep: Deployment, signer: LocalSigner, pools: list[dict[str, Any]],
                      tokens: list[str], *, flash: bool) -> int:
    run = cycle_quoter(rpc, dep, pools, tokens)
    amount_in, amounts = size(run, 10**24)
    predicted = amounts[-1] - amount_in
    assert predicted > 0
    if not flash:
        fund_token(rpc, dep, tokens[0], dep.executor, amount_in)
    before = balance_of(rpc, tokens[0], dep.executor)
    receipt = send(signer, dep.executor, encode_cycle(pools, tokens, amount_in, amounts, predicted, flash=flash))
    assert int(receipt["status"], 16) == 1
    assert balance_of(rpc, tokens[0], dep.executor) - before == predicted
    assert int(receipt["gasUsed"], 16) <= gas_estimate([p["kind"] for p in pools])
    return predicted


def test_mixed_3_hop_cycle_with_v3_last(chain: Any) -> None:
    """WETH -v2-> DAI -v2-> USDC -v3-> WETH, flash-borrowed from the first V2 pair."""
    rpc, dep, signer = chain
    plant_v3_price_gap(rpc, dep, "WETH", "USDC", 3000, 3.0)  # WETH cheap on V3
    pools = [dep.pool("uniswap", "WETH", "DAI"), dep.pool("uniswap", "DAI", "USDC"),
             dep.pool("uniswap-v3", "USDC", "WETH", 3000)]
    tokens = [dep.weth, dep.token("DAI"), dep.token("USDC"), dep.weth]
    execute_and_check(rpc, dep, signer, pools, tokens, flash=True)


def test_mixed_3_hop_cycle_flash_from_v3(chain: Any) -> None:
    """USDC -v3-> WETH -v2-> DAI -v2-> USDC, the V3 pool lends the first output."""
    rpc, dep, signer = chain
    plant_v3_price_gap(rpc, dep, "WETH", "USDC", 3000, 3.0)
    pools = [dep.pool("uniswap-v3", "USDC", "WETH", 3000), dep.pool("uniswap", "WETH", "DAI"),
             dep.pool("sushiswap", "DAI", "USDC")]
    tokens = [dep.token("USDC"), dep.weth, dep.token("DAI"), dep.token("USDC")]
    execute_and_check(rpc, dep, signer, pools, tokens, flash=True)


def test_mixed_cycle_from_inventory_with_v3_in_the_middle(chain: Any) -> None:
    """DAI -v2-> USDC -v3-> WETH -v2-> DAI, paid from the contract's own DAI."""
    rpc, dep, signer = chain
    plant_v3_price_gap(rpc, dep, "WETH", "USDC", 500, 2.0)
    pools = [dep.pool("sushiswap", "DAI", "USDC"), dep.pool("uniswap-v3", "USDC", "WETH", 500),
             dep.pool("uniswap", "WETH", "DAI")]
    tokens = [dep.token("DAI"), dep.token("USDC"), dep.weth, dep.token("DAI")]
    execute_and_check(rpc, dep, signer, pools, tokens, flash=False)


def test_v3_v3_cross_tier_cycle(chain: Any) -> None:
    """WETH -v3(500)-> USDC -v3(3000)-> WETH: two V3 hops, both paid in callbacks."""
    rpc, dep, signer = chain
    plant_v3_price_gap(rpc, dep, "WETH", "USDC", 3000, 2.0)
    pools = [dep.pool("uniswap-v3", "WETH", "USDC", 500), dep.pool("uniswap-v3", "USDC", "WETH", 3000)]
    tokens = [dep.weth, dep.token("USDC"), dep.weth]
    execute_and_check(rpc, dep, signer, pools, tokens, flash=True)


def test_a_v3_hop_must_be_a_genuine_factory_pool(chain: Any) -> None:
    rpc, dep, signer = chain
    plant_v3_price_gap(rpc, dep, "WETH", "USDC", 3000, 3.0)
    real = dep.pool("uniswap-v3", "USDC", "WETH", 3000)
    usdc = dep.token("USDC")
    # the real 3000 pool presented with the wrong fee tier does not derive from the factory
    hops = [Hop(real["address"], dep.weth, "v3", 500), Hop(dep.pool("uniswap", "WETH", "USDC")["address"], usdc)]
    data = encode_execute(usdc, 10**21, 0, hops)
    with pytest.raises(RpcError) as err:
        rpc.call("eth_call", [{"from": signer.address, "to": dep.executor, "data": data}, "latest"])
    assert decode_revert(err.value.data if isinstance(err.value.data, str) else None) == "BadHop(0)"
