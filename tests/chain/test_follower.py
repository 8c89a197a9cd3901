"""The block follower on real parts: anvil mining on demand, the real scan queue of this
run's RabbitMQ vhost (what ``scan.announce`` sent is read back from it), and Redis for the
lease. Every wait is on a message, a callback's event or a condition, with a bound."""

from __future__ import annotations

import datetime as dt
import os
import queue
import random
import socket
import threading
import time
from typing import Any, Callable, Iterator

import pytest
import redis
from kombu import Connection, Consumer

from arbbot.chain.follower import Follower, Head, Lease
from arbbot.chain.rpc import RpcClient
from arbbot.devnet.anvil import Anvil, start_anvil
from arbbot.hotstate import HotState
from arbbot.types import PoolDelta
from tests.chain.devchain import DevChain, build_v2_market

TIMEOUT_S = 10.0


def wait_until(cond: Callable[[], Any], what: str, timeout_s: float = TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.005)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def chain_anvil() -> Iterator[Anvil]:
    """anvil mining only when asked (evm_mine), with a chain id of this test's own so the
    messages it causes are told apart from any other on the queue."""
    a = start_anvil(chain_id=random.randint(900_000, 999_999))
    yield a
    a.stop()


class ScanQueue:
    """Consumes the real ``scan`` queue and keeps the scan_chain messages of one chain:
    ``next()`` returns ``(block, first, arrived_at)`` of the next one, in queue order."""

    def __init__(self, chain_id: int) -> None:
        from workers import queues

        self.chain_id = chain_id
        self.got: queue.Queue[tuple[Any, Any, Any]] = queue.Queue()
        self.stop = threading.Event()
        self.conn = Connection(os.environ["ARBBOT_BROKER_URL"])
        queues.declare_topology(self.conn)
        self.scan_queue = next(q for q in queues.celery_queues() if q.name == "scan")
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(TIMEOUT_S), "scan queue consumer did not start"

    def _on_message(self, body: Any, message: Any) -> None:
        message.ack()
        if message.headers.get("task") != "workers.tasks.scan.scan_chain":
            return
        args, kwargs, _ = body
        if args and args[0] == self.chain_id:  # a tick's message has no block
            self.got.put((kwargs.get("block"), kwargs.get("first"), kwargs.get("arrived_at")))

    def _run(self) -> None:
        from workers import serializer  # the stage tasks' messages are its type

        with Consumer(self.conn, queues=[self.scan_queue], callbacks=[self._on_message], accept=["json", serializer.NAME]):
            self.ready.set()
            while not self.stop.is_set():
                try:
                    self.conn.drain_events(timeout=0.2)
                except socket.timeout:
                    pass

    def next(self, timeout_s: float = TIMEOUT_S) -> tuple[Any, Any, Any]:
        try:
            return self.got.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"no scan message for chain {self.chain_id} within {timeout_s}s") from None

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.conn.release()


@pytest.fixture
def scan_queue(chain_anvil: Anvil) -> Iterator[ScanQueue]:
    q = ScanQueue(int(chain_anvil.rpc().chain_id()))
    yield q
    q.close()


class Running:
    """A follower on its own thread; ``heads`` records what it announced (and the real
    ``scan.announce`` sends it), ``announced`` is set on each announcement."""

    def __init__(self, follower: Follower) -> None:
        self.follower = follower
        self.stop = threading.Event()
        self.thread = threading.Thread(target=follower.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), "follower did not stop"


def make_follower(
    anvil: Anvil, *, ws_url: str | None = None, lease: Lease | None = None, heads: list[Head] | None = None,
    **kw: Any,
) -> Follower:
    from workers.tasks import scan

    chain_id = int(anvil.rpc().chain_id())
    seen = heads if heads is not None else []

    def on_head(head: Head) -> None:
        seen.append(head)  # first: once the message is on the queue, the test may look
        scan.announce(chain_id, head)

    return Follower(
        RpcClient(anvil.url, timeout_s=2.0, retries=0, breaker_cooldown_s=0.2), on_head, chain_id=chain_id,
        ws_urls=[ws_url] if ws_url else [], lease=lease, **kw,
    )


def mine(anvil: Anvil, blocks: int = 1) -> int:
    rpc = anvil.rpc()
    if blocks == 1:
        rpc.call("evm_mine")
    else:
        rpc.call("anvil_mine", [hex(blocks)])
    return rpc.block_number()


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("source", ["ws", "poll"])
def test_each_new_block_enqueues_one_scan_in_order(chain_anvil: Anvil, scan_queue: ScanQueue, source: str) -> None:
    ws = f"ws://127.0.0.1:{chain_anvil.port}" if source == "ws" else None
    f = make_follower(chain_anvil, ws_url=ws, poll_interval_s=0.05)
    with Running(f):
        assert scan_queue.next()[:2] == (0, 0)  # the head at start
        for _ in range(6):
            before = time.time()
            n = mine(chain_anvil)
            block, first, arrived = scan_queue.next()
            # the very next message is this block: nothing skipped, nothing sent twice
            assert (block, first) == (n, n)
            assert before <= arrived <= time.time()
    assert f.stats.announced == 7 and f.stats.by_source == {source: 7}
    assert f.stats.gap_blocks == 0 and f.stats.reorgs == 0


