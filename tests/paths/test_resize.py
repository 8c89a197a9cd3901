"""``resize``: a cycle re-sized on newer states is at least as good as the old size there,
is exactly what the path engine finds on those states, honours a cap, gives ``None`` when
nothing pays, and (on anvil, genuine Uniswap V2/V3 and the project's ArbExecutor) predicts
the executor's ``eth_call`` profit to the wei after real swaps moved the pools."""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arbbot import pools as pool_models
from arbbot.math.v2 import get_amount_out
from arbbot.paths import PathEngine, path_id_for
from arbbot.paths.resize import BadCycle, Sized, resize
from arbbot.types import Opportunity, PoolState, V2PoolState
from tests.paths._paths_helpers import DAI, USDC, WETH, evaluate, v2
from tests.paths.test_v3_cycles import v3pool

# --------------------------------------------------------------------------- helpers


def profit_at(states: Sequence[PoolState], tokens: Sequence[str], amount_in: int) -> int | None:
    """Exact gross profit of ``amount_in`` through the cycle; ``None`` if a hop reverts."""
    x = amount_in
    try:
        for state, token in zip(states, tokens):
            x = pool_models.amount_out(state, token, x)
    except Exception:  # noqa: BLE001 - any revert means: this amount cannot be sent
        return None
    return x - amount_in


def engine_finds(states: Sequence[PoolState], tokens: Sequence[str]) -> Opportunity | None:
    """What the path stage finds for this very cycle on ``states`` (gas 0, threshold 0)."""
    engine = PathEngine(base_tokens=[tokens[0]], weth=tokens[0], max_hops=3)
    engine.upsert(states)
    pid = path_id_for([s.address for s in states], tokens[:-1])
    return next((o for o in evaluate(engine) if o.path_id == pid), None)


def swapped(state: V2PoolState, token_in: str, amount_in: int) -> V2PoolState:
    """The pair after a swap of ``amount_in`` (exact V2 arithmetic): a state that moved."""
    if token_in == state.token0:
        out = get_amount_out(amount_in, state.reserve0, state.reserve1, state.fee_pips)
        return dataclasses.replace(state, reserve0=state.reserve0 + amount_in, reserve1=state.reserve1 - out)
    out = get_amount_out(amount_in, state.reserve1, state.reserve0, state.fee_pips)
    return dataclasses.replace(state, reserve1=state.reserve1 + amount_in, reserve0=state.reserve0 - out)


E18, E6 = 10**18, 10**6
TOKENS_2 = [WETH, USDC, WETH]


