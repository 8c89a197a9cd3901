"""Pool discovery from factory logs.

Owns: what a factory and a pool are before any state is read (``Factory``, ``PoolInfo``);
the creation events (V2 ``PairCreated``, V3 ``PoolCreated``) and their decoding by
slicing; chunked ``eth_getLogs`` over a short range (the scanner's first poll) that shrinks
its range and retries when a node refuses a range (the "query returned more than 10000
results" / "block range too large" family of public provider errors, ``range_refusal``),
using the provider's suggested range when it sends one. A factory's history, resumable and
with progress, is ``arbbot.chain.backfill``'s.
The per-block events (``Sync``, ``Swap``, ...) and what each log means are
``arbbot.chain.events``; a pool's tokens are registered by ``arbbot.chain.token_registry``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Sequence

from arbbot.chain.abi import address_word, event_topic, hex_bytes, int_word, uint_word
from arbbot.chain.rpc import RpcClient
from arbbot.errors import ConfigError, RpcError

PAIR_CREATED = event_topic("PairCreated(address,address,address,uint256)")
POOL_CREATED = event_topic("PoolCreated(address,address,uint24,int24,address)")

PoolKind = Literal["v2", "v3"]


@dataclass(frozen=True, slots=True)
class Factory:
    """A DEX factory to discover pools from. ``fee_pips`` applies to V2 pairs (3000 for the
    genuine Uniswap V2; forks differ); V3 pools carry their own fee. ``discovered_to``: the
    last block a backfill (``arbbot.chain.backfill``) discovered its pools through, None
    before any; the scanner's discovery starts after it."""

    address: str
    kind: PoolKind
    start_block: int = 0
    fee_pips: int = 3000
    discovered_to: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("v2", "v3"):
            raise ConfigError(f"factory kind must be v2 or v3, got {self.kind!r}")
        object.__setattr__(self, "address", self.address.lower())


@dataclass(frozen=True, slots=True)
class PoolInfo:
    """What never changes about a pool: found once, from its creation log (or config)."""

    address: str
    kind: PoolKind
    token0: str
    token1: str
    fee_pips: int = 3000
    tick_spacing: int = 0
    factory: str = ""
    created_block: int = 0


# ----------------------------------------------------------------------------- decoding


def parse_pair_created(log: dict[str, Any], fee_pips: int = 3000) -> PoolInfo:
    """``PairCreated(token0 indexed, token1 indexed, pair, allPairsLength)``."""
    topics, data = log["topics"], hex_bytes(log["data"])
    return PoolInfo(
        address=address_word(data, 0),
        kind="v2",
        token0=address_word(hex_bytes(topics[1]), 0),
        token1=address_word(hex_bytes(topics[2]), 0),
        fee_pips=fee_pips,
        factory=log["address"].lower(),
        created_block=int(log["blockNumber"], 16),
    )


def parse_pool_created(log: dict[str, Any]) -> PoolInfo:
    """``PoolCreated(token0 indexed, token1 indexed, fee indexed, tickSpacing, pool)``."""
    topics, data = log["topics"], hex_bytes(log["data"])
    return PoolInfo(
        address=address_word(data, 1),
        kind="v3",
        token0=address_word(hex_bytes(topics[1]), 0),
        token1=address_word(hex_bytes(topics[2]), 0),
        fee_pips=uint_word(hex_bytes(topics[3]), 0),
        tick_spacing=int_word(data, 0),
        factory=log["address"].lower(),
        created_block=int(log["blockNumber"], 16),
    )


# ----------------------------------------------------------------------------- getLogs

_RANGE_PATTERNS = re.compile(
    r"more than \d+ results|block range|range too (large|wide)|too many (results|blocks|logs)"
    r"|limit exceeded|response size|exceed(s|ed)? (the )?max|query timeout|range is too large"
    r"|\d+ block range|up to a \d+ block range",
    re.IGNORECASE,
)
_SUGGEST = re.compile(r"\[(0x[0-9a-fA-F]+),\s*(0x[0-9a-fA-F]+)\]")


def range_refusal(err: RpcError) -> tuple[bool, int | None]:
    """Whether ``err`` is a node refusing an ``eth_getLogs`` range as too large, and the
    end block it suggests instead when it says (Infura ``data.to``, Alchemy ``[from, to]``)."""
    msg = str(err)
    if not (_RANGE_PATTERNS.search(msg) or err.code in (-32005,)):
        return False, None
    data = err.data
    if isinstance(data, dict) and isinstance(data.get("to"), str):
        try:
            return True, int(data["to"], 16)
        except ValueError:
            pass
    m = _SUGGEST.search(msg)
    if m:
        return True, int(m.group(2), 16)
    return True, None


def get_logs_chunked(
    rpc: RpcClient,
    *,
    address: str | Sequence[str] | None,
    topics: Sequence[Any],
    from_block: int,
    to_block: int,
    max_range: int = 10_000,
    min_range: int = 1,
    stats: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """All logs in ``[from_block, to_block]``, in chain order, asked for in windows of at
    most ``max_range`` blocks. A refused window is halved (or cut to the node's suggestion)
    and retried; after a success the window grows back (doubling) up to ``max_range``."""
    out: list[dict[str, Any]] = []
    window = max(1, max_range)
    start = from_block
    refusals = 0
    requests_made = 0
    while start <= to_block:
        end = min(to_block, start + window - 1)
        flt: dict[str, Any] = {"fromBlock": hex(start), "toBlock": hex(end), "topics": list(topics)}
        if address is not None:
            flt["address"] = address
        requests_made += 1
        try:
            logs = rpc.call("eth_getLogs", [flt])
        except RpcError as exc:
            refused, suggested_to = range_refusal(exc)
            if not refused:
                raise
            refusals += 1
            if window <= min_range and end == start:
                raise RpcError(f"eth_getLogs refused even a {window}-block range at {start}: {exc}") from exc
            if suggested_to is not None and start <= suggested_to < end:
                window = suggested_to - start + 1
            else:
                window = max(min_range, (end - start + 1) // 2)
            continue
        out.extend(logs)
        start = end + 1
        window = min(max_range, window * 2)
    if stats is not None:
        stats["refusals"] = stats.get("refusals", 0) + refusals
        stats["requests"] = stats.get("requests", 0) + requests_made
    return out


def discover_pools(
    rpc: RpcClient,
    factories: Iterable[Factory],
    from_block: int,
    to_block: int,
    *,
    max_range: int = 10_000,
    stats: dict[str, int] | None = None,
) -> list[PoolInfo]:
    """Pools created by ``factories`` in ``[from_block, to_block]`` (each factory from no
    earlier than its ``start_block``), in creation order."""
    found: list[PoolInfo] = []
    for f in factories:
        lo = max(from_block, f.start_block)
        if lo > to_block:
            continue
        t = PAIR_CREATED if f.kind == "v2" else POOL_CREATED
        logs = get_logs_chunked(
            rpc, address=f.address, topics=[t], from_block=lo, to_block=to_block, max_range=max_range, stats=stats
        )
        for log in logs:
            if log.get("removed"):
                continue
            found.append(parse_pair_created(log, f.fee_pips) if f.kind == "v2" else parse_pool_created(log))
    return found
