"""The block follower: notices each new block of one chain the moment the node has it.

Owns head tracking for one chain, free of Celery and Django:

- **Where heads come from.** With WebSocket URLs, a ``newHeads`` subscription
  (``eth_subscribe``); without, and while every WebSocket endpoint is down, a poll of the
  latest header over HTTP every ``poll_interval_s`` (100 ms by default). The poll asks for
  the header (``eth_getBlockByNumber("latest")``), not just ``eth_blockNumber``: one call
  either way, and the hash is what reveals a reorg at the same height. While subscribed,
  a slow safety poll (``safety_poll_s``) catches a subscription that went silent: twice in
  a row a block the poll found first, and the connection is dropped and made again.
- **Failover and backoff.** A dropped or refused connection moves to the next WebSocket
  URL at once; after a full round of failures it waits an exponential backoff with full
  jitter (``backoff_s`` doubling up to ``backoff_max_s``), polling over HTTP meanwhile. A
  successful subscription resets the backoff and asks for the latest header at once, so
  the blocks mined while it was away are announced without waiting for the next one.
- **Gaps and reorgs.** A head more than one block past the last one is announced once
  with ``first`` set to the first missed block: one scan covers the range, because
  ``Scanner.poll`` processes every block since its cursor. A known height with another
  hash, or a head whose parent is not the hash seen one block below, is announced with
  ``reorg=True`` (the scanner repairs it; announcing only makes the scan happen now).
  Heads already seen, and older heights from a lagging node, are not news.
- **One announcer per chain.** With a ``Lease`` (a Redis lock from
  ``HotState.follower_lock``), heads are announced only while the lease is held; it is
  renewed from the same loop that follows the chain, so a wedged follower loses it and
  another (or beat's fallback tick) takes over. The same loop calls ``heartbeat`` every few
  seconds (the process's liveness file). A follower that takes the lease over
  re-announces the newest head it saw (the scan's block claim makes that harmless).

Each announcement is a ``Head`` stamped with ``arrived_at`` (``time.time()`` when the
follower saw the block) and handed to ``on_head``. If ``on_head`` raises (the broker is
down), the head stays pending and is retried from the loop; a newer head merges into it.

Use::

    follower = Follower(RpcClient(http_urls, timeout_s=2, retries=0), on_head,
                        chain_id=1, ws_urls=["wss://..."], lease=Lease(hot.follower_lock(5), 5))
    follower.run(stop_event)       # until stop_event is set; releases the lease
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Protocol, Sequence
from urllib.parse import urlsplit

from prometheus_client import Counter, Gauge, Histogram
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect
from websockets.sync.connection import Connection

from arbbot.chain.rpc import RpcClient, endpoint_label
from arbbot.errors import ConfigError, RpcError

log = logging.getLogger(__name__)

LEASE_TTL_S = 5.0  # a dead follower's lease frees after this; beat's fallback tick then resumes
DEFAULT_POLL_INTERVAL_S = 0.1
RING = 128  # recent heights remembered (reorg detection, lagging nodes)

HEADS = Counter("arbbot_follower_heads_total", "New heads announced, by source (ws, poll)", ["chain", "source"])
GAP_BLOCKS = Counter("arbbot_follower_gap_blocks_total", "Blocks announced inside a gap (not seen one by one)", ["chain"])
REORGS = Counter("arbbot_follower_reorgs_total", "Heads announced as a reorg", ["chain"])
WS_FAILURES = Counter("arbbot_follower_ws_failures_total", "WebSocket connections lost or refused", ["chain"])
WS_CONNECTED = Gauge("arbbot_follower_ws_connected", "1 while subscribed to newHeads", ["chain"])
LEADER = Gauge("arbbot_follower_leader", "1 while this follower holds the chain's lease", ["chain"])
ANNOUNCE_ERRORS = Counter("arbbot_follower_announce_errors_total", "on_head failures (retried)", ["chain"])
ARRIVAL_TO_ENQUEUE = Histogram(
    "arbbot_follower_arrival_to_enqueue_seconds", "Block arrival at the follower to on_head returned", ["chain"],
    buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)


@dataclass(frozen=True, slots=True)
class Head:
    """One announcement: blocks ``first``..``number`` are new (``first == number`` unless
    a gap was crossed), ``number``/``hash`` the head, seen at unix time ``arrived_at``."""

    number: int
    hash: str
    parent_hash: str
    arrived_at: float
    first: int
    reorg: bool = False
    source: str = "poll"  # "ws" or "poll"


def merge_heads(older: Head, newer: Head) -> Head:
    """One announcement for two not yet scanned: ``newer``'s head, from the lowest first
    block, at the earliest arrival, a reorg if either was."""
    return replace(newer, first=min(older.first, newer.first), arrived_at=min(older.arrived_at, newer.arrived_at),
                   reorg=newer.reorg or older.reorg)


class LockLike(Protocol):
    """What ``Lease`` needs of a lock: redis-py's ``Lock``."""

    def acquire(self, blocking: bool | None = None) -> bool: ...
    def reacquire(self) -> bool: ...
    def release(self) -> None: ...
    def owned(self) -> bool: ...


