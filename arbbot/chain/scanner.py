"""The block follower: one ``Scanner`` per chain turns new blocks into ``PoolDelta``s.

Owns the per-chain sync loop, free of Celery and Django: the cursor (last block processed
and a ring buffer of recent block hashes), per-block apply (a block's logs, classified by
``arbbot.chain.events``, become new pool states), reorg detection and repair (which pools
each recent block touched, so an orphaned branch can be undone), and the write of every
block's result through a ``Store`` (``arbbot.hotstate.HotState`` in the workers). The
known pools live in a ``PoolRegistry`` (``arbbot.chain.pool_registry``), the tokens in a
``TokenRegistry`` (``arbbot.chain.token_registry``); ``Scanner`` exposes both
(``pools``, ``infos``, ``tokens``, ``unchecked``, ``add_pools``, ``read_pools``,
``full_refresh``, ``check_tokens``).

How the integration uses it (``workers/tasks/scan.py``)::

    from arbbot.chain.scanner import Scanner, ScannerConfig

    cfg = ScannerConfig.from_dict({
        "chain_id": 31337,
        "rpc_urls": ["http://127.0.0.1:8545", "http://backup:8545"],
        "multicall": "0xca11bde05977b3631167028862be2a173976ca11",
        "factories": [{"address": "0x...", "kind": "v2"}, {"address": "0x...", "kind": "v3"}],
        "pools": [],                      # optional known pools (PoolInfo fields)
    })
    scanner = Scanner(cfg, store=hot)     # hot: the chain's HotState; build once per process

    # the scan task holds the chain's scan lock (never two scans of one chain at once)
    for delta in scanner.poll():          # one PoolDelta per new block, in order
        if hot.claim_block(delta.block_number, delta.block_hash):
            publish(delta.to_wire())      # -> path queue
    scanner.health()  # {"healthy": bool, "last_block": ..., "rpc": {...}}

``poll()`` never raises for node trouble: with every endpoint down it returns ``[]``
(nothing stale is published) and ``health()["healthy"]`` is False; the next ``poll()``
after an endpoint returns resumes from the cursor. The cursor and the pool states are
written to the store in one transaction per block, so another worker (or a restarted one)
picks up exactly where this one stopped. Every delta carries the block's base fee and the
node's gas price of that poll (``base_fee_wei``, ``gas_price_wei``).

Per block: the block's ``Sync`` logs give V2 reserves directly; V3 ``Swap`` logs give
slot0 price/tick and liquidity directly; V3 ``Mint``/``Burn``/``Initialize`` pools are
re-read (slot0, liquidity, ticks) at that block's hash. The first poll discovers the
factories' pools (``discovery``) and reads every pool (``full_refresh``) in batched
Multicall3 calls, and emits that full snapshot as its first delta.

Discovery at the first poll is short by design: the pools of a factory's history come from
``arbbot backfill`` (``arbbot.chain.backfill``, run by the operator, resumable) and reach
the scanner as ``config.pools``, with the block the backfill reached as the factory's
``discovered_to``. The first poll discovers only from there (or from ``start_block`` when
no backfill ran) to the head, and only when that range is at most
``bootstrap_discover_max_blocks``; a longer one is not attempted inside a scan task: the
scanner follows the factory's new pools from the head onward and logs that ``arbbot
backfill`` should be run. Known pools without a stored state (a worker restarted after a
backfill) are read a few hundred per block, with that block's changes.

What is watched: every pool discovered or configured is known (``infos``), but only the
ones the pool filter admits (``config.pool_filter``, ``arbbot.chain.pool_filter``) are
read, refreshed and published (``watched``). With a minimum liquidity, the pools waiting
for it are screened at each full refresh and judged by their own ``Sync``/``Swap`` logs in
every block (the block's logs come anyway); one that passes is published in that block, and
the pools without the quote token that this makes admissible are read over the next blocks.
Admission is two-way: a watched pool whose quote reserve falls below the filter's exit
level (hysteresis, ``PoolFilter.keeps``) leaves in that block, with the pools it alone made
admissible, announced as a quarantined pool is (deleted from the store, named in the
block's changed set and in the delta's ``removed``).

The filter can change while the scanner runs: ``filter_source`` (the workers pass one
reading the chain's ``PoolFilter`` row, kept a second) is asked once per poll; a changed filter is in force
from the next block processed: the pools it drops leave in that block, the ones it admits
are read in it (pools holding the quote token are screened there first).

Unreadable pools: a known pool whose read reverts or returns garbage (a non-standard or
hostile contract, a registered address without code) never stops the scan of the others.
It is quarantined: its state is deleted from the store (nothing downstream trades on a
state that can no longer be confirmed), its events are ignored, and it is read again after
1, 2, 4, ... blocks (at most ``QUARANTINE_MAX_BLOCKS``); ``health()["quarantined"]`` and
``arbbot_scan_pool_read_failures_total`` show it.

Reorgs: a block whose ``parentHash`` differs from the stored hash (or a head whose hash
differs at a known height) starts a walk back to the common ancestor; the pools touched by
the orphaned blocks and by the new canonical blocks are re-read at the new head and
published as one ``PoolDelta(reorg=True, orphaned_hashes=...)`` at the new head, and the
orphaned hashes go to the store in the same write. A reorg deeper than the ring buffer
falls back to a full refresh.
"""