def test_a_gap_is_announced_as_one_range(chain_anvil: Anvil, scan_queue: ScanQueue) -> None:
    """Five blocks mined at once, seen by a poll as a jump: one scan covers them all
    (``Scanner.poll`` processes every block since its cursor)."""
    f = make_follower(chain_anvil, poll_interval_s=0.05)
    with Running(f):
        assert scan_queue.next()[:2] == (0, 0)
        start = mine(chain_anvil)
        assert scan_queue.next()[:2] == (start, start)
        n = mine(chain_anvil, 5)
        covered = []
        while not covered or covered[-1] < n:
            block, first, _ = scan_queue.next()
            covered += range(first, block + 1)
    assert covered == list(range(start + 1, n + 1))  # each missed block once, in order
    assert f.stats.gap_blocks >= 1  # at least part of it crossed as a gap (usually all 4)


class Proxy:
    """A TCP relay on 127.0.0.1 to ``upstream_port``; ``cut()`` drops every connection and
    refuses new ones, ``restore()`` listens again on the same port."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.port = 0
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(16)
        self.port = s.getsockname()[1]
        self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            up = socket.create_connection(("127.0.0.1", self.upstream))
            with self.lock:
                self.conns += [client, up]
            for a, b in ((client, up), (up, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        assert self.listener is not None
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()


def test_a_dropped_websocket_falls_back_to_polling_and_reconnects(chain_anvil: Anvil, scan_queue: ScanQueue) -> None:
    proxy = Proxy(chain_anvil.port)
    heads: list[Head] = []
    f = make_follower(chain_anvil, ws_url=f"ws://127.0.0.1:{proxy.port}", heads=heads, poll_interval_s=0.05,
                      backoff_s=0.05, backoff_max_s=0.3)
    with Running(f):
        assert scan_queue.next()[:2] == (0, 0)
        wait_until(lambda: f.source == "ws", "the subscription")
        n = mine(chain_anvil)
        assert scan_queue.next()[:2] == (n, n) and heads[-1].source == "ws"

        proxy.cut()
        wait_until(lambda: f.stats.ws_failures >= 1, "the follower to notice the drop")
        for _ in range(3):  # announced by the HTTP poll while the WebSocket is down
            n = mine(chain_anvil)
            assert scan_queue.next()[:2] == (n, n) and heads[-1].source == "poll"
        assert f.stats.ws_connects == 1

        proxy.restore()
        wait_until(lambda: f.stats.ws_connects == 2 and f.source == "ws", "the reconnection")
        n = mine(chain_anvil)
        assert scan_queue.next()[:2] == (n, n) and heads[-1].source == "ws"
    proxy.cut()
    assert [h.number for h in heads] == list(range(0, n + 1))  # each block once, in order


def test_two_followers_only_the_lease_holder_enqueues(chain_anvil: Anvil, scan_queue: ScanQueue, prefix: str) -> None:
    chain_id = int(chain_anvil.rpc().chain_id())
    hot = HotState(redis.Redis.from_url(os.environ.get("ARBBOT_REDIS_URL", "redis://127.0.0.1:6379/0")),
                   prefix, chain_id)
    ttl = 1.5
    heads_a: list[Head] = []
    heads_b: list[Head] = []
    a = make_follower(chain_anvil, ws_url=f"ws://127.0.0.1:{chain_anvil.port}", heads=heads_a,
                      lease=Lease(hot.follower_lock(ttl), ttl))
    b = make_follower(chain_anvil, poll_interval_s=0.05, heads=heads_b, lease=Lease(hot.follower_lock(ttl), ttl))
    try:
        with Running(a) as ra:
            assert scan_queue.next()[:2] == (0, 0)  # a holds the lease and announces
            assert hot.follower_lock(ttl).locked()
            with Running(b):
                wait_until(lambda: b.last_head is not None, "the standby to see the head")
                for _ in range(4):
                    n = mine(chain_anvil)
                    assert scan_queue.next()[:2] == (n, n)
                    wait_until(lambda: b.last_head is not None and b.last_head.number == n, "the standby to see it")
                assert heads_b == [] and b.stats.skipped >= 4
                assert [h.number for h in heads_a] == list(range(0, n + 1))

                ra.__exit__()  # a stops and releases the lease: b takes over within a renewal
                wait_until(lambda: b.lease is not None and b.lease.held, "the standby to take the lease", 3 * ttl)
                # the take-over re-announces the newest head it saw (the last holder may
                # have died before enqueueing it; the scan's block claim keeps it harmless)
                assert scan_queue.next()[:2] == (n, n)
                n = mine(chain_anvil)
                assert scan_queue.next()[:2] == (n, n)
                assert heads_b[-1].number == n and heads_a[-1].number == n - 1
    finally:
        hot.clear()


# --------------------------------------------------------------------------- the scan task


class StageQueue(ScanQueue):
    """Consumes the real queue ``name`` and keeps the ``(args, kwargs)`` of its ``task``
    messages, in queue order (``next_message``)."""

    def __init__(self, chain_id: int, name: str = "path", task: str = "workers.tasks.path.find") -> None:
        from workers import queues

        self.chain_id, self.task = chain_id, task
        self.messages: queue.Queue[tuple[list[Any], dict[str, Any], str | None]] = queue.Queue()
        self.last_eta: str | None = None  # the ``eta`` header (a countdown's) of the message taken last
        self.stop = threading.Event()
        self.conn = Connection(os.environ["ARBBOT_BROKER_URL"])
        queues.declare_topology(self.conn)
        self.scan_queue = next(q for q in queues.celery_queues() if q.name == name)
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(TIMEOUT_S)

    def _on_message(self, body: Any, message: Any) -> None:
        message.ack()
        if message.headers.get("task") == self.task:
            self.messages.put((body[0], body[1], message.headers.get("eta")))

    def next_message(self, timeout_s: float = TIMEOUT_S) -> tuple[list[Any], dict[str, Any]]:
        try:
            args, kwargs, self.last_eta = self.messages.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"no {self.task} message within {timeout_s}s") from None
        return args, kwargs

    def next_batch(self, chain_id: int, block: int) -> tuple[list[Any], dict[str, Any]]:
        """The next scored batch of ``chain_id``'s ``block`` (decoded) and its keywords; the
        others are passed over: an earlier test's worker stopped while it held a message for
        its countdown gives the message back to the queue."""
        from arbbot.types import scored_from_wire

        while True:
            args, kwargs = self.next_message()
            batch = scored_from_wire(args[0])
            if {(s.opportunity.chain_id, s.opportunity.block_number) for s in batch} == {(chain_id, block)}:
                return batch, kwargs

    def empty(self) -> bool:
        return self.messages.empty()


class PathQueue(StageQueue):
    """The path queue: the ``PoolDelta``s the scan task published for one chain."""

    def next_delta(self, timeout_s: float = TIMEOUT_S) -> PoolDelta:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                args, kwargs = self.next_message(max(0.0, deadline - time.monotonic()))
            except AssertionError:
                raise AssertionError(f"no PoolDelta of chain {self.chain_id} within {timeout_s}s") from None
            if args and args[0]["chain_id"] == self.chain_id:
                self.last_kwargs = kwargs
                return PoolDelta.from_wire(args[0])


def registered_market(anvil: Anvil, name: str, pairs: int = 2) -> tuple[DevChain, int, HotState]:
    """A V2 market on ``anvil`` (Multicall3, a factory, 3 tokens, ``pairs`` pairs: with 3,
    a cycle whose pools' random prices leave a gap), registered as chain ``name`` in the
    database; the dev chain, its id and its hot state, empty, this process's cached
    resources forgotten (``runtime.reset``)."""
    from webapp.core import services
    from workers import runtime

    dev = DevChain(RpcClient(anvil.url, timeout_s=30))  # a chain id of its own: no stale hot state
    mc = dev.deploy_multicall()
    factory, tokens = build_v2_market(dev, n_tokens=3, n_pairs=pairs)
    chain_id = dev.rpc.chain_id()
    services.chain_register_deployment({
        "chain_id": chain_id, "name": name, "rpc_url": dev.rpc.url, "multicall3": mc, "weth": tokens[0],
        "dexes": [{"name": "uni", "kind": "v2", "factory": factory}],
    })
    runtime.reset()
    hot = runtime.hotstate(chain_id)
    hot.clear()
    return dev, chain_id, hot


@pytest.mark.django_db(transaction=True)
def test_an_announced_scan_carries_the_arrival_and_publishes_a_block_once(chain_anvil: Anvil) -> None:
    """The scan task, called in-process as a worker would run it (its publish is real): the
    deltas of the announced blocks carry the arrival time as ``observed_at``; announcing the
    same block again publishes nothing (the block claim); a scan that finds the lock held
    and its block not yet scanned, or a node without the block yet, asks to be retried."""
    from celery.exceptions import Retry

    from workers import runtime
    from workers.tasks import scan

    dev, chain_id, hot = registered_market(chain_anvil, "follow")
    paths = PathQueue(chain_id)
    scans = ScanQueue(chain_id)
    try:
        assert scan.scan_chain(chain_id) == 1  # the first scan: the full snapshot
        assert paths.next_delta().reorg is False
        pair = next(iter(dev.pairs.values()))
        dev.send_many(dev.random_swap_txs(pair))
        n = dev.rpc.block_number()
        arrived = time.time() - 0.25  # as if the follower saw it a quarter second ago
        assert scan.scan_chain(chain_id, block=n, first=n, arrived_at=arrived) == 1
        d = paths.next_delta()
        assert (d.block_number, d.observed_at) == (n, arrived) and pair.address in {s.address for s in d.states}
        assert scan.scan_chain(chain_id, block=n, first=n, arrived_at=arrived) == 0  # claimed already

        dev.send_many(dev.random_swap_txs(pair))
        n = dev.rpc.block_number()
        with hot.scanning(ttl_s=30) as got:  # another scan holds the lock, started before n
            assert got
            with pytest.raises(Retry):
                scan.scan_chain(chain_id, block=n, first=n, arrived_at=time.time())
        assert scan.scan_chain(chain_id, block=n, first=n, arrived_at=time.time()) == 1
        assert paths.next_delta().block_number == n
        with pytest.raises(Retry):  # the follower's node is ahead of the scan's: try again
            scan.scan_chain(chain_id, block=n + 1, first=n + 1, arrived_at=time.time())

        assert not hot.follower_lock(5).locked()  # no follower: beat's tick scans the chain
        assert scan.tick() == 1
        assert scans.next() == (None, None, None)
        lease = Lease(hot.follower_lock(5), 5)
        assert lease.tick()
        assert scan.tick() == 0  # a follower is on duty: the tick stays quiet
        lease.release()
    finally:
        paths.close()
        scans.close()
        hot.clear()
        runtime.reset()


# --------------------------------------------------------------------------- the command


def test_follow_command_names_a_bad_websocket_url_or_interval_with_exit_code_2(prefix: str) -> None:
    from tests.webapp.test_cli import arbbot

    r = arbbot("follow", "--chain", "1", "--ws", "https://node.example/key123", prefix=prefix)
    assert r.returncode == 2
    assert "WebSocket URL #1" in r.stderr and "ws:// or wss://" in r.stderr
    assert "key123" not in r.stderr  # a URL's path may hold an API key
    r = arbbot("follow", "--chain", "1", "--poll-interval", "0", prefix=prefix)
    assert r.returncode == 2 and "--poll-interval" in r.stderr
    r = arbbot("follow", "--chain", "1", "--scan", "elsewhere", prefix=prefix)
    assert r.returncode == 2 and "--scan" in r.stderr and "inline" in r.stderr
    r = arbbot("follow", "--chain", "1", prefix=prefix, env={"ARBBOT_FOLLOW_SCAN": "sideways"})
    assert r.returncode == 2 and "ARBBOT_FOLLOW_SCAN: 'sideways'" in r.stderr
    r = arbbot("follow", "--chain", "1", "--through", "execute", prefix=prefix)
    assert r.returncode == 2 and "--through" in r.stderr and "'scan', 'ml'" in r.stderr
    r = arbbot("follow", "--chain", "1", prefix=prefix, env={"ARBBOT_FOLLOW_THROUGH": "path"})
    assert r.returncode == 2 and "ARBBOT_FOLLOW_THROUGH: 'path' is not one of scan, ml" in r.stderr
    r = arbbot("follow", "--chain", "1", "--scan", "queue", "--through", "ml", prefix=prefix)
    assert r.returncode == 2 and "--through ml" in r.stderr and "--scan inline" in r.stderr
    r = arbbot("follow", "--help", prefix=prefix)
    assert r.returncode == 0 and "--ws" in r.stdout and "--scan" in r.stdout and "--through" in r.stdout


@pytest.mark.django_db(transaction=True)
def test_follow_command_runs_as_its_own_process(chain_anvil: Anvil, scan_queue: ScanQueue) -> None:
    """``manage.py arbbot follow --scan queue`` as its own process: announces each block to
    the scan queue, and SIGTERM stops it and frees the lease at once (beat's tick resumes)."""
    import signal
    import subprocess
    import sys

    from django.db import connection

    from webapp.core import services
    from workers import runtime

    chain_id = scan_queue.chain_id
    services.chain_register_deployment({"chain_id": chain_id, "name": "follow-cmd", "rpc_url": chain_anvil.url})
    env = {**os.environ, "ARBBOT_DATABASE_NAME": connection.settings_dict["NAME"],
           "ARBBOT_WS_URLS": f"ws://127.0.0.1:{chain_anvil.port}", "PYTHONUNBUFFERED": "1"}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.Popen([sys.executable, "manage.py", "arbbot", "follow", "--chain", str(chain_id),
                             "--scan", "queue"], cwd=root,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    hot = runtime.hotstate(chain_id)
    try:
        assert scan_queue.next(30)[:2] == (0, 0)
        assert hot.follower_lock(5).locked()
        for _ in range(3):
            n = mine(chain_anvil)
            assert scan_queue.next()[:2] == (n, n)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=TIMEOUT_S)
        assert proc.returncode == 0, output
        assert "newHeads via 127.0.0.1" in output and "4 heads announced ({'ws': 4})" in output
        assert not hot.follower_lock(5).locked()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        hot.clear()


@pytest.mark.django_db(transaction=True)
def test_the_follower_scans_each_block_itself(chain_anvil: Anvil) -> None:
    """``InlineScan`` (``through="scan"``) in this process with the real scan body, Redis lock
    and path queue: a head handed to it is scanned on its thread and its delta carries the head's arrival; a
    head whose block is still locked by another scan is tried again until the lock is gone,
    and a newer head that arrives meanwhile joins that scan (one delta a block, in order)."""
    from workers import runtime
    from workers.follow_scan import InlineScan

    dev, chain_id, hot = registered_market(chain_anvil, "inline")
    paths = PathQueue(chain_id)
    inline = InlineScan(chain_id, through="scan").start()

    def head(n: int, arrived: float) -> Head:
        return Head(number=n, hash="0x" + "00" * 32, parent_hash="0x" + "00" * 32, arrived_at=arrived, first=n)

    try:
        inline(head(dev.rpc.block_number(), time.time()))
        assert paths.next_delta().reorg is False  # the first scan: the full snapshot
        pair = next(iter(dev.pairs.values()))
        dev.send_many(dev.random_swap_txs(pair))
        n = dev.rpc.block_number()
        arrived = time.time() - 5  # as if seen 5 s ago; the heads below 4 and 3 s ago
        inline(head(n, arrived))
        d = paths.next_delta()
        assert (d.block_number, d.observed_at) == (n, arrived) and pair.address in {s.address for s in d.states}

        wait_until(lambda: inline.stats.scanned == 2, "the scan to end (its lock released)")
        with hot.scanning(ttl_s=30) as got:  # another scan holds the lock, started before n + 1
            assert got
            dev.send_many(dev.random_swap_txs(pair))
            inline(head(n + 1, arrived + 1))
            wait_until(lambda: inline.stats.retried >= 2, "the scan of a locked block to be tried again")
            dev.send_many(dev.random_swap_txs(pair))
            inline(head(n + 2, arrived + 2))  # joins the waiting scan
        got_blocks = [paths.next_delta(), paths.next_delta()]
        assert [x.block_number for x in got_blocks] == [n + 1, n + 2]
        assert got_blocks[0].observed_at == arrived + 1  # (which heads join: tests/webapp/test_follow_scan.py)
        assert inline.stats.queued == 0 and not inline.stats.failed
    finally:
        inline.stop()
        paths.close()
        hot.clear()
        runtime.reset()


@pytest.mark.django_db(transaction=True)
def test_the_lane_is_ready_before_its_first_block(chain_anvil: Anvil) -> None:
    """A follower starting on a chain the fleet already scans (a restart) prepares its lane
    before the first head (``InlineScan.warm``): its scanner holds the chain's cursor and
    pools, its path stage every pool at that head, the decision's inputs are read and the
    queues it sends to declared on its publisher's connection, so the first block is not the
    one that builds them. That block still finds the gap that stood before the start, though
    it moves none of the gap's pools (an empty block)."""
    from workers import runtime
    from workers.celery_app import app
    from workers.follow_scan import InlineScan
    from workers.tasks import scan
    from workers.tasks.path import DECIDED

    dev, chain_id, hot = registered_market(chain_anvil, "inline-warm", pairs=3)
    paths = PathQueue(chain_id)
    executes = StageQueue(chain_id, "execute", "workers.tasks.execute.execute")
    inline = InlineScan(chain_id)
    try:
        assert scan.scan_blocks(chain_id, None, None, None) == 1  # the fleet's scans before this follower
        paths.next_delta()
        held = hot.head()
        assert held is not None
        runtime.reset()  # a new process: nothing built yet
        inline.warm()
        assert runtime.scanner(chain_id).last_block == held[0]
        stage = runtime.path_stage(chain_id)
        assert (stage.synced_block, stage.synced_hash) == held
        assert set(stage.engine.states) == set(hot.get_pools())
        assert runtime.strategies.held(chain_id) and runtime.histories.held(chain_id)
        with app.producer_or_acquire() as producer:  # the connection the lane's first publish takes
            declared = producer.connection.declared_entities
        assert {hash(app.amqp.queues[q]) for q in ("execute", "analytics", "path", "ml")} <= declared

        dev.rpc.call("evm_mine", [])  # nothing moves
        n = dev.rpc.block_number()
        inline.start()
        inline(Head(number=n, hash="0x" + "00" * 32, parent_hash="0x" + "00" * 32, arrived_at=time.time(), first=n))
        chosen, _ = executes.next_batch(chain_id, n)
        assert chosen and {s.opportunity.block_number for s in chosen} == {n}  # the standing gap, found
        wait_until(lambda: inline.stats.blocks.get(DECIDED) == 1, "the block's decisions to be sent")
    finally:
        inline.stop()
        paths.close()
        executes.close()
        hot.clear()
        runtime.reset()


@pytest.mark.django_db(transaction=True)
def test_the_follower_finds_and_decides_each_block_itself(chain_anvil: Anvil, monkeypatch: pytest.MonkeyPatch) -> None:
    """``InlineScan`` (``through="ml"``, the default) with the real scan body, path stage,
    ml decision and queues: a block's opportunities are found and decided in this process,
    the chosen ones go straight to the execute queue with the block's whole trace in order,
    every decision to the analytics queue, nothing to the path or ml queues; of two blocks
    one scan covers, the newest is decided here and the older goes to the path queue; a path
    stage that fails here hands the block's delta to the path queue, with the trace a scan
    worker would have sent."""
    from workers import runtime
    from workers.follow_scan import BEHIND, InlineScan
    from workers.tasks.path import DECIDED, TO_PATH_QUEUE
    from workers.tasks import ml, path

    dev, chain_id, hot = registered_market(chain_anvil, "inline-ml", pairs=3)
    paths = PathQueue(chain_id)
    scores = StageQueue(chain_id, "ml", "workers.tasks.ml.score")
    executes = StageQueue(chain_id, "execute", "workers.tasks.execute.execute")
    records = StageQueue(chain_id, "analytics", "workers.tasks.analytics.record_opportunities")
    inline = InlineScan(chain_id).start()
    assert inline.through == "ml"

    def head(n: int, arrived: float) -> Head:
        return Head(number=n, hash="0x" + "00" * 32, parent_hash="0x" + "00" * 32, arrived_at=arrived, first=n)

    try:
        n = dev.rpc.block_number()
        arrived = time.time() - 5
        inline(head(n, arrived))
        recorded, _ = records.next_batch(chain_id, n)
        records_eta = records.last_eta
        chosen, kwargs = executes.next_batch(chain_id, n)
        assert chosen and all(s.decision == "execute" for s in chosen)
        assert {s.opportunity.path_id for s in chosen} <= {s.opportunity.path_id for s in recorded if s.decision == "execute"}
        marks = kwargs["trace"]
        assert [m[0] for m in marks] == ["arrived", "scan.start", "scan.sent", "path.start", "path.sent",
                                         "ml.start", "ml.sent"]
        assert marks[0][1] == arrived and [m[1] for m in marks] == sorted(m[1] for m in marks)
        # the records wait until the block's execute stage is done with the cores
        assert records_eta is not None
        assert marks[-1][1] + ml.RECORD_DELAY_S <= dt.datetime.fromisoformat(records_eta).timestamp() \
            <= marks[-1][1] + ml.RECORD_DELAY_S + TIMEOUT_S
        wait_until(lambda: inline.stats.blocks.get(DECIDED) == 1, "the block's decisions to be sent")

        # behind: two blocks arrive while another scan holds the lock; the one scan that
        # covers both decides the newest here and hands the older to the path queue
        pair = next(iter(dev.pairs.values()))
        with hot.scanning(ttl_s=30) as got:
            assert got
            dev.send_many(dev.random_swap_txs(pair))
            inline(head(n + 1, arrived + 1))
            wait_until(lambda: inline.stats.retried >= 1, "the scan of a locked block to be tried again")
            dev.send_many(dev.random_swap_txs(pair))
            inline(head(n + 2, arrived + 2))
        older = paths.next_delta()
        assert older.block_number == n + 1 and older.observed_at == arrived + 1
        assert records.next_batch(chain_id, n + 2)[0]
        wait_until(lambda: inline.stats.blocks.get(DECIDED) == 2, "the newest block's decisions to be sent")
        assert inline.stats.blocks.get(BEHIND) == 1
        executes.messages.queue.clear()

        def broken(d: PoolDelta, *_: Any) -> list[Any]:
            raise ConnectionError("the hot state is gone")

        monkeypatch.setattr(path, "evaluate", broken)
        dev.send_many(dev.random_swap_txs(pair))
        n2 = dev.rpc.block_number()
        inline(head(n2, arrived + 3))
        d = paths.next_delta()
        assert d.block_number == n2 and pair.address in {s.address for s in d.states}
        assert [m[0] for m in paths.last_kwargs["trace"]] == ["arrived", "scan.start", "scan.sent"]
        wait_until(lambda: inline.stats.blocks.get(TO_PATH_QUEUE) == 1, "the delta to go to the path queue")
        assert scores.empty() and inline.stats.queued == 0 and not inline.stats.failed
    finally:
        inline.stop()
        for q in (paths, scores, executes, records):
            q.close()
        hot.clear()
        runtime.reset()


def test_records_wait_only_when_a_block_has_a_send_to_make(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ml.send``: a batch with opportunities chosen for execution sends them to the execute
    queue first, then counts every verdict in the score histogram (by chain, model and
    decision) and sends its records with a ``RECORD_DELAY_S`` countdown (an ``eta`` header),
    so they are written once the execute stage is done with the cores; a batch with none
    chosen sends its records to be written at once."""
    from prometheus_client import REGISTRY

    from arbbot.scoring.synthetic import GAS, GAS_PRICE, make_opp
    from arbbot.types import ScoredOpportunity
    from workers.stage import Trace
    from workers.tasks import execute, ml

    block = random.randrange(10**9, 2 * 10**9)  # the queues may hold other tests' messages
    executes = StageQueue(31337, "execute", "workers.tasks.execute.execute")
    records = StageQueue(31337, "analytics", "workers.tasks.analytics.record_opportunities")

    def of_block(q: StageQueue, block: int) -> tuple[list[Any], str | None]:
        return q.next_batch(31337, block)[0], q.last_eta

    def scored(decision: str) -> float:
        return REGISTRY.get_sample_value(
            "arbbot_model_score_count", {"chain": "31337", "model": "rule", "decision": decision}) or 0.0

    skips_at_publish: list[float] = []  # the histogram's skips when the execute message went out
    publish = execute.execute.delay
    monkeypatch.setattr(execute.execute, "delay", lambda *a, **kw: (skips_at_publish.append(scored("skip")),
                                                                    publish(*a, **kw))[1])
    try:
        skipped = [ScoredOpportunity(make_opp(block, 0, 1, GAS * GAS_PRICE), 0.5, "skip", "below", "rule", {})]
        assert ml.send(skipped, Trace()) == 0
        batch, eta = of_block(records, block)
        assert [s.decision for s in batch] == ["skip"] and eta is None
        chosen = [ScoredOpportunity(make_opp(block + 1, 2, 3, 9 * GAS * GAS_PRICE), 9.0, "execute", "pays", "rule", {}),
                  ScoredOpportunity(make_opp(block + 1, 0, 1, GAS * GAS_PRICE), 0.5, "skip", "below", "rule", {})]
        counted = {d: scored(d) for d in ("execute", "skip")}
        before = time.time()
        assert ml.send(chosen, Trace()) == 1
        assert skips_at_publish == [counted["skip"]], "the execute message goes out before the verdicts are counted"
        assert (scored("execute") - counted["execute"], scored("skip") - counted["skip"]) == (1, 1)
        sent, eta = of_block(executes, block + 1)
        assert [s.opportunity.path_id for s in sent] == ["p2-3"] and eta is None
        batch, eta = of_block(records, block + 1)
        assert [s.decision for s in batch] == ["execute", "skip"] and eta is not None
        at = dt.datetime.fromisoformat(eta).timestamp()
        assert before + ml.RECORD_DELAY_S <= at <= time.time() + ml.RECORD_DELAY_S
    finally:
        executes.close()
        records.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("through", [None, "scan"])
def test_follow_command_scans_inline_by_default(chain_anvil: Anvil, through: str | None) -> None:
    """``manage.py arbbot follow`` with no ``--scan``: the follower's process scans each new
    block with no scan worker running; by default it also finds and decides the block's
    opportunities and sends its decisions on (the analytics queue gets them, stamped with
    the block's arrival; the path queue nothing), with ``--through scan`` it publishes the
    block's delta to the path queue. On SIGTERM it reports what it did."""
    import signal
    import subprocess
    import sys

    from django.db import connection

    from arbbot.types import scored_from_wire

    dev, chain_id, hot = registered_market(chain_anvil, f"follow-inline-{through}", pairs=3)
    paths = PathQueue(chain_id)
    records = StageQueue(chain_id, "analytics", "workers.tasks.analytics.record_opportunities")

    def next_block() -> tuple[int, float, set[str]]:
        """(block, observed_at, pools) of the next block this chain's follower handed on."""
        if through == "scan":
            d = paths.next_delta()
            return d.block_number, d.observed_at, {s.address for s in d.states}
        while True:
            args, _ = records.next_message()
            got = scored_from_wire(args[0])
            if got and got[0].opportunity.chain_id == chain_id:
                o = got[0].opportunity
                assert {s.opportunity.block_number for s in got} == {o.block_number}
                return o.block_number, o.observed_at, {p for s in got for p in s.opportunity.pools}

    env = {**os.environ, "ARBBOT_DATABASE_NAME": connection.settings_dict["NAME"],
           "ARBBOT_WS_URLS": f"ws://127.0.0.1:{chain_anvil.port}", "PYTHONUNBUFFERED": "1"}
    env.pop("ARBBOT_FOLLOW_SCAN", None)
    env.pop("ARBBOT_FOLLOW_THROUGH", None)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.Popen([sys.executable, "manage.py", "arbbot", "follow", "--chain", str(chain_id),
                             *(["--through", through] if through else [])], cwd=root,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first, _, _ = next_block()  # the first scan's snapshot (and the engine's build)
        pair = next(iter(dev.pairs.values()))
        for _ in range(3):
            before = time.time()
            dev.send_many(dev.random_swap_txs(pair))
            n = dev.rpc.block_number()
            block, observed_at, pools = next_block()
            while block < n:  # blocks mined by send_many before the last
                block, observed_at, pools = next_block()
            assert block == n and before <= observed_at <= time.time()
            assert pair.address in pools
        assert first < n
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=TIMEOUT_S)
        assert proc.returncode == 0, output
        assert "each block scanned here" in output and "0 to the scan queue" in output, output
        if through == "scan":
            assert "decided here" not in output and "carried on here" not in output, output
        else:
            assert "found and decided here too" in output and "carried on here: {'decided': " in output, output
            with pytest.raises(AssertionError, match="no PoolDelta"):
                paths.next_delta(0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        paths.close()
        records.close()
        hot.clear()


@pytest.mark.django_db(transaction=True)
def test_a_killed_follower_s_standby_takes_over_deciding_each_block_once(chain_anvil: Anvil) -> None:
    """Two ``arbbot follow`` processes of one chain, the default lane (scan, path and ml in
    the follower): the lease holder decides each block; SIGKILL it, and the standby takes
    the lease and decides the next blocks itself (its fresh path stage reads every pool from
    the hot state). No block's decisions are sent twice: the block claim lets one scan
    publish a block, whichever process scanned it."""
    import signal
    import subprocess
    import sys

    from django.db import connection

    from arbbot.chain.follower import LEASE_TTL_S
    from arbbot.types import scored_from_wire

    dev, chain_id, hot = registered_market(chain_anvil, "follow-takeover", pairs=3)
    records = StageQueue(chain_id, "analytics", "workers.tasks.analytics.record_opportunities")
    decided: list[int] = []  # each block whose decisions were sent, as often as sent

    def next_block(timeout_s: float = TIMEOUT_S) -> int:
        deadline = time.monotonic() + timeout_s
        while True:
            args, _ = records.next_message(max(0.1, deadline - time.monotonic()))
            got = scored_from_wire(args[0])
            if got and got[0].opportunity.chain_id == chain_id:
                decided.append(got[0].opportunity.block_number)
                return decided[-1]

    env = {**os.environ, "ARBBOT_DATABASE_NAME": connection.settings_dict["NAME"],
           "ARBBOT_WS_URLS": f"ws://127.0.0.1:{chain_anvil.port}", "PYTHONUNBUFFERED": "1"}
    for name in ("ARBBOT_FOLLOW_SCAN", "ARBBOT_FOLLOW_THROUGH"):
        env.pop(name, None)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def follower() -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "manage.py", "arbbot", "follow", "--chain", str(chain_id)], cwd=root,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    pair = next(iter(dev.pairs.values()))
    first = follower()
    second: subprocess.Popen[str] | None = None
    try:
        next_block(30)  # the first block's snapshot, decided by the first follower
        wait_until(lambda: hot.follower_lock(LEASE_TTL_S).locked(), "the first follower to hold the lease")
        second = follower()  # the standby: it sees the heads, announces nothing
        for _ in range(2):
            dev.send_many(dev.random_swap_txs(pair))
            n = dev.rpc.block_number()
            while next_block() < n:
                pass
        first.send_signal(signal.SIGKILL)
        first.wait(TIMEOUT_S)
        # the lease frees within its TTL; blocks mined meanwhile are left to the take-over
        dev.send_many(dev.random_swap_txs(pair))
        n = dev.rpc.block_number()
        while next_block(3 * LEASE_TTL_S + TIMEOUT_S) < n:
            pass
        for _ in range(2):
            dev.send_many(dev.random_swap_txs(pair))
            n = dev.rpc.block_number()
            while next_block() < n:
                pass
        assert len(decided) == len(set(decided)), decided  # no block's decisions sent twice
        second.send_signal(signal.SIGTERM)
        output, _ = second.communicate(timeout=TIMEOUT_S)
        assert second.returncode == 0, output
        assert "carried on here: {'decided': " in output, output
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        records.close()
        hot.clear()


def test_a_reorg_at_the_same_height_is_announced(chain_anvil: Anvil, scan_queue: ScanQueue) -> None:
    """anvil's snapshot and revert make a real reorg: block n+1 replaced by another n+1."""
    rpc = chain_anvil.rpc()
    heads: list[Head] = []
    f = make_follower(chain_anvil, ws_url=f"ws://127.0.0.1:{chain_anvil.port}", heads=heads)
    with Running(f):
        assert scan_queue.next()[:2] == (0, 0)
        n = mine(chain_anvil)
        assert scan_queue.next()[:2] == (n, n)
        snap = rpc.call("evm_snapshot")
        mine(chain_anvil)
        assert scan_queue.next()[:2] == (n + 1, n + 1)
        orphaned = heads[-1].hash
        assert rpc.call("evm_revert", [snap]) is True
        ts = int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
        rpc.call("evm_mine", [ts + 100])  # another block n+1 (another timestamp, so another hash)
        assert scan_queue.next()[:2] == (n + 1, n + 1)
        assert heads[-1].reorg and heads[-1].hash != orphaned and not heads[-2].reorg
    assert f.stats.reorgs == 1


def _hdr(n: int, h: int, parent: int) -> dict[str, str]:
    return {"number": hex(n), "hash": "0x" + f"{h:064x}", "parentHash": "0x" + f"{parent:064x}"}


def test_judging_heads_without_a_node() -> None:
    """What counts as news: duplicates and a lagging node's older heights do not; a head
    whose parent is not the hash seen below is a reorg; a failed hand-over is retried and
    merged with the next head (no network: ``observe`` is fed headers directly)."""
    announced: list[Head] = []
    fail = {"on": False}

    def on_head(h: Head) -> None:
        if fail["on"]:
            raise ConnectionError("broker down")
        announced.append(h)

    f = Follower(RpcClient("http://127.0.0.1:9"), on_head, chain_id=1)
    assert f.observe(_hdr(10, 0xA10, 0xA9), source="ws", arrived_at=1.0) is not None
    assert f.observe(_hdr(10, 0xA10, 0xA9), source="poll", arrived_at=1.1) is None  # seen
    assert f.observe(_hdr(11, 0xA11, 0xA10), source="ws", arrived_at=2.0) is not None
    assert f.observe(_hdr(7, 0x777, 0x776), source="poll", arrived_at=2.1) is None  # a lagging node
    h = f.observe(_hdr(12, 0xB12, 0xB11), source="ws", arrived_at=3.0)  # parent is not 0xa11
    assert h is not None and h.reorg
    fail["on"] = True
    assert f.observe(_hdr(13, 0xB13, 0xB12), source="ws", arrived_at=4.0) is not None
    assert f.observe(_hdr(16, 0xB16, 0xB15), source="poll", arrived_at=5.0) is not None  # a gap
    fail["on"] = False
    f._flush()  # the loop's retry
    assert [(x.first, x.number, x.arrived_at, x.reorg) for x in announced] == [
        (10, 10, 1.0, False), (11, 11, 2.0, False), (12, 12, 3.0, True),
        (13, 16, 4.0, False),  # 13 failed to go out, 14-16 came as a gap: one covers both
    ]
    assert f.stats.gap_blocks == 2 and f.stats.reorgs == 1
