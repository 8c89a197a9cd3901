"""The fast exact-input quote (``arbbot.pools.v3._quote_exact_in``, behind ``amount_out``)
against the plain swap loop: for random pools, amounts and directions it must give the
amounts of ``v3.swap`` exactly, or raise the same error.

The quote records the steps a swap completes per state (``v3._Walk``) and reuses them,
so every case is checked on a fresh walk, on a walk already extended past the amount,
and at the step boundaries themselves (the input that exactly completes a step, and one
wei either side), where the loop's ``remaining == 0`` / partial-step logic switches.
Besides pools built from positions (consistent states, zero-liquidity gaps, many word
edges) there are malformed states (tick inconsistent with the price, liquidity nets that
make ``LiquidityMath.addDelta`` revert mid-swap, out-of-range operands) where the result
must still be exactly the loop's, error included.
"""

from __future__ import annotations

import random
import threading
from dataclasses import replace
from typing import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from arbbot.errors import ArbbotError, InsufficientLiquidity, MathError
from arbbot.math.tick_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
)
from arbbot.pools import v3
from arbbot.types import V3PoolState

T0 = "0x" + "a" * 40
T1 = "0x" + "b" * 40
SPACINGS = {100: 1, 500: 10, 3000: 60, 10000: 200}
UINT128_MAX = 2**128 - 1

Outcome = tuple[int, int] | tuple[str, str]


def by_swap(state: V3PoolState, zero_for_one: bool, amount: int) -> Outcome:
    try:
        res = v3.swap(state, zero_for_one, amount)
    except Exception as exc:  # noqa: BLE001 - the error itself is compared
        return type(exc).__name__, str(exc)
    return (res.amount0, -res.amount1) if zero_for_one else (res.amount1, -res.amount0)


def by_quote(state: V3PoolState, zero_for_one: bool, amount: int) -> Outcome:
    try:
        return v3._quote_exact_in(state, zero_for_one, amount)
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__, str(exc)


def by_amount_out(state: V3PoolState, zero_for_one: bool, amount: int) -> int:
    """What ``out_quoter`` promises: ``amount_out``, or -1 where it raises."""
    try:
        return v3.amount_out(state, T0 if zero_for_one else T1, amount)
    except (ArbbotError, ArithmeticError, ValueError):
        return -1


def check_quoter(state: V3PoolState, zero_for_one: bool, amounts: list[int]) -> None:
    """``out_quoter`` equals ``amount_out`` (-1 where it raises): a fresh state and quoter
    per amount, then one quoter for all amounts (largest first), then its walk's step
    boundaries, and amounts outside ``(0, 2**255)``."""
    token_in = T0 if zero_for_one else T1
    for a in amounts:
        fresh = replace(state)
        assert v3.out_quoter(fresh, token_in)(a) == by_amount_out(state, zero_for_one, a), a
    shared = replace(state)
    quote = v3.out_quoter(shared, token_in)
    for a in sorted(amounts, reverse=True) + amounts + [0, -1, 2**255, 2**255 + 1]:
        assert quote(a) == by_amount_out(state, zero_for_one, a), a
    ends = walk_ends(shared, zero_for_one)
    if len(ends) > 24:
        mid = len(ends) // 2
        ends = ends[:8] + ends[mid - 4 : mid + 4] + ends[-8:]
    for a in sorted({e + d for e in ends for d in (-1, 0, 1) if e + d > 0}):
        assert quote(a) == by_amount_out(state, zero_for_one, a), a


def walk_ends(state: V3PoolState, zero_for_one: bool) -> list[int]:
    walk = v3._WALKS.get(id(state) << 1 | zero_for_one)
    return list(walk.ends) if walk is not None and walk.state is state else []


