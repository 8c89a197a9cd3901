"""Hot, shared pool state of one chain in Redis, versioned by block number and hash.

Owns the Redis layout under ``{prefix}:{chain_id}:``:

- ``pools``   hash: pool address -> JSON of ``PoolState.to_wire()`` plus ``block_hash``
- ``head``    ``"<block_number>:<block_hash>"`` of the block the pools are current at
- ``cursor``  JSON ``{"last": n, "hashes": [[n, hash], ...]}``: the scanner's resume point
- ``lock:<name>``  a scan lock (``SET NX PX`` with a random token, released by compare-and-delete)
- ``claim:<n>:<hash>``  publish-once guard for a block
- ``orphaned``  set: block hashes a reorg orphaned (written with the correcting block)
- ``tokens``  hash: token address -> JSON of its metadata and transfer check (``put_tokens``)

Pools, head and cursor are written in one ``MULTI`` so a reader never sees pools from one
block with the head of another. JSON of ``to_wire()`` (uint256 as decimal strings) is the
codec: exact, and with the stdlib ``json`` C accelerator as fast as msgpack would be here
without adding a dependency.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any, Iterable, Sequence

from arbbot.types import PoolState, pool_from_wire

ORPHAN_TTL_S = 3600  # how long an orphaned block hash is remembered (the execute stage drops work on it)

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""
_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end
"""


def kill_switch_key(prefix: str) -> str:
    """The Redis key whose presence engages the kill switch (fleet-wide, all chains)."""
    return f"{prefix}:kill_switch"


