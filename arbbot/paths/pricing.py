"""Token prices in the chain's native token, read from the pools themselves at one block.

It owns the rule that turns pool states into "native wei per base unit of a token", and the
exact conversion of amounts with it. The path stage values every opportunity's profit and
converts gas with it; the execute stage re-prices on the newest states before it sends.

The rule (manipulation-aware; a pool's price is its mid price, fees aside):

1. The native token is worth 1.
2. A token with pools against the native token: the **liquidity-weighted median** of the
   mid prices of those pools whose native-side depth (the V2 reserve; the V3 virtual
   reserve ``L * sqrtP`` or ``L / sqrtP`` in range) is at least ``min_native_liquidity_wei``.
   Each pool's weight is its liquidity ``L`` (V2: ``isqrt(reserve0 * reserve1)``; V3: the
   in-range ``liquidity``), in the same unit for every pool of one pair. A swap does not
   change ``L`` (only adding liquidity, which takes capital on both sides), so pushing a
   pool's price does not buy it weight; a pool holding less than half the pair's liquidity
   cannot move the median at all, and a dust pool under the floor is not counted.
3. Else, two hops: through the intermediate token ``M`` (itself priced by rule 2) whose
   pools against the token hold the most ``M``-side depth valued in native; the price is the
   weighted median of those pools (floor: ``min_native_liquidity_wei`` worth of ``M``)
   times ``M``'s price.
4. Otherwise the token has no price (``None``): callers rank what is in it last.

What the rule cannot stop: whoever controls most of a pair's liquidity sets its price, and
a state left manipulated at a block's end is what the block holds (others arbitrage it
back). A wrong price misranks and misjudges gas; it never changes what a trade returns in
its own token, which the executor's on-chain profit guard checks.

Amounts convert exactly (``Fraction``): a profit in native rounds down, gas in a token
rounds up, both in the conservative direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Iterable, Sequence

from arbbot.types import PoolState, V2PoolState, V3PoolState

#: Native-side depth a pool needs to count for a price, and a token needs (summed over its
#: pools against the native token) to be a default start token: 1 native token (1e18 wei;
#: every EVM chain's native token has 18 decimals). Below it a pool is dust whose price
#: anyone can set for little.
DEFAULT_MIN_NATIVE_LIQUIDITY_WEI = 10**18

_Q96 = 1 << 96
_Q192 = 1 << 192


@dataclass(frozen=True, slots=True)
class PoolQuote:
    """One pool's mid price of ``base`` in ``quote`` units, its quote-side depth and weight."""

    address: str
    price: Fraction  # quote base units per base base unit
    quote_depth: int  # quote-side (virtual) reserve, quote base units
    weight: int  # liquidity L: swap-invariant, comparable within one pair


