"""``ScannerConfig``: everything a ``Scanner`` needs to follow one chain.

Owns the scanner's settings and their defaults (endpoints, Multicall3 address, factories
and known pools, the pool filter, batching, reorg depth, token checks), and their parsing from plain
YAML/Django values (``from_dict``). Imported through ``arbbot.chain.scanner`` by callers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from arbbot.chain.discovery import Factory, PoolInfo
from arbbot.chain.pool_filter import PoolFilter


@dataclass(frozen=True)
class ScannerConfig:
    """Everything a ``Scanner`` needs; ``from_dict`` accepts plain YAML/Django values."""

    chain_id: int
    rpc_urls: tuple[str, ...]
    multicall: str
    factories: tuple[Factory, ...] = ()
    pools: tuple[PoolInfo, ...] = ()
    pool_filter: PoolFilter = PoolFilter()  # which known pools are watched
    rpc_timeout_s: float = 5.0
    rpc_retries: int = 1
    breaker_threshold: int = 3
    breaker_cooldown_s: float = 5.0
    chunk_size: int = 500  # sub-calls per aggregate3
    calls_per_request: int = 2  # aggregate3 eth_calls per JSON-RPC batch
    concurrency: int = 4  # JSON-RPC batches in flight
    pair_reader: bool = True  # V2 reserves through PairReserves by state override (off: aggregate3)
    reorg_depth: int = 64  # block hashes kept (ring buffer)
    getlogs_max_range: int = 10_000
    blocks_per_request: int = 50  # catch-up: headers + one getLogs per request
    max_blocks_per_poll: int = 1_000
    discover_on_start: bool = True
    # The first poll discovers a factory's pools only over this many blocks (after its
    # backfill cursor, else from its start block); a longer range is ``arbbot backfill``'s
    # work, not a scan task's: the scanner then discovers from the head onward and says so.
    bootstrap_discover_max_blocks: int = 10_000
    unread_pools_per_block: int = 500  # known pools without a state (a restart) read per block
    read_tokens: bool = True
    check_transfers: bool = True  # probe each new token's transfer (needs eth_call state overrides)
    transfer_check_attempts: int = 3  # inconclusive probes (node trouble) before giving up on a token
    v3_ticks: bool = True

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScannerConfig:
        urls = d["rpc_urls"]
        factories = tuple(
            f if isinstance(f, Factory) else Factory(**dict(f)) for f in d.get("factories", ())
        )
        pools = tuple(p if isinstance(p, PoolInfo) else PoolInfo(**dict(p)) for p in d.get("pools", ()))
        flt = d.get("pool_filter")
        pool_filter = flt if isinstance(flt, PoolFilter) else PoolFilter.from_dict(flt)
        extra = {
            k: v for k, v in d.items()
            if k not in ("rpc_urls", "factories", "pools", "pool_filter", "chain_id", "multicall")
        }
        return cls(
            chain_id=int(d["chain_id"]),
            rpc_urls=(urls,) if isinstance(urls, str) else tuple(urls),
            multicall=str(d["multicall"]).lower(),
            factories=factories,
            pools=pools,
            pool_filter=pool_filter,
            **extra,
        )


__all__ = ["ScannerConfig"]
