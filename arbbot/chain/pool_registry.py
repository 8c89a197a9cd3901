"""The pool registry: every pool the scanner knows and its latest state.

Owns the known pools (static ``PoolInfo`` by address, from discovery, creation logs or
config), their latest ``PoolState``, and reading them: ``read`` takes V2 ``getReserves``
(``read_v2_reserves``: a thousand pairs per state-override ``eth_call``) and V3 ``slot0`` +
``liquidity`` of many pools in batched Multicall3 calls, pinned to one
block (by hash when the caller has it), plus each V3 pool's initialized ticks through the
one ``tickBitmap`` walker (``arbbot.chain.multicall.read_v3_ticks``). A pool whose read
reverts or returns garbage is left out of the result and noted in ``failed`` (address ->
why) for the scanner to quarantine: one broken pool never fails the read of the others.
Token metadata is
``arbbot.chain.token_registry``; which pools a block touched is ``arbbot.chain.events``.
"""

from __future__ import annotations

from sys import intern
from typing import Any, Iterable, Mapping, Sequence

from arbbot.chain.discovery import PoolInfo
from arbbot.chain.multicall import (
    SEL_LIQUIDITY,
    SEL_SLOT0,
    SubCall,
    SubCallRunner,
    cached_subcall,
    decode_slot0,
    decode_uint,
    read_v2_reserves,
    read_v3_ticks,
)
from arbbot.chain.pool_filter import PoolFilter
from arbbot.errors import ArbbotError
from arbbot.math.tick_math import MAX_SQRT_RATIO, MAX_TICK, MIN_SQRT_RATIO, MIN_TICK
from arbbot.types import PoolState, V2PoolState, V3PoolState

# what a genuine pool can hold: V2 reserves are uint112, V3 liquidity uint128 (a V3 pool
# not initialized yet has a sqrt price of 0)
_UINT112 = 1 << 112
_UINT128 = 1 << 128


class ScanError(ArbbotError):
    """The scanner could not make sense of the chain (e.g. a node returned a block without
    a hash). Node unavailability is not a ``ScanError``: ``Scanner.poll()`` reports it in
    health; a pool that cannot be read is not one either (``PoolRegistry.failed``)."""


