"""Gas estimates per hop type, as the path engine's screen prices a cycle.

The figures are deliberately simple (a base cost plus a per-hop cost by pool kind); they are
a screening estimate, the execute stage simulates the real transaction. Override them by
passing a ``GasModel`` to ``PathEngine``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Iterable, Mapping

from arbbot.contracts.gas import GAS_BASE, GAS_PER_HOP

#: Defaults: the executor contract's measured gas (``arbbot.contracts.gas``: fixed
#: overhead of one ``execute()`` and a swap per hop kind), the same figures the execute
#: stage uses, so the screen and the executor can never disagree on the gas of a cycle.
DEFAULT_BASE_GAS = GAS_BASE
DEFAULT_HOP_GAS: Mapping[str, int] = MappingProxyType(dict(GAS_PER_HOP))


@dataclass(frozen=True, slots=True)
class GasModel:
    """``estimate(hop_kinds) = base + sum(per_hop[kind])`` in gas units."""

    base: int = DEFAULT_BASE_GAS
    per_hop: Mapping[str, int] = field(default_factory=lambda: DEFAULT_HOP_GAS)

    def hop_gas(self, kind: str) -> int:
        # An unknown kind is priced like the most expensive known hop: over-estimating gas
        # only drops marginal opportunities, under-estimating would send losing trades.
        gas = self.per_hop.get(kind)
        return gas if gas is not None else max(self.per_hop.values(), default=0)

    def estimate(self, hop_kinds: Iterable[str]) -> int:
        return self.base + sum(map(self.hop_gas, hop_kinds))
