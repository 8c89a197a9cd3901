"""The scan stage's core: one ``Scanner`` per chain turns new blocks into ``PoolDelta``s.

Owns the per-chain sync loop, free of Celery and Django: the known pools (static
``PoolInfo`` + latest ``PoolState``), a ring buffer of recent block hashes, the undo
information for reorgs (which pools each recent block touched), and the write of every
block's result to the hot state (``arbbot.hotstate.HotState``).

How the integration uses it (``workers/tasks/scan.py``)::

    from arbbot.chain.scanner import Scanner, ScannerConfig
    from arbbot.hotstate import HotState

    cfg = ScannerConfig.from_dict({
        "chain_id": 31337,
        "rpc_urls": ["http://127.0.0.1:8545", "http://backup:8545"],
        "multicall": "0xca11bde05977b3631167028862be2a173976ca11",
        "factories": [{"address": "0x...", "kind": "v2"}, {"address": "0x...", "kind": "v3"}],
        "pools": [],                      # optional known pools (PoolInfo fields)
    })
    hot = HotState(redis.Redis.from_url(url), prefix, cfg.chain_id)
    scanner = Scanner(cfg, store=hot)     # build once per worker process and keep it

    with hot.scanning(ttl_s=30) as got:       # never two scans of one chain at once
        if got:
            for delta in scanner.poll():      # one PoolDelta per new block, in order
                if hot.claim_block(delta.block_number, delta.block_hash):
                    publish(delta.to_wire())  # -> path queue
    scanner.health()  # {"healthy": bool, "last_block": ..., "rpc": {...}}

``poll()`` never raises for node trouble: with every endpoint down it returns ``[]``
(nothing stale is published) and ``health()["healthy"]`` is False; the next ``poll()``
after an endpoint returns resumes from the cursor. The cursor (last block + recent hashes)
and the pool states are written to Redis in one transaction per block, so another worker
(or a restarted one) picks up exactly where this one stopped.

Per block: the block's ``Sync`` logs give V2 reserves directly; V3 ``Swap`` logs give
slot0 price/tick and liquidity directly; V3 ``Mint``/``Burn``/``Initialize`` pools are
re-read (slot0, liquidity, ticks) at that block's hash. The first poll backfills the
factories' pools (``discovery``) and reads every pool (``full_refresh``) in batched
Multicall3 calls, and emits that full snapshot as its first delta.

Tokens: a newly registered token gets ``symbol``/``decimals`` at once and a transfer check
(``arbbot.chain.token_checks``: fee-on-transfer, rebasing, reverting) as soon as a pool that
holds it shows up with reserves, at bootstrap or in the block that funds it; the outcome
goes to the hot state's ``tokens`` (``excluded_reason``). Only tokens still awaiting a check
cost anything per block, and only when a block touches a funded pool of theirs.

Reorgs: a block whose ``parentHash`` differs from the stored hash (or a head whose hash
differs at a known height) starts a walk back to the common ancestor; the pools touched by
the orphaned blocks and by the new canonical blocks are re-read at the new head and
published as one ``PoolDelta(reorg=True, orphaned_hashes=...)`` at the new head. A reorg
deeper than the ring buffer falls back to a full refresh.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence

from prometheus_client import Counter, Gauge, Histogram

from arbbot.chain.discovery import (
    PAIR_CREATED,
    POOL_CREATED,
    V2_SYNC,
    V3_BURN,
    V3_MINT,
    V3_SWAP,
    Factory,
    PoolInfo,
    TokenInfo,
    discover_pools,
    parse_pair_created,
    parse_pool_created,
    parse_sync,
    parse_v3_swap,
    read_tokens,
    topic,
)
from arbbot.chain.multicall import (
    Multicaller,
    SubCall,
    cached_subcall,
    decode_reserves,
    decode_slot0,
    decode_uint,
    read_v3_ticks,
    SEL_GET_RESERVES,
    SEL_LIQUIDITY,
    SEL_SLOT0,
)
from arbbot.chain.rpc import RpcClient
from arbbot.chain.token_checks import check_transfers, holders_for
from arbbot.errors import ArbbotError, RpcError
from arbbot.types import PoolDelta, PoolState, V2PoolState, V3PoolState

log = logging.getLogger(__name__)

V3_INITIALIZE = topic("Initialize(uint160,int24)")
WATCHED_TOPICS = [V2_SYNC, V3_SWAP, V3_MINT, V3_BURN, V3_INITIALIZE, PAIR_CREATED, POOL_CREATED]

SCAN_POLL_SECONDS = Histogram(
    "arbbot_scan_poll_seconds", "Duration of one Scanner.poll()", ["chain"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SCAN_BLOCKS = Counter("arbbot_scan_blocks_total", "Blocks processed by the scanner", ["chain"])
SCAN_REORGS = Counter("arbbot_reorgs_total", "Reorgs detected and repaired", ["chain"])
SCAN_HEALTHY = Gauge("arbbot_scan_healthy", "1 when the last poll reached a node", ["chain"])
SCAN_LAST_BLOCK = Gauge("arbbot_scan_last_block", "Last block the scanner published", ["chain"])
SCAN_HEAD_LAG = Gauge("arbbot_chain_head_lag_blocks", "Node head minus the last block processed", ["chain"])


class ScanError(ArbbotError):
    """The scanner could not make sense of the chain (e.g. a node returned a block without
    a hash). Node unavailability is not a ``ScanError``: ``poll()`` reports it in health."""


@dataclass(frozen=True)
class ScannerConfig:
    """Everything a ``Scanner`` needs; ``from_dict`` accepts plain YAML/Django values."""

    chain_id: int
    rpc_urls: tuple[str, ...]
    multicall: str
    factories: tuple[Factory, ...] = ()
    pools: tuple[PoolInfo, ...] = ()
    rpc_timeout_s: float = 5.0
    rpc_retries: int = 1
    breaker_threshold: int = 3
    breaker_cooldown_s: float = 5.0
    chunk_size: int = 500  # sub-calls per aggregate3
    calls_per_request: int = 2  # aggregate3 eth_calls per JSON-RPC batch
    concurrency: int = 4  # JSON-RPC batches in flight
    reorg_depth: int = 64  # block hashes kept (ring buffer)
    getlogs_max_range: int = 10_000
    blocks_per_request: int = 50  # catch-up: headers + one getLogs per request
    max_blocks_per_poll: int = 1_000
    discover_on_start: bool = True
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
        extra = {k: v for k, v in d.items() if k not in ("rpc_urls", "factories", "pools", "chain_id", "multicall")}
        return cls(
            chain_id=int(d["chain_id"]),
            rpc_urls=(urls,) if isinstance(urls, str) else tuple(urls),
            multicall=str(d["multicall"]).lower(),
            factories=factories,
            pools=pools,
            **extra,
        )


@dataclass
class _Header:
    number: int
    hash: str
    parent: str
    base_fee: int = 0  # EIP-1559 baseFeePerGas; 0 on a chain without one

    @classmethod
    def of(cls, h: Mapping[str, Any] | None) -> _Header | None:
        if h is None:
            return None
        if not h.get("hash"):
            raise ScanError(f"block without hash: {h.get('number')}")
        fee = h.get("baseFeePerGas")
        return cls(int(h["number"], 16), h["hash"].lower(), h["parentHash"].lower(), int(fee, 16) if fee else 0)


@dataclass
class ScanStats:
    blocks: int = 0
    reorgs: int = 0
    full_refreshes: int = 0
    last_poll_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class Scanner:
    """Keeps one chain's pools in sync. See the module docstring for the call pattern."""

    def __init__(self, config: ScannerConfig, *, rpc: RpcClient | None = None, store: Any = None) -> None:
        self.config = config
        self.chain_id = config.chain_id
        self.rpc = rpc or RpcClient(
            list(config.rpc_urls),
            timeout_s=config.rpc_timeout_s,
            retries=config.rpc_retries,
            breaker_threshold=config.breaker_threshold,
            breaker_cooldown_s=config.breaker_cooldown_s,
        )
        self.mc = Multicaller(
            self.rpc,
            config.multicall,
            chunk_size=config.chunk_size,
            calls_per_request=config.calls_per_request,
            concurrency=config.concurrency,
        )
        self.store = store
        self.factories: dict[str, Factory] = {f.address: f for f in config.factories}
        self.infos: dict[str, PoolInfo] = {}
        self.pools: dict[str, PoolState] = {}
        self.tokens: dict[str, TokenInfo] = {}
        self.unchecked: dict[str, int] = {}  # token -> transfer-check attempts left
        self.last_block: int | None = None
        self.hashes: OrderedDict[int, str] = OrderedDict()
        self.touched: dict[int, set[str]] = {}  # block -> pools it changed (reorg undo info)
        self.gas_price_wei = 0  # the node's eth_gasPrice, read once per poll
        self.healthy = True
        self.last_error = ""
        self.stats = ScanStats()
        self._label = str(config.chain_id)
        for p in config.pools:
            self.infos[p.address.lower()] = p

    # ------------------------------------------------------------------ public

    def poll(self) -> list[PoolDelta]:
        """Process every block since the last poll; one ``PoolDelta`` per block (a reorg
        collapses into one correction delta at the new head). Returns ``[]`` when no node
        answers (and marks the scanner unhealthy) or when there is no new block."""
        t0 = time.perf_counter()
        deltas: list[PoolDelta] = []
        try:
            self._sync_from_store()
            head = self._latest()
            if head is None:
                raise ScanError("node returned no latest block")
            if self.last_block is None:
                deltas.append(self.bootstrap(head))
            else:
                self._advance(head, deltas)  # appends as it commits: a later failure keeps them
            self._set_healthy(True, "")
        except RpcError as exc:
            self._set_healthy(False, str(exc))
            log.warning("scan chain %s: %s", self.chain_id, exc)
        finally:
            self.stats.last_poll_s = time.perf_counter() - t0
            SCAN_POLL_SECONDS.labels(self._label).observe(self.stats.last_poll_s)
        return deltas

    def health(self) -> dict[str, Any]:
        rpc = self.rpc.health()
        return {
            "healthy": bool(self.healthy and rpc["healthy"]),
            "chain_id": self.chain_id,
            "last_block": self.last_block,
            "last_error": self.last_error,
            "pools": len(self.pools),
            "rpc": rpc,
        }

    def bootstrap(self, head: _Header | None = None) -> PoolDelta:
        """Discover pools (backfill), register tokens and read every pool at ``head``."""
        if head is None:
            head = self._latest()
            assert head is not None
        if self.config.discover_on_start and self.factories:
            self.add_pools(
                discover_pools(
                    self.rpc, self.factories.values(), 0, head.number, max_range=self.config.getlogs_max_range
                ),
                block=head.hash,
            )
        states = self.full_refresh(head.hash, head.number)
        self.check_tokens(states, head.hash)
        self.hashes.clear()
        self.touched.clear()
        self._remember(head, set())
        self._commit(states, head)
        return self._delta(head, states)

    def add_pools(self, infos: Iterable[PoolInfo], *, block: int | str = "latest") -> list[PoolInfo]:
        """Register pools (and their unknown tokens). Returns the ones that were new."""
        new = [i for i in infos if i.address.lower() not in self.infos]
        for i in new:
            self.infos[i.address.lower()] = i
        if new and self.config.read_tokens:
            unknown = {t for i in new for t in (i.token0, i.token1)} - set(self.tokens)
            if unknown:
                toks = read_tokens(self.mc, unknown, block)
                self.tokens.update(toks)
                if self.config.check_transfers:
                    for t in toks:
                        self.unchecked.setdefault(t, max(1, self.config.transfer_check_attempts))
                if self.store is not None and hasattr(self.store, "put_tokens"):
                    self.store.put_tokens(toks.values())
        return new

    def check_tokens(self, states: Sequence[PoolState], block: int | str) -> list[TokenInfo]:
        """Probe the transfer of every token still awaiting a check that one of ``states``
        holds (positive reserve / liquidity), at ``block``, in one JSON-RPC batch; record the
        outcome in ``self.tokens`` and the store. Returns the tokens whose check concluded.
        Never raises for node trouble: the tokens stay pending for a later block."""
        if not self.unchecked:
            return []
        holders = holders_for(self.unchecked, states)
        if not holders:
            return []
        pairs = sorted(holders.items())
        try:
            results = check_transfers(self.rpc, pairs, block)
        except RpcError as exc:
            log.warning("chain %s: transfer checks of %d tokens failed: %s", self.chain_id, len(pairs), exc)
            return []
        self.stats.extra["transfer_checks"] = self.stats.extra.get("transfer_checks", 0) + len(pairs)
        done: list[TokenInfo] = []
        for (token, holder), res in zip(pairs, results):
            if not res.conclusive:
                left = self.unchecked[token] - 1
                if left > 0:
                    self.unchecked[token] = left
                    continue
                log.warning("chain %s: giving up the transfer check of %s: %s", self.chain_id, token, res.reason)
            self.unchecked.pop(token, None)
            base = self.tokens.get(token) or TokenInfo(token, "UNKNOWN", None)
            info = replace(base, transfer_check=res)
            self.tokens[token] = info
            done.append(info)
            if info.excluded_reason:
                log.warning("chain %s: token %s excluded (%s, probed from %s)", self.chain_id, token,
                            info.excluded_reason, holder)
        if done and self.store is not None and hasattr(self.store, "put_tokens"):
            self.store.put_tokens(done)
        return done

    def full_refresh(self, block: int | str, block_number: int | None = None) -> list[PoolState]:
        """Read every known pool at ``block`` (number or hash) through Multicall3; updates
        ``self.pools`` and returns the states (in address order)."""
        if block_number is None:
            block_number = block if isinstance(block, int) else self.rpc.block_number()
        addrs = sorted(self.infos)
        states = self.read_pools(addrs, block, block_number, with_ticks=True)
        self.stats.full_refreshes += 1
        return states

    def read_pools(
        self, addrs: Sequence[str], block: int | str, block_number: int, *, with_ticks: bool = True
    ) -> list[PoolState]:
        """Read ``addrs`` (known pools) at ``block``; updates ``self.pools``."""
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
            if r is None:
                raise ScanError(f"getReserves() failed on {a} at {block}")
            info = self.infos[a]
            out.append(V2PoolState(a, info.token0, info.token1, r[0], r[1], info.fee_pips, block_number))
        base = len(v2)
        for j, a in enumerate(v3):
            s0 = decode_slot0(*res[base + 2 * j])
            liq = decode_uint(*res[base + 2 * j + 1])
            if s0 is None or liq is None:
                raise ScanError(f"slot0()/liquidity() failed on {a} at {block}")
            info = self.infos[a]
            prev = self.pools.get(a)
            ticks = prev.ticks if isinstance(prev, V3PoolState) else ()
            if with_ticks and self.config.v3_ticks:
                ticks = self._read_ticks(info, block, block_number)
            out.append(
                V3PoolState(a, info.token0, info.token1, info.fee_pips, info.tick_spacing, s0[0], s0[1], liq,
                            ticks, block_number)
            )
        for s in out:
            self.pools[s.address] = s
        return out

    # ------------------------------------------------------------------ blocks

    def _advance(self, head: _Header, deltas: list[PoolDelta]) -> list[PoolDelta]:
        assert self.last_block is not None
        last = self.last_block
        if head.number <= last:
            if self.hashes.get(head.number) == head.hash and head.number == last:
                return deltas  # nothing new
            deltas.append(self._reorg(head))
            return deltas
        n = last + 1
        stop = min(head.number, last + self.config.max_blocks_per_poll)
        while n <= stop:
            m = min(stop, n + self.config.blocks_per_request - 1)
            headers, logs_by_block = self._fetch_blocks(n, m)
            for h in headers:
                if h is None:
                    # the head moved back under us: treat as a reorg at the current head
                    latest = _Header.of(self.rpc.call("eth_getBlockByNumber", ["latest", False]))
                    assert latest is not None
                    deltas.append(self._reorg(latest))
                    return deltas
                if h.parent != self.hashes.get(h.number - 1):
                    latest = _Header.of(self.rpc.call("eth_getBlockByNumber", ["latest", False]))
                    assert latest is not None
                    deltas.append(self._reorg(latest))
                    return deltas
                logs = logs_by_block.get(h.number, [])
                if any(lg["blockHash"].lower() != h.hash for lg in logs):
                    logs = self.rpc.call("eth_getLogs", [{"blockHash": h.hash, "topics": [WATCHED_TOPICS]}])
                deltas.append(self._apply_block(h, logs))
            n = m + 1
        return deltas

    def _fetch_blocks(self, n: int, m: int) -> tuple[list[_Header | None], dict[int, list[dict[str, Any]]]]:
        calls: list[tuple[str, Sequence[Any]]] = [("eth_getBlockByNumber", [hex(b), False]) for b in range(n, m + 1)]
        calls.append(("eth_getLogs", [{"fromBlock": hex(n), "toBlock": hex(m), "topics": [WATCHED_TOPICS]}]))
        replies = self.rpc.batch(calls)
        headers = [_Header.of(r) for r in replies[:-1]]
        by_block: dict[int, list[dict[str, Any]]] = {}
        for lg in replies[-1] or []:
            if lg.get("removed"):
                continue
            by_block.setdefault(int(lg["blockNumber"], 16), []).append(lg)
        return headers, by_block

    def _apply_block(self, h: _Header, logs: list[dict[str, Any]]) -> PoolDelta:
        v2: dict[str, tuple[int, int]] = {}
        v3_swap: dict[str, tuple[int, int, int]] = {}
        v3_reread: set[str] = set()
        new_infos: list[PoolInfo] = []
        for lg in logs:
            t0 = lg["topics"][0] if lg.get("topics") else None
            addr = lg["address"].lower()
            if t0 == V2_SYNC:
                info = self.infos.get(addr)
                if info is not None and info.kind == "v2":
                    v2[addr] = parse_sync(lg)
            elif t0 == V3_SWAP:
                info = self.infos.get(addr)
                if info is not None and info.kind == "v3":
                    v3_swap[addr] = parse_v3_swap(lg)
            elif t0 in (V3_MINT, V3_BURN, V3_INITIALIZE):
                info = self.infos.get(addr)
                if info is not None and info.kind == "v3":
                    v3_reread.add(addr)
            elif t0 == PAIR_CREATED or t0 == POOL_CREATED:
                f = self.factories.get(addr)
                if f is None:
                    continue
                if t0 == PAIR_CREATED and f.kind == "v2":
                    info = parse_pair_created(lg, f.fee_pips)
                elif t0 == POOL_CREATED and f.kind == "v3":
                    info = parse_pool_created(lg)
                else:
                    continue
                if info.address not in self.infos:
                    self.infos[info.address] = info  # visible to the logs that follow
                    new_infos.append(info)
        if new_infos:
            for i in new_infos:
                del self.infos[i.address]
            self.add_pools(new_infos, block=h.hash)
        changed: dict[str, PoolState] = {}
        for i in new_infos:
            if i.kind == "v2":
                changed[i.address] = V2PoolState(i.address, i.token0, i.token1, 0, 0, i.fee_pips, h.number)
            else:
                v3_reread.add(i.address)
        for a, (r0, r1) in v2.items():
            info = self.infos[a]
            changed[a] = V2PoolState(a, info.token0, info.token1, r0, r1, info.fee_pips, h.number)
        for a, (sqrt_p, liq, tick) in v3_swap.items():
            if a in v3_reread:
                continue
            prev = self.pools.get(a)
            info = self.infos[a]
            ticks = prev.ticks if isinstance(prev, V3PoolState) else ()
            changed[a] = V3PoolState(a, info.token0, info.token1, info.fee_pips, info.tick_spacing, sqrt_p, tick,
                                     liq, ticks, h.number)
        if v3_reread:
            for s in self.read_pools(sorted(v3_reread), h.hash, h.number, with_ticks=True):
                changed[s.address] = s
        states = [changed[a] for a in sorted(changed)]
        for s in states:
            self.pools[s.address] = s
        self.check_tokens(states, h.hash)
        self._remember(h, set(changed))
        self._commit(states, h)
        SCAN_BLOCKS.labels(self._label).inc()
        self.stats.blocks += 1
        return self._delta(h, states)

    # ------------------------------------------------------------------ reorgs

    def _reorg(self, head: _Header) -> PoolDelta:
        """Walk back to the common ancestor, re-read what the orphaned and the new blocks
        touched at ``head`` and return one correction delta there. All or nothing: if the
        node fails half-way, the in-memory view is restored and the next poll retries."""
        saved = (self.last_block, OrderedDict(self.hashes), dict(self.touched), dict(self.infos), dict(self.pools))
        try:
            return self._reorg_inner(head)
        except BaseException:
            self.last_block, self.hashes, self.touched, self.infos, self.pools = saved
            raise

    def _reorg_inner(self, head: _Header) -> PoolDelta:
        assert self.last_block is not None
        known = sorted(self.hashes)
        ancestor: int | None = None
        b = min(head.number, self.last_block)
        while b >= known[0] and ancestor is None:
            lo = max(known[0], b - 15)
            got = self.rpc.batch([("eth_getBlockByNumber", [hex(k), False]) for k in range(b, lo - 1, -1)])
            for k, raw in zip(range(b, lo - 1, -1), got):
                hk = _Header.of(raw)
                if hk is not None and self.hashes.get(k) == hk.hash:
                    ancestor = k
                    break
            b = lo - 1
        SCAN_REORGS.labels(self._label).inc()
        self.stats.reorgs += 1
        if ancestor is None:
            log.warning("chain %s: reorg deeper than %d blocks, full refresh", self.chain_id, len(known))
            orphaned = tuple(self.hashes[k] for k in known)
            self.infos = {a: i for a, i in self.infos.items() if i.created_block <= head.number}
            self.pools = {a: s for a, s in self.pools.items() if a in self.infos}
            states = self.full_refresh(head.hash, head.number)
            self.check_tokens(states, head.hash)
            self.hashes.clear()
            self.touched.clear()
            self._remember(head, set(self.infos))
            self._commit(states, head, orphaned=orphaned)
            return self._delta(head, states, reorg=True, orphaned=orphaned)

        orphaned_blocks = [k for k in known if k > ancestor]
        orphaned = tuple(self.hashes[k] for k in orphaned_blocks)
        affected: set[str] = set()
        for k in orphaned_blocks:
            t = self.touched.get(k)
            if t is None:  # undo info lost (restarted worker): be safe
                affected = set(self.infos)
                break
            affected |= t
        # pools created on the orphaned branch are forgotten; the new branch re-creates them
        dropped = {a for a, i in self.infos.items() if i.created_block > ancestor}
        for a in dropped:
            self.infos.pop(a, None)
            self.pools.pop(a, None)
        for k in orphaned_blocks:
            self.hashes.pop(k, None)
            self.touched.pop(k, None)
        self.last_block = ancestor
        # the new canonical blocks ancestor+1..head
        new_touched: dict[int, set[str]] = {}
        headers: list[_Header] = []
        if head.number > ancestor:
            hs, logs_by_block = self._fetch_blocks(ancestor + 1, head.number)
            for hk in hs:
                if hk is None:
                    raise RpcError("chain moved during reorg repair; retry next poll")
                headers.append(hk)
            for hk in headers:
                logs = logs_by_block.get(hk.number, [])
                if any(lg["blockHash"].lower() != hk.hash for lg in logs):
                    raise RpcError("chain moved during reorg repair; retry next poll")
                touched = self._discover_in_logs(logs, hk)
                new_touched[hk.number] = touched
                affected |= touched
        if headers and headers[-1].hash != head.hash:
            head = headers[-1]
        affected = {a for a in affected if a in self.infos}
        states = self.read_pools(sorted(affected), head.hash, head.number, with_ticks=True)
        self.check_tokens(states, head.hash)
        for hk in headers:
            self._remember(hk, new_touched.get(hk.number, set()))
        self._commit(states, head, dropped=dropped - set(self.infos), orphaned=orphaned)
        log.warning(
            "chain %s: reorg to ancestor %d, %d orphaned blocks, %d pools re-read",
            self.chain_id, ancestor, len(orphaned), len(states),
        )
        return self._delta(head, states, reorg=True, orphaned=orphaned)

    def _discover_in_logs(self, logs: list[dict[str, Any]], h: _Header) -> set[str]:
        """Pools touched by ``logs`` (registering pools they create)."""
        touched: set[str] = set()
        new_infos: list[PoolInfo] = []
        for lg in logs:
            t0 = lg["topics"][0] if lg.get("topics") else None
            addr = lg["address"].lower()
            f = self.factories.get(addr)
            if f is not None and t0 == PAIR_CREATED and f.kind == "v2":
                new_infos.append(parse_pair_created(lg, f.fee_pips))
            elif f is not None and t0 == POOL_CREATED and f.kind == "v3":
                new_infos.append(parse_pool_created(lg))
            elif t0 in (V2_SYNC, V3_SWAP, V3_MINT, V3_BURN, V3_INITIALIZE):
                touched.add(addr)
        for i in self.add_pools(new_infos, block=h.hash):
            touched.add(i.address)
        return touched

    # ------------------------------------------------------------------ bookkeeping

    def _remember(self, h: _Header, touched: set[str]) -> None:
        self.hashes[h.number] = h.hash
        self.touched[h.number] = touched
        self.last_block = h.number
        while len(self.hashes) > self.config.reorg_depth:
            k, _ = self.hashes.popitem(last=False)
            self.touched.pop(k, None)
        SCAN_LAST_BLOCK.labels(self._label).set(h.number)

    def _latest(self) -> _Header | None:
        """The node's latest header, and its gas price (one batch): every delta of this poll
        carries that price, so the path stage never asks the node itself."""
        block, price = self.rpc.batch([("eth_getBlockByNumber", ["latest", False]), ("eth_gasPrice", [])])
        self.gas_price_wei = int(price, 16)
        return _Header.of(block)

    def _delta(
        self, h: _Header, states: Sequence[PoolState], *, reorg: bool = False, orphaned: Sequence[str] = ()
    ) -> PoolDelta:
        return PoolDelta(
            self.chain_id, h.number, h.hash, tuple(states), reorg=reorg, orphaned_hashes=tuple(orphaned),
            observed_at=time.time(), base_fee_wei=h.base_fee, gas_price_wei=self.gas_price_wei,
        )

    def _commit(
        self, states: Sequence[PoolState], h: _Header, *, dropped: Iterable[str] = (), orphaned: Sequence[str] = ()
    ) -> None:
        if self.store is None:
            return
        dropped = list(dropped)
        if dropped:
            self.store.delete_pools(dropped)
        self.store.put_pools(
            states, h.number, h.hash, cursor=(h.number, list(self.hashes.items())), orphaned=orphaned
        )
        self._store_cursor = (h.number, h.hash)

    def _sync_from_store(self) -> None:
        """Adopt the cursor (and pools) another worker wrote since our last poll."""
        if self.store is None:
            return
        cur = self.store.load_cursor()
        if cur is None:
            return
        last, hashes = cur
        if self.last_block == last and hashes and self.hashes.get(last) == hashes[-1][1]:
            return
        self.last_block = last
        self.hashes = OrderedDict(hashes)
        self.touched = {}  # unknown for blocks we did not process: reorgs re-read everything
        self.pools = dict(self.store.get_pools())
        for a, s in self.pools.items():
            if a not in self.infos:
                self.infos[a] = PoolInfo(
                    a, s.kind, s.token0, s.token1, s.fee_pips,
                    s.tick_spacing if isinstance(s, V3PoolState) else 0,
                )

    def _read_ticks(self, info: PoolInfo, block: int | str, block_number: int) -> tuple[tuple[int, int], ...]:
        """Initialized ticks: ``arbbot.chain.v3_state.read_v3_state`` (the V3 engineer's
        reader, by block number) when present, else our own Multicall3 tickBitmap walk."""
        reader = _v3_state_reader()
        if reader is not None:
            try:
                st = reader(self.rpc, info.address, block_number)
                ticks = getattr(st, "ticks", None)
                if ticks is not None:
                    return tuple(ticks)
            except (TypeError, ValueError) as exc:  # an interface mismatch: use our own walk
                log.debug("v3_state.read_v3_state unusable (%s); walking tickBitmap", exc)
        return read_v3_ticks(self.mc, info.address, info.tick_spacing, block)

    def _set_healthy(self, ok: bool, err: str) -> None:
        self.healthy = ok
        self.last_error = err
        SCAN_HEALTHY.labels(self._label).set(1 if ok else 0)


def _v3_state_reader() -> Any:
    try:
        from arbbot.chain import v3_state  # owned by the V3-math engineer; may not exist yet
    except ImportError:
        return None
    return getattr(v3_state, "read_v3_state", None)


def scanner_from_settings(config: Mapping[str, Any], store: Any = None) -> Scanner:
    """``Scanner(ScannerConfig.from_dict(config), store=store)``."""
    return Scanner(ScannerConfig.from_dict(config), store=store)


__all__ = ["Scanner", "ScannerConfig", "ScanError", "Factory", "PoolInfo", "scanner_from_settings"]
