"""The native price rule (``arbbot.paths.pricing``) and the engine's use of it: one unit of
value for every start token, default start tokens by native-side liquidity, and a chain
whose native token has no pools. Pure: no network."""

from __future__ import annotations

import logging
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arbbot.paths import PathEngine
from arbbot.paths.pricing import DEFAULT_MIN_NATIVE_LIQUIDITY_WEI, NativePricer, pair_price, pool_quote
from arbbot.scoring.rule import RuleScorer
from arbbot.types import Opportunity, V3PoolState
from tests.paths._paths_helpers import DAI, USDC, WETH, addr, evaluate, tok, v2

E18 = 10**18
FLOOR = DEFAULT_MIN_NATIVE_LIQUIDITY_WEI


def pricer(*states):  # type: ignore[no-untyped-def]
    return NativePricer.from_states(states, WETH)


def test_a_direct_pool_gives_its_mid_price_exactly() -> None:
    # 1 WETH = 2000 USDC (6 decimals): 1e18 / 2e9 = 5e8 wei per USDC base unit
    p = pricer(v2(1, WETH, USDC, 1000 * E18, 2_000_000 * 10**6)).price(USDC)
    assert p is not None and p.price == Fraction(5 * 10**8) and p.pools == (addr(1),)
    assert p.to_native(3) == 15 * 10**8
    assert pricer().price(WETH).price == 1  # type: ignore[union-attr]


def test_a_manipulated_thin_pool_does_not_move_the_price() -> None:
    deep = v2(1, USDC, WETH, 2_000_000 * 10**6, 1000 * E18)
    # pushed to 100x the price: still above the floor, but with a sliver of the pair's liquidity
    pushed = v2(2, USDC, WETH, 10**6, 5 * E18)
    dust = v2(3, USDC, WETH, 1, FLOOR - 1)  # any price at all, below the floor: not counted
    alone = pricer(deep).price(USDC)
    both = pricer(deep, pushed, dust).price(USDC)
    assert alone is not None and both is not None and both.price == alone.price
    assert both.pools == (addr(1), addr(2))  # the dust pool was never counted
    # a dust pool alone gives no price at all
    assert pricer(dust).price(USDC) is None


@given(
    deep=st.tuples(st.integers(10**20, 10**30), st.integers(10**19, 10**27)),
    thin=st.tuples(st.integers(1, 10**30), st.integers(FLOOR, 10**27)),
)
def test_a_pool_with_less_liquidity_than_the_rest_never_sets_the_price(
    deep: tuple[int, int], thin: tuple[int, int]
) -> None:
    a, b = v2(1, USDC, WETH, *deep), v2(2, USDC, WETH, *thin)
    qa, qb = pool_quote(a, USDC), pool_quote(b, USDC)
    assert qa is not None and qb is not None
    price = pricer(a, b).price(USDC)
    assert price is not None
    if qb.weight < qa.weight:
        assert price.price == Fraction(deep[1], deep[0])
    # the weighted median is always one of the pools' own prices, never beyond them
    assert price.price in (qa.price, qb.price)


@given(amount=st.integers(0, 2**200), num=st.integers(1, 2**100), den=st.integers(1, 2**100))
def test_conversions_are_exact_and_round_conservatively(amount: int, num: int, den: int) -> None:
    from arbbot.paths.pricing import NativePrice

    p = NativePrice(USDC, Fraction(num, den))
    assert p.to_native(amount) == (amount * num) // den  # down: a profit is never overstated
    tokens = p.from_native(amount)
    assert p.to_native(tokens) >= amount  # up: gas is never understated
    assert tokens == 0 or p.to_native(tokens - 1) < amount


def test_v3_and_v2_agree_and_v3_depth_is_its_virtual_reserve() -> None:
    sqrt_price = 2**96 * 4  # token1 per token0 = 16
    pool = V3PoolState(addr(9), WETH, USDC, 3000, 60, sqrt_price, 0, 10**20)
    q = pool_quote(pool, USDC)
    assert q is not None and q.price == Fraction(1, 16) and q.quote_depth == 10**20 // 4
    assert pool_quote(pool, WETH).price == 16  # type: ignore[union-attr]
    pp = pair_price([pool, v2(1, WETH, USDC, 10**20, 16 * 10**20)], USDC, min_quote_depth=FLOOR)
    assert pp is not None and pp.price == Fraction(1, 16)


def test_two_hops_go_through_the_deepest_intermediate() -> None:
    x = tok(0x77)
    states = [
        v2(1, WETH, USDC, 1000 * E18, 2_000_000 * 10**6),  # USDC: 5e8 wei per unit
        v2(2, WETH, DAI, 1000 * E18, 2_000_000 * E18),  # DAI: 5e-4 wei per unit
        v2(3, x, USDC, 10 * E18, 20 * 10**6),  # X = 2e-12 USDC... via USDC: 1e-3 wei; shallow
        v2(4, x, DAI, 10**6 * E18, 3 * 10**6 * E18),  # via DAI: 1.5e-3 wei per X unit; deep
    ]
    p = pricer(*states).price(x)
    assert p is not None and p.price == Fraction(3) * Fraction(1, 2000) and p.pools == (addr(4), addr(2))
    assert pricer(v2(5, x, tok(0x78), E18, E18)).price(x) is None  # no path to native: no price


