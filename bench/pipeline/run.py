"""Pipeline benchmark (not a timed test): the fleet's real worker processes on real RabbitMQ,
Redis and PostgreSQL, driven by a feed of blocks over a 10,176-pool market; prints a table
and one JSON line.

    .venv/bin/python -m bench.pipeline.run [--duration 60] [--soak 600] [--no-lane] [--profile path]

Set-up of its own: a database (migrated), a RabbitMQ vhost and a Redis prefix for this run,
removed at the end; a devnet anvil with the genuine contracts and the project's executor;
a chain whose WETH is the market's and whose DEXes are the market's factories
(bench/pipeline/market.py). Workers: path, ml, execute, analytics, one process each, with
the command line of the demo and the manifests (``celery -A workers.celery_app worker -Q
<queue> --pool prefork --concurrency 1``; ``--concurrency path=2`` as compose runs it). The feed stands in for the scan stage: per block
it writes the moved pools into the hot state and publishes their ``PoolDelta`` to the path
queue, stamped with the block's arrival time (the scan stage and its RPC reads have their
own benchmarks, bench/scan and bench/follower).

Phases, one run, one database:
1. throughput: blocks as fast as the path stage takes them (at most two waiting); every
   stage downstream as the fleet runs it. ``--soak S`` makes this phase S seconds long.
2. latency: blocks at a tenth of phase 1's block rate.
2b. the same through the follower's own lane (``--no-lane`` skips it): one process, the
   fleet's default ``arbbot follow --through ml`` once its scan is done
   (bench/pipeline/lane.py), sizes and decides each block and sends the chosen
   opportunities straight to the execute worker.
3. downstream capacity: batches of opportunities the path engine sized (in this process,
   on the same market), replayed into the ml queue as fast as ml and analytics take them;
   the strategy's minimum profit is raised first so nothing goes on to execute.
4. naive baseline: the same opportunities, one Celery task per opportunity through ml and
   analytics, one ORM insert per row (bench/pipeline/naive.py), against phase 3.
At the end of phases 1 and 2 the execute stage gets 10 s more, then its queue is purged (the
report counts the messages): far slower than the rest, its backlog would run into the next
phase.

Execute (dry-run) simulates every opportunity the ml stage chose (at most the strategy's
``max_sends_per_block`` a block, 8 by default) with the runner it runs in
the fleet: risk checks, re-sizing on the hot state, the pool guard, then one JSON-RPC batch
to the devnet anvil (``eth_call`` of the exact executor calldata, the fee reads). The
market is on that devnet (bench/pipeline/onchain.py: each pool the code of the pool it
stands for, each token an ERC20's, the DEXes registered on the executor), and the feed
writes each block's moved pools there before the block arrives, so the executor runs
through pool code on the state the path stage sized on and a decision is ``simulated`` or
refused for a reason of its own. ``--no-mirror`` leaves the market off the chain (every
re-validation reverts at its first pool, then is asked again with ``eth_estimateGas``: the
bench before session 46).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Sequence

from arbbot.devnet.args import non_negative_float, positive_float, positive_int
from bench import profiled, traces
from bench.pipeline.market import REVERT
from tests.e2e.fleet import wait_for  # the e2e fleet's: a condition, polled, with a deadline

os.environ.setdefault("ARBBOT_DEVNET", "1")  # a devnet of its own: the development SECRET_KEY is allowed

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = uuid.uuid4().hex[:8]
DB_NAME = f"arbbot_bench_pipeline_{RUN_ID}"
VHOST = f"arbbot-bench-pipeline-{RUN_ID}"
PREFIX = f"bench-pipeline-{RUN_ID}"
CHAIN_ID = 31337
GAS_PRICE = 10**9  # 1 gwei: the synthetic market's gaps are worth a cycle's gas at that price
QUEUES = ("path", "ml", "execute", "analytics")
REPLAY_BLOCK = 10_000_000  # the replayed blocks' numbers start here (the feed's are below)

# This process is a client of the same database, broker and Redis prefix as its workers.
os.environ.update(
    ARBBOT_DATABASE_NAME=DB_NAME,
    ARBBOT_BROKER_URL=f"amqp://guest:guest@127.0.0.1:5672/{VHOST}",
    ARBBOT_REDIS_PREFIX=PREFIX,
    ARBBOT_MODE="dry-run",
    PYTHONUNBUFFERED="1",
)
os.environ.pop("ARBBOT_SIGNER_KEY", None)


def _step(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def _psql(sql: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(sql)


# --------------------------------------------------------------------------- workers


class Fleet:
    """One real worker process per queue; their logs, RSS and task timings."""

    def __init__(self, logs: Path, env: dict[str, str], profile: Sequence[str] = (),
                 concurrency: dict[str, int] | None = None) -> None:
        self.logs, self.env, self.profile = logs, env, set(profile)
        self.concurrency = concurrency or {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, app: str, queues: str, extra: dict[str, str] | None = None) -> None:
        """The worker ``name``; one named in ``profile`` runs under cProfile with the solo pool
        (its tasks in the profiled process), its profile written to ``<logs>/<name>.prof``."""
        celery = str(Path(sys.executable).parent / "celery")
        hb = self.logs / f"hb-{name}"
        run, pool = [celery], ["--pool", "prefork", "--concurrency", str(self.concurrency.get(name, 1))]
        if name in self.profile:
            run, pool = profiled.worker(celery, self.logs / f"{name}.prof")
        self.procs[name] = subprocess.Popen(
            [*run, "-A", app, "worker", "-Q", queues, "-n", f"{name}-{RUN_ID}@%h", *pool, "-l", "INFO"],
            cwd=ROOT, env={**self.env, "ARBBOT_HEARTBEAT_FILE": str(hb), **(extra or {})},
            stdout=open(self.logs / f"{name}.log", "wb"), stderr=subprocess.STDOUT,
        )
        wait_for(lambda: hb.exists(), 90, f"worker {name} to start")

    def stop(self, name: str) -> None:
        p = self.procs.pop(name)
        p.terminate()
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def rss_mb(self) -> dict[str, float]:
        """Each worker's resident memory: the celery parent plus its pool child, MB."""
        return {name: round(sum(_rss_kb(pid) for pid in _tree(p.pid)) / 1024, 1) for name, p in self.procs.items()}

    def task_runs(self, name: str) -> dict[str, list[tuple[float, int]]]:
        """Task name -> (run time s, result) of each task the worker logged as succeeded
        (``Task <name>[<id>] succeeded in <s>s: <result>``), in order."""
        out: dict[str, list[tuple[float, int]]] = {}
        text = (self.logs / f"{name}.log").read_text(errors="replace")
        for m in re.finditer(r"Task ([\w.]+)\[[^\]]+\] succeeded in ([0-9.e-]+)s: (\S+)", text):
            result = int(m.group(3)) if m.group(3).isdigit() else 0
            out.setdefault(m.group(1), []).append((float(m.group(2)), result))
        return out

    def runs_since(self, before: dict[str, dict[str, int]]) -> dict[str, list[tuple[float, int]]]:
        """Task name -> its runs since ``before`` (``counts``), over every worker."""
        out: dict[str, list[tuple[float, int]]] = {}
        for name in self.procs:
            for task, runs in self.task_runs(name).items():
                out.setdefault(task, []).extend(runs[before.get(name, {}).get(task, 0):])
        return out

    def counts(self) -> dict[str, dict[str, int]]:
        return {name: {t: len(v) for t, v in self.task_runs(name).items()} for name in self.procs}


