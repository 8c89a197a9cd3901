"""The path stage's per-chain state machine: keeps one ``PathEngine`` in step with the
scan stage's ``PoolDelta``s, the hot state and the recorded exclusions, and turns each
delta into one ``PathResult``.

Deltas of one chain may be spread over several worker processes, so an engine can miss
blocks; it then catches up from the hot state before evaluating: on the pools the blocks
since the one it holds changed (``changed_since``), or on every pool when that cannot be
told (a first block, a reorg, lifted exclusions). A block passed over this way belongs to
whichever process holds its delta (the scan stage claims each block and hands it to exactly
one path worker or the block follower): its pools' states are taken, their cycles left to
that process (a cycle this delta touched is evaluated here, at the newest state). That
process may be this one, the delta waiting in its prefetch: a delta behind the block held
takes nothing from its (older) states and has its pools evaluated at the head, once
(``_passed``). Two path processes on the pipeline bench cost ~4x the CPU a block of one
before this (each evaluated the other's blocks again and read the whole hot state for
every delta it had passed), ~1.4x after (``bench/pipeline/README.md``, session 41). What
that gives up: a block whose delta no worker evaluated (its publish, or its task, failed for
good: logged, dead-lettered) is not evaluated by the next catch-up; its cycles are when one
of their pools changes again. Gas is
priced with the delta's ``gas_price_wei`` (the scanner read it with the block), in the
native token, and every opportunity's profit valued in it (``arbbot.paths.pricing``). On
its first block it warns, once, of each start token that has no pools. A process may prime
its stage at start (``prime``: every pool taken from the hot state, none evaluated), so that
its first block does not build the engine on its way; that block still evaluates every cycle.

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


#: how many passed-over blocks a stage remembers (the newest): a delta older than those is
#: taken as evaluated by its block's catch-up
MAX_PASSED = 1024


@dataclass
class PathStage:
    engine: PathEngine
    synced_block: int = -1
    synced_hash: str = ""  # the hash of ``synced_block`` as this stage saw it
    # flagged tokens handed on in a result, and those of them the record does not hold yet
    # (kept excluded meanwhile, so a failed write never lets them trade)
    _handed_on: set[str] = field(default_factory=set, repr=False)
    _unrecorded: dict[str, str] = field(default_factory=dict, repr=False)
    # blocks a catch-up took the states of without evaluating them (another worker's, or
    # this worker's own delta still waiting in its prefetch: evaluated when it comes)
    _passed: set[int] = field(default_factory=set, repr=False)
    # primed (``prime``): the next delta catches up and evaluates every cycle at the head, as
    # a fresh stage's first does
    _primed: bool = field(default=False, repr=False)

    def prime(self, hot: PoolSource, excluded: ExclusionSource, chain_id: int) -> bool:
        """A fresh stage takes every pool of the hot state now (a process's start), so that
        its first delta does not build the engine on its block's way. That delta is still
        taken as a fresh stage's first one is: it catches up to the hot state's head (only
        on what changed since the state taken here) and evaluates every cycle there, so what
        stood before the start is found, and deltas queued behind it (a backlog from
        before the start) find nothing new. False, and nothing taken, when the stage is not
        fresh or the hot state holds no block."""
        if self.synced_block >= 0:
            return False
        pools, head = hot.snapshot()
        if head is None:
            return False
        self._apply({a.lower(): reason for a, reason in excluded(chain_id).items()})
        self.engine.upsert(pools.values())
        self.synced_block, self.synced_hash = head
        self._primed = True
        self.engine.missing_start_tokens()  # said once, as a fresh stage's first block says it
        return True

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
        primed, self._primed = self._primed, False
        # the next block, with a parent other than the block seen last: that one was orphaned
        # (another worker took the reorg's correction), so this delta alone would leave its
        # states standing. (Past a gap or behind, ``changed_since`` tells an orphaned block.)
        forked = (bool(delta.parent_hash) and delta.block_number == self.synced_block + 1
                  and delta.parent_hash != self.synced_hash)
        # a delta of a block this stage is already past (it skipped forward to the head over
        # it while the delta waited in this worker's prefetch): its states are older than the
        # engine's, so only its pools are taken from it, their cycles evaluated at the head
        behind = not fresh and delta.block_number <= self.synced_block and not delta.reorg
        catch_up = fresh or primed or delta.block_number != self.synced_block + 1 or delta.reorg or forked
        tokens = None if catch_up else {t.lower() for s in delta.states for t in (s.token0, s.token1)}
        recorded = {a.lower(): reason for a, reason in excluded(delta.chain_id).items()}
        flagged = self._flagged(hot.excluded_tokens(tokens), recorded)
        lifted = self._apply({**recorded, **self._unrecorded})
        if lifted:
            catch_up = True  # the engine forgot the pools it had excluded: re-read them
        block_number, block_hash = delta.block_number, delta.block_hash
        if behind:
            # its pools were taken on the way past it; evaluated only if that way did not
            # evaluate them (``_passed``): else there is nothing new in it
            changed = {s.address.lower() for s in delta.states} if delta.block_number in self._passed else set()
            self._passed.discard(delta.block_number)
            block_number, block_hash = self.synced_block, self.synced_hash
        else:
            self.engine.remove(delta.removed)  # quarantined or no longer admitted by the scanner
            changed = self.engine.upsert(delta.states)
        if catch_up:
            # Blocks skipped forward (other workers took them) or a delta behind: only the
            # pools changed since the block held (a 100k-pool hot state takes seconds to
            # read whole). Anything else, a first block, a reorg (seen, or told by a parent
            # other than the block held), lifted exclusions: every pool.
            got = None
            if not (fresh or delta.reorg or lifted or forked):
                got = hot.changed_since(self.synced_block, self.synced_hash)
            if got is not None:
                pools, head, gone = got
            else:
                pools, head = hot.snapshot()
                # every pool: what is held and no longer stored was removed meanwhile
                gone = frozenset(self.engine.states.keys() - pools.keys())
            self.engine.remove(gone)
            caught_up = self.engine.upsert(pools.values())
            if got is None or primed:  # states this stage cannot tell were evaluated: evaluate them
                changed |= caught_up
                self._passed.clear()
            elif head is not None:  # passed over, not evaluated here: another worker's, or a delta still to come
                self._passed.update(b for b in range(self.synced_block + 1, head[0] + 1) if b != delta.block_number)
                if len(self._passed) > MAX_PASSED:
                    self._passed = set(sorted(self._passed)[-MAX_PASSED:])
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
            None if fresh or primed else changed,
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
