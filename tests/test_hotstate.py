"""HotState on the real Redis: pools round-trip exactly, head/cursor versioning, the scan
lock (one holder, safe release, expiry), the nonce lock, the kill switch, the delivery
counters and the publish-once block claim."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import threading
import time
import uuid
from typing import Callable, Iterator

import pytest
import redis
from redis.cluster import RedisCluster
from redis.exceptions import LockError, LockNotOwnedError

from arbbot.hotstate import Fleet, HotState
from arbbot.types import V2PoolState, V3PoolState

A = "0x" + "11" * 20
B = "0x" + "22" * 20
T0 = "0x" + "aa" * 20
T1 = "0x" + "bb" * 20
H1 = "0x" + "01" * 32
H2 = "0x" + "02" * 32


def test_pools_roundtrip_exact_and_versioned(hot: HotState) -> None:
    v2 = V2PoolState(A, T0, T1, 2**112 - 1, 12345, 3000, 7)
    v3 = V3PoolState(B, T0, T1, 500, 10, 2**160 - 1, -887272, 2**128 - 1, ((-10, -(2**127)), (10, 2**127 - 1)), 7)
    assert hot.head() is None
    hot.put_pools([v2, v3], 7, H1, cursor=(7, [(6, H2), (7, H1)]))
    assert hot.get_pools() == {A: v2, B: v3}
    assert hot.get_pools([B, "0x" + "33" * 20]) == {B: v3}
    assert hot.head() == (7, H1)
    assert hot.load_cursor() == (7, [(6, H2), (7, H1)])
    v2b = V2PoolState(A, T0, T1, 1, 2, 3000, 8)
    hot.put_pools([v2b], 8, H2)
    assert hot.get_pools()[A] == v2b and hot.get_pools()[B] == v3
    assert hot.head() == (8, H2)
    raw = hot.redis.hget(hot.key("pools"), A)
    assert b'"block_hash":"' + H2.encode() in raw and b'"reserve0":"1"' in raw


def test_pools_are_stored_as_the_stdlib_writes_them_and_either_reads_the_other(hot: HotState) -> None:
    """The pools' JSON is orjson's (arbbot.hotstate): the same text as the stdlib's compact
    JSON, so a reader of either kind (an older process during a rolling update) reads it."""
    v2 = V2PoolState(A, T0, T1, 2**112 - 1, 12345, 3000, 2**40)
    v3 = V3PoolState(B, T0, T1, 10000, 200, 2**160 - 1, 887271, 2**128 - 1,
                     ((-887200, 2**127 - 1), (0, 0), (887200, -(2**127))), 2**40)
    hot.put_pools([v2, v3], 7, H1)
    for s in (v2, v3):
        stored = hot.redis.hget(hot.key("pools"), s.address)
        assert stored == json.dumps({**s.to_wire(), "block_hash": H1}, separators=(",", ":")).encode()
    older = V2PoolState(A, T0, T1, 5, 6, 3000, 8)  # written as the stdlib writes it
    hot.redis.hset(hot.key("pools"), A, json.dumps({**older.to_wire(), "block_hash": H2}, separators=(",", ":")))
    assert hot.get_pools([A]) == {A: older} and hot.snapshot()[0][A] == older


def test_changed_since_reads_only_what_the_missed_blocks_wrote(hot: HotState) -> None:
    C = "0x" + "33" * 20
    a, b, c = (V2PoolState(x, T0, T1, 1, 2, 3000, 7) for x in (A, B, C))
    none: frozenset[str] = frozenset()
    hot.put_pools([a, b, c], 7, H1)
    assert hot.changed_since(7, H1) == ({}, (7, H1), none), "nothing after the head"
    b8 = V2PoolState(B, T0, T1, 5, 6, 3000, 8)
    hot.put_pools([b8], 8, H2)
    hot.put_pools([], 9, H1)  # a block that changed nothing still counts as seen
    c10 = V2PoolState(C, T0, T1, 7, 8, 3000, 10)
    hot.put_pools([c10], 10, H2)
    assert hot.changed_since(7, H1) == ({B: b8, C: c10}, (10, H2), none)
    assert hot.changed_since(8) == ({C: c10}, (10, H2), none)
    # what cannot be told is None (the reader then reads every pool)
    assert hot.changed_since(7, H1, max_blocks=2) is None, "too far behind"
    assert hot.changed_since(5) is None, "blocks 6 and 7's sets were never written here"
    hot.redis.delete(hot.key("changed:9"))
    assert hot.changed_since(8) is None, "an expired block set"
    hot.put_pools([], 11, H1, orphaned=[H2.upper().replace("0X", "0x")])
    assert hot.changed_since(10, H2) is None, "the reader's block was orphaned"
    assert hot.changed_since(10) == ({}, (11, H1), none)


def test_a_removed_pool_is_named_in_its_blocks_changes(hot: HotState) -> None:
    """A pool the scanner stops publishing (quarantined, or no longer admitted) is deleted
    with its block, in the same transaction, and named in the block's changed set: a reader
    catching up learns to forget it, not only that nothing new was written."""
    a, b = (V2PoolState(x, T0, T1, 1, 2, 3000, 7) for x in (A, B))
    hot.put_pools([a, b], 7, H1)
    b8 = V2PoolState(B, T0, T1, 5, 6, 3000, 8)
    hot.put_pools([b8], 8, H2, removed=[A.upper().replace("0X", "0x")])
    assert hot.get_pools() == {B: b8}
    assert hot.changed_since(7, H1) == ({B: b8}, (8, H2), frozenset({A}))
    # re-admitted later: written again, no longer removed
    a9 = V2PoolState(A, T0, T1, 3, 4, 3000, 9)
    hot.put_pools([a9], 9, H1)
    assert hot.changed_since(8, H2) == ({A: a9}, (9, H1), frozenset())
    assert hot.changed_since(7, H1) == ({A: a9, B: b8}, (9, H1), frozenset())


def test_changed_since_follows_a_head_that_moves_between_its_reads(hot: HotState) -> None:
    """The keys of the blocks to read are declared, so they are named from a head read
    first; a block written between that read and the script is not mixed in half-read."""
    a = V2PoolState(A, T0, T1, 1, 2, 3000, 7)
    hot.put_pools([a], 7, H1)
    a8 = V2PoolState(A, T0, T1, 3, 4, 3000, 8)
    hot.put_pools([a8], 8, H2)
    real_get = hot.redis.get
    moved = []

    def get(key: str) -> object:
        got = real_get(key)
        if not moved:  # the scanner writes block 9 just after the reader saw the head at 8
            moved.append(1)
            hot.put_pools([V2PoolState(A, T0, T1, 5, 6, 3000, 9)], 9, H1)
        return got

    hot.redis.get = get  # type: ignore[method-assign]
    try:
        pools, head, _ = hot.changed_since(7, H1) or ({}, None, None)
    finally:
        del hot.redis.get
    assert head == (9, H1) and pools[A].block_number == 9


def test_lock_is_exclusive_and_safely_released(hot: HotState) -> None:
    first = hot.scan_lock(ttl_s=5)
    assert first.acquire()
    second = hot.scan_lock(ttl_s=5)
    assert not second.acquire()
    with pytest.raises(LockError):  # never acquired: never deletes the holder's key
        second.release()
    assert hot.redis.get(hot.key("lock:scan")) == first.local.token
    first.release()
    assert hot.redis.get(hot.key("lock:scan")) is None
    with hot.scanning(5) as got:
        assert got
        with hot.scanning(5) as got2:
            assert not got2
        assert hot.redis.exists(hot.key("lock:scan"))  # the one that did not get it left it alone
    assert not hot.redis.exists(hot.key("lock:scan"))
    # expiry: a crashed holder does not block forever; the stale holder cannot release
    stale = hot.scan_lock(ttl_s=0.1)
    assert stale.acquire()
    time.sleep(0.2)
    fresh = hot.scan_lock(5)
    assert fresh.acquire()
    with pytest.raises(LockError):
        stale.release()
    assert hot.redis.get(hot.key("lock:scan")) == fresh.local.token
    fresh.release()


def test_scanning_outlived_by_its_lock_leaves_the_new_holder_alone(hot: HotState) -> None:
    """Held past its maximum hold, the scan lock is no longer renewed and expires: another
    scan takes it, and the first one's exit leaves it alone."""
    with hot.scanning(0.1, max_hold_s=0.1) as got:
        assert got
        time.sleep(0.3)
        fresh = hot.scan_lock(5)
        assert fresh.acquire()
    assert hot.redis.get(hot.key("lock:scan")) == fresh.local.token
    fresh.release()


