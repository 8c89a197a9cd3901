"""Gas estimates per hop type: the one place the path engine's gas constants live.

The figures are deliberately simple (a base cost plus a per-hop cost by pool kind); they are
a screening estimate, the execute stage simulates the real transaction. Override them by
passing a ``GasModel`` to ``PathEngine``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Iterable, Mapping

#: Defaults: the executor's fixed overhead (call, flash-swap bookkeeping, profit check) and
#: a swap through a V2 pair / a V3 pool (callback, tick bitmap reads).
DEFAULT_BASE_GAS = 60_000
DEFAULT_HOP_GAS: Mapping[str, int] = MappingProxyType({"v2": 60_000, "v3": 110_000})


@dataclass(frozen=True, slots=True)
class GasModel:
    """``estimate(hop_kinds) = base + sum(per_hop[kind])`` in gas units."""

    base: int = DEFAULT_BASE_GAS
    per_hop: Mapping[str, int] = field(default_factory=lambda: DEFAULT_HOP_GAS)

    def hop_gas(self, kind: str) -> int:
        # An unknown kind is priced like the most expensive known hop: over-estimating gas
        # only drops marginal opportunities, under-estimating would send losing trades.
        return self.per_hop.get(kind, max(self.per_hop.values(), default=0))

    def estimate(self, hop_kinds: Iterable[str]) -> int:
        return self.base + sum(self.hop_gas(k) for k in hop_kinds)