class ScanLock:
    """A Redis lock with expiry. ``with hot.lock("scan", 30) as got:`` gives ``got`` True
    when this holder owns it; the release only deletes the key if the token is still ours
    (an expired lock taken over by another worker is never released by us)."""

    def __init__(self, redis: Any, key: str, ttl_s: float) -> None:
        self.redis = redis
        self.key = key
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.token = secrets.token_hex(16)
        self.acquired = False

    def acquire(self, *, blocking: bool = False, timeout_s: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while True:
            if self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms):
                self.acquired = True
                return True
            if not blocking or time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def extend(self, ttl_s: float | None = None) -> bool:
        ms = self.ttl_ms if ttl_s is None else int(ttl_s * 1000)
        return bool(self.redis.eval(_EXTEND, 1, self.key, self.token, ms))

    def release(self) -> bool:
        if not self.acquired:
            return False
        self.acquired = False
        return bool(self.redis.eval(_RELEASE, 1, self.key, self.token))

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class HotState:
    """Latest pool states of one chain. ``redis_client`` is a ``redis.Redis`` (any client
    with the same commands); values are stored as bytes or str, both are decoded."""

    def __init__(self, redis_client: Any, prefix: str, chain_id: int) -> None:
        self.redis = redis_client
        self.prefix = prefix
        self.chain_id = chain_id
        self.ns = f"{prefix}:{chain_id}"

    def key(self, name: str) -> str:
        return f"{self.ns}:{name}"

    # --------------------------------------------------------------- pools and head

    def put_pools(
        self,
        states: Iterable[PoolState],
        block_number: int,
        block_hash: str,
        *,
        cursor: tuple[int, Sequence[tuple[int, str]]] | None = None,
        orphaned: Sequence[str] = (),
    ) -> None:
        """Write ``states`` as current at ``(block_number, block_hash)``, move the head
        there, and (for the scanner) the cursor and the block hashes a reorg orphaned, all
        in one transaction: no reader sees the corrected pools while the orphaned blocks
        still look canonical."""
        mapping = {}
        for s in states:
            w = s.to_wire()
            w["block_hash"] = block_hash
            mapping[s.address] = json.dumps(w, separators=(",", ":"))
        pipe = self.redis.pipeline(transaction=True)
        if mapping:
            pipe.hset(self.key("pools"), mapping=mapping)
        pipe.set(self.key("head"), f"{block_number}:{block_hash}")
        if cursor is not None:
            pipe.set(self.key("cursor"), _cursor_json(*cursor))
        if orphaned:
            pipe.sadd(self.key("orphaned"), *orphaned)
            pipe.expire(self.key("orphaned"), ORPHAN_TTL_S)
        pipe.execute()

    def is_orphaned(self, block_hash: str) -> bool:
        """True when a reorg orphaned ``block_hash`` (within the last ``ORPHAN_TTL_S``)."""
        return bool(self.redis.sismember(self.key("orphaned"), block_hash.lower()))

    def get_pools(self, addresses: Iterable[str] | None = None) -> dict[str, PoolState]:
        if addresses is None:
            raw = self.redis.hgetall(self.key("pools"))
            items = list(raw.items())
        else:
            addrs = [a.lower() for a in addresses]
            if not addrs:
                return {}
            items = list(zip(addrs, self.redis.hmget(self.key("pools"), addrs)))
        out: dict[str, PoolState] = {}
        for k, v in items:
            if v is None:
                continue
            state = pool_from_wire(json.loads(v))
            out[_s(k)] = state
        return out

    def snapshot(self) -> tuple[dict[str, PoolState], tuple[int, str] | None]:
        """Every pool and the head they are current at, read in one transaction (the
        writer moves both in one, so they always belong together)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hgetall(self.key("pools"))
        pipe.get(self.key("head"))
        raw, head = pipe.execute()
        return {_s(k): pool_from_wire(json.loads(v)) for k, v in raw.items()}, _head(head)

    def delete_pools(self, addresses: Iterable[str]) -> None:
        addrs = list(addresses)
        if addrs:
            self.redis.hdel(self.key("pools"), *addrs)

    def head(self) -> tuple[int, str] | None:
        return _head(self.redis.get(self.key("head")))

    def set_head(self, block_number: int, block_hash: str) -> None:
        self.redis.set(self.key("head"), f"{block_number}:{block_hash}")

    # --------------------------------------------------------------- tokens

    def put_tokens(self, tokens: Iterable[Any]) -> None:
        """Token metadata (``discovery.TokenInfo``) by address, JSON: ``symbol``,
        ``decimals``, ``problems``, ``excluded_reason`` (None, or why the path stage must
        skip the token, e.g. ``"fee-on-transfer: received 98/100"``) and ``transfer_check``
        (None until probed, else ``TransferCheck.to_wire()``: amounts as decimal strings)."""
        mapping = {}
        for t in tokens:
            check = getattr(t, "transfer_check", None)
            mapping[t.address] = json.dumps(
                {
                    "symbol": t.symbol,
                    "decimals": t.decimals,
                    "problems": list(t.problems),
                    "excluded_reason": getattr(t, "excluded_reason", None),
                    "transfer_check": None if check is None else check.to_wire(),
                },
                separators=(",", ":"),
            )
        if mapping:
            self.redis.hset(self.key("tokens"), mapping=mapping)

    def get_tokens(self) -> dict[str, dict[str, Any]]:
        return {_s(k): json.loads(v) for k, v in self.redis.hgetall(self.key("tokens")).items()}

    def excluded_tokens(self, addresses: Iterable[str] | None = None) -> dict[str, str]:
        """Token address -> reason, for every token (or every one of ``addresses``) the
        scanner found unfit to route through."""
        if addresses is None:
            tokens = self.get_tokens()
        else:
            addrs = sorted({a.lower() for a in addresses})
            raw = self.redis.hmget(self.key("tokens"), addrs) if addrs else []
            tokens = {a: json.loads(v) for a, v in zip(addrs, raw) if v is not None}
        return {a: d["excluded_reason"] for a, d in tokens.items() if d.get("excluded_reason")}

    # --------------------------------------------------------------- scanner cursor

    def save_cursor(self, last_block: int, hashes: Sequence[tuple[int, str]]) -> None:
        self.redis.set(self.key("cursor"), _cursor_json(last_block, hashes))

    def load_cursor(self) -> tuple[int, list[tuple[int, str]]] | None:
        v = self.redis.get(self.key("cursor"))
        if v is None:
            return None
        d = json.loads(v)
        return int(d["last"]), [(int(n), str(h)) for n, h in d["hashes"]]

    # --------------------------------------------------------------- coordination

    def lock(self, name: str, ttl_s: float) -> ScanLock:
        """A lock object (not yet acquired); use as ``with hot.lock("scan", 30) as got:``."""
        return ScanLock(self.redis, self.key(f"lock:{name}"), ttl_s)

    def claim_block(self, block_number: int, block_hash: str, *, ttl_s: int = 3600) -> bool:
        """True exactly once per ``(block_number, block_hash)`` across all workers: call it
        before publishing that block's ``PoolDelta``; False means someone else did."""
        return bool(self.redis.set(self.key(f"claim:{block_number}:{block_hash}"), "1", nx=True, ex=ttl_s))

    def clear(self) -> None:
        """Delete every key of this chain under the prefix (tests, devnet reset)."""
        keys = list(self.redis.scan_iter(match=f"{self.ns}:*", count=1000))
        if keys:
            self.redis.delete(*keys)


def _head(v: bytes | str | None) -> tuple[int, str] | None:
    """The stored ``"<block_number>:<block_hash>"``, parsed."""
    if v is None:
        return None
    n, h = _s(v).split(":", 1)
    return int(n), h


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


def _cursor_json(last_block: int, hashes: Sequence[tuple[int, str]]) -> str:
    return json.dumps({"last": last_block, "hashes": [[n, h] for n, h in hashes]}, separators=(",", ":"))
