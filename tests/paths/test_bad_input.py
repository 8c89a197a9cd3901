"""Bad input never crashes the engine nor yields a cycle that would revert."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.paths._paths_helpers import USDC, WETH, addr, evaluate, tok, v2
from arbbot import pools as pool_models
from arbbot.paths import PathEngine
from arbbot.paths.screen import edge_coefficients
from arbbot.types import V3PoolState

MAX112 = 2**112 - 1


def _check_all_exact(e: PathEngine, opps) -> None:  # type: ignore[no-untyped-def]
    states = e.states
    for o in opps:
        x = o.amount_in
        for p, t in zip(o.pools, o.tokens):
            s = states[p]
            if s.kind == "v2":
                r_in = s.reserve0 if t == s.token0 else s.reserve1
                assert r_in + x <= MAX112
            x = pool_models.amount_out(s, t, x)
            assert x > 0
        assert x == o.amount_out and o.net_profit > 0


def test_zero_liquidity_pools_are_never_profitable() -> None:
    e = PathEngine(base_tokens=[USDC], weth=WETH)
    e.upsert([
        v2(1, WETH, USDC, 0, 10**24),
        v2(2, WETH, USDC, 10**21, 10**24),
        v2(3, WETH, USDC, 10**21, 0),
        v2(4, WETH, USDC, 1, 1),
    ])
    opps = evaluate(e)
    assert all(addr(1) not in o.pools and addr(3) not in o.pools for o in opps)
    _check_all_exact(e, opps)


def test_overflow_sized_reserves() -> None:
    e = PathEngine(base_tokens=[USDC], weth=WETH, max_hops=4)
    x, y = tok(0x31), tok(0x32)
    e.upsert([
        v2(1, WETH, USDC, MAX112, 1),
        v2(2, WETH, USDC, 1, MAX112),
        v2(3, USDC, x, MAX112, MAX112 - 5),
        v2(4, x, y, 1, MAX112),
        v2(5, y, WETH, MAX112, 2),
        v2(6, x, WETH, 3, MAX112),
        v2(7, WETH, y, MAX112 // 2, MAX112 // 3),
    ])
    opps = evaluate(e, gas_price_wei=10**9)
    _check_all_exact(e, opps)  # the uint112 balance guard holds


def test_weird_fees_and_malformed_pools_are_rejected_or_neutral() -> None:
    e = PathEngine(base_tokens=[USDC], weth=WETH)
    changed = e.upsert([
        v2(1, WETH, WETH, 10**20, 10**20),  # same token twice: not a pool
        v2(2, WETH, USDC, 10**20, 10**20, fee=1_000_000),  # 100% fee: screens as dead
        v2(3, WETH, USDC, 10**20, 3 * 10**20, fee=0),
    ])
    assert addr(1) not in changed and e.stats["upsert_rejected"] == 1
    assert edge_coefficients(v2(2, WETH, USDC, 1, 1, fee=1_000_000)) == (0.0, 0.0, 0.0, 0.0)
    _check_all_exact(e, evaluate(e))


def test_exclude_pool_and_token_with_reasons() -> None:
    fot = tok(0x99)
    e = PathEngine(base_tokens=[USDC], weth=WETH)
    e.upsert([
        v2(1, WETH, USDC, 10**21, 10**24),
        v2(2, WETH, USDC, 10**21, 2 * 10**24),
        v2(3, WETH, fot, 10**21, 10**24),
        v2(4, WETH, fot, 10**21, 2 * 10**24),
    ])
    assert e.cycle_count == 4
    e.exclude(fot, "fee-on-transfer: 1% burn")
    e.exclude(addr(2), "reverts on swap")
    assert e.excluded == {fot: "fee-on-transfer: 1% burn", addr(2): "reverts on swap"}
    assert e.cycle_count == 0
    assert evaluate(e) == []
    # excluded stay excluded when the scan stage sends them again
    assert e.upsert([v2(3, WETH, fot, 10**21, 10**24), v2(2, WETH, USDC, 1, 1)]) == set()


def test_v3_extreme_prices_and_zero_liquidity_do_not_crash() -> None:
    """Float overflow (p**4 of 2**128 prices) and zero liquidity crash nothing: the screen
    hands the exact stage only finite, positive warm starts (never NaN or inf), and no
    opportunity goes through a zero-liquidity pool."""
    x = tok(0x41)
    lo, hi = 4295128740, 1461446703485210103287273052203988822378723970341

    def v3(i: int, t0: str, t1: str, sqrt_p: int, liq: int) -> V3PoolState:
        return V3PoolState(address=addr(i), token0=t0, token1=t1, fee_pips=3000, tick_spacing=60,
                           sqrt_price_x96=sqrt_p, tick=0, liquidity=liq)

    e = PathEngine(base_tokens=[USDC], weth=WETH, max_hops=4)
    e.upsert([
        v3(1, WETH, USDC, hi, 2**127),
        v3(2, USDC, x, hi, 2**127),
        v3(3, x, WETH, hi, 2**127),
        v3(4, WETH, USDC, lo, 0),
        v3(5, WETH, x, 2**96, 0),
        v2(6, USDC, x, 1, MAX112),
    ])
    candidates = e.screen(None, gas_price_wei=0)  # must not raise
    assert candidates, "the extreme but finite prices must reach the screen's output to be checked"
    assert all(math.isfinite(x_float) and x_float > 0 for _k, _row, x_float in candidates)
    opps = evaluate(e, gas_price_wei=10**9)
    for o in opps:
        assert addr(4) not in o.pools and addr(5) not in o.pools


@settings(max_examples=60, deadline=None)
@given(
    reserves=st.lists(
        st.one_of(st.just(0), st.just(1), st.just(MAX112), st.integers(0, 2**112 - 1), st.integers(0, 2**130)),
        min_size=8, max_size=8,
    ),
)
def test_property_garbage_reserves_never_crash(reserves: list[int]) -> None:
    x = tok(0x51)
    e = PathEngine(base_tokens=[USDC], weth=WETH, max_hops=3)
    e.upsert([
        v2(1, WETH, USDC, reserves[0], reserves[1]),
        v2(2, USDC, x, reserves[2], reserves[3]),
        v2(3, x, WETH, reserves[4], reserves[5]),
        v2(4, WETH, USDC, reserves[6], reserves[7]),
    ])
    opps = evaluate(e, gas_price_wei=10**9)
    _check_all_exact(e, opps)
    for o in opps:
        assert not math.isnan(float(o.net_profit))