from __future__ import annotations

import logging
import time
from itertools import islice
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from prometheus_client import Counter, Gauge, Histogram

from arbbot.chain.discovery import Factory, PoolInfo, discover_pools
from arbbot.chain.events import WATCHED_TOPICS, block_events
from arbbot.chain.multicall import Multicaller
from arbbot.chain.pool_filter import PoolFilter
from arbbot.chain.pool_registry import PoolRegistry, ScanError
from arbbot.chain.rpc import RpcClient
from arbbot.chain.scanner_config import ScannerConfig
from arbbot.chain.store import Store
from arbbot.chain.token_registry import TokenInfo, TokenRegistry
from arbbot.errors import RpcError
from arbbot.types import PoolDelta, PoolState, V2PoolState, V3PoolState

log = logging.getLogger(__name__)

SCAN_POLL_SECONDS = Histogram(
    "arbbot_scan_poll_seconds", "Duration of one Scanner.poll()", ["chain"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SCAN_BLOCKS = Counter("arbbot_scan_blocks_total", "Blocks processed by the scanner", ["chain"])
SCAN_REORGS = Counter("arbbot_reorgs_total", "Reorgs detected and repaired", ["chain"])
SCAN_HEALTHY = Gauge("arbbot_scan_healthy", "1 when the last poll reached a node", ["chain"])
SCAN_LAST_BLOCK = Gauge("arbbot_scan_last_block", "Last block the scanner published", ["chain"])
SCAN_POOL_FAILURES = Counter(
    "arbbot_scan_pool_read_failures_total", "Pool reads that reverted or returned garbage (pool quarantined)", ["chain"]
)
SCAN_QUARANTINED = Gauge("arbbot_scan_quarantined_pools", "Pools whose reads fail, left out of the scan", ["chain"])
SCAN_HEAD_LAG = Gauge("arbbot_chain_head_lag_blocks", "Node head minus the last block processed", ["chain"])


QUARANTINE_MAX_BLOCKS = 256  # the longest wait before an unreadable pool is read again


@dataclass
class _Quarantined:
    failures: int
    retry_at_block: int
    reason: str


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

    def __init__(
        self, config: ScannerConfig, *, rpc: RpcClient | None = None, store: Store | None = None,
        filter_source: Callable[[], PoolFilter | Mapping[str, Any]] | None = None,
    ) -> None:
        self.config = config
        self.filter_source = filter_source  # the pool filter in force, read once per poll
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
            pair_reader=config.pair_reader,
        )
        self.store = store
        self.factories: dict[str, Factory] = {f.address: f for f in config.factories}
        self.pool_registry = PoolRegistry(
            self.mc, v3_ticks=config.v3_ticks, infos=config.pools, pool_filter=config.pool_filter
        )
        self.token_registry = TokenRegistry(
            self.rpc, self.mc, store, chain_id=config.chain_id, read_metadata=config.read_tokens,
            check_transfers=config.check_transfers, check_attempts=config.transfer_check_attempts,
        )
        self.last_block: int | None = None
        self.unread: set[str] = set()  # known pools with no state yet (read with the next blocks)
        self.quarantine: dict[str, _Quarantined] = {}  # pools whose reads fail (module docstring)
        self.hashes: OrderedDict[int, str] = OrderedDict()
        self.touched: dict[int, set[str]] = {}  # block -> pools it changed (reorg undo info)
        # a filter change waiting for the next block: pools to announce gone, pools to read,
        # whether the pools holding the quote token are to be screened
        self._left: set[str] = set()
        self._joined: set[str] = set()
        self._screen = False
        self.gas_price_wei = 0  # the node's eth_gasPrice, read once per poll
        self.healthy = True
        self.last_error = ""
        self.stats = ScanStats()
        self._label = str(config.chain_id)

    # ------------------------------------------------------------------ registries

    @property
    def infos(self) -> dict[str, PoolInfo]:
        """Known pools by address, watched or not (the pool registry's)."""
        return self.pool_registry.infos

    @property
    def watched(self) -> set[str]:
        """The pools the filter admits: the only ones read and published."""
        return self.pool_registry.watched

    @property
    def pools(self) -> dict[str, PoolState]:
        """Latest state of each watched pool (the pool registry's)."""
        return self.pool_registry.states

    @property
    def tokens(self) -> dict[str, TokenInfo]:
        """Registered tokens by address (the token registry's)."""
        return self.token_registry.tokens

    @property
    def unchecked(self) -> dict[str, int]:
        """Tokens awaiting a transfer check -> attempts left (the token registry's)."""
        return self.token_registry.unchecked

    def add_pools(self, infos: Iterable[PoolInfo], *, block: int | str = "latest") -> list[PoolInfo]:
        """Register pools, and the unknown tokens (read at ``block``) of those the filter
        lets be watched now. Returns the latter."""
        watched = self.pool_registry.register(infos)
        self._register_tokens(watched, block)
        return watched

    def _register_tokens(self, pools: Iterable[PoolInfo | PoolState], block: int | str) -> None:
        """Register the unknown tokens of newly watched ``pools`` (read at ``block``)."""
        tokens = {t for p in pools for t in (p.token0, p.token1)}
        if tokens:
            self.token_registry.register(tokens, block)

    def read_pools(
        self, addrs: Sequence[str], block: int | str, block_number: int, *, with_ticks: bool = True
    ) -> list[PoolState]:
        """Read ``addrs`` (known pools) at ``block``; updates ``pools``."""
        return self.pool_registry.read(addrs, block, block_number, with_ticks=with_ticks)

    def full_refresh(self, block: int | str, block_number: int | None = None) -> list[PoolState]:
        """Read every watched pool at ``block`` (number or hash) through Multicall3, after
        screening the pools waiting for the filter's liquidity rule (``PoolRegistry.read_all``);
        updates ``pools`` and returns the states (V2 first, in address order)."""
        if block_number is None:
            block_number = block if isinstance(block, int) else self.rpc.block_number()
        states = self.pool_registry.read_all(block, block_number)
        self._register_tokens(states, block)
        self.stats.full_refreshes += 1
        return states

    def check_tokens(self, states: Sequence[PoolState], block: int | str) -> list[TokenInfo]:
        """Transfer-check the pending tokens that ``states`` hold (``TokenRegistry.check``)."""
        done = self.token_registry.check(states, block)
        if self.token_registry.probes:
            self.stats.extra["transfer_checks"] = self.token_registry.probes
        return done

    # ------------------------------------------------------------------ public

    def poll(self) -> list[PoolDelta]:
        """Process every block since the last poll; one ``PoolDelta`` per block (a reorg
        collapses into one correction delta at the new head). Returns ``[]`` when no node
        answers (and marks the scanner unhealthy) or when there is no new block."""
        t0 = time.perf_counter()
        deltas: list[PoolDelta] = []
        try:
            self._sync_from_store()
            self._refresh_filter()
            head = self._latest()
            if head is None:
                raise ScanError("node returned no latest block")
            if self.last_block is None:
                deltas.append(self.bootstrap(head))
            else:
                self._advance(head, deltas)  # appends as it commits: a later failure keeps them
            if self.last_block is not None:
                SCAN_HEAD_LAG.labels(self._label).set(max(0, head.number - self.last_block))
            self._set_healthy(True, "")
        except RpcError as exc:
            self._set_healthy(False, str(exc))
            log.warning("scan chain %s: %s", self.chain_id, exc)
        except (ScanError, ValueError, KeyError, TypeError, IndexError) as exc:
            # the node answered with nonsense (a header without a hash, a result that does
            # not decode): the same as no answer; the blocks committed so far stay published
            self._set_healthy(False, f"node reply did not decode: {type(exc).__name__}: {exc}"[:300])
            log.warning("scan chain %s: node reply did not decode", self.chain_id, exc_info=True)
        finally:
            self.stats.last_poll_s = time.perf_counter() - t0
            SCAN_POLL_SECONDS.labels(self._label).observe(self.stats.last_poll_s)
        return deltas

    def warm(self) -> None:
        """What the first ``poll`` reads before its block, read now (a process's start): the
        cursor and pools another process wrote, and the pool filter in force. Under the
        chain's scan lock, as ``poll``."""
        self._sync_from_store()
        self._refresh_filter()

    def health(self) -> dict[str, Any]:
        rpc = self.rpc.health()
        return {
            "healthy": bool(self.healthy and rpc["healthy"]),
            "chain_id": self.chain_id,
            "last_block": self.last_block,
            "last_error": self.last_error,
            "pools": len(self.pools),
            "pools_known": len(self.infos),
            "pools_watched": len(self.watched),
            "quarantined": {a: q.reason for a, q in sorted(self.quarantine.items())[:20]},
            "rpc": rpc,
        }

    def bootstrap(self, head: _Header | None = None) -> PoolDelta:
        """Discover pools (backfill), register tokens and read every pool at ``head``."""
        if head is None:
            head = self._latest()
            assert head is not None
        if self.config.discover_on_start and self.factories:
            self.add_pools(self._discover_recent(head.number), block=head.hash)
        states = self.full_refresh(head.hash, head.number)
        self.unread.clear()
        self.check_tokens(states, head.hash)
        self.hashes.clear()
        self.touched.clear()
        self._remember(head, set())
        dropped = self._quarantine_failed(head.number) | self._left  # the full refresh read the joined
        self._left, self._joined, self._screen = set(), set(), False
        self._commit(states, head, dropped=dropped)
        return self._delta(head, states, removed=dropped)

    def _discover_recent(self, head: int) -> list[PoolInfo]:
        """Pools each factory created after its backfill cursor (else its start block) up
        to ``head``, for the factories whose range is short enough for a scan task."""
        found: list[PoolInfo] = []
        limit = self.config.bootstrap_discover_max_blocks
        for f in self.factories.values():
            if f.discovered_to is not None and f.discovered_to > head:
                # the node is behind the backfill (a reset devnet, a lagging node): do not
                # trust the cursor; what remains is discovered as if none had run
                log.warning("chain %s: factory %s was backfilled through block %d, beyond the head %d",
                            self.chain_id, f.address, f.discovered_to, head)
                f = Factory(f.address, f.kind, f.start_block, f.fee_pips)
            lo = f.start_block if f.discovered_to is None else max(f.start_block, f.discovered_to + 1)
            if lo > head:
                continue
            if head - lo + 1 > limit:
                log.warning(
                    "chain %s: factory %s has %d blocks to discover (%s %d); discovering its new pools from "
                    "the head %d onward only: run `python manage.py arbbot backfill --chain %s` for the rest",
                    self.chain_id, f.address, head - lo + 1,
                    "no backfill; start block" if f.discovered_to is None else "backfilled through",
                    f.start_block if f.discovered_to is None else f.discovered_to, head, self.chain_id,
                )
                self.stats.extra.setdefault("discovery_skipped", []).append(f.address)
                continue
            found += discover_pools(self.rpc, [f], lo, head, max_range=self.config.getlogs_max_range)
        return found

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
                if h is None or h.parent != self.hashes.get(h.number - 1):
                    # the head moved back under us, or a parent we did not see: a reorg
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
        ev = block_events(logs, self.infos, self.factories)
        self.add_pools(ev.created, block=h.hash)
        reg = self.pool_registry
        watched = reg.watched
        changed: dict[str, PoolState] = {}
        quarantined = set(self.quarantine)
        reread = {a for a in ev.reread if a in watched} - quarantined
        reread.update(a for a, q in self.quarantine.items() if q.retry_at_block <= h.number and a in watched)
        if self.unread:
            take = list(islice(self.unread, self.config.unread_pools_per_block))  # no sort of 100k
            self.unread.difference_update(take)
            reread.update(a for a in take if a in watched)
        if self._screen:  # a new filter: the pools holding the quote token are judged here
            screened, unlocked = reg.admit(reg.read(reg.quote_pending(), h.hash, h.number, with_ticks=False, keep=False))
            for new in screened:
                if isinstance(new, V3PoolState):
                    reread.add(new.address)  # its ticks
                else:
                    changed[new.address] = new
            reread |= unlocked
            self._register_tokens([*screened, *(self.infos[a] for a in unlocked)], h.hash)
        if self._joined:  # a new filter: the pools it admits are read in this block
            reread |= self._joined & watched
            self._register_tokens([self.infos[a] for a in self._joined], h.hash)
        for i in ev.created:
            if i.address not in watched:
                continue
            if i.kind == "v2":
                changed[i.address] = V2PoolState(i.address, i.token0, i.token1, 0, 0, i.fee_pips, h.number)
            else:
                reread.add(i.address)
        # a pool waiting for the liquidity rule is judged by the state its logs give
        candidates: list[PoolState] = []
        for a, r in ev.reserves.items():
            if a in quarantined or (a not in watched and a not in reg.pending):
                continue
            info = self.infos[a]
            s2 = V2PoolState(a, info.token0, info.token1, r.reserve0, r.reserve1, info.fee_pips, h.number)
            if a in watched:
                changed[a] = s2
            else:
                candidates.append(s2)
        for a, sw in ev.swaps.items():
            if a in reread or a in quarantined or (a not in watched and a not in reg.pending):
                continue
            prev = self.pools.get(a)
            info = self.infos[a]
            ticks = prev.ticks if isinstance(prev, V3PoolState) else ()
            s3 = V3PoolState(a, info.token0, info.token1, info.fee_pips, info.tick_spacing,
                             sw.sqrt_price_x96, sw.tick, sw.liquidity, ticks, h.number)
            if a in watched:
                changed[a] = s3
            else:
                candidates.append(s3)
        if candidates:
            admitted, unlocked = reg.admit(candidates)
            for new in admitted:
                if isinstance(new, V3PoolState):
                    reread.add(new.address)  # its ticks
                else:
                    changed[new.address] = new
            self.unread |= unlocked  # read a few hundred per block, like a restart's
            self._register_tokens([*admitted, *(self.infos[a] for a in unlocked)], h.hash)
        if reread:
            for s in self.read_pools(sorted(reread), h.hash, h.number, with_ticks=True):
                changed[s.address] = s
        dropped = self._quarantine_failed(h.number)
        for a in reread:
            if a in changed:
                self.quarantine.pop(a, None)  # read fine again
        if reg.filter.needs_state:  # two-way: a pool whose quote reserve fell leaves
            f = reg.filter
            low = [a for a, s in changed.items() if f.holds_quote(self.infos[a]) and not f.keeps(s)]
            if low:
                gone = reg.unwatch(low)
                log.info("chain %s block %d: %d pools fell below the pool filter's liquidity rule, %d left",
                         self.chain_id, h.number, len(low), len(gone))
                dropped |= gone
        dropped |= self._left - reg.watched
        self._left, self._joined, self._screen = set(), set(), False
        for a in dropped:
            changed.pop(a, None)
        states = [changed[a] for a in sorted(changed)]
        self.pool_registry.update(states)
        self.check_tokens(states, h.hash)
        self._remember(h, set(changed) | dropped)
        self._commit(states, h, dropped=dropped)
        SCAN_BLOCKS.labels(self._label).inc()
        self.stats.blocks += 1
        return self._delta(h, states, removed=dropped)

    # ------------------------------------------------------------------ reorgs

    def _reorg(self, head: _Header) -> PoolDelta:
        """Walk back to the common ancestor, re-read what the orphaned and the new blocks
        touched at ``head`` and return one correction delta there. All or nothing: if the
        node fails half-way, the in-memory view is restored and the next poll retries."""
        saved = (self.last_block, OrderedDict(self.hashes), dict(self.touched))
        registry = self.pool_registry.snapshot()
        try:
            return self._reorg_inner(head)
        except BaseException:
            self.last_block, self.hashes, self.touched = saved
            self.pool_registry.restore(registry)
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
            self.pool_registry.forget_after(head.number)
            states = self.full_refresh(head.hash, head.number)
            self.check_tokens(states, head.hash)
            self.hashes.clear()
            self.touched.clear()
            self._remember(head, set(self.watched))
            gone = self._quarantine_failed(head.number)
            self._commit(states, head, dropped=gone, orphaned=orphaned)
            return self._delta(head, states, reorg=True, orphaned=orphaned, removed=gone)

        orphaned_blocks = [k for k in known if k > ancestor]
        orphaned = tuple(self.hashes[k] for k in orphaned_blocks)
        affected: set[str] = set()
        for k in orphaned_blocks:
            t = self.touched.get(k)
            if t is None:  # undo info lost (restarted worker): be safe
                affected = set(self.watched)
                break
            affected |= t
        # pools created on the orphaned branch are forgotten; the new branch re-creates them
        dropped = self.pool_registry.forget_after(ancestor)
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
        affected &= self.watched
        states = self.read_pools(sorted(affected), head.hash, head.number, with_ticks=True)
        self.check_tokens(states, head.hash)
        for hk in headers:
            self._remember(hk, new_touched.get(hk.number, set()))
        dropped = (dropped - set(self.infos)) | self._quarantine_failed(head.number)
        self._commit(states, head, dropped=dropped, orphaned=orphaned)
        log.warning(
            "chain %s: reorg to ancestor %d, %d orphaned blocks, %d pools re-read",
            self.chain_id, ancestor, len(orphaned), len(states),
        )
        return self._delta(head, states, reorg=True, orphaned=orphaned, removed=dropped)

    def _discover_in_logs(self, logs: list[dict[str, Any]], h: _Header) -> set[str]:
        """Pools touched by ``logs`` (registering pools they create)."""
        ev = block_events(logs, self.infos, self.factories)
        self.add_pools(ev.created, block=h.hash)
        return ev.touched()

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
        self, h: _Header, states: Sequence[PoolState], *, reorg: bool = False, orphaned: Sequence[str] = (),
        removed: Iterable[str] = (),
    ) -> PoolDelta:
        return PoolDelta(
            self.chain_id, h.number, h.hash, tuple(states), reorg=reorg, orphaned_hashes=tuple(orphaned),
            observed_at=time.time(), base_fee_wei=h.base_fee, gas_price_wei=self.gas_price_wei,
            removed=tuple(sorted(removed)), parent_hash=h.parent,
        )

    def _commit(
        self, states: Sequence[PoolState], h: _Header, *, dropped: Iterable[str] = (), orphaned: Sequence[str] = ()
    ) -> None:
        if self.store is None:
            return
        # the dropped pools are deleted with the block, and named in its changed set: a
        # reader catching up forgets them (they are in the delta's ``removed`` too)
        self.store.put_pools(
            states, h.number, h.hash, cursor=(h.number, list(self.hashes.items())), orphaned=orphaned,
            removed=dropped,
        )

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
        # The other worker went on from a block we processed too: only what it changed since
        # (reading 100k pools whole takes seconds); else every pool.
        mine = self.last_block
        got = None
        if mine is not None and self.hashes.get(mine) is not None and dict(hashes).get(mine) == self.hashes[mine]:
            got = self.store.changed_since(mine, self.hashes[mine])
        self.last_block = last
        self.hashes = OrderedDict(hashes)
        self.touched = {}  # unknown for blocks we did not process: reorgs re-read everything
        if got is not None:
            self.pool_registry.adopt(got[0], replace=False)
            for a in got[2]:  # another worker stopped publishing them
                self.pool_registry.states.pop(a, None)
        else:
            self.pool_registry.adopt(self.store.get_pools())
        self.unread = {a for a in self.watched if a not in self.pools and a not in self.quarantine}

    def _refresh_filter(self) -> None:
        """Take the pool filter in force (``filter_source``), if it changed: from the next
        block on, the pools it drops leave and the ones it admits are read."""
        if self.filter_source is None:
            return
        try:
            got = self.filter_source()
            new = got if isinstance(got, PoolFilter) else PoolFilter.from_dict(got)
        except Exception:  # a broken source never stops the scan: the filter in force stays
            log.exception("chain %s: the pool filter could not be read; the one in force stays", self.chain_id)
            return
        reg = self.pool_registry
        if new == reg.filter:
            return
        left, joined = reg.set_filter(new)
        self._left = (self._left | left) - joined
        self._joined = (self._joined | joined) - left
        self._screen = new.needs_state
        self.unread -= left
        log.info("chain %s: pool filter changed: %d pools leave, %d join, %d watched from the next block",
                 self.chain_id, len(left), len(joined), len(reg.watched))

    def _quarantine_failed(self, block_number: int) -> set[str]:
        """Quarantine the pools whose reads failed since the last call; returns them (their
        states are to be deleted from the store)."""
        failed = self.pool_registry.drain_failed()
        for a, why in failed.items():
            prev = self.quarantine.get(a)
            n = prev.failures + 1 if prev else 1
            wait = min(QUARANTINE_MAX_BLOCKS, 2 ** (n - 1))
            self.quarantine[a] = _Quarantined(n, block_number + wait, why)
            self.unread.discard(a)
            SCAN_POOL_FAILURES.labels(self._label).inc()
            log.warning("chain %s: pool %s unreadable (%s), quarantined for %d blocks", self.chain_id, a, why, wait)
        SCAN_QUARANTINED.labels(self._label).set(len(self.quarantine))
        return set(failed)

    def _set_healthy(self, ok: bool, err: str) -> None:
        self.healthy = ok
        self.last_error = err
        SCAN_HEALTHY.labels(self._label).set(1 if ok else 0)


__all__ = ["Scanner", "ScannerConfig", "ScanError", "ScanStats", "Store"]
