"""The path stage's per-chain state machine: keeps one ``PathEngine`` in step with the
scan stage's ``PoolDelta``s, the hot state and the recorded exclusions, and turns each
delta into one ``PathResult``.

Deltas of one chain may be spread over several worker processes, so an engine can miss
blocks; it then catches up from the hot state before evaluating: on the pools the missed
blocks changed (``changed_since``), or on every pool when that cannot be told. A block
skipped forward was another worker's (the scan stage claims each block and hands it to
exactly one path worker or the block follower): its pools' states are taken, but their
cycles are evaluated only where this delta changed a pool of theirs, as one process taking
every block would, not again for the whole missed block. Evaluating them again made P path
processes on one chain cost P times the CPU for the same blocks a second (the pipeline
bench, two processes: ~3.5x a block, ``bench/pipeline/README.md``). What that gives up: a
block whose delta no worker evaluated (its publish, or its task, failed for good: logged,
dead-lettered) is not evaluated by the next catch-up; its cycles are when one of their pools
changes again. Every other catch-up (a first block, a reorg, a delta behind what was
seen, lifted exclusions) still reads every pool and evaluates what changed. Gas is
priced with the delta's ``gas_price_wei`` (the scanner read it with the block), in the
native token, and every opportunity's profit valued in it (``arbbot.paths.pricing``). On
its first block it warns, once, of each start token that has no pools.

Exclusions have one direction, the record (the database, behind ``ExclusionSource``) to
the engine: each delta the engine's exclusions are set to the recorded ones, so an
operator's exclusion takes effect on the next block and clearing one puts its pools back
(re-read from the hot state). Tokens the scan stage's checks found unfit (fee-on-transfer,
reverting transfers; the hot state's ``excluded_reason``) that the record does not hold yet
leave the graph at once and are handed on, once per stage, in ``PathResult.exclusions`` to
be recorded; from then on the record decides, so an operator can clear them too (clearing
also drops the scan stage's flag from the hot state, so a restarted worker does not
record it again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol

from arbbot.paths.engine import PathEngine
from arbbot.types import Opportunity, PoolDelta, PoolState


class PoolSource(Protocol):
    """What the stage reads from the hot state (``arbbot.hotstate.HotState``)."""

    def snapshot(self) -> tuple[dict[str, PoolState], tuple[int, str] | None]: ...
    def changed_since(
        self, after_block: int, after_hash: str = ""
    ) -> tuple[dict[str, PoolState], tuple[int, str] | None, frozenset[str]] | None: ...

    def excluded_tokens(self, addresses: set[str] | None = None) -> dict[str, str]: ...


class ExclusionSource(Protocol):
    """The recorded exclusions of a chain: token and pool address -> why (the web side's
    ``webapp.core.selectors.exclusions``, kept a second by the workers). Called once per delta."""

    def __call__(self, chain_id: int) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class PathResult:
    """What one delta gave: the opportunities (best net profit first) and the tokens the
    scan stage flagged that are not recorded as excluded yet (address -> why), to record."""

    opportunities: list[Opportunity]
    exclusions: dict[str, str]


@dataclass
class PathStage:
    engine: PathEngine
    synced_block: int = -1
    synced_hash: str = ""  # the hash of ``synced_block`` as this stage saw it
    # flagged tokens handed on in a result, and those of them the record does not hold yet
    # (kept excluded meanwhile, so a failed write never lets them trade)
    _handed_on: set[str] = field(default_factory=set, repr=False)
    _unrecorded: dict[str, str] = field(default_factory=dict, repr=False)

    def process(
        self, delta: PoolDelta, hot: PoolSource, excluded: ExclusionSource, *,
        first_part: int | None = None, on_first_part: Callable[[list[Opportunity]], None] | None = None,
        first_part_enough: Callable[[list[Opportunity]], bool] | None = None, first_part_most: int | None = None,
    ) -> PathResult:
        """Opportunities among the cycles through the pools ``delta`` (and any catch-up, or
        a lifted exclusion) changed, and the newly flagged tokens; in two parts with
        ``first_part`` and ``on_first_part``, a short first part grown with
        ``first_part_enough`` up to ``first_part_most`` (``PathEngine.evaluate``: the result
        holds the second)."""
        fresh = self.synced_block < 0
        # a parent other than the block seen last: that one was orphaned (another worker
        # took the reorg's correction), so this delta alone would leave its states standing
        forked = bool(delta.parent_hash) and delta.parent_hash != self.synced_hash
        catch_up = fresh or delta.block_number != self.synced_block + 1 or delta.reorg or forked
        tokens = None if catch_up else {t.lower() for s in delta.states for t in (s.token0, s.token1)}
        recorded = {a.lower(): reason for a, reason in excluded(delta.chain_id).items()}
        flagged = self._flagged(hot.excluded_tokens(tokens), recorded)
        lifted = self._apply({**recorded, **self._unrecorded})
        if lifted:
            catch_up = True  # the engine forgot the pools it had excluded: re-read them
        self.engine.remove(delta.removed)  # quarantined or no longer admitted by the scanner
        changed = self.engine.upsert(delta.states)
        block_number, block_hash = delta.block_number, delta.block_hash
        if catch_up:
            # Blocks skipped forward (other workers took them): only the pools they changed
            # (a 100k-pool hot state takes seconds to read whole). Anything else, a first
            # block, a reorg (seen, or told by a parent other than the block held), a delta
            # behind what was seen, lifted exclusions: every pool.
            got = None
            if not (fresh or delta.reorg or lifted or forked) and delta.block_number > self.synced_block:
                got = hot.changed_since(self.synced_block, self.synced_hash)
            if got is not None:
                pools, head, gone = got
            else:
                pools, head = hot.snapshot()
                # every pool: what is held and no longer stored was removed meanwhile
                gone = frozenset(self.engine.states.keys() - pools.keys())
            self.engine.remove(gone)
            caught_up = self.engine.upsert(pools.values())
            if got is None:  # states this stage cannot tell were evaluated: evaluate them
                changed |= caught_up
            if head is not None and head[0] > block_number:
                # The hot state is already past this delta (its worker was slow to start,
                # or deltas queued up): what is evaluated now is the state at the head, so
                # the opportunities are that block's, not the delta's.
                block_number, block_hash = head
        if block_number >= self.synced_block:
            self.synced_block, self.synced_hash = block_number, block_hash
        if fresh:
            # a start token (or the native token) with no pools is said once, in the log
            self.engine.missing_start_tokens()
        opportunities = self.engine.evaluate(
            None if fresh else changed,
            chain_id=delta.chain_id,
            block_number=block_number,
            block_hash=block_hash,
            gas_price_wei=delta.gas_price_wei,
            observed_at=delta.observed_at,
            first_part=first_part,
            on_first_part=on_first_part,
            first_part_enough=first_part_enough,
            first_part_most=first_part_most,
        )
        return PathResult(opportunities, flagged)

    def _flagged(self, flags: Mapping[str, str], recorded: Mapping[str, str]) -> dict[str, str]:
        """The scan stage's flags not recorded and not handed on before (by this stage)."""
        for token in [t for t in self._unrecorded if t in recorded]:
            del self._unrecorded[token]  # recorded: the record decides from now on
        new = {}
        for token, reason in flags.items():
            token = token.lower()
            if token not in recorded and token not in self._handed_on:
                new[token] = reason
        self._handed_on.update(new)
        self._unrecorded.update(new)
        return new

    def _apply(self, wanted: Mapping[str, str]) -> set[str]:
        """Make the engine's exclusions ``wanted``; the addresses whose exclusion was lifted."""
        engine = self.engine
        lifted = engine.include([a for a in engine.excluded if a not in wanted])
        for address, reason in wanted.items():
            if engine.excluded.get(address) != reason:
                engine.exclude(address, reason)
        return lifted
