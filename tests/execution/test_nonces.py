"""Nonces shared through Redis (``arbbot.execution.nonces`` over ``HotState``), on anvil:
8 OS processes sending from one key, one by one and three at a time, use every nonce exactly
once; a failed send leaves no gap, and stops the sends after it in its session's group; a
send that reached the node despite an error is not reused; a holder that died with a nonce
in flight is recovered from the node's count; an expired lock cannot move the nonce."""

from __future__ import annotations

import multiprocessing as mp
import os
import secrets
import threading
import time
from typing import Any, Iterator

import pytest
import redis
from eth_account import Account
from redis.exceptions import LockNotOwnedError

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import LocalSigner
from arbbot.devnet.anvil import start_anvil
from arbbot.errors import RpcError
from arbbot.execution.nonces import NonceLockBusy, NonceManager
from arbbot.hotstate import HotState

GWEI = 10**9
FEES = {"max_fee_per_gas": 50 * GWEI, "max_priority_fee_per_gas": GWEI}
PROCESSES, SENDS_EACH = 8, 30


@pytest.fixture(scope="module")
def node() -> Iterator[str]:
    with start_anvil() as anvil:
        yield anvil.url


@pytest.fixture
def key(node: str) -> str:
    key = "0x" + secrets.token_hex(32)
    RpcClient(node).call("anvil_setBalance", [Account.from_key(key).address, hex(10**21)])
    return key


def count(rpc: RpcClient, address: str, tag: str = "pending") -> int:
    return int(rpc.call("eth_getTransactionCount", [address, tag]), 16)


def _worker(url: str, redis_url: str, prefix: str, key: str, n: int, out: Any) -> None:
    """One execute worker: its own RpcClient, Redis connection, HotState and signer."""
    rpc = RpcClient(url, timeout_s=10.0)
    hot = HotState(redis.Redis.from_url(redis_url), prefix, 31337)
    signer = LocalSigner(rpc, key, chain_id=31337)
    nonces = NonceManager(hot, rpc, signer.address)
    sent, errors = [], []
    tx = {"to": signer.address, "data": "0x", "gas": 21_000, **FEES}
    while len(sent) + len(errors) < n:
        try:
            with nonces.session() as session:
                if len(sent) % 2:  # three in one go (``send_many``), then one alone
                    group = session.send_many(signer, [(21_000 * FEES["max_fee_per_gas"], tx)] * min(3, n - len(sent)))
                    assert group.error is None, group.error
                    sent.extend(s.tx_hash for s in group.signed)
                else:
                    sent.append(session.send(signer, worst_gas_wei=21_000 * FEES["max_fee_per_gas"], **tx))
        except Exception as exc:  # every error is reported to the parent, which asserts none
            errors.append(f"{type(exc).__name__}: {exc}")
    out.put((os.getpid(), sent, errors))


def test_eight_processes_share_one_account_without_gaps_or_collisions(node: str, key: str, hot: HotState) -> None:
    rpc = RpcClient(node)
    address = Account.from_key(key).address.lower()
    redis_url = os.environ.get("ARBBOT_REDIS_URL", "redis://127.0.0.1:6379/0")
    ctx = mp.get_context("spawn")  # fresh interpreters: nothing shared but Redis and the node
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(node, redis_url, hot.prefix, key, SENDS_EACH, out))
             for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    reports = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert len({pid for pid, _, _ in reports}) == PROCESSES
    assert [e for _, _, errors in reports for e in errors] == []
    hashes = [h for _, sent, _ in reports for h in sent]
    total = PROCESSES * SENDS_EACH
    assert len(hashes) == len(set(hashes)) == total
    nonces = sorted(int(rpc.call("eth_getTransactionByHash", [h])["nonce"], 16) for h in hashes)
    assert nonces == list(range(total))  # every nonce once, no gap
    assert all(int(rpc.call("eth_getTransactionReceipt", [h])["status"], 16) == 1 for h in hashes)
    assert count(rpc, address, "latest") == total
    assert hot.nonce_peek(address) == (total, None)
    assert len(hot.open_txs(address)) == total  # none settled here: all open


