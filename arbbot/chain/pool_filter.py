"""Which of a chain's pools the scanner watches: the pool filter's rules, pure.

Owns ``PoolFilter`` (the configured token allow/deny lists and minimum liquidity in a
quote token, as the ``PoolFilter`` row and the YAML ``pool_filter`` say them) and what they
mean for one pool:

* deny: a pool holding a denied token is never watched;
* allow (when set): only pools whose two tokens are both allowed;
* minimum liquidity (when set): a pool holding the quote token is admitted once its
  reserve of the quote token reaches the minimum (a V3 pool: its virtual reserve at the
  current price, ``L * 2**96 / sqrtP`` or ``L * sqrtP / 2**96``); a pool without the quote
  token once both of its tokens are *liquid*, that is each has an admitted pool against
  the quote token. So a three-hop cycle quote -> A -> B -> quote keeps its A/B pool.

Token rules need only what discovery knows (``PoolInfo``); the liquidity rule needs a state.
Admission is two-way, with hysteresis: a watched pool holding the quote token stays watched
while its quote reserve is at least ``EXIT_PERCENT`` of the minimum (``keeps``) and leaves
below that (and with it the pools without the quote token that it alone made admissible);
it comes back once it reaches the minimum again. So a pool whose reserve hovers around the
minimum is not announced in and out every block. What the registry does with the answers
is ``arbbot.chain.pool_registry``'s; the scanner takes a changed filter at its next block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from arbbot.chain.discovery import PoolInfo
from arbbot.errors import ConfigError
from arbbot.types import PoolState, V2PoolState, V3PoolState

Q96 = 2**96
EXIT_PERCENT = 90  # a watched pool leaves when its quote reserve falls below this % of the minimum


def _addresses(values: Iterable[str], what: str) -> frozenset[str]:
    out = set()
    for v in values:
        a = str(v).lower()
        if not (len(a) == 42 and a.startswith("0x")):
            raise ConfigError(f"pool filter: {what}: {v!r} is not an address")
        int(a, 16)
        out.add(a)
    return frozenset(out)


@dataclass(frozen=True)
class PoolFilter:
    """The rules; the default admits every pool."""

    allow_tokens: frozenset[str] = frozenset()
    deny_tokens: frozenset[str] = frozenset()
    min_liquidity_token: str = ""
    min_liquidity: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "allow_tokens", _addresses(self.allow_tokens, "allow_tokens"))
        object.__setattr__(self, "deny_tokens", _addresses(self.deny_tokens, "deny_tokens"))
        object.__setattr__(self, "min_liquidity_token", self.min_liquidity_token.lower())
        if self.min_liquidity < 0:
            raise ConfigError(f"pool filter: min_liquidity must be >= 0, got {self.min_liquidity}")
        if self.min_liquidity and not self.min_liquidity_token:
            raise ConfigError("pool filter: min_liquidity needs its quote token (min_liquidity_token)")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> PoolFilter:
        """From the ``config_effective`` / YAML shape: ``allow_tokens``, ``deny_tokens``,
        ``min_liquidity: {token, amount}`` (or None)."""
        if not d:
            return cls()
        minimum = d.get("min_liquidity") or {}
        return cls(
            frozenset(d.get("allow_tokens") or ()), frozenset(d.get("deny_tokens") or ()),
            str(minimum.get("token", "")), int(minimum.get("amount", 0)),
        )

    @property
    def needs_state(self) -> bool:
        """Whether admission waits for a state (a minimum liquidity is set)."""
        return self.min_liquidity > 0

    def admits_tokens(self, info: PoolInfo) -> bool:
        """The token rules (allow, deny) for ``info``."""
        t0, t1 = info.token0.lower(), info.token1.lower()
        if t0 in self.deny_tokens or t1 in self.deny_tokens:
            return False
        return not self.allow_tokens or (t0 in self.allow_tokens and t1 in self.allow_tokens)

    def holds_quote(self, info: PoolInfo) -> bool:
        q = self.min_liquidity_token
        return info.token0.lower() == q or info.token1.lower() == q

    def quote_reserve(self, state: PoolState) -> int:
        """The pool's reserve of the quote token (0 when it does not hold it)."""
        q = self.min_liquidity_token
        first = state.token0.lower() == q
        if not first and state.token1.lower() != q:
            return 0
        if isinstance(state, V2PoolState):
            return state.reserve0 if first else state.reserve1
        if isinstance(state, V3PoolState):
            if state.sqrt_price_x96 <= 0:
                return 0
            return (state.liquidity * Q96 // state.sqrt_price_x96 if first
                    else state.liquidity * state.sqrt_price_x96 // Q96)
        return 0

    def deep_enough(self, state: PoolState) -> bool:
        """A quote-token pool's liquidity rule to be admitted (always true without a minimum)."""
        return not self.needs_state or self.quote_reserve(state) >= self.min_liquidity

    def keeps(self, state: PoolState) -> bool:
        """A watched quote-token pool's rule to stay watched: ``EXIT_PERCENT`` of the minimum."""
        return not self.needs_state or self.quote_reserve(state) * 100 >= self.min_liquidity * EXIT_PERCENT


__all__ = ["EXIT_PERCENT", "PoolFilter"]
