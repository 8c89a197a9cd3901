"""Exactness on anvil: ``arbbot.pools.v3`` against the genuine Uniswap V3 contracts.

The npm UniswapV3Factory, NonfungiblePositionManager, QuoterV2 and SwapRouter; three
pools (fee tiers 500, 3000, 10000) with many overlapping positions and, in the 1% pool,
gaps of zero liquidity. Every random exact-input quote (both directions, up to sizes
that exhaust the pool) must equal QuoterV2's to the wei, and real swaps must leave the
pool in exactly the simulated state.
"""

from __future__ import annotations

import random
from typing import Any, Iterator

import pytest

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import encode_call, send_unlocked
from arbbot.chain.v3_state import read_v3_state
from arbbot.devnet.anvil import start_anvil
from arbbot.devnet.v3 import FEE_TICK_SPACING, decode_quote, sort_tokens
from arbbot.errors import InsufficientLiquidity, RpcError
from arbbot.math.tick_math import get_sqrt_ratio_at_tick
from arbbot.pools import v3
from arbbot.types import V3PoolState
from tests.pools.v3_chain_helpers import (
    V3Stack,
    balance_of,
    create_pool,
    deploy_token,
    deploy_v3_stack,
    mint_position,
    quote_calls,
    swap_exact_input,
)

E18 = 10**18
# fee -> (start tick, whether to add a wide "backstop" position, positions near the price)
POOLS = {500: (3, True, 30), 3000: (-23_030, True, 25), 10000: (46_050, False, 25)}


class Chain:
    def __init__(self, stack: V3Stack, pools: dict[int, tuple[str, str, str]], ranges: dict[int, list[tuple[int, int]]]):
        self.stack = stack
        self.pools = pools  # fee -> (pool, token0, token1)
        self.ranges = ranges

    one_sided: tuple[str, str, str, list[tuple[int, int]]]

    def state(self, fee: int) -> V3PoolState:
        return read_v3_state(self.stack.rpc, self.pools[fee][0])


@pytest.fixture(scope="module")
def chain() -> Iterator[Chain]:
    node = start_anvil()
    try:
        rpc = RpcClient(node.url, timeout_s=60)
        sender = rpc.call("eth_accounts")[0].lower()
        stack = deploy_v3_stack(rpc, sender)
        tok_a = deploy_token(stack, "TKA", 10**32)
        tok_b = deploy_token(stack, "TKB", 10**32)
        rng = random.Random(20240604)
        pools: dict[int, tuple[str, str, str]] = {}
        ranges: dict[int, list[tuple[int, int]]] = {}
        for fee, (start, backstop, n_near) in POOLS.items():
            spacing = FEE_TICK_SPACING[fee]
            t0, t1 = sort_tokens(tok_a, tok_b)
            pool = create_pool(stack, t0, t1, fee, get_sqrt_ratio_at_tick(start) + rng.randrange(10**20))
            pools[fee] = (pool, t0, t1)
            centre = start // spacing * spacing
            spans = []
            if backstop:
                spans.append((centre - 3000 * spacing, centre + 3000 * spacing))
            for _ in range(n_near):  # overlapping ranges around the price, some one-sided
                a = centre + rng.randrange(-120, 121) * spacing
                b = a + rng.randrange(1, 80) * spacing
                spans.append((a, b))
            # ranges further out, leaving zero-liquidity gaps in between
            spans += [(centre - 400 * spacing, centre - 300 * spacing), (centre + 250 * spacing, centre + 260 * spacing)]
            spans += [(centre, centre + spacing), (centre - spacing, centre)]  # on the current tick
            for lo, hi in spans:
                mint_position(stack, t0, t1, fee, lo, hi, rng.randrange(10**20, 10**22), rng.randrange(10**20, 10**22))
            ranges[fee] = spans
        # a second pair whose liquidity lies only above the price: token0 in finds none
        tok_c = deploy_token(stack, "TKC", 10**32)
        t0, t1 = sort_tokens(tok_a, tok_c)
        pool = create_pool(stack, t0, t1, 3000, get_sqrt_ratio_at_tick(600))
        one_sided = [(1200, 1800), (1500, 2400), (3000, 3060)]
        for lo, hi in one_sided:
            mint_position(stack, t0, t1, 3000, lo, hi, 10**21, 10**21)
        chain = Chain(stack, pools, ranges)
        chain.one_sided = (pool, t0, t1, one_sided)
        yield chain
    finally:
        node.stop()