def test_a_failed_send_leaves_no_gap_and_a_delivered_one_is_not_reused(node: str, key: str, hot: HotState) -> None:
    rpc = RpcClient(node)
    signer = LocalSigner(rpc, key, chain_id=31337)
    nonces = NonceManager(hot, rpc, signer.address)
    with nonces.session() as s:
        first = s.send(signer, worst_gas_wei=0, to=signer.address, data="0x", gas=21_000, **FEES)
    assert hot.nonce_peek(signer.address) == (1, None)
    # The node refuses (intrinsic gas too low): nonce 1 never arrived and is handed out again.
    with pytest.raises(RpcError), nonces.session() as s:
        s.send(signer, worst_gas_wei=0, to=signer.address, data="0x", gas=20_000, **FEES)
    assert hot.nonce_peek(signer.address) == (1, None)
    # A send whose reply was lost although the node took it: the same bytes were delivered
    # before (as a first attempt would), so this send's error is "already known" / "nonce too low".
    raw, delivered, _ = signer.sign(to=signer.address, data="0x", gas=21_000, nonce=1, **FEES)
    rpc.call("eth_sendRawTransaction", [raw])
    with nonces.session() as s:
        again = s.send(signer, worst_gas_wei=0, to=signer.address, data="0x", gas=21_000, **FEES)
    assert again == delivered and hot.nonce_peek(signer.address) == (2, None)
    with nonces.session() as s:
        third = s.send(signer, worst_gas_wei=0, to=signer.address, data="0x", gas=21_000, **FEES)
    assert [int(rpc.call("eth_getTransactionByHash", [h])["nonce"], 16) for h in (first, delivered, third)] == [0, 1, 2]
    assert count(rpc, signer.address, "latest") == 3


def test_a_group_is_recorded_whole_before_its_first_send_and_sent_in_nonce_order(
    node: str, key: str, hot: HotState
) -> None:
    rpc = RpcClient(node)
    signer = LocalSigner(rpc, key, chain_id=31337)
    nonces = NonceManager(hot, rpc, signer.address)
    tx = {"to": signer.address, "data": "0x", "gas": 21_000, **FEES}
    seen: list[tuple[list[int], int]] = []
    with nonces.session() as s:
        out = s.send_many(signer, [(k, tx) for k in (1, 2, 3)],
                          before_send=lambda signed: seen.append(([x.nonce for x in signed], count(rpc, signer.address))))
    assert seen == [([0, 1, 2], 0)]  # all three handed over at once, none sent yet
    assert (out.sent, out.error, out.failed) == (3, None, None)
    assert [int(rpc.call("eth_getTransactionByHash", [x.tx_hash])["nonce"], 16) for x in out.signed] == [0, 1, 2]
    assert hot.nonce_peek(signer.address) == (3, None)
    assert hot.open_txs(signer.address) == {x.tx_hash.lower(): (x.nonce, x.worst_gas_wei) for x in out.signed}

    # The journal fails: nothing is sent and the three nonces go back.
    def fails(signed: Any) -> None:
        raise RuntimeError("journal down")

    with pytest.raises(RuntimeError), nonces.session() as s:
        s.send_many(signer, [(0, tx)] * 3, before_send=fails)
    assert hot.nonce_peek(signer.address) == (3, None) and count(rpc, signer.address) == 3


def test_a_failed_send_in_a_group_stops_the_rest_and_leaves_no_gap(node: str, key: str, hot: HotState) -> None:
    """The second of three is refused (intrinsic gas too low): the first is out, the third
    never tried; the count re-read from the node hands the second's nonce out again. A relay
    that fails otherwise leaves the group's first nonce in flight: the next holder re-reads
    the count first. One the node took despite the error counts as sent and stops the rest."""
    rpc = RpcClient(node)
    signer = LocalSigner(rpc, key, chain_id=31337)
    nonces = NonceManager(hot, rpc, signer.address)
    good, bad = {"to": signer.address, "data": "0x", "gas": 21_000, **FEES}, {
        "to": signer.address, "data": "0x", "gas": 20_000, **FEES}
    with nonces.session() as s:
        out = s.send_many(signer, [(0, good), (0, bad), (0, good)])
    assert (out.sent, out.failed, isinstance(out.error, RpcError)) == (1, 1, True)
    assert count(rpc, signer.address) == 1 and hot.nonce_peek(signer.address) == (1, None)
    assert set(hot.open_txs(signer.address)) == {out.signed[0].tx_hash.lower()}

    tried: list[int] = []

    def relay(signed: Any) -> None:
        tried.append(signed.nonce)
        if signed.nonce == 2:
            raise ConnectionError("relay down")
        rpc.call("eth_sendRawTransaction", [signed.raw])

    with nonces.session() as s:
        out = s.send_many(signer, [(0, good)] * 3, broadcast=relay)
    assert tried == [1, 2] and (out.sent, out.failed, type(out.error)) == (1, 1, ConnectionError)
    assert hot.nonce_peek(signer.address) == (4, 1)  # the group's first nonce still in flight
    with nonces.session() as s:
        assert s.take() == 2  # re-read from the node: 2 never arrived

    # The node has the middle one of the next group already (an earlier attempt's bytes):
    # its send errs, it counts as sent, and the one after it is never tried.
    raw, delivered, _ = signer.sign(nonce=3, **good)
    rpc.call("eth_sendRawTransaction", [raw])
    with nonces.session() as s:
        out = s.send_many(signer, [(0, good)] * 3)
    assert [x.nonce for x in out.signed] == [2, 3, 4] and out.signed[1].tx_hash == delivered
    assert (out.sent, out.failed, isinstance(out.error, RpcError)) == (2, None, True)
    assert count(rpc, signer.address) == 4 and hot.nonce_peek(signer.address) == (4, None)