def test_a_scan_keeps_its_lock_while_it_lives_and_a_killed_one_frees_it_after_the_ttl(
    hot: HotState, redis_client: redis.Redis, prefix: str,
) -> None:
    """A scan longer than the lock's TTL keeps it (the process's renewal thread extends it),
    so no second scan starts beside it; a scan whose process is SIGKILLed keeps the chain's
    other scans out only until the TTL runs out, not for the scan's maximum hold."""
    import os
    import sys

    with hot.scanning(0.3, max_hold_s=30) as got:
        assert got
        time.sleep(1.0)  # over three TTLs
        with hot.scanning(0.3) as got2:
            assert not got2
    assert not redis_client.exists(hot.key("lock:scan"))

    url = os.environ.get("ARBBOT_REDIS_URL", "redis://127.0.0.1:6379/0")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time, redis\n"
        "from arbbot.hotstate import HotState\n"
        f"hot = HotState(redis.Redis.from_url({url!r}), {prefix!r}, {hot.chain_id})\n"
        "with hot.scanning(1.0, max_hold_s=60) as got:\n"
        "    print(got, flush=True)\n"
        "    time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
        time.sleep(1.5)  # past the TTL: renewed while it lives
        with hot.scanning(1.0) as got:
            assert not got
        holder.kill()
        holder.wait()
        killed = time.monotonic()
        while True:
            with hot.scanning(1.0) as got:
                if got:
                    break
            assert time.monotonic() - killed < 2.0, "the dead scan's lock outlived its TTL"
            time.sleep(0.02)
    finally:
        holder.kill()
        holder.wait()