def _quote_all(chain: Chain, requests: list[tuple[int, bool, int]], exact_output: bool = False) -> list[Any]:
    calls = []
    for fee, zero_for_one, amount in requests:
        _, t0, t1 = chain.pools[fee]
        token_in, token_out = (t0, t1) if zero_for_one else (t1, t0)
        calls += quote_calls(chain.stack, [(token_in, token_out, amount, fee)], exact_output=exact_output)
    return chain.stack.rpc.batch(calls, raise_errors=False)


def test_state_reader_finds_every_minted_tick(chain: Chain) -> None:
    for fee, spans in chain.ranges.items():
        state = chain.state(fee)
        expected = sorted({t for span in spans for t in span})
        assert [t for t, _ in state.ticks] == expected
        assert sum(net for _, net in state.ticks) == 0
        active = sum(net for t, net in state.ticks if t <= state.tick)
        assert active == state.liquidity > 0
        assert state.fee_pips == fee and state.tick_spacing == FEE_TICK_SPACING[fee]
        pool, t0, t1 = chain.pools[fee]
        assert (state.address, state.token0, state.token1) == (pool, t0, t1)


def test_exact_input_quotes_equal_quoter_v2(chain: Chain) -> None:
    rng = random.Random(7)
    requests = []
    for fee in POOLS:
        for zero_for_one in (True, False):
            for _ in range(150):
                requests.append((fee, zero_for_one, int(10 ** rng.uniform(0, 25.5))))
            requests += [(fee, zero_for_one, 1), (fee, zero_for_one, 10**30)]
    replies = _quote_all(chain, requests)
    states = {fee: chain.state(fee) for fee in POOLS}
    compared = reverted = partial = 0
    max_crossed = 0
    for (fee, zero_for_one, amount), reply in zip(requests, replies):
        state = states[fee]
        token_in = state.token0 if zero_for_one else state.token1
        if isinstance(reply, RpcError):  # the quoter rejects swaps that absorb nothing
            with pytest.raises(InsufficientLiquidity):
                v3.amount_out(state, token_in, amount)
            reverted += 1
            continue
        quoted, sqrt_after, _, _ = decode_quote(reply)
        assert v3.amount_out(state, token_in, amount) == quoted, (fee, zero_for_one, amount)
        res = v3.swap(state, zero_for_one, amount)
        assert res.state_after.sqrt_price_x96 == sqrt_after
        max_crossed = max(max_crossed, res.ticks_crossed)
        partial += (res.amount0 if zero_for_one else res.amount1) < amount
        compared += 1
    print(
        f"\nV3 exact-input quotes == QuoterV2: {compared} ({partial} partial fills, +{reverted} rejected by both);"
        f" max initialized ticks crossed {max_crossed}"
    )
    assert compared >= 800 and max_crossed >= 30 and partial > 0


def test_pool_without_liquidity_on_one_side(chain: Chain) -> None:
    pool, t0, t1, spans = chain.one_sided
    state = read_v3_state(chain.stack.rpc, pool)
    assert state.liquidity == 0 and [t for t, _ in state.ticks] == sorted({t for s in spans for t in s})
    amounts = [1, 10**6, 10**18, 10**21, 10**27]
    calls = quote_calls(chain.stack, [(t0, t1, a, 3000) for a in amounts] + [(t1, t0, a, 3000) for a in amounts])
    replies = chain.stack.rpc.batch(calls, raise_errors=False)
    for amount, reply in zip(amounts, replies[: len(amounts)]):
        assert isinstance(reply, RpcError)  # token0 in: nothing below the price
        with pytest.raises(InsufficientLiquidity):
            v3.amount_out(state, t0, amount)
    for amount, reply in zip(amounts, replies[len(amounts) :]):
        assert not isinstance(reply, RpcError)
        assert v3.amount_out(state, t1, amount) == decode_quote(reply)[0]


def test_exact_output_quotes_equal_quoter_v2(chain: Chain) -> None:
    rng = random.Random(11)
    requests = [(fee, zfo, int(10 ** rng.uniform(0, 23))) for fee in POOLS for zfo in (True, False) for _ in range(15)]
    replies = _quote_all(chain, requests, exact_output=True)
    states = {fee: chain.state(fee) for fee in POOLS}
    compared = 0
    for (fee, zero_for_one, amount), reply in zip(requests, replies):
        state = states[fee]
        token_out = state.token1 if zero_for_one else state.token0
        if isinstance(reply, RpcError):
            with pytest.raises(InsufficientLiquidity):
                v3.amount_in(state, token_out, amount)
            continue
        assert v3.amount_in(state, token_out, amount) == decode_quote(reply)[0], (fee, zero_for_one, amount)
        compared += 1
    assert compared >= 60


