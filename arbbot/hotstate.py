"""Every Redis key the fleet uses, and the one place that names them.

Per chain, under ``{prefix}:{{chain_id}}:`` (``HotState``; the braces are a Redis Cluster
hash tag: every key of a chain lives in one slot, so the block's ``MULTI`` and the scripts,
which touch several of them, run on a cluster too):

- ``pools``   hash: pool address -> JSON of ``PoolState.to_wire()`` plus ``block_hash``
- ``head``    ``"<block_number>:<block_hash>"`` of the block the pools are current at
- ``cursor``  JSON ``{"last": n, "hashes": [[n, hash], ...]}``: the scanner's resume point
- ``changed:<n>``  set: the pools written or removed with block ``n`` (plus ``""``, so a
  block that changed nothing still has its key), kept ``CHANGED_TTL_S``: a reader that
  missed blocks reads only what they changed (``changed_since``), not every pool; a pool
  named there without a state was removed (quarantined, or no longer admitted by the filter)
- ``orphaned``  set: block hashes a reorg orphaned (written with the correcting block,
  kept ``ORPHAN_TTL_S``); the execute stage drops work computed on them
- ``tokens``  hash: token address -> JSON of its metadata and transfer check (``put_tokens``)
- ``claim:<n>:<hash>``  publish-once guard for a block
- ``lock:scan``  the scan lock: never two scans of one chain at once (``scan_lock``)
- ``lock:journal``  one follow pass of the chain's sent transactions at a time (``journal_lock``)
- ``lock:follow``  the block follower's lease: one follower of the chain announces new
  blocks, and beat's fallback scan tick stays quiet while it is held (``follower_lock``)
- ``nonce:<signer address>``  the nonce lock: one sender at a time per signer, a batch's sends in one turn (``nonce_lock``)
- ``nonce_next:<signer>``  the next nonce to hand out; absent until first read from the
  node (``eth_getTransactionCount(pending)``), and reset from the node after any error
- ``nonce_inflight:<signer>``  the nonce handed out and not yet known sent or failed; found
  by the next holder of the lock, it means the last holder died mid-send: resync
- ``open:<signer>``  hash: tx hash -> ``"<nonce>:<worst-case gas wei>"`` of every sent,
  unsettled transaction (max open transactions; the loss limit reserves their gas)
- ``cooldown:<pool>``  present (the reason) while the pool cools down after a revert (TTL)
- ``traded:<pool>``  ``"<signer>:<nonce>:<tx hash>"`` of the last trade sent through the pool
  (``POOL_CLAIM_TTL_S``): the next trade through it must have been simulated on a state
  that already includes that one (its nonce mined), or it would revert on-chain
- ``sends:<n>:<hash>``  JSON ``{path id: [pool, ...]}``: what the ml stage chose to execute
  from block ``n``'s first part, when the path stage sized the block in two parts
  (``block_sends``, ``BLOCK_SENDS_TTL_S``): the first process to decide that part stores
  it, and both parts are decided around it (``arbbot.scoring.rule.after_first``)
- ``gas:<executor>:<path id>``  ``"<gas>:<unix time>"``: the node's last ``eth_estimateGas``
  of the cycle through that executor and when it was learned, kept as long as a runner
  trusts it (``remember_gas``): every execute process of the chain takes it instead of
  asking the node again

Fleet-wide, under ``{prefix}:`` (``Fleet``, also ``HotState.fleet``):

- ``kill_switch``  present (any value) while the kill switch is engaged: every execution is
  dropped before anything is sent. Operators set it by hand
  (``redis-cli set arbbot:kill_switch 1``), so the name is fixed.
- ``deliveries:<task id>``  how many redeliveries of a task message started and never
  finished (their worker process died), kept ``DELIVERIES_TTL_S``; deleted when one
  finishes (``workers.deadletters`` dead-letters a message that keeps killing its worker)

The locks are redis-py's ``Lock`` (``SET NX PX`` with a random token, released only by
the holder, freed by expiry if the holder dies). The nonce, scan and journal locks have
short TTLs (how long a dead holder keeps the others out) and are renewed while their holder
runs, up to a maximum hold, by the process's one renewal thread (``LockRenewals``, owned
here: ``renewals``). The nonce scripts are fenced by the nonce lock's token: a holder whose
lock expired cannot move the nonce any more.

Pools, head and cursor are written in one ``MULTI`` so a reader never sees pools from one
block with the head of another. JSON of ``to_wire()`` (uint256 as decimal strings) is the
codec: exact, and the pools' JSON is written and read by orjson (the stage messages' codec
too, ``workers.serializer``): a busy block's 300 pools (~110 kB) took the stdlib 2.4 ms to
write against orjson's 0.4, on the block's way from the scan to the path stage. The text
is the stdlib's, byte for byte (compact, ASCII, the wire's integers all within 64 bits), so
either reads what the other wrote.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence

import orjson
from redis.exceptions import LockNotOwnedError
from redis.lock import Lock

from arbbot.types import PoolState, pool_from_wire

log = logging.getLogger(__name__)

ORPHAN_TTL_S = 3600  # how long an orphaned block hash is remembered (the execute stage drops work on it)
CHANGED_TTL_S = 600  # how long a block's changed-pool set is kept (a catch-up further back reads everything)
MAX_CATCH_UP_BLOCKS = 256  # a reader further behind than this reads every pool instead

# Atomically: the head, the pools written or removed with each block in (after, head], and
# their states (nil: removed). Every key is declared: KEYS = head, pools, orphaned, then
# changed:<n> for each block after the reader's up to the head the caller read just before
# (ARGV[1]); when the head moved meanwhile the script answers 0 and the caller asks again.
# False when the reader's block was orphaned (ARGV[2]) or a block's set is gone (expired,
# or never written): the caller reads every pool instead. HMGET in slices (Lua's unpack is
# bounded).
_CHANGED_SINCE = """
local head = redis.call('GET', KEYS[1])
if not head then return false end
if head ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' and redis.call('SISMEMBER', KEYS[3], ARGV[2]) == 1 then return false end
local seen, addrs = {}, {}
for i = 4, #KEYS do
  local m = redis.call('SMEMBERS', KEYS[i])
  if #m == 0 then return false end
  for _, a in ipairs(m) do
    if a ~= '' and not seen[a] then seen[a] = true; addrs[#addrs + 1] = a end
  end
end
local vals = {}
for i = 1, #addrs, 4000 do
  local part = redis.call('HMGET', KEYS[2], unpack(addrs, i, math.min(i + 3999, #addrs)))
  for j = 1, math.min(4000, #addrs - i + 1) do vals[#vals + 1] = part[j] or '' end
end
return {head, addrs, vals}
"""
CHANGED_SINCE_TRIES = 3  # the head moved under the reader this many times: read every pool

# A send holds the nonce lock for a few RPC round trips. A dead holder (SIGKILL, OOM) frees
# it after the TTL: every send of the account waits that long, so it is short, and a live
# holder renews it (``NonceManager.session``) up to the maximum hold, which a wedged one loses.
NONCE_LOCK_TTL_S = 10.0
NONCE_LOCK_MAX_HOLD_S = 120.0
NONCE_LOCK_WAIT_S = 30.0  # how long a sender waits for the nonce lock before giving up
# A scan holds the chain's scan lock for a block's reads (~10-50 ms), a catch-up or a full
# refresh for seconds. A dead holder frees it after the TTL (the chain's scans wait that
# long); a live one renews it up to the maximum hold (a task's hard time limit, 120 s).
SCAN_LOCK_TTL_S = 6.0
SCAN_LOCK_MAX_HOLD_S = 120.0
# A follow pass of the chain's sent transactions: likewise (its task expires 5 s after beat
# sends it; a pass killed mid-way held up the next ones for 60 s).
JOURNAL_LOCK_TTL_S = 10.0
JOURNAL_LOCK_MAX_HOLD_S = 120.0
POOL_CLAIM_TTL_S = 600  # how long the last trade through a pool is remembered
BLOCK_SENDS_TTL_S = 600  # how long a block's choice from its first part is kept
DELIVERIES_TTL_S = 86400  # a redelivery waits behind its queue's backlog: count across a day

# KEYS: lock, next, inflight; ARGV: lock token. -2: the lock is not ours; -1: resync first
# (nothing stored, or a holder died between handing a nonce out and knowing its fate).
_NONCE_TAKE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -2 end
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
local v = redis.call('GET', KEYS[2])
if not v then return -1 end
redis.call('SET', KEYS[3], v)
redis.call('SET', KEYS[2], tonumber(v) + tonumber(ARGV[2]))
return tonumber(v)
"""
# KEYS: lock, next, inflight; ARGV: lock token, next nonce. 0 when the lock is not ours.
_NONCE_RESET = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[3])
return 1
"""
# KEYS: inflight, open; ARGV: the nonce in flight to clear (-1: none), then a tx hash and
# its open entry for each handed-out nonce that was sent.
_NONCE_SENT = """
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


# each KEYS[i] (a pool's ``traded:`` note) deleted only while it still names ARGV[1] (a hash)
_FORGET_TRADED = """
local n = 0
for _, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if v and string.sub(v, -string.len(ARGV[1])) == ARGV[1] then redis.call('DEL', key); n = n + 1 end
end
return n
"""


class Fleet:
    """The keys shared by every chain: the kill switch, the delivery counters."""

    def __init__(self, redis_client: Any, prefix: str) -> None:
        self.redis = redis_client
        self.prefix = prefix
        self.kill_switch_key = f"{prefix}:kill_switch"

    def kill_switch_engaged(self) -> bool:
        return bool(self.redis.exists(self.kill_switch_key))

    def set_kill_switch(self, on: bool) -> None:
        if on:
            self.redis.set(self.kill_switch_key, "1")
        else:
            self.redis.delete(self.kill_switch_key)

    def deliveries_key(self, task_id: str) -> str:
        return f"{self.prefix}:deliveries:{task_id}"

    def delivery_started(self, task_id: str) -> int:
        """Count a start of the task message ``task_id``; returns the starts unfinished."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(self.deliveries_key(task_id))
        pipe.expire(self.deliveries_key(task_id), DELIVERIES_TTL_S)
        return int(pipe.execute()[0])

    def deliveries_unfinished(self, task_id: str) -> int:
        return int(self.redis.get(self.deliveries_key(task_id)) or 0)

    def delivery_finished(self, task_id: str) -> None:
        self.redis.delete(self.deliveries_key(task_id))


@dataclass(frozen=True)
class SendReads:
    """What a submit reads of the hot state, in one round trip (``HotState.send_reads``)."""

    killed: bool  # the fleet's kill switch is engaged
    orphaned: bool = False  # the block asked about was orphaned by a reorg
    states: dict[str, PoolState] = field(default_factory=dict)  # the pools asked for, as current
    cooling: dict[str, str] = field(default_factory=dict)  # pool -> why it cools down
    traded: dict[str, tuple[str, int, str]] | None = None  # ``last_trades``; None: not asked

    def part(self, pools: Sequence[str], cycle: Sequence[str]) -> SendReads:
        """What one submit would have read of these reads' pools: the states of ``pools``,
        the cooldowns and last trades of ``cycle``'s pools (as asked)."""
        wanted = {p.lower() for p in pools}
        return SendReads(
            killed=self.killed, orphaned=self.orphaned,
            states={a: st for a, st in self.states.items() if a in wanted},
            cooling={p: why for p, why in self.cooling.items() if p in cycle},
            traded=None if self.traded is None else {p: t for p, t in self.traded.items() if p in cycle},
        )


class HotState:
    """One chain's keys: latest pool states, head, cursor, orphaned blocks, tokens, block
    claims, the scan and nonce locks, each account's nonce and open transactions, pool
    cooldowns; ``fleet`` holds the fleet-wide ones. ``redis_client``
    is a ``redis.Redis``; values are stored as bytes or str, both are decoded."""

    def __init__(self, redis_client: Any, prefix: str, chain_id: int) -> None:
        self.redis = redis_client
        self.prefix = prefix
        self.chain_id = chain_id
        self.ns = f"{prefix}:{{{chain_id}}}"  # hash tag: one Redis Cluster slot per chain
        self.fleet = Fleet(redis_client, prefix)

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
        removed: Iterable[str] = (),
    ) -> None:
        """Write ``states`` as current at ``(block_number, block_hash)``, delete the
        ``removed`` pools (named in the block's changed set too, so a reader catching up
        forgets them), move the head there, and (for the scanner) the cursor and the block
        hashes a reorg orphaned, all in one transaction: no reader sees the corrected pools
        while the orphaned blocks still look canonical."""
        mapping = {}
        for s in states:
            w = s.to_wire()
            w["block_hash"] = block_hash
            mapping[s.address] = orjson.dumps(w)
        gone = sorted({a.lower() for a in removed} - set(mapping))
        pipe = self.redis.pipeline(transaction=True)
        if gone:
            pipe.hdel(self.key("pools"), *gone)
        if mapping:
            pipe.hset(self.key("pools"), mapping=mapping)
        changed = self.key(f"changed:{block_number}")
        pipe.sadd(changed, "", *mapping, *gone)
        pipe.expire(changed, CHANGED_TTL_S)
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
        return _pools(items)

    def snapshot(self) -> tuple[dict[str, PoolState], tuple[int, str] | None]:
        """Every pool and the head they are current at, read in one transaction (the
        writer moves both in one, so they always belong together)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hgetall(self.key("pools"))
        pipe.get(self.key("head"))
        raw, head = pipe.execute()
        return {_s(k): pool_from_wire(orjson.loads(v)) for k, v in raw.items()}, _head(head)

    def changed_since(
        self, after_block: int, after_hash: str = "", *, max_blocks: int = MAX_CATCH_UP_BLOCKS
    ) -> tuple[dict[str, PoolState], tuple[int, str] | None, frozenset[str]] | None:
        """What the blocks after ``after_block`` (whose hash the reader saw as
        ``after_hash``) changed up to the head, read at one instant (as ``snapshot`` does for
        every pool): the pools written (address -> state), the head, and the pools removed
        (quarantined, or no longer admitted: the reader forgets them). None when that cannot
        be told: ``after_hash`` was orphaned by a reorg (the reader holds states of a dead
        branch, and the corrections may sit at or below ``after_block``), a block's set
        expired or was never written, the gap is longer than ``max_blocks``, no head, or the
        head kept moving. Then read ``snapshot``."""
        for _ in range(CHANGED_SINCE_TRIES):
            raw = self.redis.get(self.key("head"))
            head = _head(raw)
            if head is None or head[0] - after_block > max_blocks:
                return None
            keys = [self.key(f"changed:{b}") for b in range(after_block + 1, head[0] + 1)]
            # EVAL_RO: a read-only script, so a role that may only read (the path workers'
            # Redis user, infrastructure/redis/users.acl) may run it
            got = self.redis.eval_ro(
                _CHANGED_SINCE, 3 + len(keys), self.key("head"), self.key("pools"), self.key("orphaned"), *keys,
                _s(raw), after_hash.lower(),
            )
            if got == 0:
                continue  # a block was written between the two reads
            if not got:
                return None
            _, addrs, vals = got
            pools, removed = {}, set()
            for a, v in zip(addrs, vals):
                if v:
                    pools[_s(a)] = pool_from_wire(orjson.loads(v))
                else:
                    removed.add(_s(a))
            return pools, head, frozenset(removed)
        return None

    def delete_pools(self, addresses: Iterable[str]) -> None:
        addrs = list(addresses)
        if addrs:
            self.redis.hdel(self.key("pools"), *addrs)

    def head(self) -> tuple[int, str] | None:
        return _head(self.redis.get(self.key("head")))

    # --------------------------------------------------------------- tokens

    def put_tokens(self, tokens: Iterable[Any]) -> None:
        """Token metadata (``arbbot.chain.token_registry.TokenInfo``) by address, JSON: ``symbol``,
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
        return {_s(k): orjson.loads(v) for k, v in self.redis.hgetall(self.key("tokens")).items()}

    def excluded_tokens(self, addresses: Iterable[str] | None = None) -> dict[str, str]:
        """Token address -> reason, for every token (or every one of ``addresses``) the
        scanner found unfit to route through."""
        if addresses is None:
            tokens = self.get_tokens()
        else:
            addrs = sorted({a.lower() for a in addresses})
            raw = self.redis.hmget(self.key("tokens"), addrs) if addrs else []
            tokens = {a: orjson.loads(v) for a, v in zip(addrs, raw) if v is not None}  # ~0.5 µs a token, json's ~2.7
        return {a: d["excluded_reason"] for a, d in tokens.items() if d.get("excluded_reason")}

    def clear_token_flag(self, address: str) -> None:
        """An operator cleared the token: drop the scan stage's ``excluded_reason`` (kept
        as ``operator_cleared``), so a path stage started later does not hand the old flag
        on to be recorded again."""
        key, addr = self.key("tokens"), address.lower()
        raw = self.redis.hget(key, addr)
        if raw is None:
            return
        entry = json.loads(raw)
        if entry.get("excluded_reason"):
            entry["operator_cleared"], entry["excluded_reason"] = entry["excluded_reason"], None
            self.redis.hset(key, addr, json.dumps(entry, separators=(",", ":")))

    # --------------------------------------------------------------- scanner cursor

    def load_cursor(self) -> tuple[int, list[tuple[int, str]]] | None:
        v = self.redis.get(self.key("cursor"))
        if v is None:
            return None
        d = json.loads(v)
        return int(d["last"]), [(int(n), str(h)) for n, h in d["hashes"]]

    # --------------------------------------------------------------- coordination

    def scan_lock(self, ttl_s: float = SCAN_LOCK_TTL_S) -> Lock:
        """The chain's scan lock, not yet acquired; ``acquire()`` never waits. Expires after
        ``ttl_s`` so a crashed holder does not block the chain; see ``scanning``. Not
        thread-local: the process's renewal thread extends it."""
        return self.redis.lock(self.key("lock:scan"), timeout=ttl_s, blocking=False, thread_local=False)

    @contextlib.contextmanager
    def scanning(self, ttl_s: float = SCAN_LOCK_TTL_S, max_hold_s: float = SCAN_LOCK_MAX_HOLD_S) -> Iterator[bool]:
        """``with hot.scanning() as got:``: ``got`` is True when this caller holds the scan
        lock. Held, it is renewed (``renewals``) while this caller runs, for at most
        ``max_hold_s``: a scan killed mid-way (its process SIGKILLed) keeps the chain's
        other scans out for at most ``ttl_s``, a long one (a catch-up, a full refresh) keeps
        its lock throughout. On exit the lock is released if it is still ours; once expired
        (past its maximum hold, or Redis lost it) it may be another worker's, and is left
        alone."""
        with self._held(self.scan_lock(ttl_s), "scan", ttl_s, max_hold_s) as got:
            yield got

    @contextlib.contextmanager
    def journal_lock(self, ttl_s: float = JOURNAL_LOCK_TTL_S, max_hold_s: float = JOURNAL_LOCK_MAX_HOLD_S) -> Iterator[bool]:
        """One follow pass of the chain's transactions at a time (``arbbot.execution.follow``);
        as ``scanning``: True when this caller holds it, never waits, renewed while it runs
        (a pass killed mid-way holds up the chain's next passes for ``ttl_s`` at most)."""
        lock = self.redis.lock(self.key("lock:journal"), timeout=ttl_s, blocking=False, thread_local=False)
        with self._held(lock, "follow", ttl_s, max_hold_s) as got:
            yield got

    @contextlib.contextmanager
    def _held(self, lock: Lock, what: str, ttl_s: float, max_hold_s: float) -> Iterator[bool]:
        """``lock`` taken if free (True) and renewed (``renewals``) until the caller is done,
        then released if still ours."""
        got = lock.acquire()
        held = renewals.hold(lock, ttl_s, max_hold_s) if got else None
        try:
            yield got
        finally:
            if held is not None:
                renewals.drop(held)
            if got:
                try:
                    lock.release()
                except LockNotOwnedError:
                    log.warning("%s lock of chain %s expired before its holder finished", what, self.chain_id)

    def follower_lock(self, ttl_s: float) -> Lock:
        """The chain's block-follower lease, not yet acquired (``acquire()`` never waits).
        Its holder renews it while alive (``arbbot.chain.follower.Lease``); ``locked()``
        tells beat's fallback tick that a follower is on duty. Owned by the process, not a
        thread (``thread_local=False``): the follower renews it from its own loop."""
        return self.redis.lock(self.key("lock:follow"), timeout=ttl_s, blocking=False, thread_local=False)

    def nonce_lock(
        self, signer: str, ttl_s: float = NONCE_LOCK_TTL_S, wait_s: float | None = NONCE_LOCK_WAIT_S
    ) -> Lock:
        """The lock that serialises sends from ``signer`` across workers (``with``: waits
        for it, at most ``wait_s``, then raises ``LockError``). Expires after ``ttl_s``."""
        # not thread-local: the holder's renewal thread extends it with the same token
        return self.redis.lock(self.key(f"nonce:{signer}"), timeout=ttl_s, blocking_timeout=wait_s,
                               thread_local=False)

    # --------------------------------------------------------------- nonces and open transactions
    # Called by ``arbbot.execution.nonces`` while it holds ``nonce_lock(signer)``; ``token`` is
    # that lock's token (the fence).

    def nonce_take(self, signer: str, token: bytes, count: int = 1) -> int | None:
        """Hand out the next ``count`` nonces of ``signer`` (the first noted in flight, which
        stands for them all); the first, or None: resync from the node first. Raises
        ``LockNotOwnedError`` when the lock is no longer ours."""
        if count < 1:
            raise ValueError(f"cannot take {count} nonces")
        v = int(self.redis.eval(_NONCE_TAKE, 3, *self._nonce_keys(signer), token, count))
        if v == -2:
            raise LockNotOwnedError(f"nonce lock of {signer} expired or taken over")
        return None if v < 0 else v

    def nonce_reset(self, signer: str, token: bytes, next_nonce: int) -> None:
        """Store ``next_nonce`` (read from the node's pending count) and forget any nonce in
        flight. Raises ``LockNotOwnedError`` when the lock is no longer ours."""
        if not int(self.redis.eval(_NONCE_RESET, 3, *self._nonce_keys(signer), token, next_nonce)):
            raise LockNotOwnedError(f"nonce lock of {signer} expired or taken over")

    def nonce_sent(self, signer: str, nonce: int, tx_hash: str, worst_gas_wei: int) -> None:
        """The nonce handed out reached the node as ``tx_hash``: no longer in flight, and
        open until ``open_close``."""
        self.nonces_sent(signer, [(nonce, tx_hash, worst_gas_wei)], clear=nonce)

    def nonces_sent(self, signer: str, sent: Sequence[tuple[int, str, int]], *, clear: int | None) -> None:
        """Each of ``sent`` (nonce, tx hash, worst-case gas wei) reached the node: open until
        ``open_close``; and the nonce in flight is no longer, when it is ``clear`` (the first
        of the nonces taken together, all of them sent; None: it stays, and the next holder
        re-reads the count from the node)."""
        keys = (self.key(f"nonce_inflight:{signer}"), self.key(f"open:{signer}"))
        entries = [v for nonce, tx_hash, gas in sent for v in (tx_hash.lower(), f"{nonce}:{gas}")]
        self.redis.eval(_NONCE_SENT, 2, *keys, -1 if clear is None else clear, *entries)

    def nonce_peek(self, signer: str) -> tuple[int | None, int | None]:
        """(next nonce, nonce in flight) as stored; for tests and operators."""
        nxt, inflight = self.redis.mget(self._nonce_keys(signer)[1:])
        return (None if nxt is None else int(nxt)), (None if inflight is None else int(inflight))

    def _nonce_keys(self, signer: str) -> tuple[str, str, str]:
        return (self.key(f"nonce:{signer}"), self.key(f"nonce_next:{signer}"), self.key(f"nonce_inflight:{signer}"))

    def open_txs(self, signer: str) -> dict[str, tuple[int, int]]:
        """Every sent, unsettled transaction of ``signer``: tx hash -> (nonce, worst-case gas wei)."""
        out = {}
        for k, v in self.redis.hgetall(self.key(f"open:{signer}")).items():
            nonce, gas = _s(v).split(":", 1)
            out[_s(k)] = (int(nonce), int(gas))
        return out

    def open_close(self, signer: str, *tx_hashes: str) -> None:
        """Settled (mined, or known gone): no longer open."""
        if tx_hashes:
            self.redis.hdel(self.key(f"open:{signer}"), *[h.lower() for h in tx_hashes])

    # --------------------------------------------------------------- pool cooldowns

    def cooldown_pools(self, pools: Iterable[str], ttl_s: float, reason: str) -> None:
        """Keep ``pools`` out of execution for ``ttl_s`` (after a revert through them)."""
        pipe = self.redis.pipeline(transaction=False)
        for p in pools:
            pipe.set(self.key(f"cooldown:{p.lower()}"), reason, px=max(1, int(ttl_s * 1000)))
        pipe.execute()

    def cooling_pools(self, pools: Sequence[str]) -> dict[str, str]:
        """The pools of ``pools`` still cooling down -> why."""
        if not pools:
            return {}
        return _cooling(pools, self.redis.mget([self.key(f"cooldown:{p.lower()}") for p in pools]))

    # --------------------------------------------------------------- last trade per pool

    def note_traded(self, pools: Iterable[str], signer: str, nonce: int, tx_hash: str) -> None:
        """A trade through ``pools`` is about to be sent by ``signer`` at ``nonce``."""
        self.note_trades([(pools, signer, nonce, tx_hash)])

    def note_trades(self, trades: Iterable[tuple[Iterable[str], str, int, str]]) -> None:
        """``note_traded`` of each of ``trades`` (pools, signer, nonce, tx hash), in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for pools, signer, nonce, tx_hash in trades:
            value = f"{signer.lower()}:{nonce}:{tx_hash.lower()}"
            for p in pools:
                pipe.set(self.key(f"traded:{p.lower()}"), value, ex=POOL_CLAIM_TTL_S)
        pipe.execute()

    def forget_traded(self, pools: Iterable[str], tx_hash: str) -> int:
        """The trade ``tx_hash`` was not sent after all: its pools' notes go, unless a later
        trade's (of any signer) replaced them. How many went."""
        keys = [self.key(f"traded:{p.lower()}") for p in pools]
        return int(self.redis.eval(_FORGET_TRADED, len(keys), *keys, tx_hash.lower())) if keys else 0

    def last_trades(self, pools: Sequence[str]) -> dict[str, tuple[str, int, str]]:
        """The last trade sent through each of ``pools`` (where remembered): pool ->
        (signer, nonce, tx hash)."""
        if not pools:
            return {}
        return _trades(pools, self.redis.mget([self.key(f"traded:{p.lower()}") for p in pools]))

    def send_reads(
        self, *, block_hash: str | None = None, pools: Sequence[str] = (), cooling: Sequence[str] = (),
        traded: Sequence[str] | None = None,
    ) -> SendReads:
        """The fleet's kill switch and what else a submit asks, in one round trip (a
        pipeline, not a transaction: each read is as fresh as its own command): whether
        ``block_hash`` was orphaned, the states of ``pools``, which of ``cooling`` cool down
        and the last trades through ``traded`` (``is_orphaned``, ``get_pools``,
        ``cooling_pools``, ``last_trades``)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.exists(self.fleet.kill_switch_key)
        if block_hash is not None:
            pipe.sismember(self.key("orphaned"), block_hash.lower())
        addrs = [a.lower() for a in pools]
        if addrs:
            pipe.hmget(self.key("pools"), addrs)
        for p in cooling:  # GETs, not an MGET: a cluster's pipeline refuses MGET
            pipe.get(self.key(f"cooldown:{p.lower()}"))
        for p in traded or ():
            pipe.get(self.key(f"traded:{p.lower()}"))
        replies = pipe.execute()
        killed, orphaned = bool(replies[0]), block_hash is not None and bool(replies[1])
        rest = replies[2 if block_hash is not None else 1:]
        states = _pools(zip(addrs, rest.pop(0))) if addrs else {}
        return SendReads(
            killed=killed, orphaned=orphaned, states=states, cooling=_cooling(cooling, rest[:len(cooling)]),
            traded=None if traded is None else _trades(traded, rest[len(cooling):]),
        )

    # --------------------------------------------------------------- a block in two parts

    def block_sends(
        self, block: int, block_hash: str, chosen: Mapping[str, Sequence[str]] | None = None,
    ) -> dict[str, list[str]] | None:
        """The choice from block ``block``'s first part (path id -> its pools). With
        ``chosen``: stored unless a choice is stored already (``SET NX``: the first process
        to decide that part wins), and the stored one returned, this one or the earlier.
        Without: the stored one, or None."""
        key = self.key(f"sends:{block}:{block_hash.lower()}")
        if chosen is not None:
            mine = {path: [p.lower() for p in pools] for path, pools in chosen.items()}
            if self.redis.set(key, json.dumps(mine), nx=True, ex=BLOCK_SENDS_TTL_S):
                return mine
        raw = self.redis.get(key)
        return None if raw is None else {str(k): [str(p) for p in v] for k, v in json.loads(raw).items()}

    # --------------------------------------------------------------- gas per cycle

    def remember_gas(self, executor: str, path_id: str, gas: int, ttl_s: float) -> None:
        """The node's gas estimate of the cycle ``path_id`` through ``executor``, learned now,
        for every execute process of the chain, kept ``ttl_s``."""
        self.redis.set(self.key(f"gas:{executor.lower()}:{path_id}"), f"{gas}:{time.time()}", ex=max(1, int(ttl_s)))

    def remembered_gas(self, executor: str, path_ids: Sequence[str]) -> dict[str, tuple[int, float]]:
        """path id -> (gas, seconds since it was learned) of the cycles of ``path_ids`` any
        execute process remembered (one read)."""
        if not path_ids:
            return {}
        out, now = {}, time.time()
        for p, v in zip(path_ids, self.redis.mget([self.key(f"gas:{executor.lower()}:{p}") for p in path_ids])):
            if v is not None:
                gas, at = _s(v).split(":", 1)
                out[p] = (int(gas), max(0.0, now - float(at)))
        return out

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


def _pools(items: Iterable[tuple[Any, Any]]) -> dict[str, PoolState]:
    """Address -> state, of the stored (address, wire JSON) pairs; a missing one left out."""
    return {_s(k): pool_from_wire(orjson.loads(v)) for k, v in items if v is not None}


def _cooling(pools: Sequence[str], values: Sequence[Any]) -> dict[str, str]:
    return {p.lower(): _s(v) for p, v in zip(pools, values) if v is not None}


def _trades(pools: Sequence[str], values: Sequence[Any]) -> dict[str, tuple[str, int, str]]:
    out = {}
    for p, v in zip(pools, values):
        if v is not None:
            signer, nonce, tx_hash = _s(v).split(":", 2)
            out[p.lower()] = (signer, int(nonce), tx_hash)
    return out


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


def _cursor_json(last_block: int, hashes: Sequence[tuple[int, str]]) -> str:
    return json.dumps({"last": last_block, "hashes": [[n, h] for n, h in hashes]}, separators=(",", ":"))


class LockRenewals:
    """The process's one thread that keeps its held locks alive while their holders run
    (the nonce locks' sessions, ``arbbot.execution.nonces``; the scans, ``scanning``; the
    follow passes, ``journal_lock``): each extended every third of its TTL at most, up to
    its maximum hold, then left to expire (``min(ttl, remaining)``: never past that). So a
    lock's TTL is only how long a dead holder (SIGKILL, OOM) keeps others out, not how long
    a live one may hold it. One thread for every holder, not one started by each: a session
    waited for its thread's first run, a hand-over of the GIL that took milliseconds while
    the execute stage's other thread held it (5.5 ms median in a process with one busy
    thread, ``sys.getswitchinterval``). A forked process (a pool process) starts its own."""

    def __init__(self, tick_s: float = NONCE_LOCK_TTL_S / 3) -> None:
        self.tick_s = tick_s  # the longest wait between two rounds
        self._next = 0
        self._forked()
        os.register_at_fork(after_in_child=self._forked)  # the parent's thread may hold ``_cv``

    def _forked(self) -> None:
        self._cv = threading.Condition()
        self._held: dict[int, tuple[Any, float, float]] = {}  # key -> lock, ttl, deadline
        self._running = False
        self._waiting_s = self.tick_s  # the wait the thread is in

    def start(self) -> None:
        """The thread started now if it is not running (a process's start: the first lock
        held then does not wait for it)."""
        with self._cv:
            self._start()

    def _start(self) -> None:
        if not self._running:
            self._running = True
            threading.Thread(target=self._loop, daemon=True, name="lock-renewal").start()

    def hold(self, lock: Any, ttl_s: float, max_hold_s: float) -> int:
        with self._cv:
            self._start()
            self._next += 1
            self._held[self._next] = (lock, ttl_s, time.monotonic() + max_hold_s)
            if ttl_s / 3 < self._waiting_s:  # a short TTL (tests): wake to wait less
                self._cv.notify()
            return self._next

    def drop(self, key: int) -> None:
        with self._cv:
            self._held.pop(key, None)

    def _loop(self) -> None:
        while True:
            with self._cv:
                self._waiting_s = min([self.tick_s, *(ttl / 3 for _, ttl, _ in self._held.values())])
                self._cv.wait(self._waiting_s)
                held = list(self._held.items())
            for key, (lock, ttl, deadline) in held:
                remaining = deadline - time.monotonic()
                try:
                    if remaining <= 0:
                        raise TimeoutError("held past its maximum")
                    lock.extend(min(ttl, remaining), replace_ttl=True)
                except Exception:  # past its hold, lost, or Redis gone: the fence refuses its writes
                    self.drop(key)


#: the process's lock renewals (``LockRenewals``)
renewals = LockRenewals()