def check(state: V3PoolState, zero_for_one: bool, amounts: list[int]) -> None:
    # a fresh walk per amount, then all amounts on one walk (largest first, so the
    # smaller ones reuse steps recorded for it), then the step boundaries it recorded
    for a in amounts:
        fresh = replace(state)  # a new object: no recorded walk
        assert by_quote(fresh, zero_for_one, a) == by_swap(state, zero_for_one, a), a
    for a in sorted(amounts, reverse=True) + amounts:
        assert by_quote(state, zero_for_one, a) == by_swap(state, zero_for_one, a), a
    ends = walk_ends(state, zero_for_one)
    if len(ends) > 24:  # a long walk (thousands of word edges): its two ends and middle
        mid = len(ends) // 2
        ends = ends[:8] + ends[mid - 4 : mid + 4] + ends[-8:]
    probes = {e + d for e in ends for d in (-1, 0, 1) if e + d > 0}
    for a in sorted(probes):
        assert by_quote(state, zero_for_one, a) == by_swap(state, zero_for_one, a), a
        fresh = replace(state)
        assert by_quote(fresh, zero_for_one, a) == by_swap(state, zero_for_one, a), a


def make_state(fee: int, spacing: int, positions: list[tuple[int, int, int]], sqrt_p: int) -> V3PoolState:
    net: dict[int, int] = {}
    for lo, hi, liq in positions:
        net[lo] = net.get(lo, 0) + liq
        net[hi] = net.get(hi, 0) - liq
    tick = get_tick_at_sqrt_ratio(sqrt_p)
    return V3PoolState(
        address="0x" + "1" * 40,
        token0=T0,
        token1=T1,
        fee_pips=fee,
        tick_spacing=spacing,
        sqrt_price_x96=sqrt_p,
        tick=tick,
        liquidity=sum(liq for lo, hi, liq in positions if lo <= tick < hi),
        ticks=tuple(sorted(net.items())),
    )


