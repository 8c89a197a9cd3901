#!/usr/bin/env python
"""Block arrival to the execute decision, and where the time goes, through the real fleet.

A devnet of its own (anvil on a free port, 1 s blocks, the genuine contracts, the market
simulator), its own PostgreSQL database, RabbitMQ vhost and Redis prefix, and the same
processes the demo and the manifests run: one Celery worker per queue, beat, and
``manage.py arbbot follow`` over the devnet's WebSocket. Two phases in one run:

1. **follower**: the block follower announces each block to the scan queue as it arrives;
2. **baseline**: the follower stopped (its lease released), beat's 1 s tick scans, as
   before the follower existed.

The bench takes each block's arrival itself, from its own ``newHeads`` subscription, so both
phases are timed from the same moment. The stages' marks come from the trace the tasks
carry (``workers.stage.Trace``), logged by the execute worker as one JSON line per batch:
scan started and sent, path started and sent, ml started and sent, execute started, and
each opportunity's decision (``ExecutionRunner.submit`` returned). The first blocks after
the fleet started are reported apart (start-up), not in the steady figures.

Run: ``make bench-latency`` or ``.venv/bin/python bench/latency/run.py [--seconds 60]
[--baseline-seconds 30] [--mode live|dry-run]``; prints a table and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("ARBBOT_DEVNET", "1")  # a devnet of its own: the development SECRET_KEY is allowed

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
RUN = uuid.uuid4().hex[:8]
VHOST = f"arbbot-bench-latency-{RUN}"
DB = f"arbbot_bench_latency_{RUN}"
QUEUES = ("scan", "path", "ml", "execute", "analytics")
STARTUP_BLOCKS = 10  # the first blocks with a decision after the follower started


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def sh(*cmd: str) -> bool:
    return subprocess.run(list(cmd), capture_output=True).returncode == 0


class Fleet:
    """The processes of one run, each logging to ``logs/<name>.log``; stopped warm on exit."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.procs = env, logs, {}

    def start(self, name: str, cmd: list[str], **extra: str) -> None:
        log = open(self.logs / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen(cmd, cwd=ROOT, env={**self.env, **extra}, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self, name: str) -> None:
        p = self.procs.pop(name)
        p.terminate()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)


class Arrivals(threading.Thread):
    """The bench's own clock of each block's arrival: a ``newHeads`` subscription."""

    def __init__(self, ws_url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.at, self.stopped = ws_url, {}, threading.Event()

    def run(self) -> None:
        from websockets.sync.client import connect

        with connect(self.url) as ws:
            ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}))
            while not self.stopped.is_set():
                try:
                    raw = ws.recv(timeout=0.5)
                except TimeoutError:
                    continue
                now = time.time()
                msg = json.loads(raw)
                head = (msg.get("params") or {}).get("result")
                if head:
                    self.at.setdefault(int(head["number"], 16), now)


