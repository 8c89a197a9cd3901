"""HotState on the real Redis: pools round-trip exactly, head/cursor versioning, the scan
lock (one holder, safe release, expiry) and the publish-once block claim."""

from __future__ import annotations

import threading
import time

from arbbot.hotstate import HotState
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


def test_lock_is_exclusive_and_safely_released(hot: HotState) -> None:
    first = hot.lock("scan", ttl_s=5)
    assert first.acquire()
    second = hot.lock("scan", ttl_s=5)
    assert not second.acquire()
    assert not second.release()  # never acquired: never deletes the holder's key
    assert first.release()
    with hot.lock("scan", 5) as got:
        assert got
        with hot.lock("scan", 5) as got2:
            assert not got2
    # expiry: a crashed holder does not block forever; the stale holder cannot release
    stale = hot.lock("scan", ttl_s=0.1)
    assert stale.acquire()
    time.sleep(0.2)
    fresh = hot.lock("scan", 5)
    assert fresh.acquire()
    assert not stale.release()
    assert hot.redis.get(hot.key("lock:scan")) == fresh.token.encode()
    fresh.release()


def test_lock_prevents_concurrent_scans(hot: HotState) -> None:
    inside = 0
    max_inside = 0
    runs = 0
    guard = threading.Lock()

    def worker() -> None:
        nonlocal inside, max_inside, runs
        for _ in range(30):
            with hot.lock("scan", ttl_s=5) as got:
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
