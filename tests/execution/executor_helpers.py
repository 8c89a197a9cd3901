"""Helpers of the executor tests on anvil: exact sizing of a cycle (V2 by exact math, V3 by
the genuine QuoterV2), sending from the bot's key, reading a revert reason, planting a gap; a stand-in executor for the stage and runner tests."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import pytest

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import LocalSigner, wait_receipt
from arbbot.devnet import v3
from arbbot.devnet.record import Deployment
from arbbot.devnet.scenarios import plant_price_gap, v2_state
from arbbot.errors import RpcError
from arbbot.execution.executor import decode_revert
from arbbot.execution.runner import EXECUTED_TOPIC
from arbbot.pools import amount_out
from arbbot.types import Opportunity, ScoredOpportunity, V2PoolState


def cycle_amounts(states: Sequence[V2PoolState], tokens: Sequence[str], amount_in: int) -> list[int]:
    amounts, x = [], amount_in
    for s, t in zip(states, tokens):
        x = amount_out(s, t, x)
        amounts.append(x)
    return amounts


def size_cycle(states: Sequence[V2PoolState], tokens: Sequence[str], hi: int) -> tuple[int, list[int]]:
    """Best integer input by ternary search on the exact (concave) profit, then a local scan."""

    def profit(x: int) -> int:
        try:
            return cycle_amounts(states, tokens, x)[-1] - x
        except Exception:  # noqa: BLE001
            return -(10**80)

    lo = 1
    while hi - lo > 20:
        m1, m2 = lo + (hi - lo) // 3, hi - (hi - lo) // 3
        if profit(m1) < profit(m2):
            lo = m1
        else:
            hi = m2
    best = max(range(lo, hi + 1), key=profit)
    return best, cycle_amounts(states, tokens, best)


def send(signer: LocalSigner, to: str, data: str, gas: int = 2_000_000) -> dict[str, Any]:
    base = int(signer.rpc.call("eth_getBlockByNumber", ["latest", False])["baseFeePerGas"], 16)
    tx_hash = signer.send(to=to, data=data, gas=gas, max_fee_per_gas=2 * base + 10**9,
                          max_priority_fee_per_gas=10**9)
    return wait_receipt(signer.rpc, tx_hash)


def revert_reason(rpc: RpcClient, sender: str, to: str, data: str) -> str:
    with pytest.raises(RpcError) as err:
        rpc.call("eth_call", [{"from": sender, "to": to, "data": data}, "latest"])
    return decode_revert(err.value.data if isinstance(err.value.data, str) else None)


def planted_cycle(rpc: RpcClient, dep: Deployment, pct: float = 3.0) -> tuple[list[dict[str, Any]], list[str]]:
    """WETH made ~pct% cheaper on sushiswap: sell WETH on uniswap, buy it back on sushiswap."""
    plant_price_gap(rpc, dep, "WETH", "USDC", pct, dex="sushiswap")
    pools = [dep.pool("uniswap", "WETH", "USDC"), dep.pool("sushiswap", "WETH", "USDC")]
    return pools, [dep.weth, dep.token("USDC"), dep.weth]


def cycle_quoter(rpc: RpcClient, dep: Deployment, pools: Sequence[Mapping[str, Any]],
                 tokens: Sequence[str]) -> Callable[[int], list[int]]:
    """Exact per-hop outputs on the current state: V2 by exact math, V3 by QuoterV2. Each
    pool appears once in the cycle, so every hop sees the pre-cycle state."""
    states = {p["address"]: v2_state(rpc, p) for p in pools if p["kind"] == "v2"}
    quoter = dep.dex("uniswap-v3")["quoter"]

    def run(x: int) -> list[int]:
        out = []
        for p, t_in, t_out in zip(pools, tokens, tokens[1:]):
            if p["kind"] == "v2":
                x = amount_out(states[p["address"]], t_in, x)
            else:
                x = v3.quote_exact_input_single(rpc, quoter, t_in, t_out, p["fee_pips"], x)[0]
            out.append(x)
        return out

    return run


def size(run: Callable[[int], list[int]], hi: int) -> tuple[int, list[int]]:
    """Ternary search on the exact profit (concave in the input for these paths)."""

    def profit(x: int) -> int:
        try:
            return run(x)[-1] - x
        except Exception:  # noqa: BLE001
            return -(10**80)

    lo = 1
    while hi - lo > 10**12:  # to within 1e-6 of a token: plenty for a wei-exact check
        m1, m2 = lo + (hi - lo) // 3, hi - (hi - lo) // 3
        if profit(m1) < profit(m2):
            lo = m1
        else:
            hi = m2
    x = (lo + hi) // 2
    return x, run(x)


def stand_in_executor(profit: int) -> str:
    """Runtime code: log Executed(token=0, amountIn=1, profit) and return ``profit``."""
    return "0x" + "".join(
        [
            "7f" + profit.to_bytes(32, "big").hex(), "602052",  # mem[0x20] = profit
            "6001600052",  # mem[0x00] = amountIn (1)
            "6000", "7f" + EXECUTED_TOPIC[2:], "60406000a2",  # LOG2(mem[0:0x40], topic, token)
            "60206020f3",  # return mem[0x20:0x40]
        ]
    )


# The stand-in chain of the execute-stage tests (test_stage, test_decision_latency; the
# ``stand_in_node`` fixture in conftest.py): an anvil where STAND_IN_EXECUTOR answers every call with STAND_IN_PROFIT, and USDC/WETH
# cycles over two_price_pools that pay.
STAND_IN_WETH, STAND_IN_USDC = "0x" + "e0" * 20, "0x" + "c0" * 20
STAND_IN_EXECUTOR = "0x" + "ee" * 20
STAND_IN_PROFIT = 3 * 10**15
STAND_IN_BLOCK_HASH = "0x" + "07" * 32


def stand_in_scored(
    path_id: str, pools: tuple[str, str], *, chain_id: int = 31337, block_number: int = 7,
    observed_at: float = 0.0, decision: str = "execute",
) -> ScoredOpportunity:
    """A WETH -> USDC -> WETH opportunity through ``pools`` (a two_price_pools pair)."""
    return ScoredOpportunity(
        opportunity=Opportunity(
            chain_id=chain_id, block_number=block_number, block_hash=STAND_IN_BLOCK_HASH, path_id=path_id,
            pools=pools, tokens=(STAND_IN_WETH, STAND_IN_USDC, STAND_IN_WETH), amount_in=10**18,
            amount_out=10**18 + 4 * 10**15, gas_estimate=200_000, gas_price_wei=10**9, gas_cost=2 * 10**14,
            observed_at=observed_at,
        ),
        score=1.0 if decision == "execute" else 0.1,
        decision=decision,  # type: ignore[arg-type]
        reason="" if decision == "execute" else "score below the margin",
    )


def two_price_pools(pools: Sequence[str], usdc: str, weth: str, block: int = 7) -> list[V2PoolState]:
    """USDC/WETH pools where even ones pay 5% more USDC per WETH than odd ones: a cycle
    WETH -even-> USDC -odd-> WETH (or USDC -odd-> WETH -even-> USDC) pays on these states,
    so the runner's re-sizing on the hot state keeps it (a stand-in executor then pays)."""
    return [V2PoolState(p, usdc, weth, (105 if i % 2 == 0 else 100) * 10**22, 10**21, 3000, block)
            for i, p in enumerate(pools)]