def traces(log: Path) -> list[dict[str, Any]]:
    """The ``arbbot.trace`` lines of a worker's log: JSON log lines (``arbbot.obs.logs``, the
    default off a terminal) whose event is the trace, or plain ``... arbbot.trace: {...}``."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if "arbbot.trace" not in line:
            continue
        try:
            record = json.loads(line)
            event = record.get("event") if isinstance(record, dict) else None
            if isinstance(event, str) and event.startswith("{"):
                out.append(json.loads(event))
                continue
        except ValueError:
            pass
        i = line.find("arbbot.trace: ")
        if i >= 0:
            out.append(json.loads(line[i + len("arbbot.trace: "):]))
    return out


STAGES = [  # (row, from mark, to mark); "block" is the bench's own arrival stamp
    ("arrival -> scan start", "block", "scan.start"),
    ("  scan", "scan.start", "scan.sent"),
    ("  hop scan -> path", "scan.sent", "path.start"),
    ("  path", "path.start", "path.sent"),
    ("  hop path -> ml", "path.sent", "ml.start"),
    ("  ml", "ml.start", "ml.sent"),
    ("  hop ml -> execute", "ml.sent", "execute.start"),
    ("  execute start -> decision", "execute.start", "decided"),
    ("arrival -> execute decision", "block", "decided"),
]


def figures(batches: list[dict[str, Any]], arrivals: dict[int, float]) -> dict[str, dict[str, float]]:
    rows: dict[str, list[float]] = {name: [] for name, _, _ in STAGES}
    for b in batches:
        if b["block"] not in arrivals:
            continue
        marks = {name: at for name, at in b["marks"]}
        marks["block"] = arrivals[b["block"]]
        for name, a, z in STAGES:
            if z == "decided":
                rows[name] += [(d - marks[a]) * 1000 for d in b["decided_at"] if a in marks]
            elif a in marks and z in marks:
                rows[name].append((marks[z] - marks[a]) * 1000)
    return {name: {"n": len(xs), "p50": round(statistics.median(xs), 1), "p95": round(pct(xs, 95), 1),
                   "p99": round(pct(xs, 99), 1), "max": round(max(xs), 1)}
            for name, xs in rows.items() if xs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60, help="the follower phase (after start-up)")
    ap.add_argument("--baseline-seconds", type=float, default=30, help="the beat-tick phase")
    ap.add_argument("--mode", default="dry-run", choices=("live", "paper", "dry-run"),
                    help="the chain's mode (dry-run: simulated, nothing signed, as bench-pipeline)")
    ap.add_argument("--execute-concurrency", type=int, default=2,
                    help="execute pool processes (the demo's 2: beat's follow pass does not hold a block's batch)")
    ap.add_argument("--keep-logs", action="store_true", help="print where the logs are and keep them")
    args = ap.parse_args()

    from arbbot.devnet.anvil import free_port

    work = Path(tempfile.mkdtemp(prefix="arbbot-bench-latency-"))
    logs = work / "logs"
    logs.mkdir()
    own_vhost = sh("rabbitmqctl", "-q", "add_vhost", VHOST) and sh(
        "rabbitmqctl", "-q", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
    env = dict(os.environ, PYTHONUNBUFFERED="1", DJANGO_SETTINGS_MODULE="webapp.settings",
               ARBBOT_DATABASE_NAME=DB, ARBBOT_REDIS_PREFIX=f"bench-latency-{RUN}", ARBBOT_MODE=args.mode,
               ARBBOT_DEVNET_DIR=str(work / "devnet"))
    if own_vhost:
        env["ARBBOT_BROKER_URL"] = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
    for name in ("ARBBOT_SIGNER_KEY", "ARBBOT_SIGNER_KEY_FILE", "ARBBOT_METRICS_PORT"):
        env.pop(name, None)
    py, celery = sys.executable, str(Path(sys.executable).parent / "celery")
    port = free_port()
    fleet = Fleet(env, logs)
    arrivals: Arrivals | None = None
    db_made = False

    def manage(*a: str) -> None:
        r = subprocess.run([py, "manage.py", *a], cwd=ROOT, env=env, capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(f"manage.py {' '.join(a)} failed:\n{r.stdout}\n{r.stderr}")

    try:
        print(f"== database {DB}, vhost {VHOST if own_vhost else '/'}, devnet on port {port}", flush=True)
        db_made = sh("createdb", "-h", "127.0.0.1", "-U", "postgres", DB) or sh("createdb", DB)
        manage("migrate", "-v0", "--noinput")
        manage("devnet", "up", "--dir", str(work / "devnet"), "--port", str(port), "--block-time", "1")
        dep = json.loads((work / "devnet" / "deployment.json").read_text())
        chain_id = int(dep["chain_id"])
        ws = f"ws://127.0.0.1:{port}"
        for q in QUEUES:
            fleet.start(f"worker-{q}", [celery, "-A", "workers.celery_app", "worker", "-Q", q, "-n",
                                        f"{q}-{RUN}@%h", "--pool", "prefork", "--concurrency",
                                        str(args.execute_concurrency if q == "execute" else 1), "-l", "INFO"],
                        ARBBOT_HEARTBEAT_FILE=str(logs / f"hb-{q}"))
        fleet.start("beat", [celery, "-A", "workers.celery_app", "beat", "-l", "INFO", "-s",
                             str(work / "beat-schedule")])
        deadline = time.monotonic() + 120
        while not all((logs / f"hb-{q}").exists() for q in QUEUES):
            if time.monotonic() > deadline:
                raise SystemExit("the workers did not start; see " + str(logs))
            time.sleep(0.2)
        arrivals = Arrivals(ws)
        arrivals.start()
        fleet.start("simulator", [py, "manage.py", "devnet", "simulate", "--dir", str(work / "devnet")])
        print("== workers up; follower phase", flush=True)
        follower_from = time.time()
        fleet.start("follower", [py, "manage.py", "arbbot", "follow", "--chain", str(chain_id), "--ws", ws],
                    ARBBOT_HEARTBEAT_FILE=str(logs / "hb-follower"))
        # start-up: until STARTUP_BLOCKS blocks have had a decision, then the steady phase
        deadline = time.monotonic() + 120
        while len({b["block"] for b in traces(logs / "worker-execute.log")}) < STARTUP_BLOCKS:
            if time.monotonic() > deadline:
                raise SystemExit("no decisions within 120 s; see " + str(logs))
            time.sleep(0.5)
        steady_from = time.time()
        time.sleep(args.seconds)
        follower_to = time.time()
        fleet.stop("follower")  # releases the lease: beat's tick takes the chain over
        print("== baseline phase (beat's 1 s tick)", flush=True)
        time.sleep(2)
        baseline_from = time.time()
        time.sleep(args.baseline_seconds)
        baseline_to = time.time()
        time.sleep(3)  # the last batches' decisions reach the log
    finally:
        if arrivals is not None:
            arrivals.stopped.set()
        fleet.stop_all()
        subprocess.run([py, "manage.py", "devnet", "down", "--dir", str(work / "devnet")], cwd=ROOT, env=env,
                       capture_output=True)
        if own_vhost:
            sh("rabbitmqctl", "-q", "delete_vhost", VHOST)
        if db_made:
            sh("dropdb", "-h", "127.0.0.1", "-U", "postgres", DB) or sh("dropdb", DB)

    batches = traces(logs / "worker-execute.log")
    at = arrivals.at

    def window(a: float, z: float) -> list[dict[str, Any]]:
        return [b for b in batches if b["block"] in at and a <= at[b["block"]] < z]

    phases = {
        "startup": window(follower_from, steady_from),
        "follower": window(steady_from, follower_to),
        "baseline": window(baseline_from, baseline_to),
    }
    out: dict[str, Any] = {"bench": "latency", "unit": "ms", "mode": args.mode,
                           "execute_concurrency": args.execute_concurrency}
    for phase, bs in phases.items():
        figs = figures(bs, at)
        out[phase] = {"blocks": len(bs), **figs}
        title = {"startup": f"start-up (the first {STARTUP_BLOCKS} blocks with a decision, follower)",
                 "follower": "follower (newHeads over WebSocket)",
                 "baseline": "baseline: beat's 1 s tick, no follower"}[phase]
        print(f"\n{title}: {len(bs)} blocks with decisions")
        print(f"{'ms':<32}{'n':>5}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}")
        print("-" * 73)
        for name, _, _ in STAGES:
            if phase != "follower" and name.startswith("  "):
                continue
            f = figs.get(name)
            if f:
                print(f"{name:<32}{f['n']:>5}{f['p50']:>9.1f}{f['p95']:>9.1f}{f['p99']:>9.1f}{f['max']:>9.1f}")
    print(json.dumps(out))
    if args.keep_logs:
        print(f"logs: {logs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