def test_tiny_liquidity_1bp_pool_exact_in_and_out_equal_quoter_v2(chain: Chain) -> None:
    """A fee-100 pool (tick spacing 1, enabled on the genuine factory as its owner) with
    ranges so thin that one unit of output is worth ~150 wei of input, and a word boundary
    inside a range: every exact-input quote from 1 to 400 wei and the exact-output quote of
    each output it gives equal QuoterV2's. It also pins down Uniswap's own rounding that
    tests/pools/test_v3_pool.py allows for: exact output pays for a whole range when the
    amount asked reaches that range's output rounded down."""
    stack, rpc = chain.stack, chain.stack.rpc
    send_unlocked(rpc, stack.sender, to=stack.factory, data=encode_call("enableFeeAmount(uint24,int24)", [100, 1]))
    tok_d = deploy_token(stack, "TKD", 10**30)
    tok_e = deploy_token(stack, "TKE", 10**30)
    t0, t1 = sort_tokens(tok_d, tok_e)
    pool = create_pool(stack, t0, t1, 100, 6_615_437_726_203_242_315_704_994_259)  # tick -49661
    # below the price, so token1 only: 2 wei over 44 ticks, 1 wei twice over one tick
    for lo, hi, amount1 in ((-49936, -49892, 2), (-49864, -49863, 1), (-49864, -49863, 1)):
        mint_position(stack, t0, t1, 100, lo, hi, 0, amount1)
    rpc.call("evm_mine")
    state = read_v3_state(rpc, pool)
    assert state.liquidity == 0 and len(state.ticks) == 4
    amounts = list(range(1, 401))
    replies = rpc.batch(quote_calls(stack, [(t0, t1, a, 100) for a in amounts]), raise_errors=False)
    outs = {}
    for amount, reply in zip(amounts, replies):
        assert not isinstance(reply, RpcError)
        outs[amount] = v3.amount_out(state, t0, amount)
        assert outs[amount] == decode_quote(reply)[0], amount
    wanted = sorted({o for o in outs.values() if o > 0})
    assert wanted, "the pool must pay out something for 400 wei"
    replies = rpc.batch(quote_calls(stack, [(t0, t1, o, 100) for o in wanted], exact_output=True), raise_errors=False)
    cost = {}
    for out, reply in zip(wanted, replies):
        assert not isinstance(reply, RpcError)
        cost[out] = v3.amount_in(state, t1, out)
        assert cost[out] == decode_quote(reply)[0], out
    first = min(a for a, o in outs.items() if o == wanted[0])
    assert cost[wanted[0]] > first + 100  # the whole-range rounding, in the genuine quoter too


def test_real_swaps_leave_the_simulated_state(chain: Chain) -> None:
    stack = chain.stack
    rng = random.Random(3)
    for fee in POOLS:
        for zero_for_one in (True, False, True):
            state = chain.state(fee)
            token_in, token_out = (state.token0, state.token1) if zero_for_one else (state.token1, state.token0)
            amount = rng.randrange(10**21, 10**22)  # large: crosses many ticks
            predicted = v3.swap(state, zero_for_one, amount)
            before = balance_of(stack, token_out, stack.sender)
            swap_exact_input(stack, token_in, token_out, fee, amount)
            got = balance_of(stack, token_out, stack.sender) - before
            assert got == -(predicted.amount1 if zero_for_one else predicted.amount0)
            after = chain.state(fee)
            sim = predicted.state_after
            assert (after.sqrt_price_x96, after.tick, after.liquidity) == (sim.sqrt_price_x96, sim.tick, sim.liquidity)
            assert after.ticks == sim.ticks
            # reads pinned to the pre-swap block still see the pre-swap state
            pinned = read_v3_state(stack.rpc, state.address, state.block_number)
            assert pinned == state


def test_windowed_read_keeps_the_ticks_near_the_price(chain: Chain) -> None:
    full = chain.state(500)
    near = read_v3_state(chain.stack.rpc, full.address, full.block_number, word_radius=1)
    window = 10 * 256 * 2  # ticks covered by the current word and one either side, at least
    assert set(near.ticks) <= set(full.ticks)
    assert {t for t in full.ticks if abs(t[0] - full.tick) < window // 2} <= set(near.ticks)
    assert (near.sqrt_price_x96, near.tick, near.liquidity) == (full.sqrt_price_x96, full.tick, full.liquidity)
