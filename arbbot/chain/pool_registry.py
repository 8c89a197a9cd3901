"""The pool registry: every pool the scanner knows and its latest state.

Owns the known pools (static ``PoolInfo`` by address, from discovery, creation logs or
config), their latest ``PoolState``, and reading them: ``read`` takes V2 ``getReserves``
and V3 ``slot0`` + ``liquidity`` of many pools in batched Multicall3 calls, pinned to one
block (by hash when the caller has it), plus each V3 pool's initialized ticks through the
one ``tickBitmap`` walker (``arbbot.chain.multicall.read_v3_ticks``). A pool whose read
reverts or returns garbage is left out of the result and noted in ``failed`` (address ->
why) for the scanner to quarantine: one broken pool never fails the read of the others.
Token metadata is
``arbbot.chain.token_registry``; which pools a block touched is ``arbbot.chain.events``.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from arbbot.chain.discovery import PoolInfo
from arbbot.chain.multicall import (
    SEL_GET_RESERVES,
    SEL_LIQUIDITY,
    SEL_SLOT0,
    SubCall,
    SubCallRunner,
    cached_subcall,
    decode_reserves,
    decode_slot0,
    decode_uint,
    read_v3_ticks,
)
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
    """One chain's pools. ``v3_ticks`` off: V3 states keep the ticks they had (or none)."""

    def __init__(self, mc: SubCallRunner, *, v3_ticks: bool = True, infos: Iterable[PoolInfo] = ()) -> None:
        self.mc = mc
        self.v3_ticks = v3_ticks
        self.infos: dict[str, PoolInfo] = {i.address.lower(): i for i in infos}
        self.states: dict[str, PoolState] = {}
        self.failed: dict[str, str] = {}  # pools whose last read failed -> why; drained by the scanner

    def register(self, infos: Iterable[PoolInfo]) -> list[PoolInfo]:
        """Add pools not known yet; returns the ones that were new."""
        new = [i for i in infos if i.address.lower() not in self.infos]
        for i in new:
            self.infos[i.address.lower()] = i
        return new

    def adopt(self, states: Mapping[str, PoolState]) -> None:
        """Take ``states`` (another worker's, from the store) as the latest, registering
        the pools among them not known yet from what their states say."""
        self.states = dict(states)
        for a, s in self.states.items():
            if a not in self.infos:
                self.infos[a] = PoolInfo(
                    a, s.kind, s.token0, s.token1, s.fee_pips,
                    s.tick_spacing if isinstance(s, V3PoolState) else 0,
                )

    def forget_after(self, block_number: int) -> set[str]:
        """Forget the pools created after ``block_number`` (on a branch a reorg orphaned);
        returns their addresses."""
        dropped = {a for a, i in self.infos.items() if i.created_block > block_number}
        for a in dropped:
            self.infos.pop(a, None)
            self.states.pop(a, None)
        return dropped

    def update(self, states: Iterable[PoolState]) -> None:
        for s in states:
            self.states[s.address] = s

    def read(
        self, addrs: Sequence[str], block: int | str, block_number: int, *, with_ticks: bool = True
    ) -> list[PoolState]:
        """Read ``addrs`` (known pools) at ``block`` (number or hash) and make the states
        the latest; in the order given, V2 pools first. A pool whose read fails is left
        out, its old state forgotten, and the reason recorded in ``failed``."""
        v2 = [a for a in addrs if self.infos[a].kind == "v2"]
        v3 = [a for a in addrs if self.infos[a].kind == "v3"]
        calls: list[SubCall] = [cached_subcall(a, SEL_GET_RESERVES) for a in v2]
        for a in v3:
            calls.append(cached_subcall(a, SEL_SLOT0))
            calls.append(cached_subcall(a, SEL_LIQUIDITY))
        res = self.mc.run(calls, block)
        out: list[PoolState] = []
        for i, a in enumerate(v2):
            r = decode_reserves(*res[i])
            if r is None or r[0] >= _UINT112 or r[1] >= _UINT112:
                self._failed(a, f"getReserves() failed or out of range at {block}")
                continue
            info = self.infos[a]
            out.append(V2PoolState(a, info.token0, info.token1, r[0], r[1], info.fee_pips, block_number))
        base = len(v2)
        for j, a in enumerate(v3):
            s0 = decode_slot0(*res[base + 2 * j])
            liq = decode_uint(*res[base + 2 * j + 1])
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
        """Every known pool at ``block``, in address order (V2 first)."""
        return self.read(sorted(self.infos), block, block_number, with_ticks=True)


__all__ = ["PoolRegistry", "ScanError"]