def test_a_follow_pass_keeps_the_journal_lock_while_it_lives(hot: HotState, redis_client: redis.Redis) -> None:
    """The journal lock is renewed as the scan lock is: a pass longer than its TTL keeps it,
    one past its maximum hold loses it."""
    with hot.journal_lock(0.3, max_hold_s=30) as got:
        assert got
        time.sleep(1.0)
        with hot.journal_lock(0.3) as got2:
            assert not got2
    assert not redis_client.exists(hot.key("lock:journal"))
    with hot.journal_lock(0.2, max_hold_s=0.2) as got:
        assert got
        time.sleep(0.5)
        with hot.journal_lock(5) as got2:
            assert got2  # the first held it past its maximum: expired


def test_lock_prevents_concurrent_scans(hot: HotState) -> None:
    inside = 0
    max_inside = 0
    runs = 0
    guard = threading.Lock()

    def worker() -> None:
        nonlocal inside, max_inside, runs
        for _ in range(30):
            with hot.scanning(ttl_s=5) as got:
                if not got:
                    continue
                with guard:
                    inside += 1
                    runs += 1
                    max_inside = max(max_inside, inside)
                time.sleep(0.002)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max_inside == 1 and runs > 0


def test_claim_block_once_across_workers(hot: HotState) -> None:
    results: list[bool] = []
    lock = threading.Lock()

    def claim() -> None:
        ok = hot.claim_block(10, H1)
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert hot.claim_block(10, H2)  # a reorged block at the same height is a new publication
    assert not hot.claim_block(10, H2)


def test_nonce_lock_serialises_sends_of_one_signer_only(hot: HotState) -> None:
    signer, other = "0x" + "5a" * 20, "0x" + "5b" * 20
    order: list[str] = []
    with hot.nonce_lock(signer):
        assert hot.redis.exists(hot.key(f"nonce:{signer}"))
        waiter = threading.Thread(target=lambda: _hold(hot.nonce_lock(signer), order, "second"))
        waiter.start()
        time.sleep(0.3)
        with hot.nonce_lock(other, ttl_s=5):  # another signer's sends are not held up
            order.append("other")
        order.append("first")
    waiter.join(timeout=10)
    assert order == ["other", "first", "second"]
    assert not hot.redis.exists(hot.key(f"nonce:{signer}"))
    held = hot.nonce_lock(signer, ttl_s=2)
    assert held.acquire()
    assert 0 < hot.redis.pttl(hot.key(f"nonce:{signer}")) <= 2000  # a dead holder frees it
    held.release()


def _hold(lock: redis.lock.Lock, order: list[str], name: str) -> None:
    with lock:
        order.append(name)