def pool_quote(state: PoolState, base: str) -> PoolQuote | None:
    """The mid price of ``base`` in the pool's other token; ``None`` for an empty pool."""
    base = base.lower()
    base_is_0 = state.token0.lower() == base
    if not base_is_0 and state.token1.lower() != base:
        return None
    if isinstance(state, V2PoolState):
        r_base, r_quote = (state.reserve0, state.reserve1) if base_is_0 else (state.reserve1, state.reserve0)
        if r_base <= 0 or r_quote <= 0:
            return None
        return PoolQuote(state.address.lower(), Fraction(r_quote, r_base), r_quote, math.isqrt(r_base * r_quote))
    if isinstance(state, V3PoolState):
        sp, liq = state.sqrt_price_x96, state.liquidity
        if sp <= 0 or liq <= 0:
            return None
        if base_is_0:  # price of token0 in token1 = sqrtP**2; token1's virtual reserve = L * sqrtP
            return PoolQuote(state.address.lower(), Fraction(sp * sp, _Q192), liq * sp // _Q96, liq)
        return PoolQuote(state.address.lower(), Fraction(_Q192, sp * sp), liq * _Q96 // sp, liq)
    return None


@dataclass(frozen=True, slots=True)
class PairPrice:
    price: Fraction  # quote per base unit
    quote_depth: int  # summed over the pools counted
    pools: tuple[str, ...]  # the pools counted


def pair_price(states: Iterable[PoolState], base: str, *, min_quote_depth: int | Fraction) -> PairPrice | None:
    """The liquidity-weighted median mid price of ``base`` over the pools of one pair whose
    quote-side depth is at least ``min_quote_depth``; ``None`` if none is."""
    quotes = [q for s in states if (q := pool_quote(s, base)) is not None and q.quote_depth >= min_quote_depth]
    if not quotes:
        return None
    quotes.sort(key=lambda q: (q.price, q.address))
    total = sum(q.weight for q in quotes)
    acc = 0
    median = quotes[-1].price
    for q in quotes:
        acc += q.weight
        if 2 * acc >= total:  # the lower weighted median: deterministic, no averaging
            median = q.price
            break
    return PairPrice(median, sum(q.quote_depth for q in quotes), tuple(q.address for q in quotes))


@dataclass(frozen=True, slots=True)
class NativePrice:
    """A token's price: native wei per base unit, and the pools it was read from."""

    token: str
    price: Fraction
    pools: tuple[str, ...] = ()

    def to_native(self, amount: int) -> int:
        """``amount`` of the token in native wei, rounded down (a profit is never overstated)."""
        return amount * self.price.numerator // self.price.denominator

    def from_native(self, amount_wei: int) -> int:
        """``amount_wei`` of native in the token's base units, rounded up (gas is never understated)."""
        return -(-amount_wei * self.price.denominator // self.price.numerator)


@dataclass
class NativePricer:
    """Prices at one set of pool states (see the module docstring for the rule); memoised,
    so build one per block. ``pools_between(a, b)`` gives the pools of a pair and
    ``neighbours(t)`` the tokens sharing a pool with ``t`` (lower-case addresses)."""

    native: str
    pools_between: Callable[[str, str], Sequence[PoolState]]
    neighbours: Callable[[str], Iterable[str]]
    min_native_liquidity_wei: int = DEFAULT_MIN_NATIVE_LIQUIDITY_WEI
    _memo: dict[str, NativePrice | None] = field(default_factory=dict, repr=False)
    _direct: dict[str, PairPrice | None] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.native = self.native.lower()

    @classmethod
    def from_states(
        cls, states: Iterable[PoolState], native: str, *, min_native_liquidity_wei: int = DEFAULT_MIN_NATIVE_LIQUIDITY_WEI
    ) -> NativePricer:
        """A pricer over a plain collection of states (the execute stage's newest ones)."""
        pairs: dict[tuple[str, str], list[PoolState]] = {}
        adj: dict[str, set[str]] = {}
        for s in states:
            a, b = s.token0.lower(), s.token1.lower()
            if a == b:
                continue
            pairs.setdefault((min(a, b), max(a, b)), []).append(s)
            adj.setdefault(a, set()).add(b)
            adj.setdefault(b, set()).add(a)
        return cls(
            native,
            lambda x, y: pairs.get((min(x, y), max(x, y)), []),
            lambda t: sorted(adj.get(t, ())),
            min_native_liquidity_wei,
        )

    def direct(self, token: str) -> PairPrice | None:
        """Rule 2: the token's price from its own pools against the native token."""
        token = token.lower()
        if token not in self._direct:
            self._direct[token] = pair_price(
                self.pools_between(token, self.native), token, min_quote_depth=self.min_native_liquidity_wei
            )
        return self._direct[token]

    def native_depth(self, token: str) -> int:
        """Native-side depth of the token's counted pools against the native token (0: none)."""
        pp = self.direct(token)
        return 0 if pp is None else pp.quote_depth

    def price(self, token: str) -> NativePrice | None:
        token = token.lower()
        if token in self._memo:
            return self._memo[token]
        out: NativePrice | None
        if token == self.native:
            out = NativePrice(token, Fraction(1))
        elif (pp := self.direct(token)) is not None:
            out = NativePrice(token, pp.price, pp.pools)
        else:
            out = self._two_hop(token)
        self._memo[token] = out
        return out

    def _two_hop(self, token: str) -> NativePrice | None:
        best: tuple[Fraction, NativePrice] | None = None
        for mid in self.neighbours(token):
            if mid in (token, self.native):
                continue
            via = self.direct(mid)
            if via is None:
                continue
            # min_native_liquidity_wei worth of mid, in mid's base units (rounded up)
            floor = Fraction(self.min_native_liquidity_wei) / via.price
            leg = pair_price(self.pools_between(token, mid), token, min_quote_depth=floor)
            if leg is None:
                continue
            depth_native = leg.quote_depth * via.price
            if best is None or depth_native > best[0]:
                best = (depth_native, NativePrice(token, leg.price * via.price, leg.pools + via.pools))
        return None if best is None else best[1]
