"""The pipeline bench's market on a devnet (``bench.pipeline.onchain``): a pool placed there
trades, through the project's ArbExecutor, exactly as the project's exact math says its
state does, to the wei, for every pool code it places (V2 at 0.3% and at 0.25%, V3 at each
fee tier), before and after the feed's moves are written (``Mirror.move``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from arbbot.execution.executor import encode_cycle, encode_execute, hops_for_cycle
from arbbot.pools import amount_out
from arbbot.types import PoolState, V2PoolState, V3PoolState
from bench.paths.synth import USDC, WETH
from bench.pipeline import onchain
from bench.pipeline.market import build
from tests.execution.executor_helpers import revert_reason


def _cheaper_weth(p: PoolState, pct: float) -> PoolState:
    """``p`` with WETH ``pct``% cheaper in USDC (as a block's swaps move it)."""
    f = 1 + pct / 100
    if isinstance(p, V2PoolState):
        weth0 = p.token0 == WETH
        return dataclasses.replace(p, reserve0=int(p.reserve0 * f) if weth0 else p.reserve0,
                                   reserve1=p.reserve1 if weth0 else int(p.reserve1 * f))
    from arbbot.math.tick_math import get_tick_at_sqrt_ratio

    # price = token1 per token0: WETH cheaper lowers it when WETH is token0
    g = (1 / f) ** 0.5 if p.token0 == WETH else f ** 0.5
    sqrt_p = int(p.sqrt_price_x96 * g)
    return dataclasses.replace(p, sqrt_price_x96=sqrt_p, tick=get_tick_at_sqrt_ratio(sqrt_p))


def _profit(rpc: Any, signer: Any, executor: str, states: list[PoolState], amount_in: int) -> tuple[int, str]:
    """The cycle WETH -> USDC -> WETH through ``states`` at ``amount_in``: the exact math's
    profit, and what the executor says of one wei more than it as the minimum."""
    tokens = [WETH, USDC, WETH]
    amounts, x = [], amount_in
    for s, t in zip(states, tokens):
        x = amount_out(s, t, x)
        amounts.append(x)
    predicted = amounts[-1] - amount_in
    assert predicted > 0
    data = encode_cycle(states, tokens, amount_in, amounts, predicted)
    rpc.call("eth_call", [{"from": signer.address, "to": executor, "data": data}, "latest"])  # succeeds
    over = encode_execute(WETH, amount_in, predicted + 1, hops_for_cycle(states, tokens))
    return predicted, revert_reason(rpc, signer.address, executor, over)


def test_the_bench_market_on_the_devnet_trades_as_its_exact_math(chain: Any) -> None:
    rpc, dep, signer = chain
    market = build()
    pair = [p for p in market.pools if {p.token0, p.token1} == {WETH, USDC}]
    kinds = {(p.kind, p.fee_pips) for p in pair}
    assert {("v2", 3000), ("v2", 2500), ("v3", 100), ("v3", 500), ("v3", 3000)} <= kinds
    mirror = onchain.place(rpc, dep.deployer, dep.executor, pair, market.dexes, progress=lambda _: None)
    ref = next(p for p in pair if p.kind == "v2" and p.fee_pips == 3000)
    checked = 0
    for p in pair:
        if p is ref:
            continue
        # WETH made cheaper on p: sell WETH on the reference pool, buy it back on p
        moved = _cheaper_weth(p, 2.0)
        mirror.move([moved])
        depth = ref.reserve0 if ref.token0 == WETH else ref.reserve1
        predicted, over = _profit(rpc, signer, dep.executor, [ref, moved], depth // 2000)
        assert over == f"ProfitTooLow({predicted}, {predicted + 1})", (p.kind, p.fee_pips)
        # and the other way round, the moved pool first (a V3 pool as the flash source)
        back = _cheaper_weth(p, -2.0)
        mirror.move([back])
        predicted, over = _profit(rpc, signer, dep.executor, [back, ref], depth // 2000)
        assert over == f"ProfitTooLow({predicted}, {predicted + 1})", (p.kind, p.fee_pips, "first")
        checked += 1
    assert checked == len(pair) - 1 and any(isinstance(p, V3PoolState) for p in pair)