# --------------------------------------------------------------------------- the engine


def test_the_engine_ranks_by_native_value_not_raw_amounts() -> None:
    cheap = tok(0x99)  # 1 WETH = 1e9 CHEAP units: raw profits in it are huge, worth little
    e = PathEngine(base_tokens=[WETH, cheap], weth=WETH, max_hops=2)
    e.upsert([
        v2(1, WETH, cheap, 10**6 * E18, 10**15 * E18),  # deep: prices CHEAP
        v2(2, cheap, USDC, 10**9 * E18, E18),  # a cheap/USDC gap (no WETH): starts at CHEAP
        v2(3, cheap, USDC, 11 * 10**8 * E18, E18),
        v2(4, WETH, DAI, 100 * E18, 100 * E18),  # a WETH/DAI gap
        v2(5, WETH, DAI, 100 * E18, 104 * E18),
    ])
    opps = evaluate(e, gas_price_wei=10**9)
    by_start = {o.tokens[0]: o for o in opps}
    c, w = by_start[cheap], by_start[WETH]
    assert c.profit > w.profit  # by raw amounts the cheap cycle wins
    assert c.profit_native == c.profit // 10**9 and w.profit_native == w.profit
    assert w.net_profit_native > c.net_profit_native  # type: ignore[operator]
    assert opps[0] is w  # the engine ranks in native
    decided = RuleScorer(margin=1).decide(opps)
    assert decided[0].opportunity is w


def test_default_start_tokens_are_those_liquid_against_the_native_token(caplog: pytest.LogCaptureFixture) -> None:
    thin = tok(0x55)
    e = PathEngine(base_tokens=[], weth=WETH, max_hops=2)
    e.upsert([
        v2(1, WETH, USDC, 1000 * E18, 2_000_000 * 10**6),  # USDC: liquid
        v2(2, WETH, thin, FLOOR - 1, E18),  # below the floor: not a start token
        v2(3, USDC, DAI, 10**12, 10**24),  # a USDC/DAI gap with no WETH in it
        v2(4, USDC, DAI, 10**12, 11 * 10**23),
    ])
    assert e.base_tokens == (WETH, USDC)
    opps = evaluate(e, gas_price_wei=10**9)
    assert {o.tokens[0] for o in opps} == {USDC} and all(o.profit_native for o in opps)
    # a token that becomes liquid later joins, and its cycles are indexed then
    e.upsert([v2(5, WETH, DAI, 1000 * E18, 2_000_000 * E18)])
    assert e.base_tokens == (WETH, USDC, DAI)
    counts = sum(1 for _ in e.iter_cycles())
    fresh = PathEngine(base_tokens=[USDC, DAI], weth=WETH, max_hops=2)
    fresh.upsert(e.states.values())
    assert counts == sum(1 for _ in fresh.iter_cycles())


def test_a_chain_whose_native_token_has_no_pools_still_finds_cycles_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The user's weth setting names a token with no pools: cycles start at the configured
    # tokens all the same; none can be valued in native, so they rank last and say why.
    nothing = tok(0x01)
    e = PathEngine(base_tokens=[USDC, tok(0x02)], weth=nothing, max_hops=2)
    e.upsert([v2(1, USDC, DAI, 10**12, 10**24), v2(2, USDC, DAI, 10**12, 11 * 10**23)])
    with caplog.at_level(logging.WARNING, logger="arbbot.paths.engine"):
        assert e.missing_start_tokens() == [nothing, tok(0x02)]
        assert e.missing_start_tokens() == [nothing, tok(0x02)]
        opps = evaluate(e, gas_price_wei=10**9)
        evaluate(e, gas_price_wei=10**9)
    assert opps and all(o.tokens[0] == USDC and o.profit_native is None and o.gas_cost == 0 for o in opps)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 3  # each said once
    assert warnings[0].startswith(f"the chain's native token {nothing} (the weth setting) has no pools")
    assert warnings[1] == f"start token {tok(0x02)} has no pools on this chain: no cycle starts there"
    assert warnings[2].startswith(f"start token {USDC} has no price in the native token {nothing}")
    decided = RuleScorer().decide(opps)
    assert all(s.decision == "skip" and s.reason.startswith("no price in the native token") for s in decided)


def test_the_native_value_crosses_the_wire_and_its_absence_means_unknown() -> None:
    e = PathEngine(base_tokens=[USDC], weth=WETH, max_hops=2)
    e.upsert([
        v2(1, WETH, USDC, 1000 * E18, 2_000_000 * 10**6),
        v2(2, USDC, DAI, 10**12, 10**24), v2(3, USDC, DAI, 10**12, 11 * 10**23),
    ])
    [o] = [o for o in evaluate(e, gas_price_wei=10**9) if o.tokens[0] == USDC]
    assert o.price_pools == (addr(1),)
    assert Opportunity.from_wire(o.to_wire()) == o
    old = {k: v for k, v in o.to_wire().items() if k not in ("profit_native", "price_pools")}
    back = Opportunity.from_wire(old)
    assert back.profit_native is None and back.price_pools == () and back.net_profit_native is None