class PoolRegistry:
    """One chain's pools. ``v3_ticks`` off: V3 states keep the ticks they had (or none).

    ``infos`` holds every pool known (discovered, configured or adopted), so a pool is
    never discovered twice and its logs are recognised; ``watched`` the ones the filter
    admits, the only ones read, refreshed and published; ``pending`` the ones the token
    rules admit that wait for the liquidity rule (``arbbot.chain.pool_filter``);
    ``states`` the latest state of each watched pool only. Admission is two-way
    (``unwatch``: a pool whose quote reserve fell, ``set_filter``: a new filter). What is
    kept per pool that is not watched is its ``PoolInfo`` (token and factory strings interned: a chain has far
    fewer tokens than pools)."""

    def __init__(
        self, mc: SubCallRunner, *, v3_ticks: bool = True, infos: Iterable[PoolInfo] = (),
        pool_filter: PoolFilter | None = None,
    ) -> None:
        self.mc = mc
        self.v3_ticks = v3_ticks
        self.filter = pool_filter or PoolFilter()
        self.infos: dict[str, PoolInfo] = {}
        self.watched: set[str] = set()
        self.pending: set[str] = set()
        self.liquid_tokens: set[str] = set()  # tokens with a watched pool against the quote token
        self._quote_pools: dict[str, set[str]] = {}  # liquid token -> its watched pools against the quote token
        self._waiting: dict[str, set[str]] = {}  # token -> pending pools without the quote token
        self.states: dict[str, PoolState] = {}
        self.failed: dict[str, str] = {}  # pools whose last read failed -> why; drained by the scanner
        self.register(infos)

    # ------------------------------------------------------------------ admission

    def register(self, infos: Iterable[PoolInfo]) -> list[PoolInfo]:
        """Add pools not known yet; returns those of them watched from now on (the token
        rules admit them, and the liquidity rule, if any, needs no state for them)."""
        watched = []
        for i in infos:
            a = i.address.lower()
            if a in self.infos:
                continue
            i = _interned(i, a)
            self.infos[a] = i
            f = self.filter
            if not f.admits_tokens(i):
                continue
            if not f.needs_state or (not f.holds_quote(i) and self._tokens_liquid(i)):
                self._watch(a)
                watched.append(i)
                continue
            self.pending.add(a)
            if not f.holds_quote(i):
                for t in (i.token0, i.token1):
                    self._waiting.setdefault(t, set()).add(a)
        return watched

    def admit(self, states: Iterable[PoolState]) -> tuple[list[PoolState], set[str]]:
        """Pending pools holding the quote token whose ``states`` pass the liquidity rule
        become watched, with those states as their latest; returns them, and the pending
        pools without the quote token that this made admissible (both tokens now liquid:
        watched from now on, with no state yet: the caller reads them)."""
        admitted: list[PoolState] = []
        unlocked: set[str] = set()
        for s in states:
            a = s.address
            if a not in self.pending or not self.filter.holds_quote(self.infos[a]) or not self.filter.deep_enough(s):
                continue
            unlocked |= self._watch(a)
            self.states[a] = s
            admitted.append(s)
        return admitted, unlocked

    def _watch(self, a: str) -> set[str]:
        """Watch ``a``; returns the waiting pools that became watched through it."""
        self.pending.discard(a)
        self.watched.add(a)
        if not self.filter.needs_state:
            return set()
        info = self.infos[a]
        q = self.filter.min_liquidity_token
        if q not in (info.token0, info.token1):
            return set()
        other = info.token1 if info.token0 == q else info.token0
        self._quote_pools.setdefault(other, set()).add(a)
        if other in self.liquid_tokens:
            return set()
        self.liquid_tokens.add(other)
        unlocked = set()
        for b in sorted(self._waiting.pop(other, ())):
            if b in self.pending and self._tokens_liquid(self.infos[b]):
                self.pending.discard(b)
                self.watched.add(b)
                unlocked.add(b)
        return unlocked

    def unwatch(self, addrs: Iterable[str]) -> set[str]:
        """Stop watching ``addrs`` (their quote reserve fell below what the filter keeps),
        and the pools without the quote token that only they made admissible; returns every
        pool that left. Those the token rules still admit wait again, as at registration."""
        gone: set[str] = set()
        lost: set[str] = set()
        q = self.filter.min_liquidity_token
        for a in addrs:
            if a not in self.watched:
                continue
            self._leave(a)
            gone.add(a)
            info = self.infos[a]
            if self.filter.needs_state and q in (info.token0, info.token1):
                other = info.token1 if info.token0 == q else info.token0
                through = self._quote_pools.get(other, set())
                through.discard(a)
                if not through:
                    self._quote_pools.pop(other, None)
                    self.liquid_tokens.discard(other)
                    lost.add(other)
        if lost:
            for b in [b for b in self.watched if (i := self.infos[b]).token0 in lost or i.token1 in lost]:
                if not self.filter.holds_quote(self.infos[b]):
                    self._leave(b)
                    gone.add(b)
        return gone

    def _leave(self, a: str) -> None:
        self.watched.discard(a)
        self.states.pop(a, None)
        info = self.infos[a]
        if not self.filter.admits_tokens(info):
            return
        self.pending.add(a)
        if self.filter.needs_state and not self.filter.holds_quote(info):
            for t in (info.token0, info.token1):
                self._waiting.setdefault(t, set()).add(a)

    def set_filter(self, pool_filter: PoolFilter) -> tuple[set[str], set[str]]:
        """Put ``pool_filter`` in force over every known pool; returns (the pools that
        left, the pools watched now that were not: the caller reads them). A quote-token
        pool is judged on the state held (a watched one by ``keeps``, hysteresis); one
        without a state waits (``quote_pending``: the caller screens them)."""
        before = self.watched
        old_states = self.states
        f = self.filter = pool_filter
        self.watched, self.pending, self.liquid_tokens = set(), set(), set()
        self._waiting, self._quote_pools, self.states = {}, {}, {}
        others: list[tuple[str, PoolInfo]] = []
        for a, i in self.infos.items():
            if not f.admits_tokens(i):
                continue
            if not f.needs_state:
                self.watched.add(a)
            elif f.holds_quote(i):
                s = old_states.get(a)
                if s is not None and (f.keeps(s) if a in before else f.deep_enough(s)):
                    self._watch(a)
                else:
                    self.pending.add(a)
            else:
                others.append((a, i))
        for a, i in others:
            if self._tokens_liquid(i):
                self.watched.add(a)
            else:
                self.pending.add(a)
                for t in (i.token0, i.token1):
                    self._waiting.setdefault(t, set()).add(a)
        self.states = {a: s for a, s in old_states.items() if a in self.watched}
        return before - self.watched, self.watched - before

    def _tokens_liquid(self, info: PoolInfo) -> bool:
        return info.token0 in self.liquid_tokens and info.token1 in self.liquid_tokens

    def quote_pending(self) -> list[str]:
        """Pending pools holding the quote token (the ones a state can admit), sorted."""
        return sorted(a for a in self.pending if self.filter.holds_quote(self.infos[a]))

    # ------------------------------------------------------------------ bookkeeping

    def adopt(self, states: Mapping[str, PoolState], *, replace: bool = True) -> None:
        """Take ``states`` (another worker's, from the store) as the latest (``replace``:
        as every state; else as changes to the states held), registering the pools among
        them not known yet from what their states say. The store holds watched pools only:
        each is watched here too."""
        if replace:
            self.states = dict(states)
        else:
            self.states.update(states)
        for a, s in states.items():
            if a not in self.infos:
                self.infos[a] = _interned(PoolInfo(
                    a, s.kind, s.token0, s.token1, s.fee_pips,
                    s.tick_spacing if isinstance(s, V3PoolState) else 0,
                ), a)
            if a not in self.watched:
                self._watch(a)

    def snapshot(self) -> tuple[Any, ...]:
        """Everything ``restore`` needs to undo what happens after (a failed reorg repair)."""
        return (dict(self.infos), set(self.watched), set(self.pending), set(self.liquid_tokens),
                {t: set(v) for t, v in self._waiting.items()}, dict(self.states),
                {t: set(v) for t, v in self._quote_pools.items()}, self.filter)

    def restore(self, snap: tuple[Any, ...]) -> None:
        (self.infos, self.watched, self.pending, self.liquid_tokens, self._waiting, self.states,
         self._quote_pools, self.filter) = snap

    def forget_after(self, block_number: int) -> set[str]:
        """Forget the pools created after ``block_number`` (on a branch a reorg orphaned);
        returns their addresses."""
        dropped = {a for a, i in self.infos.items() if i.created_block > block_number}
        for a in dropped:
            self.infos.pop(a, None)
            self.states.pop(a, None)
            self.watched.discard(a)
            self.pending.discard(a)
            for through in self._quote_pools.values():
                through.discard(a)
        return dropped

    def update(self, states: Iterable[PoolState]) -> None:
        for s in states:
            self.states[s.address] = s

    # ------------------------------------------------------------------ reading

    def read(
        self, addrs: Sequence[str], block: int | str, block_number: int, *, with_ticks: bool = True,
        keep: bool = True,
    ) -> list[PoolState]:
        """Read ``addrs`` (known pools) at ``block`` (number or hash) and, with ``keep``,
        make the states the latest; in the order given, V2 pools first. A pool whose read
        fails is left out, its old state forgotten, and the reason recorded in ``failed``."""
        v2 = [a for a in addrs if self.infos[a].kind == "v2"]
        v3 = [a for a in addrs if self.infos[a].kind == "v3"]
        calls: list[SubCall] = []
        for a in v3:
            calls.append(cached_subcall(a, SEL_SLOT0))
            calls.append(cached_subcall(a, SEL_LIQUIDITY))
        reserves = read_v2_reserves(self.mc, v2, block) if v2 else []
        res = self.mc.run(calls, block) if calls else []
        out: list[PoolState] = []
        for a, r in zip(v2, reserves):
            if r is None or r[0] >= _UINT112 or r[1] >= _UINT112:
                self._failed(a, f"getReserves() failed or out of range at {block}")
                continue
            info = self.infos[a]
            out.append(V2PoolState(a, info.token0, info.token1, r[0], r[1], info.fee_pips, block_number))
        for j, a in enumerate(v3):
            s0 = decode_slot0(*res[2 * j])
            liq = decode_uint(*res[2 * j + 1])
            if (s0 is None or liq is None or liq >= _UINT128 or not (s0[0] == 0 or MIN_SQRT_RATIO <= s0[0] < MAX_SQRT_RATIO)
                    or not MIN_TICK <= s0[1] <= MAX_TICK):
                self._failed(a, f"slot0()/liquidity() failed or out of range at {block}")
                continue
            info = self.infos[a]
            prev = self.states.get(a)
            ticks = prev.ticks if isinstance(prev, V3PoolState) else ()
            if with_ticks and self.v3_ticks:
                ticks = read_v3_ticks(self.mc, info.address, info.tick_spacing, block)
            out.append(
                V3PoolState(a, info.token0, info.token1, info.fee_pips, info.tick_spacing, s0[0], s0[1], liq,
                            ticks, block_number)
            )
        if keep:
            self.update(out)
        return out

    def _failed(self, address: str, why: str) -> None:
        self.failed[address] = why
        self.states.pop(address, None)  # an unreadable pool has no current state

    def drain_failed(self) -> dict[str, str]:
        """The pools whose reads failed since the last drain (address -> why)."""
        out, self.failed = self.failed, {}
        return out

    def read_all(self, block: int | str, block_number: int) -> list[PoolState]:
        """Every watched pool at ``block``, after screening the pending pools that hold the
        quote token there (read without ticks; those deep enough, and the pools that made
        admissible, join the watched). V2 first, each kind in address order."""
        quote = self.quote_pending()
        fresh: dict[str, PoolState] = {}
        if quote:
            admitted, _ = self.admit(self.read(quote, block, block_number, with_ticks=False, keep=False))
            # V2 states read just now are final; V3 ones are read again below, with ticks
            fresh = {s.address: s for s in admitted if isinstance(s, V2PoolState)}
        out = self.read(sorted(self.watched.difference(fresh)), block, block_number, with_ticks=True)
        if not fresh:
            return out
        return sorted([*out, *fresh.values()], key=lambda s: (s.kind, s.address))


def _interned(info: PoolInfo, address: str) -> PoolInfo:
    """``info`` with lower-case addresses, token and factory strings interned."""
    return PoolInfo(
        address, info.kind, intern(info.token0.lower()), intern(info.token1.lower()), info.fee_pips,
        info.tick_spacing, intern(info.factory.lower()), info.created_block,
    )


__all__ = ["PoolRegistry", "ScanError"]
