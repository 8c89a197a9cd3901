"""The rule scorer (until the learned model lands): execute when the gross profit covers
the gas cost by a safety margin. The score is the profit-to-gas ratio."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from arbbot.types import Opportunity, ScoredOpportunity


@dataclass(frozen=True)
class RuleScorer:
    margin: float = 1.5  # gross profit must exceed gas cost x margin
    min_net_profit: int = 0  # base units of the start token

    name = "rule"

    def score(self, opp: Opportunity) -> ScoredOpportunity:
        gas = max(opp.gas_cost, 1)
        ratio = opp.profit / gas
        if opp.profit <= 0:
            return ScoredOpportunity(opp, ratio, "skip", "no gross profit", self.name)
        if opp.profit <= opp.gas_cost * self.margin:
            return ScoredOpportunity(opp, ratio, "skip", f"profit below gas x {self.margin}", self.name)
        if opp.net_profit <= self.min_net_profit:
            return ScoredOpportunity(opp, ratio, "skip", "net profit below minimum", self.name)
        return ScoredOpportunity(opp, ratio, "execute", f"profit/gas {ratio:.1f}", self.name)

    def score_batch(self, opps: Iterable[Opportunity]) -> list[ScoredOpportunity]:
        return [self.score(o) for o in opps]


def select_non_overlapping(scored: list[ScoredOpportunity]) -> list[ScoredOpportunity]:
    """Of the ``execute`` decisions, keep the best per pool: two trades through the same
    pool in one block would invalidate each other's sizing."""
    used: set[str] = set()
    out = []
    for s in sorted(
        (s for s in scored if s.decision == "execute"), key=lambda s: s.opportunity.net_profit, reverse=True
    ):
        if used.isdisjoint(s.opportunity.pools):
            used.update(s.opportunity.pools)
            out.append(s)
    return out