def test_a_holder_that_died_mid_send_is_recovered_from_the_node(node: str, key: str, hot: HotState) -> None:
    rpc = RpcClient(node)
    signer = LocalSigner(rpc, key, chain_id=31337)
    nonces = NonceManager(hot, rpc, signer.address)
    with nonces.session() as s:
        s.send(signer, worst_gas_wei=0, to=signer.address, data="0x", gas=21_000, **FEES)
        assert s.take() == 1  # handed out; the holder "dies" before sending
    assert hot.nonce_peek(signer.address) == (2, 1)  # 1 in flight, the store says 2 is next
    with nonces.session() as s:
        tx = s.send(signer, worst_gas_wei=0, to=signer.address, data="0x", gas=21_000, **FEES)
    assert int(rpc.call("eth_getTransactionByHash", [tx])["nonce"], 16) == 1  # the gap is filled
    assert hot.nonce_peek(signer.address) == (2, None)
    # Redis lost the key (flush, expiry): the node's pending count is the truth again.
    hot.redis.delete(hot.key(f"nonce_next:{signer.address}"))
    with nonces.session() as s:
        assert s.take() == 2


def test_sessions_start_no_thread_one_keeps_every_held_lock_alive(
    node: str, key: str, hot: HotState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session's lock is renewed by the process's one renewal thread: entering a session
    starts none (a start waits for the new thread to run, milliseconds when another thread
    holds the GIL), and two held at once, on two accounts, both outlive their TTL."""
    rpc = RpcClient(node)
    a, b = (NonceManager(hot, rpc, Account.create().address, lock_ttl_s=0.3, lock_wait_s=0.1) for _ in range(2))
    with a.session():
        pass  # the renewal thread runs from the process's first session
    starts: list[str] = []
    start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda t: (starts.append(t.name), start(t))[1])
    for _ in range(5):
        with a.session() as s:
            s.resync()
    with a.session() as sa, b.session() as sb:
        time.sleep(1.0)  # over three TTLs: both renewed meanwhile
        assert sa.take() == 0 and sb.take() == 0
        for other in (a, b):
            with pytest.raises(NonceLockBusy):  # still held
                with other.session():
                    pass
    assert starts == []
    assert [t.name for t in threading.enumerate()].count("lock-renewal") == 1


def test_an_expired_lock_cannot_move_the_nonce(node: str, key: str, hot: HotState) -> None:
    """A holder past its maximum hold (wedged) has lost the lock: its writes are refused."""
    rpc = RpcClient(node)
    signer = LocalSigner(rpc, key, chain_id=31337)
    nonces = NonceManager(hot, rpc, signer.address, lock_ttl_s=0.2, max_hold_s=0.3)
    with nonces.session() as s:
        s.resync()
        time.sleep(0.4)
        with pytest.raises(LockNotOwnedError):
            s.take()
        with pytest.raises(LockNotOwnedError):
            s.resync()
    assert hot.nonce_peek(signer.address) == (0, None)
    assert count(rpc, signer.address) == 0


def test_a_live_holder_keeps_the_lock_past_its_ttl_a_dead_one_frees_it_after(
    node: str, key: str, hot: HotState
) -> None:
    rpc = RpcClient(node)
    signer = LocalSigner(rpc, key, chain_id=31337)
    nonces = NonceManager(hot, rpc, signer.address, lock_ttl_s=0.3, lock_wait_s=0.1)
    with nonces.session() as s:
        time.sleep(0.9)  # three TTLs: renewed meanwhile
        assert s.take() == 0
        with pytest.raises(NonceLockBusy):  # still ours: another sender waits
            with nonces.session():
                pass
    # a holder that died (never released, never renewed): free after one TTL
    dead = hot.nonce_lock(signer.address.lower(), 0.3, 0.1)
    assert dead.acquire()
    with NonceManager(hot, rpc, signer.address, lock_ttl_s=0.3, lock_wait_s=2.0).session() as s:  # not busy
        assert s.take() == 0