def test_kill_switch_is_fleet_wide_under_the_documented_key(hot: HotState, redis_client: redis.Redis) -> None:
    other_chain = HotState(redis_client, hot.prefix, 1)
    fleet = Fleet(redis_client, hot.prefix)
    try:
        assert not hot.fleet.kill_switch_engaged()
        redis_client.set(f"{hot.prefix}:kill_switch", "1")  # as an operator does with redis-cli
        assert hot.fleet.kill_switch_engaged() and other_chain.fleet.kill_switch_engaged()
        fleet.set_kill_switch(False)
        assert not redis_client.exists(f"{hot.prefix}:kill_switch")
        assert not other_chain.fleet.kill_switch_engaged()
        other_chain.fleet.set_kill_switch(True)
        assert fleet.kill_switch_engaged() and hot.fleet.kill_switch_engaged()
    finally:
        fleet.set_kill_switch(False)


def test_delivery_counts_are_per_message_expire_and_are_cleared(redis_client: redis.Redis, prefix: str) -> None:
    from arbbot.hotstate import DELIVERIES_TTL_S

    fleet = Fleet(redis_client, prefix)
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        assert fleet.deliveries_unfinished(a) == 0
        assert [fleet.delivery_started(a), fleet.delivery_started(a), fleet.delivery_started(b)] == [1, 2, 1]
        assert fleet.deliveries_key(a) == f"{prefix}:deliveries:{a}"
        assert 0 < redis_client.ttl(fleet.deliveries_key(a)) <= DELIVERIES_TTL_S  # a lost count expires
        fleet.delivery_finished(a)
        assert fleet.deliveries_unfinished(a) == 0 and fleet.deliveries_unfinished(b) == 1
    finally:
        fleet.delivery_finished(a)
        fleet.delivery_finished(b)


