"""The path stage's per-chain state machine: keeps one ``PathEngine`` in step with the
scan stage's ``PoolDelta``s and the hot state, and turns each delta into opportunities.

Deltas of one chain may be spread over several worker processes, so an engine can miss
blocks; it then catches up on every pool from the hot state before evaluating. Tokens the
scan stage found unfit (fee-on-transfer, reverting transfers) leave the graph before any
cycle through them is evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from arbbot.paths.engine import PathEngine
from arbbot.types import Opportunity, PoolDelta, PoolState


class PoolSource(Protocol):
    """What the stage reads from the hot state (``arbbot.hotstate.HotState``)."""

    def snapshot(self) -> tuple[dict[str, PoolState], tuple[int, str] | None]: ...

    def excluded_tokens(self, addresses: set[str] | None = None) -> dict[str, str]: ...


@dataclass
class PathStage:
    engine: PathEngine
    synced_block: int = -1
    newly_excluded: dict[str, str] = field(default_factory=dict)

    def process(self, delta: PoolDelta, hot: PoolSource, *, gas_price_wei: int) -> list[Opportunity]:
        """Opportunities among the cycles through the pools ``delta`` (and any catch-up)
        changed. ``newly_excluded`` then holds the tokens excluded by this call, with why."""
        fresh = self.synced_block < 0
        catch_up = fresh or delta.block_number != self.synced_block + 1 or delta.reorg
        tokens = None if catch_up else {t for s in delta.states for t in (s.token0, s.token1)}
        self.newly_excluded = {}
        for token, reason in hot.excluded_tokens(tokens).items():
            if token not in self.engine.excluded:
                self.engine.exclude(token, reason)
                self.newly_excluded[token] = reason
        changed = self.engine.upsert(delta.states)
        block_number, block_hash = delta.block_number, delta.block_hash
        if catch_up:
            pools, head = hot.snapshot()
            changed |= self.engine.upsert(pools.values())
            if head is not None and head[0] > block_number:
                # The hot state is already past this delta (its worker was slow to start,
                # or deltas queued up): what is evaluated now is the state at the head, so
                # the opportunities are that block's, not the delta's.
                block_number, block_hash = head
        self.synced_block = max(self.synced_block, block_number)
        return self.engine.evaluate(
            None if fresh else changed,
            chain_id=delta.chain_id,
            block_number=block_number,
            block_hash=block_hash,
            gas_price_wei=gas_price_wei,
            observed_at=delta.observed_at,
        )
