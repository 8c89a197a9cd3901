"""The chaos fleet: real execute and analytics workers (the fleet's own Celery command) on
private PostgreSQL, Redis and RabbitMQ instances (``tests.chaos.services``) and a devnet
with the genuine Uniswap V2 contracts, its executor replaced by a stand-in that always pays
(what is under test is delivery, idempotency and the journal, not the contract). A load
generator publishes execute and analytics batches at a steady rate with publisher
confirms, reconnecting through outages; or (``start_load(via="ml")``, with an ml worker
started) blocks of opportunities to the ml queue, which decides each and hands it on to
execute and analytics as the fleet does; or (``via="path"``, a path worker started) blocks
of pool changes, written to the hot state as the scan stage writes them and sent to the
path queue, whose worker finds, decides and hands on each block. A monitor samples the database so a recovery
time can be read off. ``verify`` drains the queues and counts, from the database and
from the chain, what was lost and what was duplicated."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import psycopg
import redis as redis_lib
from eth_account import Account
from kombu import Connection

from arbbot.chain.rpc import RpcClient
from arbbot.devnet.scenarios import deployed_devnet, read_signer_key
from arbbot.hotstate import HotState
from arbbot.types import Opportunity, PoolDelta, ScoredOpportunity, V2PoolState, opportunities_to_wire
from tests.chaos.procs import ROOT, publish_task, worker
from tests.chaos.services import PrivatePostgres, PrivateRabbit, PrivateRedis
from tests.e2e.fleet import wait_for
from tests.execution.executor_helpers import stand_in_executor

PROFIT = 3 * 10**15
PREFIX = "chaos"
BATCH = 5  # opportunities per message
PATH_BLOCKS = 10_000  # block numbers each case's load through the path stage may use


@dataclass
class Load:
    """What the generator published (confirmed by the broker) in one case: its items'
    path ids start with ``e<tag>-`` (execute) and ``a<tag>-`` (analytics); through the ml
    stage (``via="ml"``), ``m<tag>-``, one message (one block) a batch, in
    ``execute_ids``; through the path stage (``via="path"``), a block's messages in
    ``execute_ids`` and its number in ``blocks``."""

    tag: int = 0
    via: str = "direct"
    blocks: list[int] = field(default_factory=list)
    block_at: list[float] = field(default_factory=list)  # when each of ``blocks`` was sent (monotonic)
    execute_ids: list[str] = field(default_factory=list)
    analytics_ids: list[str] = field(default_factory=list)
    batches: int = 0
    publish_errors: int = 0
    started: float = 0.0
    stopped: float = 0.0

    @property
    def rate(self) -> float:
        return self.batches / max(1e-9, (self.stopped or time.monotonic()) - self.started)


class ChaosFleet:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.stack = contextlib.ExitStack()
        self.pg = self.stack.enter_context(_closing(PrivatePostgres()))
        self.redis = self.stack.enter_context(_closing(PrivateRedis()))
        self.rabbit = self.stack.enter_context(_closing(PrivateRabbit()))
        devnet_dir = workdir / "devnet"
        self.anvil, self.dep = self.stack.enter_context(deployed_devnet(devnet_dir))
        self.rpc = RpcClient(self.anvil.url, timeout_s=30)
        self.signer = Account.from_key(read_signer_key(devnet_dir)).address
        self.env = {k: v for k, v in os.environ.items() if k not in ("ARBBOT_DATABASE_NAME", "ARBBOT_SIGNER_KEY")}
        self.env.update(
            ARBBOT_DATABASE_URL=self.pg.dsn(), ARBBOT_REDIS_URL=self.redis.url, ARBBOT_REDIS_PREFIX=PREFIX,
            ARBBOT_BROKER_URL=self.rabbit.url, ARBBOT_MODE="live", ARBBOT_DEVNET_DIR=str(devnet_dir),
            ARBBOT_MAX_OPEN_TXS="0", PYTHONUNBUFFERED="1",
        )
        self.manage("migrate", "--noinput", "-v", "0")
        self.python(
            "from pathlib import Path\n"
            "from arbbot.devnet.record import Deployment\n"
            "from webapp.core import services\n"
            f"dep = Deployment.load(Path({str(devnet_dir / 'deployment.json')!r}))\n"
            "services.chain_register_deployment({**dep.to_json(), 'name': 'chaos'})\n"
        )
        self.rpc.call("anvil_setCode", [self.dep.executor, stand_in_executor(PROFIT)])
        self.cycles = self._cycles()
        self.hot = HotState(redis_lib.Redis.from_url(self.redis.url), PREFIX, self.dep.chain_id)
        self.put_pools()
        self.nonce_at_start = self.nonce()
        self.block_at_start = self.rpc.block_number()
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        for q, concurrency in (("execute", 2), ("analytics", 1)):
            self.start_worker(q, concurrency)
        self.load = Load()
        self.cases = 0
        self._stop_load = threading.Event()
        self._threads: list[threading.Thread] = []
        self.samples: list[tuple[float, int, int]] = []  # (t, opportunities rows, executions rows)
        #: The block (number, hash) item ``n`` of the load was computed on; None: a fixed one.
        self.block_of: Callable[[int], tuple[int, str]] | None = None

    # ------------------------------------------------------------------ set-up

    def manage(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout

    def python(self, code: str) -> str:
        out = subprocess.run([sys.executable, "-c", "import django, os\n"
                              "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'webapp.settings')\n"
                              "django.setup()\n" + code], cwd=ROOT, env=self.env, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout

    def _cycles(self) -> list[tuple[V2PoolState, V2PoolState, str]]:
        """Pairs of pools of one token against WETH on two DEXes, with states where
        WETH -> token on the first and back on the second pays 5%."""
        weth = self.dep.weth.lower()
        by_token: dict[str, list[dict[str, Any]]] = {}
        for p in self.dep.pools:
            if p["kind"] == "v2" and weth in (p["token0"].lower(), p["token1"].lower()):
                other = p["token1"].lower() if p["token0"].lower() == weth else p["token0"].lower()
                by_token.setdefault(other, []).append(p)
        cycles = []
        for token, pools in sorted(by_token.items()):
            if len(pools) < 2:
                continue
            a, b = pools[:2]
            cycles.append((self._state(a, weth, 105), self._state(b, weth, 100), token))
        assert cycles, "the devnet has no token on two V2 DEXes against WETH"
        return cycles

    @staticmethod
    def _state(p: dict[str, Any], weth: str, per_weth: int) -> V2PoolState:
        t0, t1 = p["token0"].lower(), p["token1"].lower()
        r_weth, r_other = 10**21, per_weth * 10**22
        r0, r1 = (r_weth, r_other) if t0 == weth else (r_other, r_weth)
        return V2PoolState(p["address"].lower(), t0, t1, r0, r1, int(p.get("fee_pips", 3000)), 1)

    def put_pools(self) -> None:
        states = [s for a, b, _ in self.cycles for s in (a, b)]
        self.hot.put_pools(states, 1, "0x" + "01" * 32)

    def start_worker(self, queue: str, concurrency: int = 1) -> subprocess.Popen[bytes]:
        cm = worker(queue, self.env, self.logs, concurrency=concurrency, name=f"{queue}-{uuid.uuid4().hex[:4]}")
        proc = self.stack.enter_context(cm)
        self.workers[queue] = proc
        return proc

    def close(self) -> None:
        if hasattr(self, "_stop_load"):
            self.stop_load()
        self.stack.close()

    # ------------------------------------------------------------------ load

    def scored(self, n: int, prefix: str) -> dict[str, Any]:
        a, b, token = self.cycles[n % len(self.cycles)]
        weth = self.dep.weth.lower()
        block_number, block_hash = self.block_of(n) if self.block_of else (1_000 + n, "0x" + "01" * 32)
        return ScoredOpportunity(
            opportunity=Opportunity(
                chain_id=self.dep.chain_id, block_number=block_number, block_hash=block_hash,
                path_id=f"{prefix}-{n}", pools=(a.address, b.address), tokens=(weth, token, weth),
                amount_in=10**18, amount_out=10**18 + PROFIT, gas_estimate=200_000, gas_price_wei=10**9,
                gas_cost=2 * 10**14, profit_native=PROFIT,
            ),
            score=1.0, decision="execute",
        ).to_wire()

    def where(self) -> tuple[str, str]:
        """The SQL condition (on ``core_opportunity``, on ``core_execution``) of this case's
        rows: by path id prefix, or through the path stage (whose path ids are the cycles'
        own) by the case's blocks."""
        tag = self.load.tag
        if self.load.via == "path":
            lo = self.path_block(0)
            return (f"block_number >= {lo} AND block_number < {lo + PATH_BLOCKS}",) * 2
        a, e = (f"m{tag}", f"m{tag}") if self.load.via == "ml" else (f"a{tag}", f"e{tag}")
        return f"path_id LIKE '{a}-%'", f"path_id LIKE '{e}-%'"

    def path_block(self, k: int) -> int:
        """The number of block ``k`` of this case's load through the path stage: past any
        block the hot state or an earlier case holds."""
        return 1_000_000 + self.load.tag * PATH_BLOCKS + k

    def delta(self, k: int) -> dict[str, Any]:
        """Block ``k`` through the path stage: every pool of the market's cycles at its
        paying state, written to the hot state (the scan stage's write), then its delta."""
        number = self.path_block(k)
        block_hash = "0x" + f"{number:064x}"
        states = tuple(dataclasses.replace(s, block_number=number) for a, b, _ in self.cycles for s in (a, b))
        self.hot.put_pools(states, number, block_hash)
        return PoolDelta(chain_id=self.dep.chain_id, block_number=number, block_hash=block_hash, states=states,
                         observed_at=time.time(), gas_price_wei=10**9, base_fee_wei=10**9).to_wire()

    def block(self, k: int, prefix: str) -> dict[str, Any]:
        """Block ``k`` of a load through the ml stage: ``BATCH`` opportunities, each through
        a cycle of the market (one per cycle while there are enough), found on one block
        of their own, as the path stage hands a block to the ml stage."""
        weth = self.dep.weth.lower()
        opps = []
        for i in range(BATCH):
            a, b, token = self.cycles[i % len(self.cycles)]
            opps.append(Opportunity(
                chain_id=self.dep.chain_id, block_number=100_000 + k, block_hash="0x" + "01" * 32,
                path_id=f"{prefix}-{k * BATCH + i}", pools=(a.address, b.address), tokens=(weth, token, weth),
                amount_in=10**18, amount_out=10**18 + PROFIT, gas_estimate=200_000, gas_price_wei=10**9,
                gas_cost=2 * 10**14, profit_native=PROFIT, observed_at=time.time(),
            ))
        return opportunities_to_wire(opps)

    def set_rpc(self, url: str) -> None:
        """The chain's RPC URL in the database: what a worker started after reads."""
        with psycopg.connect(self.pg.dsn()) as c:
            c.execute("UPDATE core_chain SET rpc_urls = %s WHERE chain_id = %s", (url, self.dep.chain_id))

    def scan_lock_token(self) -> bytes | None:
        """The token of the scan that holds the chain's scan lock (``HotState.scanning``)
        now, None when none does."""
        token = self.hot.redis.get(self.hot.key("lock:scan"))
        return None if token is None else bytes(token)

    def scan_once(self) -> None:
        """One scan of the chain to the scan queue, as beat's tick sends it."""
        with Connection(self.rabbit.url, connect_timeout=2, transport_options={"confirm_publish": True}) as conn:
            publish_task(conn, "workers.tasks.scan.scan_chain", [self.dep.chain_id], "scan")

    def start_scans(self, per_s: float) -> Callable[[], None]:
        """Scans of the chain (``scan.scan_chain``, as beat's tick sends them) published at
        ``per_s`` on a thread of their own, beside the market simulator's swaps (two a
        block); the callable returned stops both."""
        from arbbot.devnet.simulator import simulate

        stop = threading.Event()

        def scans() -> None:
            while not stop.is_set():
                with contextlib.suppress(Exception):
                    self.scan_once()
                stop.wait(1.0 / per_s)

        def swaps() -> None:
            while not stop.is_set():
                simulate(deployment=self.dep, rounds=5, swaps_per_block=2, progress=None, seed=len(self._threads))

        threads = [threading.Thread(target=t, daemon=True) for t in (scans, swaps)]
        for t in threads:
            t.start()

        def halt() -> None:
            stop.set()
            for t in threads:
                t.join(timeout=60)

        return halt

    def start_load(self, batches_per_s: float, via: str = "direct") -> None:
        """A new case: a fresh ``Load`` (its own path ids), published at ``batches_per_s``:
        execute and analytics batches (``direct``), or blocks of opportunities to the ml
        queue (``ml``: an ml worker must be running)."""
        assert via in ("direct", "ml", "path")
        self.cases += 1
        self.load = Load(tag=self.cases, via=via)
        self.samples = []
        self._stop_load.clear()
        self.load.started = time.monotonic()
        for target in (lambda: self._publish(batches_per_s), self._monitor):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)

    def stop_load(self) -> None:
        self._stop_load.set()
        for t in self._threads:
            t.join(timeout=120)
        self._threads.clear()
        if self.load.started and not self.load.stopped:
            self.load.stopped = time.monotonic()

    def _publish(self, batches_per_s: float) -> None:
        n = 0
        tag = self.load.tag
        conn: Connection | None = None
        period = 1.0 / batches_per_s
        next_at = time.monotonic()
        via = self.load.via
        while not self._stop_load.is_set():
            if via == "ml":
                block = self.block(n // BATCH, f"m{tag}")
            elif via == "path":
                delta = None  # made once the broker is reachable: it writes the hot state first
            else:
                ex = [self.scored(n + i, f"e{tag}") for i in range(BATCH)]
                an = [self.scored(n + i, f"a{tag}") for i in range(BATCH)]
            while not self._stop_load.is_set():  # the same batch until the broker confirms it
                try:
                    if conn is None:
                        conn = Connection(self.rabbit.url, connect_timeout=2,
                                          transport_options={"confirm_publish": True})
                        conn.connect()
                    if via in ("ml", "path"):
                        if via == "path":
                            k = n // BATCH
                            delta = delta or self.delta(k)
                            self.load.execute_ids.append(publish_task(conn, "workers.tasks.path.find", [delta], "path"))
                            self.load.blocks.append(self.path_block(k))
                            self.load.block_at.append(time.monotonic())
                        else:
                            self.load.execute_ids.append(publish_task(conn, "workers.tasks.ml.score", [block], "ml"))
                        self.load.batches += 1
                        n += BATCH
                        break
                    e = publish_task(conn, "workers.tasks.execute.execute", [ex], "execute")
                    a = publish_task(conn, "workers.tasks.analytics.record_opportunities", [an], "analytics")
                    self.load.execute_ids.append(e)
                    self.load.analytics_ids.append(a)
                    self.load.batches += 1
                    n += BATCH
                    break
                except Exception:
                    self.load.publish_errors += 1
                    with contextlib.suppress(Exception):
                        if conn is not None:
                            conn.release()
                    conn = None
                    time.sleep(0.2)
            next_at += period
            time.sleep(max(0.0, next_at - time.monotonic()))
        if conn is not None:
            conn.release()

    def counts(self) -> tuple[int, int] | None:
        """This case's (opportunity rows, execution rows), None while the database is down."""
        a_where, e_where = self.where()
        try:
            with psycopg.connect(self.pg.dsn(), connect_timeout=1) as c:
                a = c.execute(f"SELECT count(*) FROM core_opportunity WHERE {a_where}").fetchone()
                e = c.execute(f"SELECT count(*) FROM core_execution WHERE {e_where}").fetchone()
                assert a is not None and e is not None
                return int(a[0]), int(e[0])
        except psycopg.Error:
            return None

    def _monitor(self) -> None:
        while not self._stop_load.is_set():
            c = self.counts()
            if c is not None:
                self.samples.append((time.monotonic(), *c))
            time.sleep(0.2)

    def resumed_after(self, t: float, timeout_s: float = 60) -> float:
        """Seconds from ``t`` until both stages are seen writing again."""
        def moved() -> float | None:
            after = [s for s in self.samples if s[0] >= t]
            if len(after) < 2:
                return None
            base = after[0]
            for s in after[1:]:
                if s[1] > base[1] and s[2] > base[2]:
                    return s[0] - t
            return None

        return float(wait_for(moved, timeout_s, "both stages to write again", poll_s=0.2))

    # ------------------------------------------------------------------ checks

    def nonce(self, tag: str = "latest") -> int:
        return int(self.rpc.call("eth_getTransactionCount", [self.signer, tag]), 16)

    def queue_depths(self) -> dict[str, int]:
        from workers.queues import celery_queues

        out = {}
        with Connection(self.rabbit.url, connect_timeout=5) as conn:
            ch = conn.channel()
            for q in celery_queues():
                if q.name in ("path", "ml", "execute", "analytics"):
                    out[q.name] = q.bind(ch).queue_declare(passive=True).message_count
        return out

    def drained(self) -> None:
        """Wait until the queues are empty and every published item has its row (through
        the ml stage: an opportunity row each, the executions are counted by ``verify``)."""
        via = self.load.via
        want_a = {"direct": len(self.load.analytics_ids) * BATCH, "ml": len(self.load.execute_ids) * BATCH,
                  "path": 1}[via]  # path: its blocks are counted by ``verify``
        want_e = len(self.load.execute_ids) * BATCH if via == "direct" else 0

        def done() -> bool:
            c = self.counts()
            try:
                depths = self.queue_depths()
            except Exception:
                return False
            return c is not None and c[0] >= want_a and c[1] >= want_e and not any(depths.values())

        with contextlib.suppress(AssertionError):
            wait_for(done, 120, "the queues to drain")

    def verify(self) -> dict[str, Any]:
        """Lost and duplicated items per stage, and transactions sent twice, from the
        database and the chain."""
        self.drained()
        if self.load.via in ("ml", "path"):
            return self._verify_decided()
        want_a = len(self.load.analytics_ids) * BATCH
        want_e = len(self.load.execute_ids) * BATCH
        a_like, e_like = f"a{self.load.tag}-%", f"e{self.load.tag}-%"
        # the chain first, the journal after: a transaction is journaled before it is sent,
        # so every one mined by now is in the journal read next (the other order races a send)
        self.rpc.call("evm_mine")
        mined = self._mined_from_signer()
        with psycopg.connect(self.pg.dsn()) as c:
            a_rows = _one(c, "SELECT count(*) FROM core_opportunity WHERE path_id LIKE %s", a_like)
            a_distinct = _one(c, "SELECT count(DISTINCT path_id) FROM core_opportunity WHERE path_id LIKE %s", a_like)
            e_rows = _one(c, "SELECT count(*) FROM core_execution WHERE path_id LIKE %s", e_like)
            unjournaled, twice = _sends(c, mined)
            statuses = dict(c.execute("SELECT status, count(*) FROM core_execution WHERE path_id LIKE %s "
                                      "GROUP BY status", (e_like,)).fetchall())
        if unjournaled:  # say which, and what the journal has at their nonces
            with psycopg.connect(self.pg.dsn()) as c:
                for h in unjournaled:
                    tx = self.rpc.call("eth_getTransactionByHash", [h])
                    n = int(tx["nonce"], 16)
                    rows = c.execute("SELECT tx_hash, path_id, state, kind FROM core_transaction WHERE nonce = %s",
                                     (n,)).fetchall()
                    print(f"UNJOURNALED {h} nonce {n} to {tx['to']} block {int(tx['blockNumber'], 16)}: "
                          f"journal at that nonce: {rows}")
        return {
            "analytics_lost": max(0, want_a - a_distinct), "analytics_duplicated": a_rows - a_distinct,
            "execute_lost": max(0, want_e - e_rows), "execute_duplicated": max(0, e_rows - want_e),
            "tx_mined": len(mined), "tx_unjournaled": len(unjournaled), "tx_sent_twice": twice,
            "statuses": statuses, "published_items": want_a + want_e,
        }

    def _verify_decided(self) -> dict[str, Any]:
        """``verify`` of a load through the ml or the path stage, which decide what they
        hand on: each opportunity recorded once with its decision, each decided ``execute``
        executed once, none executed that its record says was skipped (a redelivered block
        decided anew must agree), no transaction twice. Lost, through ml: opportunities sent
        and not recorded; through path: blocks after the last one recorded (a path worker
        that restarts takes its first block at the hot state's head, and the blocks queued
        meanwhile collapse into that one: a stale block is not evaluated)."""
        opp_where, exe_where = self.where()
        through_path = self.load.via == "path"

        def settled() -> bool:  # the last blocks' records wait RECORD_DELAY_S, their executions a turn
            with psycopg.connect(self.pg.dsn()) as c:
                pending = _one(c, f"SELECT count(*) FROM core_execution WHERE {exe_where} AND status = 'pending'")
                last = c.execute(f"SELECT max(block_number) FROM core_opportunity WHERE {opp_where}").fetchone()
            return pending == 0 and (not through_path or (last is not None and last[0] == self.load.blocks[-1]))

        with contextlib.suppress(AssertionError):
            wait_for(settled, 60, "the last blocks to be recorded and their executions decided")
        self.rpc.call("evm_mine")
        mined = self._mined_from_signer()  # the chain first, the journal after (see verify)
        with psycopg.connect(self.pg.dsn()) as c:
            keys = c.execute(f"SELECT block_number, path_id, decision FROM core_opportunity WHERE {opp_where}").fetchall()
            executed = [(r[0], r[1]) for r in c.execute(f"SELECT block_number, path_id FROM core_execution "
                                                         f"WHERE {exe_where}")]
            unjournaled, twice = _sends(c, mined)
            statuses = dict(c.execute(f"SELECT status, count(*) FROM core_execution WHERE {exe_where} "
                                      "GROUP BY status").fetchall())
        recorded = {b for b, _, _ in keys}
        distinct = {(b, p) for b, p, _ in keys}
        chosen = {(b, p) for b, p, d in keys if d == "execute"}
        if through_path:
            published = len(self.load.blocks)
            lost = sum(1 for b in self.load.blocks if b > max(recorded, default=-1))
        else:
            published = len(self.load.execute_ids) * BATCH
            lost = max(0, published - len(distinct))
        return {
            "analytics_lost": lost, "analytics_duplicated": len(keys) - len(distinct),
            "execute_lost": len(chosen - set(executed)), "execute_duplicated": len(executed) - len(set(executed)),
            "executed_unchosen": len(set(executed) - chosen),
            "tx_mined": len(mined), "tx_unjournaled": len(unjournaled), "tx_sent_twice": twice,
            "statuses": statuses, "published_items": published, "chosen": len(chosen),
            "blocks_recorded": len(recorded), "recorded": recorded,
        }

    def _mined_from_signer(self) -> list[str]:
        head = self.rpc.block_number()
        out: list[str] = []
        for lo in range(self.block_at_start + 1, head + 1, 100):
            blocks = self.rpc.batch([("eth_getBlockByNumber", [hex(b), True])
                                     for b in range(lo, min(head, lo + 99) + 1)])
            out += [t["hash"].lower() for blk in blocks for t in blk["transactions"]
                    if t["from"].lower() == self.signer.lower()]
        return out


def _one(c: psycopg.Connection[Any], sql: str, *args: Any) -> int:
    """The one integer ``sql`` selects (without ``args``, its text is taken as is: a ``%`` in it
    is no placeholder)."""
    row = c.execute(sql, args or None).fetchone()
    assert row is not None
    return int(row[0])


def _sends(c: psycopg.Connection[Any], mined: list[str]) -> tuple[list[str], int]:
    """Of the account's mined transactions ``mined`` (read before the journal: one is
    journaled before it is sent): those the journal does not hold, and how many trades went
    out twice (a second mined transaction of one trade, or one journaled at two nonces). A
    trade is its block and path id: a cycle's path id comes back every block."""
    journal = {r[0]: (r[1], r[2]) for r in c.execute("SELECT tx_hash, block_number, path_id FROM core_transaction")}
    row = c.execute("SELECT count(*) FROM (SELECT 1 FROM core_transaction WHERE kind = 'trade' "
                    "GROUP BY block_number, path_id HAVING count(DISTINCT nonce) > 1) t").fetchone()
    assert row is not None
    trades = [journal[h] for h in mined if h in journal]
    return [h for h in mined if h not in journal], len(trades) - len(set(trades)) + int(row[0])


@contextlib.contextmanager
def _closing(service: Any) -> Iterator[Any]:
    try:
        yield service
    finally:
        service.close()


@contextlib.contextmanager
def chaos_fleet(workdir: Path) -> Iterator[ChaosFleet]:
    fleet = ChaosFleet.__new__(ChaosFleet)
    try:
        fleet.__init__(workdir)  # type: ignore[misc]
        yield fleet
    finally:
        if hasattr(fleet, "stack"):
            fleet.close()