def _tree(pid: int) -> list[int]:
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return pids
    for c in children:
        pids += _tree(int(c))
    return pids


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# --------------------------------------------------------------------------- measuring

#: the services the workers share the cores with, by their processes' names
SERVICES = {"postgres": ("postgres",), "redis": ("redis-server",), "rabbitmq": ("beam.smp", "erl_child_setup"),
            "anvil": ("anvil",)}
_HZ = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process ``pid`` has used, 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _HZ  # utime, stime


def _service_pids() -> dict[str, list[int]]:
    out: dict[str, list[int]] = {name: [] for name in SERVICES}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            comm = (d / "comm").read_text().strip()
        except OSError:
            continue
        for name, comms in SERVICES.items():
            if comm in comms:
                out[name].append(int(d.name))
    return out


class CpuMeter:
    """Where the cores went over a phase: CPU seconds of each worker (the celery parent and
    its pool child), of the bench's own process (the feed), of each shared service (every
    process of that name on the machine: another session's use counts too), and of the
    whole machine (``/proc/stat``). Processes that end within the phase lose their share."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.t0, self.start = time.monotonic(), self._read()

    def _read(self) -> dict[str, float]:
        out = {name: sum(_cpu_s(pid) for pid in _tree(p.pid)) for name, p in self.fleet.procs.items()}
        out["bench (feed)"] = _cpu_s(os.getpid())
        for name, pids in _service_pids().items():
            out[name] = sum(_cpu_s(pid) for pid in pids)
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        out["machine"] = (sum(ticks) - ticks[3] - ticks[4]) / _HZ  # all but idle and iowait
        return out

    def report(self, blocks: int) -> dict[str, Any]:
        """Per part: CPU ms a block and its share of the machine's cores over the phase."""
        end, wall = self._read(), time.monotonic() - self.t0
        cores = os.cpu_count() or 1
        used = {name: end[name] - self.start.get(name, 0.0) for name in end}
        return {name: {"ms_per_block": round(s * 1000 / max(1, blocks), 1), "cores_pct": round(s * 100 / (wall * cores), 1)}
                for name, s in used.items()}


