"""The rule scorer (until the learned model lands) and the ml stage's decision rule.

One unit of value: everything is compared in the chain's native token (wei), whatever
token the cycle starts at (``Opportunity.profit_native``, priced from the pools at its
block by ``arbbot.paths.pricing``; gas is native, ``Opportunity.gas_cost_native``).

``score`` judges one opportunity: execute when the gross profit in native covers the gas
by a safety margin and the net profit in native clears a minimum; the score is the
profit-to-gas ratio. An opportunity whose start token has no native price
(``profit_native`` is ``None``) is never executed: its worth and its gas are unknown.
``decide`` judges a batch and gives every opportunity its final decision: two trades
through one pool in one block would invalidate each other's sizing, so of the worthy ones
only the best per pool (by net profit in native) stays ``execute``; the rest are recorded
as ``skip``, naming the better cycle they lost to. Unpriced opportunities rank last.
Of what is left, only the best ``max_sends`` (the strategy's ``max_sends_per_block``) stay
``execute``; ``at_most`` owns that cap, for the rule and the learned model alike.

A block whose cycles are sized in two parts (``PathEngine.evaluate``'s ``first_part``) is
decided in two: the first part as any batch, and the block's choice from it kept
(``BlockSends``: its ``execute`` ones, by path, with their pools); ``as_chosen`` makes a
first part's decisions that kept choice, and ``after_first`` decides the second part around
it: no pool of the first part's choice used again, at most ``max_sends`` in all.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from fractions import Fraction
from typing import Iterable, Mapping, Sequence

from arbbot.paths.engine import rank_key
from arbbot.types import Decision, Opportunity, ScoredOpportunity

#: a block's choice from its first part: path id -> its pools (lower case)
BlockSends = Mapping[str, Sequence[str]]


#: The strategy's default ``max_sends_per_block``, and the most it may be set to. One account
#: sends a block's trades one nonce after another, each sized on that block's state: past a
#: handful, the later ones land blocks late on moved pools (and pay gas to revert), and the
#: execute stage decides a block's trades in turn, so each one more delays every later
#: decision by its re-validation's round trip. The best ``max_sends`` go; the others are
#: recorded as skipped, with the reason.
MAX_SENDS_PER_BLOCK = 8
MAX_SENDS_PER_BLOCK_LIMIT = 256


@dataclass(frozen=True)
class RuleScorer:
    #: gross profit must exceed gas cost x margin; compared exactly (as a fraction), so a
    #: chain's configured margin (a decimal, ``Strategy.margin``) is not rounded through a float
    margin: Fraction | float = 1.5
    min_net_profit: int = 0  # native wei (the strategy's ``min_profit_wei``)
    #: at most this many of a batch (one block's) stay ``execute`` (``at_most``); None: no cap
    max_sends: int | None = None

    name = "rule"

    @cached_property
    def _margin(self) -> Fraction:  # once per scorer: Fraction(float) costs ~0.6 µs, per opportunity otherwise
        return self.margin if isinstance(self.margin, Fraction) else Fraction(self.margin)

    def score(self, opp: Opportunity, features: Mapping[str, float] | None = None) -> ScoredOpportunity:
        """One opportunity on its own merits (no other opportunity considered), carrying
        ``features`` when given."""
        profit, gas = opp.profit_native, opp.gas_cost_native
        feats = {} if features is None else features
        if profit is None:
            return ScoredOpportunity(
                opp, 0.0, "skip", f"no price in the native token for {opp.tokens[0]}: worth unknown", self.name, feats,
            )
        ratio = profit / max(gas, 1)
        refused = self.refusal(profit, gas)
        if refused:
            return ScoredOpportunity(opp, ratio, "skip", refused, self.name, feats)
        return ScoredOpportunity(opp, ratio, "execute", f"profit/gas {ratio:.1f}", self.name, feats)

    def refusal(self, profit_native: int, gas_native: int) -> str | None:
        """Why the rule skips a gross profit against a gas cost (native wei), or ``None``."""
        margin = self._margin
        if profit_native <= 0:
            return "no gross profit"
        if profit_native * margin.denominator <= gas_native * margin.numerator:
            return f"profit below gas x {float(margin):g}"
        if profit_native - gas_native <= self.min_net_profit:
            return "net profit below minimum"
        return None

    def decide(
        self, opps: Sequence[Opportunity], rows: Sequence[Mapping[str, float]] | None = None,
    ) -> list[ScoredOpportunity]:
        """Every opportunity of the batch with its final decision, best net profit in native
        first, unpriced last (the order the execute stage should try them in): ``execute``
        exactly for those to be sent on, no pool used twice among them.

        Ties in net profit go to the lower ``path_id``, then the earlier in the batch, so the
        outcome never depends on set or dict order. A worthy opportunity whose pool an
        earlier (better) one already claimed becomes ``skip``, its reason naming the shared
        pool and the cycle that claimed it; past the best ``max_sends``, a worthy one becomes
        ``skip`` too (``at_most``). ``rows``: the features to attach to each verdict (by
        batch position)."""
        ranked = sorted(enumerate(opps), key=lambda item: (*rank_key(item[1]), item[0]))
        decided = one_per_pool(self.score(opp, None if rows is None else rows[i]) for i, opp in ranked)
        return at_most(decided, self.max_sends)


def fills_sends(rule: RuleScorer, opps: Sequence[Opportunity]) -> bool:
    """Whether ``opps`` (a block's first part, as the path stage sizes it) already hold as
    many ``execute`` decisions of ``rule`` as its ``max_sends``: the rest of the block can
    then add none (``after_first``). No cap: never."""
    return rule.max_sends is not None and len(chosen_of(rule.decide(opps))) >= rule.max_sends


def one_per_pool(ranked: Iterable[ScoredOpportunity]) -> list[ScoredOpportunity]:
    """Final decisions of a batch given best first (by any scorer's ranking): an
    ``execute`` whose pool a better one already claimed becomes ``skip``, naming it."""
    claimed: dict[str, str] = {}  # pool -> path_id of the cycle executing through it
    out = []
    for scored in ranked:
        if scored.decision == "execute":
            opp = scored.opportunity
            pools = [p.lower() for p in opp.pools]
            taken = next((p for p in pools if p in claimed), None)
            if taken is None:
                claimed.update((p, opp.path_id) for p in pools)
            else:
                scored = _verdict(scored, "skip", f"overlaps a better cycle through pool {taken} (path {claimed[taken]})")
        out.append(scored)
    return out


def _verdict(scored: ScoredOpportunity, decision: Decision, reason: str) -> ScoredOpportunity:
    """``scored`` with another decision and its reason (not ``dataclasses.replace``: ~10x
    its cost on the hot path)."""
    return ScoredOpportunity(scored.opportunity, scored.score, decision, reason, scored.model, scored.features)


def _past_cap(max_sends: int) -> str:
    return f"not among the block's best {max_sends} (max_sends_per_block)"


def at_most(decided: list[ScoredOpportunity], max_sends: int | None) -> list[ScoredOpportunity]:
    """A batch's final decisions (best first, by any scorer's ranking) with only the first
    ``max_sends`` ``execute`` ones kept; each later one becomes ``skip``, saying so. None:
    no cap. The list is returned as is when the cap is not reached."""
    if max_sends is None:
        return decided
    if max_sends < 1:
        raise ValueError(f"max_sends must be at least 1, got {max_sends}")
    left = max_sends
    out = decided
    for i, scored in enumerate(decided):
        if scored.decision != "execute":
            continue
        if left:
            left -= 1
            continue
        if out is decided:
            out = list(decided)
        out[i] = _verdict(scored, "skip", _past_cap(max_sends))
    return out


def chosen_of(decided: Sequence[ScoredOpportunity]) -> dict[str, list[str]]:
    """The ``execute`` ones of ``decided`` as a ``BlockSends``."""
    return {s.opportunity.path_id: [p.lower() for p in s.opportunity.pools] for s in decided if s.decision == "execute"}


def as_chosen(decided: list[ScoredOpportunity], chosen: BlockSends) -> list[ScoredOpportunity]:
    """A first part's decisions made to agree with the block's kept choice ``chosen`` (the
    same part, decided first by another process from its copy): exactly the chosen ones
    ``execute``. Each changed verdict says why."""
    out = []
    for s in decided:
        execute = s.opportunity.path_id in chosen
        if execute and s.decision != "execute":
            s = _verdict(s, "execute", "chosen with the block's second part")
        elif not execute and s.decision == "execute":
            s = _verdict(s, "skip", "not chosen with the block's second part")
        out.append(s)
    return out


def after_first(decided: list[ScoredOpportunity], chosen: BlockSends, max_sends: int) -> list[ScoredOpportunity]:
    """A second part's decisions (best first) around the block's choice from its first part:
    an ``execute`` one through a pool of that choice, or past ``max_sends`` in all, becomes
    ``skip``, saying so."""
    taken = {p: path for path, pools in chosen.items() for p in pools}
    left = max_sends - len(chosen)
    out = []
    for s in decided:
        if s.decision == "execute":
            opp = s.opportunity
            through = next((p.lower() for p in opp.pools if p.lower() in taken), None)
            reason = None
            if through is not None:
                reason = f"overlaps a cycle of the block's first part through pool {through} (path {taken[through]})"
            elif left <= 0:
                reason = _past_cap(max_sends)
            if reason is None:
                left -= 1
            else:
                s = _verdict(s, "skip", reason)
        out.append(s)
    return out
