"""What a log in a block means to the scanner: the one place the topic dispatch lives.

Owns the per-block events the scan stage understands (V2 ``Sync``; V3 ``Swap``, ``Mint``,
``Burn``, ``Initialize``) and their decoding by slicing, the list of topics the scanner
asks ``eth_getLogs`` for (``WATCHED_TOPICS``, with the creation events of
``arbbot.chain.discovery``), and ``classify_log``: given the pools and factories known so
far, one log is new reserves, a new slot0/liquidity, a pool to re-read, a new pool, or
nothing. ``block_events`` folds a block's logs into what changed, a pool created in the
block counting as known for the logs after its creation. Both the block follower and the
reorg repair read blocks through these two functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from arbbot.chain.abi import event_topic, hex_bytes, int_word, uint_word
from arbbot.chain.discovery import (
    PAIR_CREATED,
    POOL_CREATED,
    Factory,
    PoolInfo,
    parse_pair_created,
    parse_pool_created,
)

V2_SYNC = event_topic("Sync(uint112,uint112)")
V3_SWAP = event_topic("Swap(address,address,int256,int256,uint160,uint128,int24)")
V3_MINT = event_topic("Mint(address,address,int24,int24,uint128,uint256,uint256)")
V3_BURN = event_topic("Burn(address,int24,int24,uint128,uint256,uint256)")
V3_INITIALIZE = event_topic("Initialize(uint160,int24)")
WATCHED_TOPICS = [V2_SYNC, V3_SWAP, V3_MINT, V3_BURN, V3_INITIALIZE, PAIR_CREATED, POOL_CREATED]


def parse_sync(log: Mapping[str, Any]) -> tuple[int, int]:
    """``(reserve0, reserve1)`` of a V2 ``Sync``: exactly ``getReserves()`` after it."""
    d = hex_bytes(log["data"])
    return uint_word(d, 0), uint_word(d, 1)


def parse_v3_swap(log: Mapping[str, Any]) -> tuple[int, int, int]:
    """``(sqrt_price_x96, liquidity, tick)`` after the swap: exactly slot0/liquidity."""
    d = hex_bytes(log["data"])
    return uint_word(d, 2), uint_word(d, 3), int_word(d, 4)


@dataclass(frozen=True, slots=True)
class Reserves:
    """A known V2 pool's reserves after a ``Sync``."""

    pool: str
    reserve0: int
    reserve1: int


@dataclass(frozen=True, slots=True)
class Swapped:
    """A known V3 pool's price, liquidity and tick after a ``Swap``."""

    pool: str
    sqrt_price_x96: int
    liquidity: int
    tick: int


@dataclass(frozen=True, slots=True)
class Reread:
    """A known V3 pool whose liquidity or ticks changed (``Mint``/``Burn``/``Initialize``):
    its state must be read again at the block."""

    pool: str


@dataclass(frozen=True, slots=True)
class Created:
    """A pool created by a known factory of the matching kind."""

    info: PoolInfo


LogEvent = Reserves | Swapped | Reread | Created


def classify_log(
    log: Mapping[str, Any], pools: Mapping[str, PoolInfo], factories: Mapping[str, Factory]
) -> LogEvent | None:
    """What ``log`` means, given the known ``pools`` and ``factories`` (by lower-case
    address); None for a log of an unknown emitter, or of a kind its emitter cannot
    emit (a ``Sync`` from a V3 pool, a ``PoolCreated`` from a V2 factory)."""
    topics = log.get("topics")
    t0 = topics[0] if topics else None
    addr = str(log["address"]).lower()
    if t0 == PAIR_CREATED or t0 == POOL_CREATED:
        f = factories.get(addr)
        if f is not None and t0 == PAIR_CREATED and f.kind == "v2":
            return Created(parse_pair_created(dict(log), f.fee_pips))
        if f is not None and t0 == POOL_CREATED and f.kind == "v3":
            return Created(parse_pool_created(dict(log)))
        return None
    info = pools.get(addr)
    if info is None:
        return None
    if t0 == V2_SYNC and info.kind == "v2":
        return Reserves(addr, *parse_sync(log))
    if t0 == V3_SWAP and info.kind == "v3":
        return Swapped(addr, *parse_v3_swap(log))
    if t0 in (V3_MINT, V3_BURN, V3_INITIALIZE) and info.kind == "v3":
        return Reread(addr)
    return None


@dataclass
class BlockEvents:
    """What one block's logs changed. The last ``Sync``/``Swap`` of a pool wins; a V3
    pool in ``reread`` (or newly created) is read at the block instead of using its swaps."""

    reserves: dict[str, Reserves] = field(default_factory=dict)
    swaps: dict[str, Swapped] = field(default_factory=dict)
    reread: set[str] = field(default_factory=set)
    created: list[PoolInfo] = field(default_factory=list)

    def touched(self) -> set[str]:
        """Every pool the block changed (or created)."""
        return set(self.reserves) | set(self.swaps) | self.reread | {i.address for i in self.created}


def block_events(
    logs: Sequence[Mapping[str, Any]], pools: Mapping[str, PoolInfo], factories: Mapping[str, Factory]
) -> BlockEvents:
    """Fold a block's ``logs`` (in log order) through ``classify_log``. A pool created in
    the block counts as known for the logs after its creation; ``created`` lists only
    pools not already in ``pools``."""
    out = BlockEvents()
    new: dict[str, PoolInfo] = {}
    for lg in logs:
        ev = classify_log(lg, pools, factories)
        if ev is None and new:
            ev = classify_log(lg, new, factories)
        if isinstance(ev, Reserves):
            out.reserves[ev.pool] = ev
        elif isinstance(ev, Swapped):
            out.swaps[ev.pool] = ev
        elif isinstance(ev, Reread):
            out.reread.add(ev.pool)
        elif isinstance(ev, Created) and ev.info.address not in pools and ev.info.address not in new:
            new[ev.info.address] = ev.info
            out.created.append(ev.info)
    return out


__all__ = [
    "WATCHED_TOPICS",
    "BlockEvents",
    "Created",
    "LogEvent",
    "Reread",
    "Reserves",
    "Swapped",
    "block_events",
    "classify_log",
    "parse_sync",
    "parse_v3_swap",
]
