"""HotState on the real Redis: pools round-trip exactly, head/cursor versioning, the scan
lock (one holder, safe release, expiry), the nonce lock, the kill switch and the
publish-once block claim."""

from __future__ import annotations

import threading
import time

import pytest
import redis
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


def test_changed_since_reads_only_what_the_missed_blocks_wrote(hot: HotState) -> None:
    C = "0x" + "33" * 20
    a, b, c = (V2PoolState(x, T0, T1, 1, 2, 3000, 7) for x in (A, B, C))
    hot.put_pools([a, b, c], 7, H1)
    assert hot.changed_since(7, H1) == ({}, (7, H1)), "nothing after the head"
    b8 = V2PoolState(B, T0, T1, 5, 6, 3000, 8)
    hot.put_pools([b8], 8, H2)
    hot.put_pools([], 9, H1)  # a block that changed nothing still counts as seen
    c10 = V2PoolState(C, T0, T1, 7, 8, 3000, 10)
    hot.put_pools([c10], 10, H2)
    assert hot.changed_since(7, H1) == ({B: b8, C: c10}, (10, H2))
    assert hot.changed_since(8) == ({C: c10}, (10, H2))
    # what cannot be told is None (the reader then reads every pool)
    assert hot.changed_since(7, H1, max_blocks=2) is None, "too far behind"
    assert hot.changed_since(5) is None, "blocks 6 and 7's sets were never written here"
    hot.redis.delete(hot.key("changed:9"))
    assert hot.changed_since(8) is None, "an expired block set"
    hot.put_pools([], 11, H1, orphaned=[H2.upper().replace("0X", "0x")])
    assert hot.changed_since(10, H2) is None, "the reader's block was orphaned"
    assert hot.changed_since(10) == ({}, (11, H1))


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
    with hot.scanning(0.1) as got:
        assert got
        time.sleep(0.2)
        fresh = hot.scan_lock(5)
        assert fresh.acquire()
    assert hot.redis.get(hot.key("lock:scan")) == fresh.local.token
    fresh.release()


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
    lock.release()
    with pytest.raises(LockNotOwnedError):  # the scripts are fenced by the lock's token
        hot.nonce_take(signer, token)

    hot.cooldown_pools([p1.upper().replace("0X", "0x")], 0.3, "reverted in 0x1")
    assert hot.cooling_pools([p1, p2]) == {p1: "reverted in 0x1"}
    assert hot.redis.get(hot.key(f"cooldown:{p1}")) == b"reverted in 0x1"
    time.sleep(0.4)
    assert hot.cooling_pools([p1, p2]) == {}
