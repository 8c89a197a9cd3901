"""The search's exact chain quote (``exact_search._chain`` over ``_hop_quoter``s) against
the pool models hop by hop, and its result against its own definition: the best of the
inputs it quoted, highest profit first, then the smallest input."""

from __future__ import annotations

import contextlib
import math
import random
from typing import Iterator

import pytest

from tests.paths._paths_helpers import USDC, WETH, tok, v2
from tests.paths.test_v3_cycles import _positions, v3pool
from arbbot import pools as pool_models
from arbbot.errors import ArbbotError
from arbbot.paths import exact_search, resize
from arbbot.paths.v2_closed import UINT112_MAX
from arbbot.types import PoolState, V2PoolState, V3PoolState

DAI = tok(0xDA)


def reference_hop(state: PoolState, token_in: str, amount_in: int) -> int:
    """One hop as the search must see it: ``arbbot.pools.amount_out`` with the V2 pair's
    own guard (uint112 balances), -1 wherever the swap reverts or pays nothing."""
    if amount_in <= 0:
        return -1
    if state.kind == "v2":
        r_in = state.reserve0 if token_in == state.token0 else state.reserve1  # type: ignore[union-attr]
        if r_in + amount_in > UINT112_MAX:
            return -1
    try:
        out = pool_models.amount_out(state, token_in, amount_in)
    except (ArbbotError, ArithmeticError, ValueError):
        return -1
    return out if out > 0 else -1


def reference_chain(hops: list[tuple[PoolState, str]], x: int) -> int:
    for state, token_in in hops:
        x = reference_hop(state, token_in, x)
        if x < 0:
            return -1
    return x


def _warm_start(hops: list[tuple[PoolState, str]]) -> tuple[float, list[tuple[float, float]]]:
    """The screen's warm start of a cycle and the hops' ``(p, q)``, as ``resize`` takes
    them from the screen (1.0 where the screen sees no profit)."""
    coeffs = [resize._edge(state, token_in) for state, token_in in hops]
    x_float = resize._warm_start(coeffs)
    return (1.0 if x_float is None else x_float), coeffs


