"""Sizing across its modules (``screen`` for the warm start and the unit-level cut,
``v2_closed`` and ``v2_exact`` for the exact V2 optimum): the integer-verified optimum vs
brute force, exactness of the output, and Hypothesis properties of the engine's
opportunities. One file because most checks compare one stage's result with another's."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.paths._paths_helpers import USDC, WETH, addr, evaluate, tok, v2
from arbbot import pools as pool_models
from arbbot.paths.engine import rank_key
from arbbot.paths import GasModel, PathEngine, resize
from arbbot.paths.screen import closed_form_python
from arbbot.paths.v2_exact import size_v2_exact

FEES = [3000, 1000, 500, 2500, 10000]


def _brute_force(hops: list, upto: int) -> tuple[int, int]:  # type: ignore[type-arg]
    """Best (profit, amount_in) over every integer 1..upto (int64 is exact at these sizes)."""
    x = np.arange(1, upto + 1, dtype=np.int64)
    amt = x.copy()
    ok = np.ones_like(x, dtype=bool)
    for state, token_in in hops:
        r_in, r_out = (
            (state.reserve0, state.reserve1) if token_in == state.token0 else (state.reserve1, state.reserve0)
        )
        wf = amt * (1_000_000 - state.fee_pips)
        amt = wf * r_out // (r_in * 1_000_000 + wf)
        ok &= amt > 0
    profit = np.where(ok, amt - x, -(1 << 62))
    i = int(np.argmax(profit))
    return int(profit[i]), int(x[i])


def _hops_for(pools: list, start: str) -> list:  # type: ignore[type-arg]
    hops, t = [], start
    for p in pools:
        hops.append((p, t))
        t = p.token1 if t == p.token0 else p.token0
    assert t == start
    return hops


def _sized(hops: list) -> tuple[int, int]:  # type: ignore[type-arg]
    coeffs = [resize._edge(state, token_in) for state, token_in in hops]
    x, profit = closed_form_python(coeffs)
    if profit == -math.inf:
        return 0, 0
    amount_in, amount_out = size_v2_exact(hops, x, coeffs)
    return amount_in, amount_out


def _random_cycle(rng: random.Random, k: int, lo: int, hi: int) -> list:  # type: ignore[type-arg]
    toks = [WETH] + [tok(0x40 + i) for i in range(k - 1)]
    pools = []
    for i in range(k):
        a, b = toks[i], toks[(i + 1) % k]
        if k == 2 and i == 1:
            a, b = b, a
        if rng.random() < 0.5:
            a, b = b, a
        pools.append(v2(i, a, b, rng.randint(lo, hi), rng.randint(lo, hi), rng.choice(FEES)))
    return _hops_for(pools if k > 2 else pools, WETH)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_exact_optimum_matches_brute_force_tiny_reserves(k: int) -> None:
    rng = random.Random(k)
    checked = profitable = 0
    while checked < 150:
        hops = _random_cycle(rng, k, 50, 20_000)
        best_profit, best_x = _brute_force(hops, 60_000)
        amount_in, amount_out = _sized(hops)
        checked += 1
        if best_profit <= 0:
            assert amount_in == 0  # nothing profitable may be reported
            continue
        profitable += 1
        assert amount_in > 0, (hops, best_profit, best_x)
        assert amount_out - amount_in >= best_profit - 1, (hops, best_profit, best_x, amount_in)
        # and it is real: the reported output is the exact chain
        x = amount_in
        for state, t in hops:
            x = pool_models.amount_out(state, t, x)
        assert x == amount_out
    assert profitable >= 20


@pytest.mark.parametrize("k", [2, 3])
def test_exact_optimum_vs_fine_grid_realistic_reserves(k: int) -> None:
    """18-decimal reserves: brute force over a fine grid around the optimum (+-2% of it,
    200k points) never beats the engine by more than 1 wei."""
    rng = random.Random(10 + k)
    done = 0
    while done < 8:
        hops = _random_cycle(rng, k, 10**20, 10**21)
        amount_in, amount_out = _sized(hops)
        if amount_in == 0:
            continue
        done += 1
        span = max(amount_in // 50, 1000)
        step = max(1, span // 1000)
        grid = range(max(1, amount_in - span), amount_in + span + 1, step)
        best = max(safe_profit(hops, x) for x in grid)
        for d in range(-300, 301):
            best = max(best, safe_profit(hops, amount_in + d))
        assert amount_out - amount_in >= best - 1


def pool_models_chain(hops: list, x: int) -> int:  # type: ignore[type-arg]
    for state, t in hops:
        x = pool_models.amount_out(state, t, x)
    return x


def safe_profit(hops: list, x: int) -> int:  # type: ignore[type-arg]
    """Profit, or a huge loss where a hop reverts (zero output feeds the next hop 0)."""
    try:
        return pool_models_chain(hops, x) - x
    except Exception:
        return -(1 << 300)


def test_zero_and_thirty_decimal_tokens() -> None:
    """A 0-decimal intermediate makes the integer profit a coarse staircase; the sizing
    must still land on its best step (checked by brute force)."""
    rng = random.Random(5)
    checked = 0
    for _ in range(60):
        coarse = tok(0x77)
        fine = tok(0x78)
        # WETH (18) -> COARSE (0 decimals, ~100 units) -> FINE (30 decimals) -> WETH
        p1 = v2(1, WETH, coarse, rng.randint(10**4, 10**5), rng.randint(50, 200), rng.choice(FEES))
        p2 = v2(2, coarse, fine, rng.randint(50, 200), rng.randint(10**31, 10**32), rng.choice(FEES))
        p3 = v2(3, fine, WETH, rng.randint(10**31, 10**32), rng.randint(10**4, 10**5), rng.choice(FEES))
        hops = _hops_for([p1, p2, p3], WETH)
        best_profit = max(safe_profit(hops, x) for x in range(1, 30_000))
        amount_in, amount_out = _sized(hops)
        if best_profit > 0:
            checked += 1
            assert amount_out - amount_in >= best_profit - 1
        else:
            assert amount_in == 0
    assert checked > 5


# --------------------------------------------------------------------------- properties

reserve = st.integers(min_value=1, max_value=2**112 - 1)
small_reserve = st.integers(min_value=10**3, max_value=10**30)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    r=st.lists(st.one_of(reserve, small_reserve), min_size=6, max_size=6),
    fees=st.lists(st.sampled_from(FEES + [0, 999_999]), min_size=3, max_size=3),
    gas_price=st.sampled_from([0, 1, 10**9, 10**11]),
)
def test_property_opportunities_are_exact_and_profitable(r: list[int], fees: list[int], gas_price: int) -> None:
    x = tok(0x55)
    pools = [
        v2(1, WETH, USDC, r[0], r[1], fees[0]),
        v2(2, USDC, x, r[2], r[3], fees[1]),
        v2(3, x, WETH, r[4], r[5], fees[2]),
        v2(4, WETH, USDC, r[1] // 2 + 1, r[0] // 3 + 1, 3000),
    ]
    e = PathEngine(base_tokens=[USDC], weth=WETH, max_hops=3)
    e.upsert(pools)
    opps = evaluate(e, gas_price_wei=gas_price)
    states = e.states
    for o in opps:
        assert o.net_profit > 0 and o.amount_in > 0
        amounts = e.hop_amounts(o)
        assert amounts[-1] == o.amount_out
        assert o.amount_out == pool_models_chain(_hops_for([states[p] for p in o.pools], WETH), o.amount_in)
        # no reserve overflow (the pair would revert past uint112)
        x_in = o.amount_in
        for p, t, out in zip(o.pools, o.tokens, amounts):
            s = states[p]
            r_in = s.reserve0 if t == s.token0 else s.reserve1
            assert r_in + x_in < 2**112
            x_in = out
        # local optimality within a wei (for inputs the pools accept)
        for d in (-3, -1, 1, 3):
            y = o.amount_in + d
            if y > 0:
                try:
                    alt = pool_models_chain(_hops_for([states[p] for p in o.pools], WETH), y) - y
                except Exception:
                    continue
                assert alt <= o.profit + 1
    assert opps == sorted(opps, key=rank_key)


def test_gas_cost_converted_to_start_token_and_threshold() -> None:
    e = PathEngine(base_tokens=[USDC], weth=WETH, max_hops=2, min_net_profit=0)
    # USDC-only 2-cycle between two USDC/DAI-like pools needs a USDC price of gas.
    d = tok(0x66)
    e.upsert([
        v2(1, WETH, USDC, 10**21, 2 * 10**9),  # 1 WETH = 2000 USDC (6 decimals): 2e-9 USDC-units per wei
        v2(2, USDC, d, 10**12, 10**24),
        v2(3, USDC, d, 10**12, 11 * 10**23),
    ])
    gas_price = 10**9
    opps = evaluate(e, gas_price_wei=gas_price)
    assert len(opps) == 1
    o = opps[0]
    assert o.tokens[0] == USDC
    gas = GasModel().estimate(["v2", "v2"])
    assert o.gas_estimate == gas
    assert o.gas_cost == -(-gas * gas_price * 2 * 10**9 // 10**21)
    # the profit is valued in native, gas is native: a threshold at the net value removes it
    assert o.profit_native == o.profit * 10**21 // (2 * 10**9)
    assert o.net_profit_native == o.profit_native - gas * gas_price and o.price_pools == (addr(1),)
    e.min_net_profit = o.net_profit_native
    assert evaluate(e, gas_price_wei=gas_price) == []


# --------------------------------------------------------------------------- closed form

from arbbot.paths.v2_closed import _v2_table, size_v2_closed  # noqa: E402
from arbbot.paths.v2_exact import _size_v2_search  # noqa: E402


def _cycle_from(reserves: list[tuple[int, int]], fees: list[int], flips: list[bool]) -> list:  # type: ignore[type-arg]
    k = len(reserves)
    toks = [WETH] + [tok(0x40 + i) for i in range(k - 1)]
    pools = []
    for i, ((ra, rb), fee, flip) in enumerate(zip(reserves, fees, flips)):
        a, b = toks[i], toks[(i + 1) % k]
        if flip:
            a, b, ra, rb = b, a, rb, ra
        pools.append(v2(i, a, b, ra, rb, fee))
    return _hops_for(pools, WETH)


def _cycle_strategy(lo: int, hi: int):  # type: ignore[no-untyped-def]
    return st.integers(min_value=2, max_value=4).flatmap(
        lambda k: st.tuples(
            st.lists(st.tuples(st.integers(lo, hi), st.integers(lo, hi)), min_size=k, max_size=k),
            st.lists(st.sampled_from(FEES + [0]), min_size=k, max_size=k),
            st.lists(st.booleans(), min_size=k, max_size=k),
        )
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_cycle_strategy(50, 20_000))
def test_closed_form_vs_brute_force_small_reserves(case) -> None:  # type: ignore[no-untyped-def]
    """Tiny pools, 2-4 hops: a certified closed-form result is within 1 wei of the integer
    optimum found by brute force (and nothing is reported when nothing is profitable);
    ``size_v2_exact`` as a whole is too; the reported output is the exact chain."""
    hops = _cycle_from(*case)
    best_profit, _ = _brute_force(hops, 60_000)
    tab = _v2_table(hops)
    assert tab is not None
    amount_in, amount_out, certified = size_v2_closed(tab)
    for a_in, a_out in ((amount_in, amount_out), _sized(hops)):
        if a_in:
            assert a_out == pool_models_chain(hops, a_in)
            assert a_out - a_in <= max(best_profit, 0)
    if certified:
        if best_profit <= 0:
            assert amount_in == 0
        else:
            assert amount_out - amount_in >= best_profit - 1
    a_in, a_out = _sized(hops)
    if best_profit <= 0:
        assert a_in == 0
    else:
        assert a_out - a_in >= best_profit - 1


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=_cycle_strategy(10**18, 10**24),
    skew=st.lists(st.integers(min_value=-3000, max_value=3000), min_size=4, max_size=4),
)
def test_closed_form_18_decimals_locally_optimal(case, skew) -> None:  # type: ignore[no-untyped-def]
    """18-decimal reserves priced near 1:1 with a planted skew of up to 0.3% per pool: the
    certified result is exact, no input within +-300 of it is more than 1 wei better, it
    is never worse than the level search, and it respects the closed-form upper bound."""
    reserves, fees, flips = case
    reserves = [(ra, ra * (10**6 + s) // 10**6) for (ra, _), s in zip(reserves, skew)]
    hops = _cycle_from(reserves, fees, flips)
    tab = _v2_table(hops)
    assert tab is not None
    amount_in, amount_out, certified = size_v2_closed(tab)
    coeffs = [resize._edge(state, token_in) for state, token_in in hops]
    x_float, gross = closed_form_python(coeffs)
    if amount_in == 0:
        if certified:
            # nothing profitable: the float optimum (if any) is under a few wei
            assert gross < 16 or gross == -math.inf
        return
    assert amount_out == pool_models_chain(hops, amount_in)
    profit = amount_out - amount_in
    assert profit <= gross * (1 + 1e-9) + 1
    if certified:
        for d in range(-300, 301):
            assert safe_profit(hops, amount_in + d) <= profit + 1
        old_in, old_out = _size_v2_search(tab, x_float, coeffs)
        assert profit >= old_out - old_in - 1


def test_closed_form_certifies_almost_every_cycle() -> None:
    """The level search is a rare fallback: with fine tokens (all 18 decimals) the closed
    form certifies every profitable cycle here, and tiny pools nearly all."""
    rng = random.Random(99)
    big = small = big_n = small_n = 0
    for _ in range(300):
        k = rng.choice([2, 3, 4])
        hops = _random_cycle(rng, k, 10**20, 10**21)
        tab = _v2_table(hops)
        assert tab is not None
        a_in, _, cert = size_v2_closed(tab)
        big_n += 1
        big += cert
        hops = _random_cycle(rng, k, 50, 20_000)
        tab = _v2_table(hops)
        assert tab is not None
        small_n += 1
        small += size_v2_closed(tab)[2]
    assert big == big_n
    assert small >= 0.95 * small_n


def test_closed_form_one_coarse_token() -> None:
    """WETH -> 0-decimal token -> 30-decimal token -> WETH: one coarse staircase is the
    scanned variable, so the closed form certifies and matches brute force."""
    rng = random.Random(6)
    certified = 0
    for _ in range(60):
        coarse, fine = tok(0x77), tok(0x78)
        p1 = v2(1, WETH, coarse, rng.randint(10**4, 10**5), rng.randint(50, 200), rng.choice(FEES))
        p2 = v2(2, coarse, fine, rng.randint(50, 200), rng.randint(10**31, 10**32), rng.choice(FEES))
        p3 = v2(3, fine, WETH, rng.randint(10**31, 10**32), rng.randint(10**4, 10**5), rng.choice(FEES))
        hops = _hops_for([p1, p2, p3], WETH)
        tab = _v2_table(hops)
        assert tab is not None
        a_in, a_out, cert = size_v2_closed(tab)
        if not cert:
            continue
        certified += 1
        best = max(safe_profit(hops, x) for x in range(1, 30_000))
        if best <= 0:
            assert a_in == 0
        else:
            assert a_out - a_in >= best - 1
    assert certified >= 50


def _best_over_first_hop_levels(tab: list, upto: int) -> int:  # type: ignore[type-arg]
    """Brute force: the integer optimum is the smallest input reaching some output level of
    a hop (``_back``), so the best profit over every level 1..upto-1 of hop 0 (0: none)."""
    from arbbot.paths.v2_closed import _back, _fwd

    best = 0
    for level in range(1, upto):
        v = _back(tab, 0, level)
        if v <= 0:
            break
        out = _fwd(tab, v)
        if out > 0:
            best = max(best, out - v)
    return best


def test_nested_coarse_tokens_exact_optimum_over_every_level() -> None:
    """WETH -> A -> B -> WETH with A and B 0-decimal tokens (a unit worth $1 and $0.5): two
    coarse staircases nest, the closed form alone rarely certifies, and the windowed level
    screen (float screen with an error bound, then integer checks) must return the exact
    integer optimum. Brute force: the optimum is the smallest input reaching some output
    level of the first hop (``_back``), so every level of A below its reserve is tried
    with integers."""
    from arbbot.paths.v2_exact import _rounding_noise, _size_v2_window, size_v2_table

    rng = random.Random(11)
    windowed = first = profitable = 0
    for _ in range(40):
        tok_a, tok_b = tok(0x91), tok(0x92)
        n_a, n_b3 = rng.randint(20_000, 60_000), rng.randint(20_000, 60_000)
        eth_usd = rng.randint(1_500, 3_500)
        skew = [1 + rng.uniform(0.0, 0.03) for _ in range(3)]
        p1 = v2(1, WETH, tok_a, int(n_a / eth_usd * 10**18 * skew[0]), n_a, rng.choice(FEES))
        p2 = v2(2, tok_a, tok_b, n_a, int(2 * n_a * skew[1]), rng.choice(FEES))
        p3 = v2(3, tok_b, WETH, n_b3, int(n_b3 / 2 / eth_usd * 10**18 * skew[2]), rng.choice(FEES))
        hops = _hops_for([p1, p2, p3], WETH)
        tab = _v2_table(hops)
        assert tab is not None
        coeffs = [resize._edge(state, token_in) for state, token_in in hops]
        x_float, _ = closed_form_python(coeffs)
        a_in, a_out = size_v2_table(tab, x_float, coeffs)
        best = _best_over_first_hop_levels(tab, n_a)
        # the window from nothing, as size_v2_table runs it first for nested tokens
        alone = _size_v2_window(tab, 0)
        if alone is not None and alone[2]:
            assert alone[1] - alone[0] == max(best, 0)
        if best <= 0:
            assert a_in == 0
            continue
        profitable += 1
        assert a_out == pool_models_chain(hops, a_in)
        assert a_out - a_in <= best
        if alone is not None and alone[2]:
            first += 1
            assert _rounding_noise(tab, x_float) > 64  # routed to the window first
            assert a_out - a_in == best
        closed = size_v2_closed(tab)
        if closed[2]:
            assert a_out - a_in >= best - 1  # the closed form certified it alone
            continue
        window = _size_v2_window(tab, max(0, closed[1] - closed[0]))
        if window is not None and window[2]:
            windowed += 1
            assert a_out - a_in == best  # certified: the exact optimum, to the wei
    assert profitable >= 12
    assert windowed >= 8
    assert first >= 0.9 * profitable


def test_window_bounds_hold_for_every_level() -> None:
    """The compiled screen's bounds hold for every level: ``low <= P(y) <= key`` and
    ``P(y) <= window_bound(y)``, where ``P(y)`` is the level's exact integer profit (the
    smallest input reaching level ``y`` of hop ``j``, floored forward from ``y``). The
    lower bound drives the window's shrinking, the continuous bound its edges, and the
    upper bound which levels get integer checks, so a bound that is off by a wei would
    lose the optimum. Cycles WETH -> a coarse token -> a token of 0-30 decimals -> WETH,
    with amounts below and above 2**53, so that exact levels, fine roundings (values past
    2**40, where a possibly missed unit is charged to the error instead of checked) and
    unsure ones all occur."""
    from arbbot.paths import _kernels
    from arbbot.paths.v2_closed import _back

    rng = random.Random(23)
    checked = tight = charged = 0
    for _ in range(30):
        tok_a, tok_b = tok(0xA1), tok(0xA2)
        n_a = rng.randint(2_000, 200_000)
        dec_b = rng.choice([0, 6, 12, 18, 30])
        n_b = min(rng.randint(10**3, 10**6) * 10**dec_b, 2**110 // 2)
        eth = rng.randint(1, 99) * 10**rng.randint(14, 21)
        skew = [1 + rng.uniform(0.0, 0.05) for _ in range(3)]
        p1 = v2(1, WETH, tok_a, int(eth * skew[0]), n_a, rng.choice(FEES))
        p2 = v2(2, tok_a, tok_b, n_a, int(n_b * skew[1]), rng.choice(FEES))
        p3 = v2(3, tok_b, WETH, n_b, int(eth * skew[2]), rng.choice(FEES))
        tab = _v2_table(_hops_for([p1, p2, p3], WETH))
        assert tab is not None
        ftab = np.array(tab, dtype=np.float64)
        ok, j, *model, y0 = _kernels.window_setup(ftab)  # model: p1, q1, p2, q2, y_max
        if not ok:
            continue
        n = 1500
        lo = max(1, int(y0) - n // 2)
        key, low = np.empty(n), np.empty(n)
        _kernels.window_keys(lo, n, ftab, j, key, low, np.empty((5, n)))
        for i in range(n):
            if key[i] == -math.inf:
                continue  # the float chain says the swap reverts: never a candidate
            y = lo + i
            v = _back(tab, j, y)
            out = y
            for a, r_out, g, _cap in tab[j + 1 :]:
                out = out * g * r_out // (a + out * g)
            assert v > 0 and out > 0
            assert low[i] <= out - v <= key[i], (y, low[i], out - v, key[i])
            # the continuous bound the window's edges come from is above it too
            assert _kernels.window_bound(float(y), *model) >= out - v
            checked += 1
            if math.isfinite(key[i]):
                tight += key[i] - low[i] <= 1.5 + (out + v) * 2.0**-50
                charged += key[i] - low[i] > 2.0 + (out + v) * 2.0**-51
    assert checked >= 20_000
    assert tight > 0  # levels whose roundings were all clear: the exact profit, +-0.5
    assert charged > 0  # levels that carry a near rounding's unit in their error


def test_unit_level_cut_bounds_the_exact_optimum_and_drops_unreachable_coarse_tokens() -> None:
    """WETH -> A -> B -> WETH where A is a 0-decimal token worth 0.5-20 ETH a unit: the
    continuous optimum often buys a fraction of one A, which no swap can pay out.
    ``unit_level_cut`` must stay an upper bound on the exact integer optimum (brute force
    over every level of A: the optimum is the smallest input reaching some level), and
    it must cut the float profit of most cycles whose exact optimum is no trade."""
    from arbbot.paths.screen import screen_profitable, unit_level_cut

    rng = random.Random(5)
    cut_to_nothing = nothing = bounded = 0
    for _ in range(150):
        tok_a, tok_b = tok(0xA1), tok(0xA2)
        eth_per_a = rng.uniform(0.5, 20.0)
        skew = [1 + rng.uniform(0.0, 0.03) for _ in range(3)]
        n_a1, n_a2 = rng.randint(1, 1_000), rng.randint(1, 1_000)
        b_per_a = eth_per_a * 2_000 * 10**18  # B: 18 decimals, $1 at $2,000 an ETH
        n_b = rng.randint(10**4, 10**7) * 10**18
        p1 = v2(1, WETH, tok_a, int(n_a1 * eth_per_a * 10**18 * skew[0]), n_a1, rng.choice(FEES))
        p2 = v2(2, tok_a, tok_b, n_a2, int(n_a2 * b_per_a * skew[1]), rng.choice(FEES))
        p3 = v2(3, tok_b, WETH, n_b, int(n_b // 2_000 * skew[2]), rng.choice(FEES))
        hops = _hops_for([p1, p2, p3], WETH)
        coeffs = [resize._edge(state, token_in) for state, token_in in hops]
        p = np.array([c[0] for c in coeffs])
        q = np.array([c[1] for c in coeffs])
        cols = [np.array([i]) for i in range(3)]
        idx, x_opt, profit = screen_profitable(cols, p, q)
        if idx.size == 0:
            continue
        cut = float(unit_level_cut(cols, p, q, x_opt, profit.copy())[0])
        tab = _v2_table(hops)
        assert tab is not None
        best = _best_over_first_hop_levels(tab, tab[0][1])  # A has few units
        if cut < float(profit[0]):
            assert best == 0 or best <= cut  # an upper bound on every profitable integer trade
            bounded += 1
        if best == 0:
            nothing += 1
            cut_to_nothing += cut <= 0
    assert bounded >= 40
    assert nothing >= 20 and cut_to_nothing >= 0.8 * nothing


def test_a_hop_of_a_kind_the_gas_model_does_not_know_costs_its_dearest_hop() -> None:
    """Over-estimating gas only drops marginal cycles; under-estimating would send losing ones."""
    g = GasModel(base=1000, per_hop={"v2": 100, "v3": 250})
    assert g.estimate(["v2", "v3"]) == 1350
    assert g.hop_gas("v9") == 250 and g.estimate(["v2", "v9"]) == 1350
    assert GasModel(base=7, per_hop={}).estimate(["v9"]) == 7