@st.composite
def position_pools(draw: st.DrawFn) -> V3PoolState:
    fee = draw(st.sampled_from(sorted(SPACINGS)))
    spacing = SPACINGS[fee]
    center = draw(st.integers(-100_000, 100_000)) // spacing * spacing
    width = draw(st.sampled_from([3, 30, 300, 3_000]))  # in tick spacings
    positions = []
    for _ in range(draw(st.integers(1, 12))):
        lo = center + draw(st.integers(-width, width)) * spacing
        hi = lo + draw(st.integers(1, width)) * spacing
        lo, hi = max(lo, MIN_TICK // spacing * spacing), min(hi, MAX_TICK // spacing * spacing)
        liq = draw(st.one_of(st.integers(1, 10**6), st.integers(10**15, 10**25), st.just(UINT128_MAX // 16)))
        if lo < hi:
            positions.append((lo, hi, liq))
    tick = center + draw(st.integers(-2 * width - 3, 2 * width + 3)) * spacing + draw(st.integers(-spacing, spacing))
    tick = max(MIN_TICK, min(MAX_TICK - 1, tick))
    sqrt_p = get_sqrt_ratio_at_tick(tick)
    if draw(st.booleans()):  # else exactly on the tick
        sqrt_p += draw(st.integers(0, get_sqrt_ratio_at_tick(tick + 1) - sqrt_p - 1))
    return make_state(fee, spacing, positions, sqrt_p)


@st.composite
def malformed_pools(draw: st.DrawFn) -> V3PoolState:
    """Ticks with arbitrary nets (addDelta may revert), a tick that need not match the
    price, liquidity and fee at and beyond their limits."""
    spacing = draw(st.sampled_from([1, 10, 60, 200]))
    center = draw(st.integers(-50_000, 50_000)) // spacing * spacing
    tick_list = sorted({center + draw(st.integers(-40, 40)) * spacing for _ in range(draw(st.integers(0, 8)))})
    nets = st.one_of(st.integers(-(10**20), 10**20), st.integers(-(2**127), 2**127 - 1))
    ticks = tuple((t, draw(nets)) for t in tick_list)
    sqrt_p = draw(
        st.one_of(
            st.integers(get_sqrt_ratio_at_tick(center - 50 * spacing), get_sqrt_ratio_at_tick(center + 50 * spacing)),
            st.sampled_from(
                [
                    MIN_SQRT_RATIO,
                    MIN_SQRT_RATIO + 1,
                    MIN_SQRT_RATIO + 2,
                    MAX_SQRT_RATIO - 2,
                    MAX_SQRT_RATIO - 1,
                    MAX_SQRT_RATIO,
                ]
            ),
            st.sampled_from([MIN_SQRT_RATIO - 1, MAX_SQRT_RATIO + 1]),
        )
    )
    good_tick = get_tick_at_sqrt_ratio(min(max(sqrt_p, MIN_SQRT_RATIO), MAX_SQRT_RATIO - 1))
    tick = draw(
        st.one_of(
            st.just(good_tick),
            st.integers(good_tick - 3 * spacing, good_tick + 3 * spacing),
            st.integers(-(2**23), 2**23 - 1),
        )
    )
    liquidity = draw(st.one_of(st.integers(0, 10**22), st.just(UINT128_MAX), st.just(UINT128_MAX + 1), st.just(-1)))
    fee = draw(st.sampled_from([0, 1, 500, 3000, 999_999, 1_000_000]))
    return V3PoolState(
        address="0x" + "2" * 40,
        token0=T0,
        token1=T1,
        fee_pips=fee,
        tick_spacing=spacing,
        sqrt_price_x96=sqrt_p,
        tick=tick,
        liquidity=liquidity,
        ticks=ticks,
    )


amount_lists = st.lists(
    st.one_of(
        st.integers(1, 10**6),
        st.integers(1, 10**18),
        st.integers(1, 10**26),
        st.integers(1, 2**255 - 1),
        st.just(2**255),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=250, deadline=None)
@given(position_pools(), st.booleans(), amount_lists)
def test_quote_equals_swap_on_position_pools(state: V3PoolState, zero_for_one: bool, amounts: list[int]) -> None:
    check(state, zero_for_one, amounts)
    check_quoter(state, zero_for_one, amounts)


@settings(max_examples=250, deadline=None)
@given(malformed_pools(), st.booleans(), amount_lists)
def test_quote_equals_swap_on_malformed_states(state: V3PoolState, zero_for_one: bool, amounts: list[int]) -> None:
    check(state, zero_for_one, amounts)
    check_quoter(state, zero_for_one, amounts)


@settings(max_examples=100, deadline=None)
@given(position_pools(), st.booleans(), st.integers(1, 10**24))
def test_amount_out_and_amount_in_match_swap(state: V3PoolState, zero_for_one: bool, amount: int) -> None:
    token_in, token_out = (T0, T1) if zero_for_one else (T1, T0)
    res = by_swap(state, zero_for_one, amount)
    try:
        out = v3.amount_out(state, token_in, amount)
    except InsufficientLiquidity:
        assert isinstance(res[0], str) or res[0] == 0
        return
    assert isinstance(res[1], int) and out == res[1]
    # exact output: amount_in (no post-swap state built) equals swap's input
    if out > 0:
        exact_out = v3.swap(state, zero_for_one, -out)
        paid = exact_out.amount0 if zero_for_one else exact_out.amount1
        assert v3.amount_in(state, token_out, out) == paid


def test_crossing_that_reverts_is_raised_only_when_reached() -> None:
    # the net at tick 600 removes more than the in-range liquidity: addDelta reverts 'LS'
    # when (and only when) a swap completes the step that ends there
    sqrt_p = get_sqrt_ratio_at_tick(0)
    state = V3PoolState("0x" + "3" * 40, T0, T1, 3000, 60, sqrt_p, 0, 10**18, ((600, -2 * 10**18),))
    big = by_swap(state, False, 10**30)
    assert big == ("LiquidityMathError", "LS")
    check(state, False, [10**30, 10**12])
    ends = walk_ends(state, False)
    assert ends  # the step up to tick 600 is recorded, with the revert after it
    edge = ends[-1]
    assert by_quote(state, False, edge - 1)[0] == edge - 1  # partial step: no crossing
    assert by_quote(state, False, edge) == big  # completes the step: crosses and reverts


def test_quoter_of_a_token_not_in_the_pool_raises() -> None:
    state = make_state(3000, 60, [(-600, 600, 10**20)], get_sqrt_ratio_at_tick(10))
    with pytest.raises(MathError):
        v3.out_quoter(state, "0x" + "c" * 40)


def test_crossing_that_reverts_gives_minus_one_to_the_quoter() -> None:
    sqrt_p = get_sqrt_ratio_at_tick(0)
    state = V3PoolState("0x" + "3" * 40, T0, T1, 3000, 60, sqrt_p, 0, 10**18, ((600, -2 * 10**18),))
    quote = v3.out_quoter(state, T1)
    assert quote(10**30) == -1  # amount_out raises LiquidityMathError('LS')
    check_quoter(state, False, [10**30, 10**12])


def test_walks_are_bounded_and_per_object() -> None:
    sqrt_p = get_sqrt_ratio_at_tick(10)
    base = make_state(3000, 60, [(-600, 600, 10**20), (-6000, 6000, 10**19)], sqrt_p)
    states = [replace(base) for _ in range(v3._WALKS_MAX + 10)]
    for s in states:
        assert v3._quote_exact_in(s, True, 10**21) == by_swap(base, True, 10**21)
    assert len(v3._WALKS) <= v3._WALKS_MAX
    # a new state of the same pool (same values, other object) gets its own walk
    moved = replace(base, liquidity=10**20 + 1)
    assert by_quote(moved, True, 10**21) == by_swap(moved, True, 10**21)


def crowded_pool(rng: random.Random) -> V3PoolState:
    """A 0.05% pool with 25 random positions around the price: many steps to walk."""
    return make_state(
        500,
        10,
        [
            (lo, lo + rng.randrange(1, 200) * 10, rng.randrange(10**17, 10**21))
            for lo in (rng.randrange(-300, 300) * 10 for _ in range(25))
        ],
        get_sqrt_ratio_at_tick(5) + 12345,
    )


def in_threads(worker: Callable[[int], None], n: int) -> None:
    """``worker(0)`` .. ``worker(n - 1)``, each in a thread of its own, all at once."""
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_concurrent_quotes_on_one_state() -> None:
    rng = random.Random(7)
    state = crowded_pool(rng)
    amounts = [rng.randrange(1, 10 ** rng.randrange(3, 24)) for _ in range(400)]
    expected = {(z, a): by_swap(state, z, a) for z in (True, False) for a in amounts}
    failures: list[tuple[bool, int]] = []

    def worker(seed: int) -> None:
        order = [(z, a) for z in (True, False) for a in amounts]
        random.Random(seed).shuffle(order)
        quoters = {z: v3.out_quoter(state, T0 if z else T1) for z in (True, False)}  # sharing the walks
        for z, a in order:
            if by_quote(state, z, a) != expected[(z, a)]:
                failures.append((z, a))
            used, got = expected[(z, a)]
            if quoters[z](a) != (got if isinstance(used, int) and used > 0 else -1):  # amount_out's
                failures.append((z, a))

    in_threads(worker, 6)
    assert failures == []


def test_wide_steps_reach_every_branch_of_the_partial_step() -> None:
    # A tick spacing of 16383 makes one bitmap word span the whole tick range, so a single
    # step runs from the price to the end of the range and its input can exceed 2**160 and
    # 2**256 / price: getNextSqrtPriceFromAmount0RoundingUp's overflow branches and
    # getNextSqrtPriceFromAmount1RoundingDown's mulDiv branch.
    for tick in (-800_000, -300_000, -1, 0, 5, 300_000, 800_000):
        for liquidity in (1, 2**64 + 3, UINT128_MAX):
            for fee in (0, 3000):
                sqrt_p = get_sqrt_ratio_at_tick(tick) + 1
                state = V3PoolState("0x" + "4" * 40, T0, T1, fee, 16383, sqrt_p, tick, liquidity, ())
                edge = (2**256 - 1) // sqrt_p  # product = amount * price just below 2**256
                amounts = [edge - 2, edge - 1, edge, edge + 1, 2**160 - 1, 2**160, 2**160 + 1, 2**192, 2**255 - 1]
                amounts += [
                    a * 1_000_000 // 997_000 + d for a in amounts[:4] for d in (0, 1)
                ]  # the same after a 0.3% fee
                check(state, True, amounts)
                check(state, False, amounts)
                check_quoter(state, True, amounts)
                check_quoter(state, False, amounts)


def test_liquidity_limits_when_crossing() -> None:
    # addDelta: exactly uint128 max is fine, one more reverts 'LA'; exactly all the
    # liquidity out is fine (0 left), one more reverts 'LS'
    sqrt_p = get_sqrt_ratio_at_tick(0)
    for start, net, err in (
        (UINT128_MAX - 5, 5, None),
        (UINT128_MAX - 5, 6, "LA"),
        (10**18, -(10**18), None),
        (10**18, -(10**18) - 1, "LS"),
    ):
        state = V3PoolState("0x" + "5" * 40, T0, T1, 500, 10, sqrt_p, 0, start, ((120, net),))
        swapped = by_swap(state, False, 2**255 - 1)
        assert (swapped == ("LiquidityMathError", err)) == (err is not None)
        check(state, False, [2**255 - 1, 10**30, 10**12])
        check_quoter(state, False, [2**255 - 1, 10**30, 10**12])


def check_least_in(state: V3PoolState, zero_for_one: bool, amounts: list[int]) -> int:
    """``least_in_quoter`` is the inverse of ``out_quoter``: for the output ``y`` of each
    amount ``x`` (and ``y + 1``, ``y - 1``), the least input ``a`` with ``quote(a) >= y``
    (``a <= x`` for ``y`` itself), or -1 only where no amount tried reaches ``y``. Returns
    how many answers were not -1 (so a caller can see the checks had something to check)."""
    token_in = T0 if zero_for_one else T1
    quote = v3.out_quoter(replace(state), token_in)  # its own walk, apart from the inverse's
    least = v3.least_in_quoter(state, token_in)
    if not v3._walkable(state):  # operands out of range: no inverse is given
        assert all(least(quote(x)) == -1 for x in amounts)
        return 0
    probes = amounts + [1, 2**64, 2**128, 2**255 - 1] + walk_ends(state, zero_for_one)
    found = 0
    for x in amounts:
        y = quote(x)
        for need in (y - 1, y, y + 1):
            a = least(need)
            if a == -1:
                assert need < 1 or all(quote(p) < need for p in probes), (x, need)
                assert need != y or y < 1, (x, need)  # x itself reaches y
                continue
            found += 1
            assert quote(a) >= need and (a == 1 or quote(a - 1) < need), (x, need, a)
            if need == y:
                assert a <= x, (x, need, a)
            if need == y + 1:
                assert a > x, (x, need, a)
    return found


@settings(max_examples=150, deadline=None)
@given(position_pools(), st.booleans(), amount_lists)
def test_least_input_inverts_the_quote_on_position_pools(state: V3PoolState, zero_for_one: bool, amounts: list[int]) -> None:
    check_least_in(state, zero_for_one, amounts)


@settings(max_examples=150, deadline=None)
@given(malformed_pools(), st.booleans(), amount_lists)
@example(  # found by the explore profile: the one recorded step's end crosses a tick that reverts
    V3PoolState("0x" + "2" * 40, T0, T1, 1, 200, 48055510970269007215549348797, -10000, 2, ((-200, -3), (0, 0))),
    False,
    [1],
)
@example(  # and one whose liquidity is negative: its quotes are -2, -1, 0, 0, 1, ... (no inverse)
    V3PoolState("0x" + "2" * 40, T0, T1, 0, 1, 79030349367926598376800521322, 0, -1, ((-1, -159),)),
    True,
    [3],
)
def test_least_input_inverts_the_quote_on_malformed_states(state: V3PoolState, zero_for_one: bool, amounts: list[int]) -> None:
    check_least_in(state, zero_for_one, amounts)


def test_least_input_at_step_ends_wide_steps_and_reverting_crossings() -> None:
    """The inverse where the formula is weakest: outputs at and around a step's end (the
    next step's first wei is all fee), single steps wide enough for the partial step's
    other branches, a crossing that reverts (outputs past it are out of reach), and the
    price at its limit."""
    found = 0
    rng = random.Random(11)
    sqrt_p = get_sqrt_ratio_at_tick(10)
    state = make_state(3000, 60, [(-600, 600, 10**20), (-6000, 6000, 10**19), (-60, 1200, 10**6)], sqrt_p)
    for z in (True, False):
        v3.out_quoter(state, T0 if z else T1)(10**24)  # record a walk over several steps
        ends = walk_ends(state, z)
        assert len(ends) > 2
        found += check_least_in(state, z, [e + d for e in ends for d in (-1, 0, 1, 2)] + [rng.randrange(1, 10**24) for _ in range(20)])
    overflow = 0  # inverses that met _partial_out's overflow branch (settled on the quote)
    partial_in = v3._partial_in

    def counting(*args: int) -> int:
        nonlocal overflow
        got = partial_in(*args)  # type: ignore[arg-type]
        overflow += got == -1
        return got

    v3._partial_in = counting  # type: ignore[assignment]
    try:
        for tick in (-800_000, -300_000, 0, 300_000, 800_000):  # as the wide-steps test
            for liquidity in (1, 2**64 + 3, UINT128_MAX):
                for fee in (0, 3000):
                    sqrt_p = get_sqrt_ratio_at_tick(tick) + 1
                    wide = V3PoolState("0x" + "4" * 40, T0, T1, fee, 16383, sqrt_p, tick, liquidity, ())
                    edge = (2**256 - 1) // sqrt_p
                    amounts = [edge - 2, edge - 1, edge, edge + 1, 2**160, 2**192, 2**255 - 1, 10**12, 10**30]
                    for z in (True, False):
                        found += check_least_in(wide, z, amounts)
    finally:
        v3._partial_in = partial_in  # type: ignore[assignment]
    assert overflow > 0
    reverting = V3PoolState("0x" + "3" * 40, T0, T1, 3000, 60, get_sqrt_ratio_at_tick(0), 0, 10**18, ((600, -2 * 10**18),))
    found += check_least_in(reverting, False, [10**30, 10**12, 10**16])
    edge = walk_ends(reverting, False)[-1]
    top = v3.out_quoter(reverting, T1)(edge - 1)  # the most any input gets before the revert
    least = v3.least_in_quoter(reverting, T1)
    assert least(top) == edge - 1 or v3.out_quoter(reverting, T1)(least(top) - 1) < top
    assert least(top + 10**6) == -1  # only the crossing would pay that, and it reverts
    at_limit = V3PoolState("0x" + "6" * 40, T0, T1, 3000, 60, MIN_SQRT_RATIO + 1, MIN_TICK, 10**18, ())
    assert v3.least_in_quoter(at_limit, T0)(1) == -1  # no price left to move: 'SPL'
    assert found > 100


def test_concurrent_least_inputs_on_one_state() -> None:
    """Threads inverting quotes on one fresh state share its walk while others extend it:
    every answer exact (against a quoter on a copy of the state, a walk of its own)."""
    rng = random.Random(13)
    state = crowded_pool(rng)
    reference = {z: v3.out_quoter(replace(state), T0 if z else T1) for z in (True, False)}
    needs = {z: [reference[z](rng.randrange(1, 10 ** rng.randrange(3, 21))) + d for _ in range(150) for d in (0, 1)]
             for z in (True, False)}
    top = {z: reference[z](2**255 - 1) for z in (True, False)}  # the most any input gets
    assert all(top[z] > 0 and sum(y > top[z] for y in needs[z]) < 20 for z in (True, False))
    failures: list[tuple[bool, int, int]] = []

    def worker(seed: int) -> None:
        order = [(z, y) for z in (True, False) for y in needs[z] if y >= 1]
        random.Random(seed).shuffle(order)
        least = {z: v3.least_in_quoter(state, T0 if z else T1) for z in (True, False)}  # sharing the walks
        for z, y in order:
            a = least[z](y)
            quote = reference[z]
            if a == -1:
                if y <= top[z]:  # some input reaches it
                    failures.append((z, y, a))
            elif not (quote(a) >= y and (a == 1 or quote(a - 1) < y)):
                failures.append((z, y, a))

    in_threads(worker, 6)
    assert failures == []