class RssSeries:
    """Every worker's RSS every ``every_s`` over a phase (``tick`` from the feed loop): a
    slow leak goes on rising in the second half, caches filling level off."""

    def __init__(self, fleet: Fleet, every_s: float) -> None:
        self.fleet, self.every_s = fleet, every_s
        self.t0 = self.last = time.monotonic()
        self.samples: list[tuple[float, dict[str, float]]] = [(0.0, fleet.rss_mb())]

    def tick(self) -> None:
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            self.samples.append((round(now - self.t0, 1), self.fleet.rss_mb()))

    def report(self) -> dict[str, Any]:
        """Per worker: the samples (MB) and the growth over the first and the second half."""
        self.samples.append((round(time.monotonic() - self.t0, 1), self.fleet.rss_mb()))
        mid = self.samples[len(self.samples) // 2][1]
        first, last = self.samples[0][1], self.samples[-1][1]
        return {q: {"every_s": self.every_s, "mb": [s[q] for _, s in self.samples],
                    "first_half_mb": round(mid[q] - first[q], 1), "second_half_mb": round(last[q] - mid[q], 1)}
                for q in first}


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))], 2)


def _dist(xs: list[float]) -> dict[str, float | None]:
    return {"n": len(xs), "p50": _pct(xs, 0.5), "p95": _pct(xs, 0.95), "p99": _pct(xs, 0.99)}


def _rows(lo: int, upto: int) -> dict[str, Any]:
    """The phase's rows (its own block-number range): opportunities and executions, their
    latencies from the block's arrival, and the span of their writes."""
    from django.db import connection

    out: dict[str, Any] = {}
    with connection.cursor() as c:
        c.execute("SELECT latency_ms, extract(epoch from created_at), decision FROM core_opportunity "
                  "WHERE chain_id = %s AND block_number BETWEEN %s AND %s", [CHAIN_ID, lo, upto])
        rows = c.fetchall()
        out["opportunities"] = len(rows)
        out["decided_execute"] = sum(1 for r in rows if r[2] == "execute")
        out["block_to_recorded_ms"] = _dist([r[0] for r in rows if r[0] is not None])
        stamps = [float(r[1]) for r in rows]
        out["write_span_s"] = round(max(stamps) - min(stamps), 3) if stamps else 0.0
        c.execute("SELECT decision_latency_ms, status, extract(epoch from created_at) FROM core_execution "
                  "WHERE chain_id = %s AND block_number BETWEEN %s AND %s", [CHAIN_ID, lo, upto])
        ex = c.fetchall()
        out["executions"] = len(ex)
        out["execution_status"] = {s: sum(1 for r in ex if r[1] == s) for s in sorted({r[1] for r in ex})}
        out["block_to_execute_decision_ms"] = _dist([r[0] for r in ex if r[0] is not None])
        stamps = [float(r[2]) for r in ex]
        out["execute_span_s"] = round(max(stamps) - min(stamps), 3) if stamps else 0.0
    return out


