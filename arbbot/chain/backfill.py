"""Backfill: discover a chain's pools from its factories' logs over a long block range.

Owns walking each factory's creation events (``discovery.PAIR_CREATED`` / ``POOL_CREATED``)
from its start block, or from where a previous run stopped, to one fixed target block, in
chunks sized to what the node accepts (``ChunkSizer``: halved, or cut to the node's own
suggestion, when the node refuses a range as too wide or too large or times out; grown back
after successes, never above the bound); handing each chunk's pools and the last block it
covers to a ``BackfillLedger``, which persists both at once (in the fleet:
``webapp.core.services.DbBackfillLedger``, one database transaction per chunk); and
reporting progress (blocks done, pools found, rate, ETA).

Resumable by construction: each factory starts at the ledger's cursor + 1, and the ledger
moves the cursor only together with the chunk's pools, so a run killed at any instant
loses nothing and repeats nothing. It runs in the operator's process (``arbbot backfill``),
never inside a scan task: no task time limit or lock expiry applies. The scanner's own
discovery (``arbbot.chain.scanner``) starts after the cursor.

What a refusal looks like is ``discovery.range_refusal`` (geth/Infura "query returned more
than 10000 results", Alchemy "Log response size exceeded ... [0x.., 0x..]", "block range is
too wide", "exceed maximum block range"), plus a timeout: a node that cannot answer a range
in time is asked for a smaller one.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol, Sequence

from arbbot.chain.discovery import (
    PAIR_CREATED,
    POOL_CREATED,
    Factory,
    PoolInfo,
    parse_pair_created,
    parse_pool_created,
    range_refusal,
)
from arbbot.chain.rpc import RpcClient
from arbbot.errors import ArbbotError, ConfigError, RpcError

_TIMEOUT = re.compile(r"time(d)?[ -]?out", re.IGNORECASE)


def refusal(err: RpcError) -> tuple[bool, int | None]:
    """Whether ``err`` means "ask for fewer blocks" (a range or size refusal, or a timeout),
    and the end block the node suggests instead when it names one."""
    refused, suggested_to = range_refusal(err)
    if refused:
        return True, suggested_to
    return bool(_TIMEOUT.search(str(err))), None


class BackfillConflict(ArbbotError):
    """A chunk does not start right after its factory's cursor: another backfill of the
    same factory moved it meanwhile. Nothing of the chunk was written."""


class BackfillLedger(Protocol):
    """Where a backfill's results go. ``record`` persists a chunk's pools and moves the
    factory's cursor to ``to_block`` atomically, and refuses a chunk that does not start
    right after the cursor (another backfill of the same factory ran meanwhile)."""

    def cursor(self, factory: str) -> int | None:
        """The last block of ``factory`` already discovered, or None before the first chunk."""

    def record(self, factory: str, from_block: int, to_block: int, pools: Sequence[PoolInfo]) -> None:
        """Persist ``pools`` (created in ``[from_block, to_block]``) and the cursor, at once."""


class MemoryLedger:
    """A ``BackfillLedger`` in memory (tests, one-off scripts)."""

    def __init__(self, cursors: dict[str, int] | None = None) -> None:
        self.cursors: dict[str, int] = dict(cursors or {})
        self.pools: list[PoolInfo] = []

    def cursor(self, factory: str) -> int | None:
        return self.cursors.get(factory.lower())

    def record(self, factory: str, from_block: int, to_block: int, pools: Sequence[PoolInfo]) -> None:
        factory = factory.lower()
        last = self.cursors.get(factory)
        if last is not None and from_block != last + 1:
            raise BackfillConflict(f"chunk {from_block}-{to_block} of {factory} does not follow the cursor {last}")
        self.pools.extend(pools)
        self.cursors[factory] = to_block


@dataclass
class ChunkSizer:
    """How many blocks to ask for next. A refusal of ``tried`` blocks halves the size (or
    cuts it to the node's suggestion) and caps growth there; each success doubles the size
    up to that cap, and after ``relax_after`` successes in a row the cap doubles (a sparse
    stretch of chain may take larger ranges), never beyond ``max_size``."""

    max_size: int
    min_size: int = 1
    relax_after: int = 32
    size: int = field(init=False)
    cap: int = field(init=False)
    streak: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.min_size < 1 or self.max_size < self.min_size:
            raise ConfigError(f"chunk sizes must satisfy 1 <= min ({self.min_size}) <= max ({self.max_size})")
        self.size = self.cap = self.max_size

    def refused(self, tried: int, suggested: int | None = None) -> None:
        new = suggested if suggested is not None and 1 <= suggested < tried else tried // 2
        self.size = self.cap = max(self.min_size, new)
        self.streak = 0

    def succeeded(self) -> None:
        self.streak += 1
        if self.streak >= self.relax_after and self.cap < self.max_size:
            self.cap = min(self.max_size, self.cap * 2)
            self.streak = 0
        self.size = min(self.cap, self.size * 2)


@dataclass(frozen=True)
class Progress:
    """One report, after each chunk. Blocks count over every factory still to do in this
    run; ``rate_bps`` is blocks per second of this run; ``eta_s`` None until measurable."""

    factory: str
    block: int  # last block of the chunk just recorded
    blocks_done: int
    blocks_total: int
    pools_found: int
    chunk_size: int
    refusals: int
    elapsed_s: float
    rate_bps: float
    eta_s: float | None


@dataclass
class BackfillResult:
    to_block: int
    blocks: int = 0
    pools_found: int = 0
    chunks: int = 0
    refusals: int = 0
    per_factory: dict[str, int] = field(default_factory=dict)  # factory -> pools found in this run


def first_block(factory: Factory, ledger: BackfillLedger) -> int:
    """Where ``factory``'s backfill (re)starts: after its cursor, else at its start block."""
    last = ledger.cursor(factory.address)
    return factory.start_block if last is None else max(factory.start_block, last + 1)


def backfill(
    rpc: RpcClient,
    factories: Iterable[Factory],
    ledger: BackfillLedger,
    *,
    to_block: int,
    max_chunk: int = 10_000,
    min_chunk: int = 1,
    on_progress: Callable[[Progress], Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> BackfillResult:
    """Discover the pools of ``factories`` from each one's first block (``first_block``)
    through ``to_block``, one chunk at a time, each recorded in ``ledger`` before the next
    is asked for. Raises ``RpcError`` for node trouble other than a refusal, and when the
    node refuses even ``min_chunk`` blocks; what was recorded before stays recorded."""
    todo = [(f, first_block(f, ledger)) for f in factories]
    todo = [(f, lo) for f, lo in todo if lo <= to_block]
    result = BackfillResult(to_block=to_block)
    total = sum(to_block - lo + 1 for _, lo in todo)
    sizer = ChunkSizer(max_chunk, min_chunk)
    t0 = clock()
    for f, lo in todo:
        topic = PAIR_CREATED if f.kind == "v2" else POOL_CREATED
        result.per_factory.setdefault(f.address, 0)
        start = lo
        while start <= to_block:
            end = min(to_block, start + sizer.size - 1)
            flt = {"address": f.address, "topics": [topic], "fromBlock": hex(start), "toBlock": hex(end)}
            try:
                logs = rpc.call("eth_getLogs", [flt])
            except RpcError as exc:
                refused, suggested_to = refusal(exc)
                if not refused:
                    raise
                if end - start + 1 <= min_chunk:
                    raise RpcError(
                        f"eth_getLogs refused even {end - start + 1} block(s) at {start} for factory {f.address}: {exc}"
                    ) from exc
                result.refusals += 1
                suggested = suggested_to - start + 1 if suggested_to is not None and start <= suggested_to else None
                sizer.refused(end - start + 1, suggested)
                continue
            pools = [
                parse_pair_created(lg, f.fee_pips) if f.kind == "v2" else parse_pool_created(lg)
                for lg in logs or []
                if not lg.get("removed")
            ]
            ledger.record(f.address, start, end, pools)
            sizer.succeeded()
            result.chunks += 1
            result.blocks += end - start + 1
            result.pools_found += len(pools)
            result.per_factory[f.address] += len(pools)
            if on_progress is not None:
                elapsed = clock() - t0
                rate = result.blocks / elapsed if elapsed > 0 else 0.0
                on_progress(
                    Progress(
                        factory=f.address, block=end, blocks_done=result.blocks, blocks_total=total,
                        pools_found=result.pools_found, chunk_size=end - start + 1, refusals=result.refusals,
                        elapsed_s=elapsed, rate_bps=rate,
                        eta_s=(total - result.blocks) / rate if rate > 0 else None,
                    )
                )
            start = end + 1
    return result


__all__ = [
    "BackfillConflict", "BackfillLedger", "BackfillResult", "ChunkSizer", "MemoryLedger", "Progress", "backfill", "first_block", "refusal",
]