class Lease:
    """Holds ``lock`` while the follower lives: ``tick()`` acquires it (never waiting) or
    extends it every ``renew_s`` (a third of the TTL by default). Any failure, Redis down
    included, counts as not held: without proof of exclusivity nothing is announced."""

    def __init__(self, lock: LockLike, ttl_s: float = LEASE_TTL_S, renew_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lock = lock
        self.ttl_s = ttl_s
        self.renew_s = renew_s if renew_s is not None else ttl_s / 3
        self.clock = clock
        self.held = False
        self._next = 0.0

    def due_in(self) -> float:
        return max(0.0, self._next - self.clock())

    def tick(self) -> bool:
        now = self.clock()
        if now < self._next:
            return self.held
        self._next = now + self.renew_s
        was = self.held
        try:
            if self.held or self.lock.owned():
                self.held = bool(self.lock.reacquire())
            else:
                self.held = bool(self.lock.acquire(blocking=False))
        except Exception as exc:  # LockNotOwnedError (expired, taken over), Redis unreachable
            if was:
                log.warning("follower lease lost: %s", exc)
            self.held = False
        if self.held and not was:
            log.info("follower lease taken")
        return self.held

    def release(self) -> None:
        if self.held:
            self.held = False
            try:
                self.lock.release()
            except Exception as exc:  # expired already: someone else's now, or nobody's
                log.info("follower lease not released: %s", exc)


class _WsTrouble(Exception):
    """The WebSocket endpoint misbehaved (error reply, garbage, went silent)."""


@dataclass
class FollowerStats:
    announced: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    gap_blocks: int = 0
    reorgs: int = 0
    ws_failures: int = 0
    ws_connects: int = 0
    skipped: int = 0  # heads seen while another follower held the lease


def check_ws_urls(urls: Sequence[str]) -> list[str]:
    """``urls`` stripped, each ``ws://`` or ``wss://`` with a host; else ``ConfigError``
    naming the entry (never its path or query: they may hold an API key)."""
    out = []
    for i, url in enumerate(urls):
        url = url.strip()
        if not url:
            continue
        parts = urlsplit(url)
        try:
            _ = parts.port  # raises on a port that is not a number
        except ValueError:
            raise ConfigError(f"WebSocket URL #{i + 1} ({parts.scheme}://{parts.hostname}...): bad port") from None
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ConfigError(
                f"WebSocket URL #{i + 1} ({parts.scheme or 'no scheme'}://{parts.hostname or '?'}...) "
                "must be ws:// or wss:// with a host"
            )
        out.append(url)
    return out


class Follower:
    """Follows one chain's head; see the module docstring."""

    def __init__(
        self,
        rpc: RpcClient,
        on_head: Callable[[Head], None],
        *,
        chain_id: int,
        ws_urls: Sequence[str] = (),
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        safety_poll_s: float = 1.0,
        lease: Lease | None = None,
        backoff_s: float = 0.1,
        backoff_max_s: float = 5.0,
        open_timeout_s: float = 5.0,
        ping_interval_s: float = 5.0,
        clock: Callable[[], float] = time.time,
        heartbeat: Callable[[], None] | None = None,
    ) -> None:
        if not 0 < poll_interval_s <= 60:
            raise ConfigError(f"poll interval must be within (0, 60] seconds, got {poll_interval_s}")
        self.rpc = rpc
        self.on_head = on_head
        self.chain_id = chain_id
        self.ws_urls = check_ws_urls(ws_urls)
        self.poll_interval_s = poll_interval_s
        self.safety_poll_s = safety_poll_s
        self.lease = lease
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.open_timeout_s = open_timeout_s
        self.ping_interval_s = ping_interval_s
        self.clock = clock
        self.heartbeat = heartbeat  # called every few seconds from the loop (a liveness file)
        self._beat_at = 0.0
        self.stats = FollowerStats()
        self.source = "poll"
        self.last_head: Head | None = None  # newest head seen (announced or not)
        self._hashes: OrderedDict[int, str] = OrderedDict()
        self._pending: Head | None = None
        self._failing = False  # on_head is failing: log once, not every retry
        self._ws_index = 0
        self._ws_rounds = 0  # full rounds of failed ws URLs since the last subscription
        self._ws_retry_at = 0.0  # monotonic time of the next ws attempt
        self._poll_first = 0  # safety polls in a row that found a block before the subscription
        self._label = str(chain_id)

    # ------------------------------------------------------------------ loop

    def run(self, stop: threading.Event) -> None:
        """Follow until ``stop`` is set (checked at least every half second)."""
        try:
            while not stop.is_set():
                self._housekeeping()
                if self.ws_urls and time.monotonic() >= self._ws_retry_at:
                    self._follow_ws(stop)
                else:
                    self.poll_once()
                    stop.wait(self.poll_interval_s)
        finally:
            WS_CONNECTED.labels(self._label).set(0)
            LEADER.labels(self._label).set(0)
            if self.lease is not None:
                self.lease.release()

    def _housekeeping(self) -> None:
        if self.heartbeat is not None and time.monotonic() >= self._beat_at:
            self._beat_at = time.monotonic() + 5.0
            try:
                self.heartbeat()
            except Exception as exc:  # a full disk must not stop the chain being followed
                log.warning("follower heartbeat failed: %s", exc)
        if self.lease is not None:
            was = self.lease.held
            held = self.lease.tick()
            LEADER.labels(self._label).set(1 if held else 0)
            if held and not was and self.last_head is not None and self._pending is None:
                # taking over: the last holder may have died between seeing and enqueueing
                h = self.last_head
                self._announce(replace(h, first=h.number, reorg=False))
        self._flush()

    # ------------------------------------------------------------------ heads

    def observe(self, header: Mapping[str, Any], *, source: str, arrived_at: float) -> Head | None:
        """Judge one header (JSON-RPC block object); announce and return it when it is
        news, else None."""
        try:
            number = int(header["number"], 16)
            block_hash = str(header["hash"]).lower()
            parent = str(header["parentHash"]).lower()
        except (KeyError, TypeError, ValueError) as exc:
            raise _WsTrouble(f"malformed header: {str(header)[:200]}") from exc
        known = self._hashes.get(number)
        if known == block_hash:
            return None
        last = self.last_head.number if self.last_head is not None else None
        if last is None or number > last:
            first = number if last is None else last + 1
            below = self._hashes.get(number - 1)
            reorg = below is not None and below != parent
            if number > first:
                self.stats.gap_blocks += number - first
                GAP_BLOCKS.labels(self._label).inc(number - first)
        elif known is None:
            return None  # an older height we never saw (a lagging node): not news
        else:
            first, reorg = number, True  # a known height, another hash
            for k in [k for k in self._hashes if k >= number]:
                del self._hashes[k]
        self._hashes[number] = block_hash
        while len(self._hashes) > RING:
            self._hashes.popitem(last=False)
        head = Head(number, block_hash, parent, arrived_at, first, reorg, source)
        self.last_head = head
        if reorg:
            self.stats.reorgs += 1
            REORGS.labels(self._label).inc()
            log.warning("chain %s: reorg at block %d (%s)", self.chain_id, number, block_hash)
        self._announce(head)
        return head

    def _announce(self, head: Head) -> None:
        p = self._pending
        if p is not None:  # the previous one was not handed over yet: one covers both
            head = merge_heads(p, head)
        self._pending = head
        self._flush()

    def _flush(self) -> None:
        head = self._pending
        if head is None:
            return
        if self.lease is not None and not self.lease.held:
            self._pending = None
            self.stats.skipped += 1
            return
        try:
            self.on_head(head)
        except Exception as exc:
            ANNOUNCE_ERRORS.labels(self._label).inc()
            if not self._failing:
                log.error("chain %s: announcing block %d failed (retrying): %s", self.chain_id, head.number, exc)
            self._failing = True
            return
        if self._failing:
            log.info("chain %s: announcing works again (block %d)", self.chain_id, head.number)
        self._failing = False
        self._pending = None
        ARRIVAL_TO_ENQUEUE.labels(self._label).observe(max(0.0, self.clock() - head.arrived_at))
        HEADS.labels(self._label, head.source).inc()
        self.stats.announced += 1
        self.stats.by_source[head.source] = self.stats.by_source.get(head.source, 0) + 1

    # ------------------------------------------------------------------ polling

    def poll_once(self) -> Head | None:
        """Ask the HTTP endpoints for the latest header; announce it if it is news."""
        try:
            header = self.rpc.call("eth_getBlockByNumber", ["latest", False])
        except RpcError as exc:
            log.debug("chain %s: head poll failed: %s", self.chain_id, exc)
            return None
        arrived = self.clock()
        if not isinstance(header, Mapping):
            return None
        try:
            return self.observe(header, source="poll", arrived_at=arrived)
        except _WsTrouble as exc:
            log.warning("chain %s: %s", self.chain_id, exc)
            return None

    # ------------------------------------------------------------------ websocket

    def _follow_ws(self, stop: threading.Event) -> None:
        url = self.ws_urls[self._ws_index]
        label = endpoint_label(url)
        try:
            with connect(url, open_timeout=self.open_timeout_s, close_timeout=1.0,
                         ping_interval=self.ping_interval_s, ping_timeout=self.ping_interval_s,
                         max_size=2**22) as ws:
                ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}))
                sub = self._await_subscription(ws)
                # what was mined while we were away: announced now, not at the next block
                ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "eth_getBlockByNumber",
                                    "params": ["latest", False]}))
                self._ws_rounds = 0
                self._poll_first = 0
                self.source = "ws"
                self.stats.ws_connects += 1
                WS_CONNECTED.labels(self._label).set(1)
                log.info("chain %s: subscribed to newHeads at %s", self.chain_id, label)
                self._ws_loop(ws, sub, stop)
        except (OSError, TimeoutError, WebSocketException, _WsTrouble, ValueError) as exc:
            self._ws_failed(label, str(exc).replace(url, label), type(exc).__name__)
        finally:
            WS_CONNECTED.labels(self._label).set(0)
            self.source = "poll"

    def _await_subscription(self, ws: Connection) -> str:
        deadline = time.monotonic() + self.open_timeout_s
        while True:
            msg = json.loads(ws.recv(timeout=max(0.0, deadline - time.monotonic())))
            if isinstance(msg, dict) and msg.get("id") == 1:
                if "error" in msg or not isinstance(msg.get("result"), str):
                    raise _WsTrouble(f"eth_subscribe refused: {str(msg.get('error'))[:200]}")
                return str(msg["result"])

    def _ws_loop(self, ws: Connection, sub: str, stop: threading.Event) -> None:
        next_safety = time.monotonic() + self.safety_poll_s
        while not stop.is_set():
            wait = min(0.5, max(0.0, next_safety - time.monotonic()))
            if self.lease is not None:
                wait = min(wait, self.lease.due_in())
            try:
                raw: str | bytes | None = ws.recv(timeout=wait)
            except TimeoutError:
                raw = None
            if raw is not None:
                self._on_ws_message(raw, sub, self.clock())
            self._housekeeping()
            if time.monotonic() >= next_safety:
                next_safety = time.monotonic() + self.safety_poll_s
                if self.poll_once() is not None:
                    self._poll_first += 1
                    if self._poll_first >= 2:
                        raise _WsTrouble("subscription silent: the safety poll found new blocks first")
                else:
                    self._poll_first = 0

    def _on_ws_message(self, raw: str | bytes, sub: str, arrived: float) -> None:
        try:
            msg = json.loads(raw)
        except ValueError as exc:
            raise _WsTrouble(f"not JSON: {str(raw)[:100]!r}") from exc
        if not isinstance(msg, dict):
            raise _WsTrouble(f"unexpected message: {str(msg)[:100]}")
        if msg.get("method") == "eth_subscription":
            params = msg.get("params") or {}
            if params.get("subscription") == sub and isinstance(params.get("result"), Mapping):
                if self.observe(params["result"], source="ws", arrived_at=arrived) is not None:
                    self._poll_first = 0
            return
        if msg.get("id") == 2:
            if "error" in msg:
                raise _WsTrouble(f"eth_getBlockByNumber: {str(msg['error'])[:200]}")
            if isinstance(msg.get("result"), Mapping):
                self.observe(msg["result"], source="ws", arrived_at=arrived)

    def _ws_failed(self, label: str, error: str, kind: str) -> None:
        """``error`` has the URL replaced by its label: a path may hold an API key."""
        self.stats.ws_failures += 1
        WS_FAILURES.labels(self._label).inc()
        self._ws_index = (self._ws_index + 1) % len(self.ws_urls)
        delay = 0.0
        if self._ws_index == 0:  # every URL failed once more: back off, polling meanwhile
            delay = random.uniform(0, min(self.backoff_max_s, self.backoff_s * 2 ** min(self._ws_rounds, 20)))
            self._ws_rounds += 1
        self._ws_retry_at = time.monotonic() + delay
        log.warning("chain %s: WebSocket %s: %s: %s; polling, next attempt in %.2fs",
                    self.chain_id, label, kind, error[:200], delay)