def _pools(rng: random.Random) -> list[PoolState]:
    """WETH -> USDC -> DAI -> WETH pools of every kind and size the quoters special-case."""
    price = 2000e6 / 1e18
    tick = int(math.log(price) / math.log(1.0001))
    liq = rng.choice([10**3, 10**12, 10**18, 2**120])
    return [
        v3pool(1, WETH, USDC, price * rng.uniform(0.99, 1.01), _positions(rng, tick, 60, rng.randint(0, 6), liq)),
        v3pool(2, WETH, USDC, price, [(tick // 60 * 60 + 60, tick // 60 * 60 + 600, 10**15)]),  # no liquidity here
        v2(3, USDC, DAI, rng.choice([7, 10**9, 10**12]), rng.choice([9, 10**21, 10**24])),
        v2(4, USDC, DAI, UINT112_MAX - rng.randint(0, 10**6), 10**24),  # near uint112: the cap
        v2(5, USDC, DAI, 0, 10**24),  # unusable as a table row: the pair's own guards
        v2(6, DAI, WETH, 10**24, rng.choice([10**20, 10**21]), fee=rng.choice([3000, 500])),
        v3pool(7, DAI, WETH, 1.0 / 2000 * rng.uniform(0.99, 1.01), _positions(rng, -76000, 60, 4, 10**20)),
    ]


def test_chain_quote_equals_the_pool_models_hop_by_hop() -> None:
    rng = random.Random(16)
    for _ in range(40):
        weth_usdc, dead, usdc_dai, capped, empty, dai_weth, dai_weth_v3 = _pools(rng)
        for first in (weth_usdc, dead):
            for second in (usdc_dai, capped, empty):
                for third in (dai_weth, dai_weth_v3):
                    hops = [(first, WETH), (second, USDC), (third, DAI)]
                    for cycle in (hops, hops[:2], hops + [(first, WETH)]):  # 3, 2 and 4 hops
                        chain = exact_search._chain([exact_search._hop_quoter(s, t) for s, t in cycle])
                        amounts = [rng.randrange(1, 10 ** rng.randint(1, 30)) for _ in range(12)]
                        amounts += [0, -5, 1, UINT112_MAX, 2**255, 2**256]
                        for x in amounts + sorted(amounts, reverse=True):
                            assert chain(x) == reference_chain(cycle, x), (cycle, x)


def test_hop_quoter_equals_the_pool_model_at_its_edges() -> None:
    rng = random.Random(61)
    for _ in range(20):
        for state in _pools(rng):
            for token_in in (state.token0, state.token1):
                quote = exact_search._hop_quoter(state, token_in)
                amounts = [rng.randrange(1, 10 ** rng.randint(1, 34)) for _ in range(20)] + [0, 1, 2**255]
                if state.kind == "v2":
                    r_in = state.reserve0 if token_in == state.token0 else state.reserve1  # type: ignore[union-attr]
                    amounts += [UINT112_MAX - r_in + d for d in (-1, 0, 1)]  # the pair's uint112 guard
                for x in amounts:
                    assert quote(x) == reference_hop(state, token_in, x) or (
                        quote(x) <= 0 and reference_hop(state, token_in, x) == -1
                    ), (state, token_in, x)


def test_hop_quoter_of_a_token_not_in_the_pool_never_pays() -> None:
    state = v3pool(1, WETH, USDC, 2000e6 / 1e18, [(-887220, 887220, 10**18)])
    quote = exact_search._hop_quoter(state, DAI)
    assert quote(10**18) == reference_hop(state, DAI, 10**18) == -1


def test_hop_least_inverts_the_hop_quoter() -> None:
    """``_hop_least(state, t)(y)`` is the least input whose ``_hop_quoter`` output reaches
    ``y`` (-1 only where none tried does), for every pool kind the quoters special-case;
    ``None`` only for a V2 pair that is no table row."""
    rng = random.Random(29)
    checked = 0
    for _ in range(20):
        for state in _pools(rng):
            for token_in in (state.token0, state.token1):
                quote = exact_search._hop_quoter(state, token_in)
                least = exact_search._hop_least(state, token_in)
                if least is None:
                    assert state.kind == "v2" and state.reserve0 * state.reserve1 == 0  # type: ignore[union-attr]
                    continue
                amounts = [rng.randrange(1, 10 ** rng.randint(1, 34)) for _ in range(12)]
                for x in amounts:
                    y = quote(x)
                    for need in (y - 1, y, y + 1):
                        if need < 1:
                            continue
                        a = least(need)
                        if a == -1:
                            assert need > y and all(quote(p) < need for p in amounts + [2**128]), (state, need)
                            continue
                        checked += 1
                        assert quote(a) >= need and (a == 1 or quote(a - 1) < need), (state, token_in, need, a)
                        assert (a <= x) == (need <= y), (state, token_in, need, a, x)
    assert checked > 500


@contextlib.contextmanager
def _quotes() -> Iterator[list[tuple[int, int]]]:
    """Every exact chain quote the search makes meanwhile: (input, output)."""
    quotes: list[tuple[int, int]] = []
    original = exact_search._chain

    def recording(quoters):  # type: ignore[no-untyped-def]
        chain = original(quoters)

        def quote(x: int) -> int:
            out = chain(x)
            quotes.append((x, out))
            return out

        return quote

    exact_search._chain = recording  # type: ignore[assignment]
    try:
        yield quotes
    finally:
        exact_search._chain = original  # type: ignore[assignment]


def test_search_returns_the_best_input_it_quoted() -> None:
    """``size_search_exact`` returns, of all inputs it quoted, the one with the highest
    profit (the smallest such input on a tie), or (0, 0) if none pays."""
    rng = random.Random(5)
    with _quotes() as quotes:
        paying = 0
        for _ in range(60):
            price = 2000e6 / 1e18
            tick = int(math.log(price) / math.log(1.0001))
            a = v3pool(1, WETH, USDC, price * rng.uniform(0.97, 1.03),
                       _positions(rng, tick, 60, rng.randint(0, 8), rng.choice([10**12, 10**17])))
            # USDC -> WETH through a V2 pair at a slightly different price; a coarse
            # stable (0 decimals) in a third of the cases: rounding noise far above a wei
            coarse = rng.random() < 0.3
            usdc_units = 10**12 if not coarse else 10**6
            b = v2(2, USDC, WETH, int(usdc_units * 2000 * rng.uniform(0.97, 1.03)), 10**21)
            hops = [(a, WETH), (b, USDC)]
            x_float, coeffs = _warm_start(hops)
            quotes.clear()
            amount_in, amount_out = exact_search.size_search_exact(hops, x_float, coeffs)
            best_profit, neg_x = max((out - x if out >= 0 else -(1 << 300), -x) for x, out in quotes)
            if best_profit <= 0:
                assert (amount_in, amount_out) == (0, 0)
                continue
            paying += 1
            assert (amount_in, amount_out - amount_in) == (-neg_x, best_profit)
            assert amount_out == reference_chain(hops, amount_in)
        assert paying >= 10  # the check above ran on cycles that pay


def test_a_cycle_that_cannot_run_at_its_warm_start_costs_three_quotes() -> None:
    """A hop that pays nothing (a drained pair: its output rounds to zero, for any smaller
    input too) or refuses the amount (the uint112 cap: any larger one too) at the warm
    start and around it: (0, 0) after the first three quotes, where the fits used to close
    in on the same point for eight more."""
    price = 2000e6 / 1e18
    tick = int(math.log(price) / math.log(1.0001))
    a = v3pool(1, WETH, USDC, price, _positions(random.Random(3), tick, 60, 4, 10**17))
    drained = v2(2, USDC, WETH, 2000 * 10**12, 1)  # one wei of WETH left: pays nothing
    capped = v2(3, USDC, WETH, UINT112_MAX - 10, 10**21)  # any input above 10 reverts
    with _quotes() as quotes:
        for b in (drained, capped):
            hops = [(a, WETH), (b, USDC)]
            assert reference_chain(hops, 10**17) == -1
            quotes.clear()
            assert exact_search.size_search_exact(hops, 1e17) == (0, 0)
            assert len(quotes) == 3



def _least_input(hops: list[tuple[PoolState, str]], level: int, hi: int) -> int:
    """The least input whose first hop pays at least ``level``, by bisection on the pool
    model (-1 if ``hi`` does not)."""
    state, token_in = hops[0]
    if reference_hop(state, token_in, hi) < level:
        return -1
    lo = 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if reference_hop(state, token_in, mid) >= level:
            hi = mid
        else:
            lo = mid
    return hi


@pytest.mark.parametrize(("v3_first", "fee"), [(False, 3000), (False, 10000), (True, 3000)],
                         ids=["v2-then-v3", "v2-then-v3-1%", "v3-then-v2"])
def test_a_cycle_through_a_coarse_token_finds_its_best_level(v3_first: bool, fee: int) -> None:
    """WETH -> C (a token with no decimals: one unit is worth ~1e15 wei) -> WETH, on a V2
    pair and a V3 pool a few percent apart, in either order. Every input that buys the
    same number of C pays the same back, so the profit over inputs is a staircase; a V3
    hop after C rounds one unit of C in every 1e6 / fee away (a tooth: every ~333th
    level at 0.3%, every 100th at 1%); a V3 hop before it is inverted exactly
    (``least_in_quoter``). The search must find the best of all levels, as enumerating
    every level with the pool models does (the golden-section search over inputs found
    it in none of the 16 cases). At 1% the top is 3-22 runs out: the climb over the
    runs' ends finds it in ~10-11 quotes a cycle, where fits across the teeth took ~24
    and missed it in 3 of the 8 cases (and where two more went to the inputs either side
    of the warm start, which a search over levels never uses)."""
    rng = random.Random(8)
    with _quotes() as quotes:
        counts = [_best_level_case(rng, tok(0xC1), v3_first, fee, quotes) for _ in range(8)]
    if fee == 10000:
        assert sum(counts) / len(counts) <= 12, counts


def _best_level_case(rng: random.Random, coarse: str, v3_first: bool, fee: int,
                     quotes: list[tuple[int, int]]) -> int:
    """One case of the test above: checks the search's level against every level's, and
    returns how many chain quotes the search made."""
    quotes.clear()
    c_units = rng.randint(20_000, 200_000)
    weth = c_units * 10**15
    skew = rng.uniform(1.02, 1.08)  # the V3 pool's price of C over the pair's
    liq = int(math.sqrt(c_units * weth) * rng.uniform(0.5, 2))
    if v3_first:  # buy C cheap on the V3 pool, sell it on the pair
        a = v3pool(2, coarse, WETH, 10**15 / skew, [(-887220, 887220, liq)], fee=fee)
        b = v2(1, WETH, coarse, weth, c_units)
    else:
        a = v2(1, WETH, coarse, weth, c_units)
        b = v3pool(2, coarse, WETH, 10**15 * skew, [(-887220, 887220, liq)], fee=fee)
    hops = [(a, WETH), (b, coarse)]
    x_float, coeffs = _warm_start(hops)
    amount_in, amount_out = exact_search.size_search_exact(hops, x_float, coeffs)
    made = len(quotes)
    assert amount_in > 0 and amount_out == reference_chain(hops, amount_in)
    top = reference_hop(a, WETH, 3 * int(x_float))
    best = max(
        (reference_chain(hops, x) - x, -x)
        for x in (_least_input(hops, level, 3 * int(x_float)) for level in range(1, top + 1))
        if x > 0 and reference_chain(hops, x) >= 0
    )
    assert (amount_out - amount_in, -amount_in) == best
    return made


def test_a_fit_that_stops_bracketing_in_the_flat_top_finishes_there() -> None:
    """A full-range V3 pool and a V2 pair of the pipeline benchmark's market (block 4 of
    its feed): the warm start is right, the narrow fits bracket the top, then one at a
    smaller step does not (rounding: the top is flat far wider than the model's estimate
    of it). The top is inside the last bracket, so the search finishes there: 11 quotes,
    where it used to start again from the warm start with wide fits and a golden-section
    search (91), for the same profit. Nothing in a dense scan around its input pays more."""
    token, weth = "0xa000000000000000000000000000000000000348", "0xee00000000000000000000000000000000000000"
    v3 = V3PoolState(
        address="0x7371d1a77f601f3747542236dbe5c0973bc8e07e", token0=token, token1=weth, fee_pips=3000,
        tick_spacing=60, sqrt_price_x96=411181419458252932135256064, tick=-105227,
        liquidity=3375187804687848439808,
        ticks=((-887220, 3375187804687848439808), (887220, -3375187804687848439808)))
    pair = V2PoolState(address="0x8ef1dd525382cfda7fb008b4e93beb0fe3d70ab4", token0=token, token1=weth,
                       reserve0=2210117445655194593394688, reserve1=60784939630949203968, fee_pips=3000)
    hops = [(v3, weth), (pair, token)]
    x_float, coeffs = _warm_start(hops)
    with _quotes() as quotes:
        amount_in, amount_out = exact_search.size_search_exact(hops, x_float, coeffs)
    assert len(quotes) <= 15
    assert amount_out == reference_chain(hops, amount_in)
    around = {amount_in + d for d in range(-2000, 2001)}
    around |= {int(amount_in * (1 + sign * 10.0**-e)) for e in range(3, 13) for sign in (-1, 1)}
    assert max(reference_chain(hops, x) - x for x in around) == amount_out - amount_in