def test_open_transactions_and_pool_cooldowns_under_their_documented_keys(hot: HotState) -> None:
    signer, p1, p2 = "0x" + "5a" * 20, "0x" + "01" * 20, "0x" + "02" * 20
    lock = hot.nonce_lock(signer, ttl_s=5)
    assert lock.acquire()
    token = lock.local.token
    assert hot.nonce_take(signer, token) is None  # nothing stored: resync from the node first
    hot.nonce_reset(signer, token, 7)
    assert hot.nonce_take(signer, token) == 7 and hot.nonce_peek(signer) == (8, 7)
    assert hot.nonce_take(signer, token) is None  # 7 still in flight: its fate is unknown
    hot.nonce_sent(signer, 7, "0xAB", 21_000)
    assert hot.nonce_peek(signer) == (8, None)
    assert hot.open_txs(signer) == {"0xab": (7, 21_000)}
    assert hot.redis.hget(hot.key(f"open:{signer}"), "0xab") == b"7:21000"
    hot.open_close(signer, "0xAB")
    assert hot.open_txs(signer) == {}
    # three handed out together: the first stands in flight for them all until all are sent
    assert hot.nonce_take(signer, token, 3) == 8 and hot.nonce_peek(signer) == (11, 8)
    hot.nonces_sent(signer, [(8, "0x08", 1)], clear=None)  # one of three: still in flight
    assert hot.nonce_peek(signer) == (11, 8)
    hot.nonces_sent(signer, [(9, "0x09", 1), (10, "0x0A", 2)], clear=9)  # not the group's first: kept
    assert hot.nonce_peek(signer) == (11, 8)
    hot.nonces_sent(signer, [], clear=8)
    assert hot.nonce_peek(signer) == (11, None)
    assert hot.open_txs(signer) == {"0x08": (8, 1), "0x09": (9, 1), "0x0a": (10, 2)}
    with pytest.raises(ValueError):
        hot.nonce_take(signer, token, 0)
    hot.open_close(signer, "0x08", "0x09", "0x0a")
    lock.release()
    with pytest.raises(LockNotOwnedError):  # the scripts are fenced by the lock's token
        hot.nonce_take(signer, token)

    hot.cooldown_pools([p1.upper().replace("0X", "0x")], 0.3, "reverted in 0x1")
    assert hot.cooling_pools([p1, p2]) == {p1: "reverted in 0x1"}
    assert hot.redis.get(hot.key(f"cooldown:{p1}")) == b"reverted in 0x1"
    time.sleep(0.4)
    assert hot.cooling_pools([p1, p2]) == {}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A real Redis Cluster of three masters on 127.0.0.1 (redis-server in cluster mode,
    joined by ``redis-cli --cluster create``): keys of different slots live on different
    nodes, and a transaction or script over keys of several slots is refused."""
    ports = [_free_port() for _ in range(3)]
    procs = []
    for port in ports:
        d = tmp_path_factory.mktemp(f"redis-{port}")
        procs.append(subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", str(d / "nodes.conf"), "--dir", str(d), "--save", "", "--appendonly", "no"],
            stdout=open(d / "log", "wb"), stderr=subprocess.STDOUT,
        ))
    try:
        for port in ports:
            _wait(lambda p=port: _pings(p), f"redis node on {port} up")  # type: ignore[misc]
        subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports], "--cluster-yes"],
                       check=True, capture_output=True, timeout=30)
        for port in ports:
            _wait(lambda p=port: redis.Redis(port=p).cluster("INFO").get("cluster_state") == "ok",  # type: ignore[misc]
                  "cluster ok")
        client = RedisCluster(host="127.0.0.1", port=ports[0])
        yield client
        client.close()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)


def _free_port() -> int:
    """A free port whose cluster bus port (+10000) is free and valid too."""
    while True:
        port = random.randrange(20000, 30000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue


def _pings(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False


def _wait(cond: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    end = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_every_multi_key_operation_runs_on_a_redis_cluster(cluster: RedisCluster) -> None:
    """A chain's keys share one hash slot, and the scripts declare the keys they touch:
    the block's transaction, the catch-up script, the nonce scripts and the locks all run
    on a three-node cluster (before the hash tag: CROSSSLOT on the first write)."""
    hot = HotState(cluster, f"test-cluster-{uuid.uuid4().hex[:8]}", 31337)
    try:
        a, b = (V2PoolState(x, T0, T1, 1, 2, 3000, 7) for x in (A, B))
        hot.put_pools([a, b], 7, H1, cursor=(7, [(7, H1)]))
        b8 = V2PoolState(B, T0, T1, 5, 6, 3000, 8)
        hot.put_pools([b8], 8, H2, cursor=(8, [(7, H1), (8, H2)]), removed=[A])
        hot.put_pools([], 9, H1, orphaned=["0x" + "ee" * 32])
        assert hot.snapshot() == ({B: b8}, (9, H1))
        assert hot.changed_since(7, H1) == ({B: b8}, (9, H1), frozenset({A}))
        assert hot.changed_since(8, "0x" + "ee" * 32) is None
        assert hot.load_cursor() == (8, [(7, H1), (8, H2)])
        signer = "0x" + "5a" * 20
        lock = hot.nonce_lock(signer, ttl_s=5)
        assert lock.acquire()
        token = lock.local.token
        hot.nonce_reset(signer, token, 7)
        assert hot.nonce_take(signer, token) == 7
        hot.nonce_sent(signer, 7, "0xab", 21_000)
        assert hot.nonce_peek(signer) == (8, None) and hot.open_txs(signer) == {"0xab": (7, 21_000)}
        lock.release()
        with hot.scanning(5) as got:
            assert got
        hot.cooldown_pools([A, B], 5, "reverted")
        assert set(hot.cooling_pools([A, B])) == {A, B}
        hot.note_traded([A, B], signer, 7, "0xab")
        assert set(hot.last_trades([A, B])) == {A, B}
        hot.fleet.set_kill_switch(True)  # the fleet's key, in a slot of its own: a pipeline, not a transaction
        r = hot.send_reads(block_hash="0x" + "ee" * 32, pools=[A, B], cooling=[A, B], traded=[A, B])
        assert r.killed and r.orphaned and r.states == {B: b8} and set(r.cooling) == set(r.traded or ()) == {A, B}
        # all of the chain's keys live in one slot
        keys = [k for node in cluster.get_primaries() for k in cluster.scan_iter(match=f"{hot.ns}:*", target_nodes=node)]
        assert len({cluster.keyslot(k) for k in keys}) == 1 and len(keys) > 5
    finally:
        for node in cluster.get_primaries():
            for k in list(cluster.scan_iter(match=f"{hot.prefix}:*", target_nodes=node)):
                cluster.delete(k)


def test_a_submits_reads_together_are_each_read_apart(hot: HotState) -> None:
    """``send_reads`` answers as ``fleet.kill_switch_engaged``, ``is_orphaned``,
    ``get_pools``, ``cooling_pools`` and ``last_trades`` do, each read only when asked."""
    a, b = (V2PoolState(x, T0, T1, 1, 2, 3000, 7) for x in (A, B))
    hot.put_pools([a, b], 7, H1, orphaned=[H2])
    hot.cooldown_pools([B], 5, "reverted")
    hot.note_traded([A], "0x" + "5a" * 20, 3, "0xab")
    for killed in (False, True):
        hot.fleet.set_kill_switch(killed)
        for block_hash in (H1, H2):
            r = hot.send_reads(block_hash=block_hash, pools=[A, B, "0x" + "33" * 20], cooling=[A, B], traded=[A, B])
            assert (r.killed, r.orphaned) == (hot.fleet.kill_switch_engaged(), hot.is_orphaned(block_hash))
            assert r.states == hot.get_pools([A, B]) == {A: a, B: b}
            assert r.cooling == hot.cooling_pools([A, B]) == {B: "reverted"}
            assert r.traded == hot.last_trades([A, B]) == {A: ("0x" + "5a" * 20, 3, "0xab")}
    hot.fleet.set_kill_switch(False)
    r = hot.send_reads(traded=[])
    assert (r.killed, r.orphaned, r.states, r.cooling, r.traded) == (False, False, {}, {}, {})
    assert hot.send_reads().traded is None  # not asked


def test_a_blocks_first_part_choice_is_stored_once_the_first_writer_wins(hot: HotState) -> None:
    h = "0x" + "ab" * 32
    assert hot.block_sends(7, h) is None
    first = {"p1": ["0xAA", "0xbb"], "p2": ["0xcc"]}
    assert hot.block_sends(7, h, first) == {"p1": ["0xaa", "0xbb"], "p2": ["0xcc"]}
    assert hot.block_sends(7, h, {"p3": ["0xdd"]}) == {"p1": ["0xaa", "0xbb"], "p2": ["0xcc"]}, "stored first wins"
    assert hot.block_sends(7, h) == {"p1": ["0xaa", "0xbb"], "p2": ["0xcc"]}
    assert hot.block_sends(7, "0x" + "cd" * 32) is None, "another block hash (a reorg's) is another block"
    assert hot.block_sends(8, h, {}) == {} and hot.block_sends(8, h, {"p4": ["0xee"]}) == {}, "an empty choice counts"
    assert 0 < hot.redis.ttl(hot.key(f"sends:7:{h}")) <= 600


def test_token_flags_read_back_whatever_a_tokens_symbol_holds(hot: HotState) -> None:
    """The path stage reads the scan's flags every block (``excluded_tokens``, by orjson):
    a symbol the chain gave as any text (decoded with replacement, written escaped by
    ``put_tokens``) reads back as written, and only flagged tokens come back."""
    from arbbot.chain.token_checks import TransferCheck
    from arbbot.chain.token_registry import TokenInfo

    fot = TransferCheck(ok=False, reason="fee-on-transfer: received 98/100", sent=100, received=98, amount=100)
    tokens = [TokenInfo("0x" + "a1" * 20, "Ωmega\ufffd\u0000\"\\", 18, ("symbol() returned 3 undecodable bytes",), fot),
              TokenInfo("0x" + "a2" * 20, "🦄", 6, (), None)]
    hot.put_tokens(tokens)
    assert hot.excluded_tokens(["0x" + "A1" * 20, "0x" + "a2" * 20, "0x" + "a3" * 20]) == {
        "0x" + "a1" * 20: "fee-on-transfer: received 98/100"}
    assert hot.excluded_tokens() == {"0x" + "a1" * 20: "fee-on-transfer: received 98/100"}
    got = hot.get_tokens()
    assert [got["0x" + "a1" * 20]["symbol"], got["0x" + "a2" * 20]["symbol"]] == ["Ωmega\ufffd\u0000\"\\", "🦄"]
    assert got["0x" + "a1" * 20]["transfer_check"] == json.loads(json.dumps(fot.to_wire()))


def test_replies_are_parsed_by_hiredis(hot: HotState) -> None:
    """redis-py picks hiredis's compiled parser when it is installed (requirements.in): the
    path stage's per-block token flags parse in half the time."""
    from redis._parsers import _HiredisParser

    pool = hot.redis.connection_pool
    conn = pool.get_connection()
    try:
        assert isinstance(conn._parser, _HiredisParser)
    finally:
        pool.release(conn)