def two_pools(gap_bp: int, depth_weth: int = 1000) -> list[V2PoolState]:
    """WETH -> USDC on A (2000 USDC/WETH), USDC -> WETH on B (WETH ``gap_bp`` cheaper)."""
    a = v2(1, USDC, WETH, 2000 * depth_weth * E6, depth_weth * E18)
    b = v2(2, USDC, WETH, 2000 * depth_weth * E6 * (10_000 - gap_bp) // 10_000, depth_weth * E18)
    return [a, b]


def mixed_three(price: float) -> list[PoolState]:
    """WETH -v2-> DAI -v2-> USDC -v3-> WETH; ``price``: USDC per WETH on the V3 pool."""
    p1 = v2(1, DAI, WETH, 4_200_000 * E18, 2000 * E18)
    p2 = v2(2, USDC, DAI, 3_000_000 * E6, 3_000_000 * E18)
    spot = price * E6 / E18  # USDC base units per wei (token0 = USDC: price is WETH per USDC)
    p3 = v3pool(3, USDC, WETH, 1 / spot, [(-887220, 887220, 3 * 10**16), (198000, 207000, 2 * 10**17)])
    return [p1, p2, p3]


TOKENS_3 = [WETH, DAI, USDC, WETH]


# --------------------------------------------------------------------------- (a) moved state


@settings(deadline=None, max_examples=150)  # the first example loads the sizing's kernels
@given(
    gap_bp=st.integers(80, 600),
    depth=st.integers(5, 5000),
    move_bp=st.integers(-400, 400),
)
def test_resized_beats_the_old_size_and_matches_the_engine_v2(gap_bp: int, depth: int, move_bp: int) -> None:
    states = two_pools(gap_bp, depth)
    old = engine_finds(states, TOKENS_2)
    assert old is not None
    assert resize(states, TOKENS_2) == Sized(old.amount_in, old.amount_out)
    # a competitor trades on pool B before we send: USDC in closes the gap, USDC out widens it
    b = states[1]
    if move_bp >= 0:
        moved_b = swapped(b, USDC, b.reserve0 * move_bp // 10_000 + 1)
    else:
        moved_b = swapped(b, WETH, b.reserve1 * -move_bp // 10_000 + 1)
    moved = [states[0], moved_b]
    new = resize(moved, TOKENS_2)
    again = engine_finds(moved, TOKENS_2)
    old_profit = profit_at(moved, TOKENS_2, old.amount_in)
    if new is None:
        assert again is None
        assert old_profit is None or old_profit <= 0
        return
    assert again is not None and (again.amount_in, again.amount_out) == (new.amount_in, new.amount_out)
    assert profit_at(moved, TOKENS_2, new.amount_in) == new.profit > 0
    assert old_profit is None or new.profit >= old_profit


@pytest.mark.parametrize("new_price", [2030.0, 2050.0, 2080.0, 2140.0, 2400.0])
def test_resized_beats_the_old_size_and_matches_the_engine_with_v3(new_price: float) -> None:
    """WETH is cheap on the V3 pool (2100 USDC/WETH elsewhere); its price moves (tick
    ranges crossed for the large moves) before the send."""
    states = mixed_three(2000.0)
    old = engine_finds(states, TOKENS_3)
    assert old is not None and old.hop_kinds == ("v2", "v2", "v3")
    assert resize(states, TOKENS_3) == Sized(old.amount_in, old.amount_out)
    moved = mixed_three(new_price)
    new = resize(moved, TOKENS_3)
    again = engine_finds(moved, TOKENS_3)
    old_profit = profit_at(moved, TOKENS_3, old.amount_in)
    if new is None:
        assert again is None and (old_profit is None or old_profit <= 0)
        return
    assert again is not None and (again.amount_in, again.amount_out) == (new.amount_in, new.amount_out)
    assert profit_at(moved, TOKENS_3, new.amount_in) == new.profit > 0
    assert old_profit is None or new.profit >= old_profit
    if new_price <= 2050.0:
        assert new.amount_in != old.amount_in  # it really was re-sized


def test_tokens_may_be_open_or_closed_and_in_any_case() -> None:
    states = two_pools(200)
    closed = resize(states, TOKENS_2)
    assert closed is not None
    assert resize(states, TOKENS_2[:-1]) == closed
    assert resize(states, [t.upper().replace("0X", "0x") for t in TOKENS_2]) == closed


# --------------------------------------------------------------------------- (b) the cap


@settings(deadline=None, max_examples=150)
@given(gap_bp=st.integers(80, 600), depth=st.integers(5, 5000), cap_pct=st.integers(1, 150))
def test_the_cap_is_honoured(gap_bp: int, depth: int, cap_pct: int) -> None:
    states = two_pools(gap_bp, depth)
    best = resize(states, TOKENS_2)
    assert best is not None
    cap = max(1, best.amount_in * cap_pct // 100)
    capped = resize(states, TOKENS_2, max_amount_in=cap)
    if cap >= best.amount_in:
        assert capped == best
        return
    cap_profit = profit_at(states, TOKENS_2, cap)
    if capped is None:
        assert cap_profit is None or cap_profit <= 0
        return
    assert capped.amount_in <= cap
    assert profit_at(states, TOKENS_2, capped.amount_in) == capped.profit
    assert cap_profit is None or capped.profit >= cap_profit
    assert capped.profit <= best.profit


def test_the_cap_is_honoured_with_v3() -> None:
    states = mixed_three(2000.0)
    best = resize(states, TOKENS_3)
    assert best is not None
    for cap in (best.amount_in // 10, best.amount_in // 2, best.amount_in - 1):
        capped = resize(states, TOKENS_3, max_amount_in=cap)
        assert capped is not None and capped.amount_in <= cap
        assert profit_at(states, TOKENS_3, capped.amount_in) == capped.profit
        assert capped.profit >= profit_at(states, TOKENS_3, cap)  # type: ignore[operator]
    assert resize(states, TOKENS_3, max_amount_in=best.amount_in) == best


@pytest.mark.parametrize("gap_bp", [300, 800, 1500])
def test_the_capped_size_is_the_best_at_or_under_the_cap_on_small_pools(gap_bp: int) -> None:
    """Tiny pools, so every input under the cap can be tried: the capped answer is the
    true best there (coarse output steps included)."""
    a = v2(1, USDC, WETH, 2_000_000, 1_000_000)
    b = v2(2, USDC, WETH, 2_000_000 * (10_000 - gap_bp) // 10_000, 1_000_000)
    states = [a, b]
    best = resize(states, TOKENS_2)
    assert best is not None
    for cap in sorted({1, 2, best.amount_in // 7, best.amount_in // 3, best.amount_in // 2, best.amount_in - 1}):
        if cap < 1:
            continue
        profits = [profit_at(states, TOKENS_2, x) for x in range(1, cap + 1)]
        top = max((p for p in profits if p is not None), default=None)
        capped = resize(states, TOKENS_2, max_amount_in=cap)
        if top is None or top <= 0:
            assert capped is None
        else:
            assert capped is not None and capped.amount_in <= cap and capped.profit == top


def test_a_bad_cap_is_refused() -> None:
    states = two_pools(200)
    for cap in (0, -5, 1.5, True):
        with pytest.raises(BadCycle, match="max_amount_in"):
            resize(states, TOKENS_2, max_amount_in=cap)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- (c) no longer pays


def test_a_cycle_that_no_longer_pays_gives_none() -> None:
    states = two_pools(200)
    assert resize(states, TOKENS_2) is not None
    level = [states[0], dataclasses.replace(states[1], reserve0=states[0].reserve0)]
    assert resize(level, TOKENS_2) is None  # same price on both: two fees, no profit
    assert engine_finds(level, TOKENS_2) is None
    within_fees = two_pools(50)  # a 0.5% gap does not pay two 0.3% fees
    assert resize(within_fees, TOKENS_2) is None
    reversed_gap = [states[1], states[0]]  # the cycle the wrong way round
    assert resize(reversed_gap, TOKENS_2) is None
    drained = [states[0], dataclasses.replace(states[1], reserve1=0)]
    assert resize(drained, TOKENS_2) is None
    assert resize(mixed_three(2200.0), TOKENS_3) is None  # V3 at the others' price: nothing


# --------------------------------------------------------------------------- bad input


def test_bad_cycles_are_refused_naming_the_bad_entry() -> None:
    a, b = two_pools(200)
    with pytest.raises(BadCycle, match="at least 2 pools"):
        resize([a], [WETH, USDC])
    with pytest.raises(BadCycle, match="need 2 or 3 tokens"):
        resize([a, b], [WETH])
    with pytest.raises(BadCycle, match="must end in the start token"):
        resize([a, b], [WETH, USDC, USDC])
    other = v2(9, DAI, WETH, 10**24, 10**21)
    with pytest.raises(BadCycle, match=f"hop 1: pool {other.address} does not trade"):
        resize([a, other], TOKENS_2)
    with pytest.raises(BadCycle, match="appears twice"):
        resize([a, a], TOKENS_2)
    with pytest.raises(BadCycle, match="hop 0: not a pool state"):
        resize([object(), b], TOKENS_2)  # type: ignore[list-item]


# --------------------------------------------------------------------------- (d) anvil


def _chain_fixtures() -> Any:
    """The executor tests' devnet fixtures (genuine V2/V3, ArbExecutor), reused as they are."""
    from tests.execution import conftest

    return conftest.devnet, conftest.chain


devnet, chain = _chain_fixtures()


def _execute_profit(rpc: Any, dep: Any, signer: Any, states: Sequence[PoolState], tokens: Sequence[str],
                    amount_in: int) -> int | None:
    """The executor's ``execute`` by ``eth_call`` (flash, minProfit 0), as the runner
    re-validates: its returned profit, or ``None`` if it reverts."""
    from arbbot.errors import RpcError
    from arbbot.execution.executor import encode_execute, hops_for_cycle

    data = encode_execute(tokens[0], amount_in, 0, hops_for_cycle(list(states), tokens), flash=True)
    try:
        raw = rpc.call("eth_call", [{"from": signer.address, "to": dep.executor, "data": data}, "latest"])
    except RpcError:
        return None
    return int(raw, 16)


def _read_states(rpc: Any, pools: Sequence[dict[str, Any]]) -> list[PoolState]:
    from arbbot.chain.v3_state import read_v3_state
    from arbbot.devnet.scenarios import v2_state

    return [v2_state(rpc, p) if p["kind"] == "v2" else read_v3_state(rpc, p["address"]) for p in pools]


def _units(dep: Any, symbol: str, amount: float) -> int:
    token = next(t for t in dep.tokens if t["symbol"] == symbol)
    return int(amount * 10 ** int(token["decimals"]))


def _check_on_chain(rpc: Any, dep: Any, signer: Any, pools: list[dict[str, Any]], tokens: list[str],
                    move: Any) -> None:
    before = resize(_read_states(rpc, pools), tokens)
    assert before is not None
    move()  # real swaps by someone else, mined, before our send
    states = _read_states(rpc, pools)
    new = resize(states, tokens)
    assert new is not None and new.amount_in != before.amount_in
    # the genuine contracts pay exactly the predicted profit at the re-sized amount ...
    assert _execute_profit(rpc, dep, signer, states, tokens, new.amount_in) == new.profit
    # ... which is the path stage's own answer on these states ...
    found = engine_finds(states, [t.lower() for t in tokens])
    assert found is not None and (found.amount_in, found.amount_out) == (new.amount_in, new.amount_out)
    # ... and more than the old size now realises (it reverts, or earns less)
    old = _execute_profit(rpc, dep, signer, states, tokens, before.amount_in)
    assert old is None or new.profit > old
    # a cap: the capped amount, and again exactly its profit on-chain
    capped = resize(states, tokens, max_amount_in=new.amount_in // 3)
    assert capped is not None and capped.amount_in <= new.amount_in // 3
    assert _execute_profit(rpc, dep, signer, states, tokens, capped.amount_in) == capped.profit


def test_on_anvil_two_v2_pools_moved_by_a_real_swap(chain: Any) -> None:
    from arbbot.devnet.scenarios import approve, fund_token, mine, swap_v2, v2_state
    from tests.execution.executor_helpers import planted_cycle

    rpc, dep, signer = chain
    pools, tokens = planted_cycle(rpc, dep)  # WETH ~3% cheaper on sushiswap
    other = rpc.call("eth_accounts")[7].lower()
    usdc = dep.token("USDC")

    def competitor_buys_weth_on_sushiswap() -> None:
        state = v2_state(rpc, pools[1])
        amount = (state.reserve0 if state.token0 == usdc else state.reserve1) // 200  # moves ~1% of the 3%
        fund_token(rpc, dep, usdc, other, amount)
        approve(rpc, other, usdc, dep.dex("sushiswap")["router"], amount)
        swap_v2(rpc, dep, other, pools[1], usdc, amount)
        mine(rpc)

    _check_on_chain(rpc, dep, signer, pools, tokens, competitor_buys_weth_on_sushiswap)


def test_on_anvil_mixed_v2_v3_cycle_moved_by_a_real_v3_swap(chain: Any) -> None:
    from arbbot.devnet import v3 as devnet_v3
    from arbbot.devnet.scenarios import approve, fund_token, mine, plant_v3_price_gap

    rpc, dep, signer = chain
    plant_v3_price_gap(rpc, dep, "WETH", "USDC", 3000, 3.0)  # WETH cheap on V3
    pools = [dep.pool("uniswap", "WETH", "DAI"), dep.pool("uniswap", "DAI", "USDC"),
             dep.pool("uniswap-v3", "USDC", "WETH", 3000)]
    tokens = [dep.weth, dep.token("DAI"), dep.token("USDC"), dep.weth]
    other = rpc.call("eth_accounts")[7].lower()
    usdc = dep.token("USDC")
    router = dep.dex("uniswap-v3")["swap_router"]

    def competitor_buys_weth_on_v3() -> None:
        amount = _units(dep, "USDC", 60_000)
        fund_token(rpc, dep, usdc, other, amount)
        approve(rpc, other, usdc, router, amount)
        devnet_v3.swap_exact_input_single(rpc, other, router, usdc, dep.weth, 3000, amount)
        mine(rpc)

    _check_on_chain(rpc, dep, signer, pools, tokens, competitor_buys_weth_on_v3)