def _stage_times(fleet: Fleet, before: dict[str, dict[str, int]]) -> tuple[dict[str, Any], int]:
    """Per stage, the batch run times logged since ``before`` (ms), with the p50 of the
    first and of the last fifth of its messages (a stage that slows as the run goes on),
    and the messages handled."""
    stages, messages = {}, 0
    for task, runs in fleet.runs_since(before).items():
        if runs:
            ms = [t * 1000 for t, _ in runs]
            fifth = max(1, len(ms) // 5)
            stages[".".join(task.rsplit(".", 2)[-2:])] = {
                **_dist(ms), "first_fifth_p50": _pct(ms[:fifth], 0.5), "last_fifth_p50": _pct(ms[-fifth:], 0.5)}
            messages += len(runs)
    return stages, messages


PATH, ML = "workers.tasks.path.find", "workers.tasks.ml.score"
EXECUTE, ANALYTICS = "workers.tasks.execute.execute", "workers.tasks.analytics.record_opportunities"


def _pipeline_done(fleet: Fleet, before: dict[str, dict[str, int]], blocks: int, first_stage: str,
                   execute: bool = True) -> bool:
    """Every message the phase caused has been handled: ``blocks`` messages into
    ``first_stage``; each path run that found opportunities sent one to ml; each ml run one
    to analytics, and one to execute when it chose any (the task results say how many;
    ``execute=False``: all but those)."""
    runs = fleet.runs_since(before)
    path, ml = runs.get(PATH, []), runs.get(ML, [])
    if first_stage == "path" and len(path) < blocks:
        return False
    want_ml = blocks if first_stage == "ml" else sum(1 for _, r in path if r > 0)
    return (len(ml) >= want_ml and len(runs.get(ANALYTICS, [])) >= len(ml)
            and (not execute or len(runs.get(EXECUTE, [])) >= sum(1 for _, r in ml if r > 0)))


def _cut_execute(fleet: Fleet, broker: Broker, before: dict[str, dict[str, int]], grace_s: float) -> int:
    """Give the execute stage ``grace_s`` more, then drop what still waits in its queue (the
    messages purged) and let the batch it is on finish: the execute stage simulates each
    chosen opportunity with a round trip to the node, far slower than the rest, and its
    backlog would otherwise run into the next phase."""
    time.sleep(grace_s)
    purged = int(broker.conn.default_channel.queue_purge("execute") or 0)

    def settled() -> bool:
        runs = fleet.runs_since(before)
        ml_chose = sum(1 for _, r in runs.get(ML, []) if r > 0)
        return len(runs.get(EXECUTE, [])) + purged >= ml_chose

    wait_for(settled, 600, "the execute stage's batch in progress", poll_s=0.25)
    return purged


#: How often a feed asks its queue's depth while enough messages wait. Each ask is a round
#: trip to RabbitMQ: at 2 ms a feed waiting on a busy path stage asked ~50 times a block,
#: CPU of the feed and of RabbitMQ taken from the fleet on the same cores; a stage that
#: takes tens of ms a message still has messages waiting when its feed looks again.
POLL_S = 0.02


class Broker:
    def __init__(self) -> None:
        from workers import serializer
        from workers.celery_app import app

        self.app = app
        # the stage tasks' serializer, as the scan and path tasks publish: ``send_task``
        # does not know a task's own option, so the feeds name it
        self.serializer = serializer.NAME
        self.conn = app.connection_for_write()
        self.conn.ensure_connection()

    def depth(self, queue: str) -> int:
        return int(self.conn.default_channel.queue_declare(queue=queue, passive=True).message_count)


def _drain(done: Callable[[], bool], timeout_s: float) -> None:
    wait_for(done, timeout_s, "the pipeline to drain", poll_s=0.25)


# --------------------------------------------------------------------------- phases


def feed_blocks(broker: Broker, hot: Any, feed: Any, first: int, seconds: float, rate: float | None,
                tick: Callable[[], None] = lambda: None, arrivals: dict[int, float] | None = None) -> int:
    """Blocks from ``first`` for ``seconds``: at ``rate`` a second, or (None) as fast as the
    path stage takes them (at most two waiting); ``tick`` is called before each. Each block's
    delta carries its arrival time, and its message a trace that starts there (the stages
    mark it, the execute worker logs it: ``bench.traces``); ``arrivals`` gets block -> that
    time. The number of blocks sent."""
    n, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        tick()
        if rate is None:
            while broker.depth("path") >= 2:
                time.sleep(POLL_S)
        else:
            due = start + n / rate
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
        number = first + n
        delta = feed.block(number, None, GAS_PRICE)  # arrives once its pools have moved
        arrived = delta.observed_at
        hot.put_pools(delta.states, number, delta.block_hash)
        broker.app.send_task("workers.tasks.path.find", args=[delta.to_wire()], kwargs={"trace": [["arrived", arrived]]},
                             serializer=broker.serializer)
        if arrivals is not None:
            arrivals[number] = arrived
        n += 1
    return n


def sample_opportunities(market: Any, n_blocks: int, changed: int, sigma: float, revert: float) -> list[Any]:
    """Opportunities the path engine sizes on this market (as the path stage builds it): the
    replay phases' material."""
    from arbbot.paths.engine import PathEngine
    from arbbot.paths.gas import GasModel
    from bench.pipeline.market import WETH, Feed

    engine = PathEngine(base_tokens=[], weth=WETH, max_hops=3, gas_model=GasModel(), max_per_pool=3)
    engine.upsert(market.pools)
    feed = Feed(market, CHAIN_ID, changed, sigma, seed=99, revert=revert)
    out = []
    for b in range(1, n_blocks + 1):
        d = feed.block(b, 0.0, GAS_PRICE)
        changed_ids = engine.upsert(d.states)
        out += [o for o in engine.evaluate(changed_ids, chain_id=CHAIN_ID, block_number=b,
                                                   block_hash=d.block_hash, gas_price_wei=GAS_PRICE)]
    # one per cycle: a replayed batch is one block, where a cycle is one opportunity (the
    # database's unique constraint would skip a repeat, and the naive insert fail on it)
    return list({o.path_id: o for o in out}.values())


def replay(broker: Broker, opps: list[Any], first: int, seconds: float, batch: int,
           naive: bool) -> tuple[int, int]:
    """Opportunities re-stamped (a new block per batch, arrival now) into the ml queue for
    ``seconds``: ``batch`` to a message (one columnar batch, as the path stage sends), or
    one task per opportunity (``naive``: each its per-item JSON record), keeping at most a
    few messages' worth waiting. (blocks, opportunities) sent."""
    import dataclasses

    from celery import group

    from arbbot.types import opportunities_to_wire

    from bench.pipeline.market import block_hash

    sent, n, start, i = 0, 0, time.monotonic(), 0
    batch = min(batch, len(opps))
    limit = 4 if not naive else batch
    while time.monotonic() - start < seconds:
        while broker.depth("ml") >= limit:
            time.sleep(POLL_S)
        chunk = []
        now, number = time.time(), first + n
        stamp = {"block_number": number, "observed_at": now, "block_hash": block_hash(number)}
        for _ in range(batch):
            chunk.append(dataclasses.replace(opps[i % len(opps)], **stamp))
            i += 1
        if naive:
            sig = broker.app.signature("bench.pipeline.naive.score_one", queue="ml")
            group(sig.clone((o.to_wire(),)) for o in chunk).apply_async()
        else:
            broker.app.send_task("workers.tasks.ml.score", args=[opportunities_to_wire(chunk)], serializer=broker.serializer)
        sent += len(chunk)
        n += 1
    return n, sent


#: the lane's first blocks, not counted: its engine is primed before them, but the first still
#: evaluates every cycle of the market (as a fresh stage's first block does)
LANE_WARM_UP = 2


def lane_phase(fleet: Fleet, broker: Broker, logs: Path, env: dict[str, str], first: int, seconds: float,
               rate: float, args: argparse.Namespace) -> dict[str, Any]:
    """Phase 2b: blocks at the latency phase's rate through the follower's own lane (one
    process: the scan's write, the path stage, the ml decision; bench/pipeline/lane.py) to
    the fleet's execute and analytics workers; the lane's first ``LANE_WARM_UP`` blocks are
    not counted."""
    blocks = max(8, round(seconds * rate))
    _step(f"phase 2b: latency through the follower's own lane ({rate:.2f} blocks/s), {blocks} blocks")
    before, out, since = fleet.counts(), logs / "lane.json", time.time()
    with open(logs / "lane.log", "wb") as log:
        subprocess.run([sys.executable, "-m", "bench.pipeline.lane", "--chain", str(CHAIN_ID), "--first", str(first),
                        "--blocks", str(LANE_WARM_UP + blocks), "--rate", str(rate), "--changed", str(args.changed),
                        "--sigma", str(args.sigma), "--revert", str(args.revert), "--gas-price", str(GAS_PRICE), "--out", str(out),
                        *(["--mirror", args.mirror_arg] if args.mirror else [])],
                       cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=True,
                       timeout=120 + 2 * (LANE_WARM_UP + blocks) / rate)
    lane = json.loads(out.read_text())

    def done() -> bool:
        runs = fleet.runs_since(before)
        return (len(runs.get(ANALYTICS, [])) >= lane["messages"]["analytics"]
                and len(runs.get(EXECUTE, [])) >= lane["messages"]["execute"])

    _drain(done, 600)
    purged = _cut_execute(fleet, broker, before, 10.0)
    lo, hi = first + LANE_WARM_UP, first + LANE_WARM_UP + blocks - 1
    report = phase_report(fleet, (lo, hi), seconds, before, blocks)
    report["blocks_per_s"] = round(rate, 2)
    report["went"] = lane["went"]
    report["execute_messages_purged"] = purged
    decided = [b for b in traces.traces(logs / "execute.log") if lo <= b["block"] <= hi and b["marks"]]
    arrivals = {b["block"]: b["marks"][0][1] for b in decided}
    report["where_ms"] = traces.figures(decided, arrivals)
    report["window"] = (min(arrivals.values(), default=since), time.time())  # the counted blocks' (--steps)
    return report


def phase_report(fleet: Fleet, blocks: tuple[int, int], seconds: float, before: dict[str, dict[str, int]],
                 sent: int) -> dict[str, Any]:
    """The phase's figures. Opportunities/s and rows/s are over the span of the phase's
    opportunity rows (first to last written); execute decisions/s over the span of its
    execution rows (the execute stage may run on long after the last opportunity)."""
    rows = _rows(*blocks)
    stages, messages = _stage_times(fleet, before)
    span = rows["write_span_s"] or seconds
    ex_span = rows["execute_span_s"] or seconds
    return {
        "seconds": round(seconds, 2), "blocks": blocks[1] - blocks[0] + 1, "sent": sent, **rows,
        "opportunities_per_s": round(rows["opportunities"] / span),
        "rows_per_s": round(rows["opportunities"] / span + rows["executions"] / ex_span),
        "execute_decisions_per_s": round(rows["executions"] / ex_span, 1),
        "messages": messages, "messages_per_s": round(messages / seconds), "stages_ms": stages,
    }


# --------------------------------------------------------------------------- main


def _revert(text: str) -> float:
    value = non_negative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be below 1, got {text}")
    return value


def main() -> None:  # noqa: C901, PLR0915  (one run, phase after phase)
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=positive_float, default=45.0, help="phase 1 (throughput) seconds")
    ap.add_argument("--soak", type=non_negative_float, default=0.0, help="make phase 1 this long (RSS start and end reported)")
    ap.add_argument("--latency-duration", type=positive_float, default=20.0)
    ap.add_argument("--replay-duration", type=positive_float, default=20.0)
    ap.add_argument("--naive-duration", type=positive_float, default=15.0)
    ap.add_argument("--changed", type=positive_int, default=300, help="pools moved per block")
    ap.add_argument("--sigma", type=positive_float, default=0.01, help="a moved V2 pool's price change (std dev)")
    ap.add_argument("--revert", type=_revert, default=REVERT,
                    help="each move pulls a pool back toward the market as built by this fraction of its log "
                         "distance, from a settled start (bench/pipeline/market.py; 0: a random walk, the "
                         f"opportunities a block then grow with the run). Default {REVERT}")
    ap.add_argument("--batch", type=positive_int, default=1000, help="opportunities per replayed message")
    ap.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=True,
                    help="the market's pools and tokens on the devnet, each block's moves written there "
                         "(bench/pipeline/onchain.py); --no-mirror: the pools exist in the hot state only")
    ap.add_argument("--lane", action=argparse.BooleanOptionalAction, default=True,
                    help="phase 2b: the latency phase again through the follower's own lane (bench/pipeline/lane.py)")
    ap.add_argument("--steps", action="store_true",
                    help="time the execute stage step by step and print it for the latency phases "
                         "(bench/latency/step_marks.py)")
    ap.add_argument("--keep", action="store_true", help="keep the database, vhost and logs")
    ap.add_argument("--profile", action="append", default=[], choices=QUEUES, metavar="QUEUE",
                    help="run this queue's worker under cProfile (solo pool) and print where its time went; "
                         "repeatable. Its figures are then not comparable with a run without it")
    ap.add_argument("--concurrency", action="append", default=[], type=_concurrency, metavar="QUEUE=N",
                    help="pool processes of this queue's worker (1 each by default, as the demo; compose "
                         "and the Helm chart run path, ml and analytics with 2); repeatable")
    args = ap.parse_args()
    # stopped from outside (SIGTERM, or SIGINT in a background job): clean up all the same
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    throughput_s = args.soak or args.duration
    res: dict[str, Any] = {"python": platform.python_version(), "cpus": os.cpu_count(), "run": RUN_ID,
                           "load_start": [round(x, 1) for x in os.getloadavg()]}

    _step(f"database {DB_NAME}, vhost {VHOST}, Redis prefix {PREFIX}")
    _psql(f'CREATE DATABASE "{DB_NAME}"')
    _rabbitmqctl("add_vhost", VHOST)
    _rabbitmqctl("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
    logs = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    fleet: Fleet | None = None
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
        django.setup()
        from arbbot.devnet.scenarios import deployed_devnet
        from bench.pipeline.market import WETH, Feed, build
        from webapp.core import services
        from webapp.core.models import Chain, Dex, Strategy
        from workers import runtime

        _step("market (10,176 pools, re-addressed under the chain's DEXes)")
        market = build().settled(args.sigma, args.revert)
        res["pools"] = len(market.pools)
        res["revert"] = args.revert
        res["mirror"] = args.mirror  # the market on the devnet (onchain.py), or in the hot state only
        _step("devnet anvil with the genuine contracts and the executor")
        with deployed_devnet(logs / "devnet") as (anvil, dep):
            services.chain_register_deployment({**dep.to_json(), "name": "bench-pipeline"})
            chain = Chain.objects.get(chain_id=CHAIN_ID)
            chain.weth = WETH
            chain.save(update_fields=["weth"])
            for d in market.dexes:
                Dex.objects.create(chain=chain, name=d["name"], kind=d["kind"], factory=d["factory"],
                                   init_code_hash=d["init_code_hash"])
            hot = runtime.hotstate(CHAIN_ID)
            hot.clear()
            hot.put_pools(market.pools, 0, "0x" + "00" * 32)
            mirror = None
            if args.mirror:
                from bench.pipeline import onchain

                _step("the market on the devnet: its pools' and tokens' code and state, its DEXes on the executor")
                mirror = onchain.place(anvil.rpc(), dep.deployer, dep.executor, market.pools, market.dexes, _step)
                args.mirror_arg = f"{mirror.rpc_url},{mirror.balance_slot}"

            _step("sample opportunities for the replay phases (path engine, in this process)")
            opps = sample_opportunities(market, 8, args.changed, args.sigma, args.revert)
            res["replay_sample"] = len(opps)

            env = {**os.environ, "ARBBOT_DEVNET_DIR": str(logs / "devnet")}
            fleet = Fleet(logs, env, args.profile, dict(args.concurrency))
            res["concurrency"] = {q: fleet.concurrency.get(q, 1) for q in QUEUES}
            _step("workers: " + ", ".join(QUEUES))
            for q in QUEUES:
                # --steps: the execute worker times its steps (bench/latency/step_marks.py)
                timed = {"PYTHONPATH": f"{ROOT / 'bench' / 'latency' / 'steps'}{os.pathsep}{ROOT}"}
                fleet.start(q, "workers.celery_app", q, timed if args.steps and q == "execute" else None)
            broker = Broker()
            feed = Feed(market, CHAIN_ID, args.changed, args.sigma, mirror=mirror, revert=args.revert)

            # warm-up: the path stage builds its engine from the hot state on its first block
            _step("warm-up")
            before = fleet.counts()
            feed_blocks(broker, hot, feed, 1, 0.001, None)
            _drain(lambda: _pipeline_done(fleet, before, 1, "path"), 300)
            _forget_rows(1, 1)
            series = RssSeries(fleet, max(10.0, throughput_s / 10))
            rss_start = series.samples[0][1]

            _step(f"phase 1: throughput, {throughput_s:.0f} s")
            before, first = fleet.counts(), 2
            t0, cpu = time.monotonic(), CpuMeter(fleet)
            n = feed_blocks(broker, hot, feed, first, throughput_s, None, series.tick)
            res["rss_series"] = series.report()
            fed = time.monotonic() - t0
            res["cpu_phase1"] = cpu.report(n)  # while blocks were fed: every stage busy
            _drain(lambda: _pipeline_done(fleet, before, n, "path", execute=False), 600)
            purged = _cut_execute(fleet, broker, before, 10.0)
            rss_end = fleet.rss_mb()
            res["throughput"] = phase_report(fleet, (first, first + n - 1), time.monotonic() - t0, before, n)
            res["throughput"]["execute_messages_purged"] = purged
            res["throughput"]["blocks_per_s"] = round(n / fed, 2)
            res["rss_mb"] = {q: {"start": rss_start[q], "end": rss_end[q]} for q in QUEUES}

            rate = max(0.1, n / fed / 10)
            latency_s = max(args.latency_duration, 8 / rate)  # at least 8 blocks
            _step(f"phase 2: latency at a tenth of that load ({rate:.2f} blocks/s), {latency_s:.0f} s")
            before, first = fleet.counts(), first + n  # the next block: no catch-up in the path stage
            t0, arrivals, since = time.monotonic(), {}, time.time()
            n = feed_blocks(broker, hot, feed, first, latency_s, rate, arrivals=arrivals)
            _drain(lambda: _pipeline_done(fleet, before, n, "path", execute=False), 600)
            purged = _cut_execute(fleet, broker, before, 10.0)
            res["latency"] = phase_report(fleet, (first, first + n - 1), time.monotonic() - t0, before, n)
            res["latency"]["where_ms"] = traces.figures(traces.traces(logs / "execute.log"), arrivals)
            res["latency"]["window"] = (since, time.time())
            res["latency"]["blocks_per_s"] = round(rate, 2)
            res["latency"]["execute_messages_purged"] = purged

            if args.lane:
                first += n
                res["lane"] = lane_phase(fleet, broker, logs, env, first, latency_s, rate, args)

            _step("phase 3: downstream capacity (ml + analytics, batched), nothing to execute")
            Strategy.objects.create(chain=chain, version=1, min_profit_wei=10**30, source="bench-pipeline")
            time.sleep(1.5 * runtime.STRATEGY_TTL_S)  # the ml worker's strategy in force is at most this old
            before, first = fleet.counts(), REPLAY_BLOCK
            t0 = time.monotonic()
            blocks, sent = replay(broker, opps, first, args.replay_duration, args.batch, naive=False)
            _drain(lambda: _pipeline_done(fleet, before, blocks, "ml"), 600)
            res["replay"] = phase_report(fleet, (first, first + blocks - 1), time.monotonic() - t0, before, sent)

            _step("phase 4: naive baseline (one task per opportunity, one ORM insert per row)")
            for q in ("ml", "analytics"):
                fleet.stop(q)
            fleet.start("naive-ml", "bench.pipeline.naive", "ml")
            fleet.start("naive-analytics", "bench.pipeline.naive", "analytics")
            before, first = fleet.counts(), first + blocks
            t0 = time.monotonic()
            blocks, sent = replay(broker, opps, first, args.naive_duration, args.batch // 10, naive=True)
            _drain(lambda: len(fleet.runs_since(before).get("bench.pipeline.naive.record_one", [])) >= sent, 600)
            res["naive"] = phase_report(fleet, (first, first + blocks - 1), time.monotonic() - t0, before, sent)
            res["batched_vs_naive"] = round(res["replay"]["opportunities_per_s"]
                                            / max(1, res["naive"]["opportunities_per_s"]), 1)
            fleet.stop_all()
            _print_profiles(logs, args.profile)
            if args.steps:
                _print_steps(logs, res)
    finally:
        if fleet is not None:
            fleet.stop_all()
        if not args.keep:
            _cleanup(logs)
        else:
            _step(f"kept: database {DB_NAME}, vhost {VHOST}, logs {logs}")
    res["load_end"] = [round(x, 1) for x in os.getloadavg()]
    _report(res)


def _concurrency(text: str) -> tuple[str, int]:
    queue, _, n = text.partition("=")
    if queue not in QUEUES or not n.isdigit() or not 1 <= int(n) <= 16:
        raise argparse.ArgumentTypeError(f"{text!r}: QUEUE=N, QUEUE one of {', '.join(QUEUES)}, N 1..16")
    return queue, int(n)


def _print_profiles(logs: Path, queues: Sequence[str]) -> None:
    for q in queues:
        profiled.report(logs / f"{q}.prof", f"the {q} worker (solo pool, the whole run)")


def _print_steps(logs: Path, res: dict[str, Any]) -> None:
    from bench.latency import step_marks

    for phase in ("latency", "lane"):
        if phase in res:
            batches = step_marks.read(logs / "execute.log", [res[phase]["window"]])
            print(f"\n== the execute stage by step, {phase} phase ({len(batches)} batches)", flush=True)
            print(step_marks.table(batches), flush=True)


def _forget_rows(lo: int, hi: int) -> None:
    """Forget the warm-up's rows: they belong to no phase."""
    from webapp.core.models import Execution, Opportunity

    for model in (Opportunity, Execution):
        model.objects.filter(chain_id=CHAIN_ID, block_number__range=(lo, hi)).update(block_number=0)


def _cleanup(logs: Path) -> None:
    from django.db import connections

    connections.close_all()
    try:
        from workers import runtime

        runtime.hotstate(CHAIN_ID).clear()
    except Exception:  # noqa: BLE001  (clean-up is best effort)
        pass
    for action in (lambda: _psql(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'),
                   lambda: _rabbitmqctl("delete_vhost", VHOST)):
        try:
            action()
        except Exception as exc:  # noqa: BLE001
            _step(f"clean-up: {exc}")
    shutil.rmtree(logs, ignore_errors=True)


def _report(res: dict[str, Any]) -> None:
    rows = []

    def ms(d: dict[str, Any]) -> str:
        return f"{d['p50']} / {d['p95']} / {d['p99']} (n={d['n']})"

    for phase in ("throughput", "latency", "lane", "replay", "naive"):
        r = res.get(phase)
        if not r:
            continue
        rows.append((f"[{phase}] opportunities sized+scored+decided+recorded",
                     f"{r['opportunities']:,} in {r['write_span_s']} s ({r['blocks']} blocks): "
                     f"{r['opportunities_per_s']:,}/s"))
        rows.append(("  rows/s (opportunities + executions)", f"{r['rows_per_s']:,}"))
        rows.append(("  messages/s", f"{r['messages_per_s']:,} ({r['messages']} tasks)"))
        rows.append(("  block arrival -> recorded ms p50/p95/p99", ms(r["block_to_recorded_ms"])))
        if r["executions"]:
            rows.append(("  block arrival -> execute decision ms", ms(r["block_to_execute_decision_ms"])))
            if r.get("execute_messages_purged"):
                rows.append(("  execute backlog left at the end, purged", f"{r['execute_messages_purged']} messages"))
            rows.append(("  execute decisions", f"{r['executions']:,} ({r['execute_decisions_per_s']}/s over "
                                                   f"{r['execute_span_s']} s): {json.dumps(r['execution_status'])}"))
        if r.get("went"):
            rows.append(("  the lane's blocks, where each went", json.dumps(r["went"])))
        if r.get("where_ms"):
            rows.append(("  where the time went (each execute message's trace), ms", "p50 / p95 / p99 (n)"))
            rows += [(f"  {name}", ms(d)) for name, d in r["where_ms"].items()]
        for stage, d in r["stages_ms"].items():
            rows.append((f"  stage {stage} ms per message", ms(d)))
            if phase == "throughput":
                rows.append(("    p50 of its first / last fifth of messages", f"{d['first_fifth_p50']} / "
                                                                            f"{d['last_fifth_p50']}"))
    if "cpu_phase1" in res:
        rows.append(("CPU in phase 1, while blocks were fed", "ms a block, % of the cores"))
        rows += [(f"  {name}", f"{v['ms_per_block']} ms, {v['cores_pct']}%") for name, v in res["cpu_phase1"].items()]
    if "rss_mb" in res:
        for q, v in res["rss_mb"].items():
            rows.append((f"RSS {q} MB start / end of phase 1", f"{v['start']} / {v['end']}"))
    for q, v in res.get("rss_series", {}).items():
        rows.append((f"RSS {q} MB every {v['every_s']:.0f} s of phase 1 (growth 1st / 2nd half)",
                     f"{', '.join(f'{x:.0f}' for x in v['mb'])} ({v['first_half_mb']:+} / {v['second_half_mb']:+})"))
    rows.append(("load average (1/5/15 min) at start / end", f"{res.get('load_start')} / {res.get('load_end')}"))
    if "batched_vs_naive" in res:
        rows.append(("batched (phase 3) vs naive (phase 4)", f"x{res['batched_vs_naive']}"))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print(json.dumps({"bench": "pipeline", **res}, default=str))


if __name__ == "__main__":
    main()
