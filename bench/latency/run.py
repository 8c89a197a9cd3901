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
each opportunity's decision (``stage.execute``'s ``decided_at``). The first blocks after
the fleet started are reported apart (start-up), not in the steady figures.

**Before and after in the same run**: unless ``--before none``, the fleet of another
commit (``--before REF``, by default main before the latency work of issue 15 item 5,
exported with ``git archive``) runs a follower phase first, on the same devnet, database,
broker and simulator; then this code's fleet, then beat's tick. The comparison table puts
the two follower phases side by side, per stage. The phase that runs second runs on a longer
chain and a fuller database, and one machine's load drifts over minutes: ``--rounds N`` runs
the two fleets N times each, in the order A B B A A B ... (each half of the time first), and
pools each side's phases.

Run: ``make bench-latency`` or ``.venv/bin/python bench/latency/run.py [--seconds 45]
[--baseline-seconds 20] [--before REF|none] [--mode live|dry-run] [--profile QUEUE] [--steps]``;
prints the tables, the load average and a JSON line. ``--steps`` also times this code's
execute stage step by step (``bench/latency/step_marks.py``: the wrappers go into that
worker's process only) and prints where a batch's time goes, with a JSON line of its own.
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


def sh(*cmd: str) -> bool:
    return subprocess.run(list(cmd), capture_output=True).returncode == 0


class Fleet:
    """The processes of one run, each logging to ``logs/<name>.log``; stopped warm on exit."""

    def __init__(self, env: dict[str, str], logs: Path, cwd: Path = ROOT) -> None:
        self.env, self.logs, self.cwd, self.procs = env, logs, cwd, {}

    def start(self, name: str, cmd: list[str], **extra: str) -> None:
        log = open(self.logs / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen(cmd, cwd=self.cwd, env={**self.env, **extra}, stdout=log,
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


BEFORE_REF = "6d3ffe80953a72f47997a0c2e5ebca3e43250717"  # main before the latency work of issue 15 item 5


def export_tree(ref: str, into: Path) -> Path:
    """The repository's files at ``ref`` (``git archive``: nothing of the repository changes)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=45, help="each follower phase (after start-up)")
    ap.add_argument("--baseline-seconds", type=float, default=20, help="the beat-tick phase")
    ap.add_argument("--before", default=BEFORE_REF, metavar="REF",
                    help="the code to compare with in the same run (a git ref; 'none': skip): its fleet runs the "
                         "first follower phase (the second with --after-first) on the same devnet, database and "
                         f"broker (default {BEFORE_REF[:10]})")
    ap.add_argument("--before-env", action="append", default=[], metavar="NAME=VALUE",
                    help="an environment variable for the other code's processes only, e.g. "
                         "ECC_BACKEND_CLASS=eth_keys.backends.NativeECCBackend for its missing coincurve (repeatable)")
    ap.add_argument("--after-first", action="store_true",
                    help="run this code's follower phase (and the baseline) before the other's: the second phase "
                         "runs on a longer chain and a fuller database, so alternate the order between runs")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run each fleet this many times, alternating A B B A ... (drift and order shared evenly)")
    ap.add_argument("--mode", default="dry-run", choices=("live", "paper", "dry-run"),
                    help="the chain's mode (dry-run: simulated, nothing signed, as bench-pipeline)")
    ap.add_argument("--execute-concurrency", type=int, default=2,
                    help="execute pool processes (the demo's 2: beat's follow pass does not hold a block's batch)")
    ap.add_argument("--keep-logs", action="store_true", help="print where the logs are and keep them")
    ap.add_argument("--profile", action="append", default=[], choices=QUEUES, metavar="QUEUE",
                    help="run this queue's worker (this code's) under cProfile, solo pool (its tasks in the profiled "
                         "process); prints its top functions and keeps logs/after/QUEUE.prof (repeatable)")
    ap.add_argument("--steps", action="store_true",
                    help="time the execute stage step by step (this code's worker: bench/latency/step_marks.py) and "
                         "print where a batch's time goes")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error(f"--rounds {args.rounds}: must be positive")
    for name in ("seconds", "baseline_seconds"):
        if getattr(args, name) <= 0:
            ap.error(f"--{name.replace('_', '-')} {getattr(args, name)}: must be positive")
    if args.execute_concurrency < 1:
        ap.error(f"--execute-concurrency {args.execute_concurrency}: must be positive")
    if args.profile and args.rounds > 1:
        ap.error("--profile profiles one round: leave --rounds at 1")
    before_env = {}
    for item in args.before_env:
        name, eq, value = item.partition("=")
        if not eq or not name:
            ap.error(f"--before-env {item!r}: expected NAME=VALUE")
        before_env[name] = value

    from arbbot.devnet.anvil import free_port

    work = Path(tempfile.mkdtemp(prefix="arbbot-bench-latency-"))
    logs = work / "logs"
    logs.mkdir()
    own_vhost = sh("rabbitmqctl", "-q", "add_vhost", VHOST) and sh(
        "rabbitmqctl", "-q", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
    env = dict(os.environ, PYTHONUNBUFFERED="1", DJANGO_SETTINGS_MODULE="webapp.settings",
               ARBBOT_DATABASE_NAME=DB, ARBBOT_REDIS_PREFIX=f"bench-latency-{RUN}", ARBBOT_MODE=args.mode,
               ARBBOT_DEVNET_DIR=str(work / "devnet"), ARBBOT_NODE_MODULES=str(ROOT / "node_modules"))
    if own_vhost:
        env["ARBBOT_BROKER_URL"] = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
    for name in ("ARBBOT_SIGNER_KEY", "ARBBOT_SIGNER_KEY_FILE", "ARBBOT_METRICS_PORT", "PYTHONPATH"):
        env.pop(name, None)
    from bench import profiled
    from bench.traces import STAGES, figures, traces

    py, celery = sys.executable, str(Path(sys.executable).parent / "celery")
    port = free_port()
    arrivals: Arrivals | None = None
    db_made = False
    sides: list[tuple[str, Path]] = []
    if args.before.lower() != "none":
        sides.append(("before", export_tree(args.before, work / "before")))
    sides.append(("after", ROOT))
    if args.after_first:
        sides.reverse()
    runs = [(side, tree, r) for r in range(args.rounds) for side, tree in (sides if r % 2 == 0 else sides[::-1])]
    # (kind, side) -> the phases' (log directory, from, to), pooled over the rounds
    windows: dict[tuple[str, str], list[tuple[Path, float, float]]] = {}
    fleet = Fleet(env, logs)

    def manage(*a: str) -> None:
        r = subprocess.run([py, "manage.py", *a], cwd=ROOT, env=env, capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(f"manage.py {' '.join(a)} failed:\n{r.stdout}\n{r.stderr}")

    def run_side(side: str, tree: Path, baseline: bool, r: int) -> None:
        """One fleet (``tree``'s code) through its start-up and follower phase, then, for the
        last, beat's tick alone; stopped warm at the end."""
        nonlocal fleet
        side_logs = logs / side if args.rounds == 1 else logs / f"{side}-{r + 1}"
        side_logs.mkdir()
        fleet = Fleet({**env, "PYTHONPATH": str(tree), **(before_env if side == "before" else {})}, side_logs, cwd=tree)
        try:
            for q in QUEUES:
                pool = ["--pool", "prefork", "--concurrency", str(args.execute_concurrency if q == "execute" else 1)]
                run = [celery]
                if q in args.profile and tree == ROOT:
                    run, pool = profiled.worker(celery, side_logs / f"{q}.prof")
                timed = {"PYTHONPATH": f"{ROOT / 'bench' / 'latency' / 'steps'}{os.pathsep}{tree}"} if (
                    args.steps and q == "execute" and tree == ROOT) else {}
                fleet.start(f"worker-{q}", [*run, "-A", "workers.celery_app", "worker", "-Q", q, "-n",
                                            f"{q}-{side}-{RUN}@%h", *pool, "-l", "INFO"],
                            ARBBOT_HEARTBEAT_FILE=str(side_logs / f"hb-{q}"), **timed)
            fleet.start("beat", [celery, "-A", "workers.celery_app", "beat", "-l", "INFO", "-s",
                                 str(side_logs / "beat-schedule")])
            deadline = time.monotonic() + 180
            while not all((side_logs / f"hb-{q}").exists() for q in QUEUES):
                if time.monotonic() > deadline:
                    raise SystemExit("the workers did not start; see " + str(side_logs))
                time.sleep(0.2)
            print(f"== {side}{'' if args.rounds == 1 else f' (round {r + 1})'}: workers up; follower phase",
                  flush=True)
            started = time.time()
            fleet.start("follower", [py, "manage.py", "arbbot", "follow", "--chain", str(chain_id), "--ws", ws],
                        ARBBOT_HEARTBEAT_FILE=str(side_logs / "hb-follower"))
            # start-up: until STARTUP_BLOCKS blocks have had a decision, then the steady phase
            deadline = time.monotonic() + 180
            while len({b["block"] for b in traces(side_logs / "worker-execute.log")}) < STARTUP_BLOCKS:
                if time.monotonic() > deadline:
                    raise SystemExit("no decisions within 180 s; see " + str(side_logs))
                time.sleep(0.5)
            steady = time.time()
            windows.setdefault(("startup", side), []).append((side_logs, started, steady))
            time.sleep(args.seconds)
            windows.setdefault(("follower", side), []).append((side_logs, steady, time.time()))
            fleet.stop("follower")  # releases the lease: beat's tick takes the chain over
            if baseline:
                print("== baseline phase (beat's 1 s tick)", flush=True)
                time.sleep(2)
                baseline_from = time.time()
                time.sleep(args.baseline_seconds)
                windows.setdefault(("baseline", side), []).append((side_logs, baseline_from, time.time()))
            time.sleep(3)  # the last batches' decisions reach the log
        finally:
            fleet.stop_all()

    try:
        print(f"== database {DB}, vhost {VHOST if own_vhost else '/'}, devnet on port {port}", flush=True)
        db_made = sh("createdb", "-h", "127.0.0.1", "-U", "postgres", DB) or sh("createdb", DB)
        manage("migrate", "-v0", "--noinput")
        manage("devnet", "up", "--dir", str(work / "devnet"), "--port", str(port), "--block-time", "1")
        dep = json.loads((work / "devnet" / "deployment.json").read_text())
        chain_id = int(dep["chain_id"])
        ws = f"ws://127.0.0.1:{port}"
        arrivals = Arrivals(ws)
        arrivals.start()
        sim = Fleet(env, logs)
        sim.start("simulator", [py, "manage.py", "devnet", "simulate", "--dir", str(work / "devnet")])
        try:
            for k, (side, tree, r) in enumerate(runs):
                run_side(side, tree, side == "after" and k == max(i for i, x in enumerate(runs) if x[0] == "after"), r)
        finally:
            sim.stop_all()
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

    at = arrivals.at
    load = os.getloadavg()
    out: dict[str, Any] = {"bench": "latency", "unit": "ms", "mode": args.mode, "order": [s for s, _, _ in runs],
                           "before_env": before_env,
                           "execute_concurrency": args.execute_concurrency, "before": args.before,
                           "load_avg_1_5_15": [round(x, 2) for x in load]}
    titles = {"startup": f"start-up (the first {STARTUP_BLOCKS} blocks with a decision, follower)",
              "follower": "follower (newHeads over WebSocket)", "baseline": "baseline: beat's 1 s tick, no follower"}
    for (kind, side), spans in windows.items():
        phase = "baseline" if kind == "baseline" else f"{kind} {side}"
        bs = [b for d, a, z in spans for b in traces(d / "worker-execute.log")
              if b["block"] in at and a <= at[b["block"]] < z]
        figs = figures(bs, at)
        out[phase] = {"blocks": len(bs), **figs}
        code = "" if phase == "baseline" else f", {'this code' if side == 'after' else args.before[:10]}"
        if len(spans) > 1:
            code += f", {len(spans)} phases pooled"
        print(f"\n{side}: {titles[kind]}{code}: {len(bs)} blocks with decisions")
        print(f"{'ms':<32}{'n':>5}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}")
        print("-" * 73)
        for name, _, _ in STAGES:
            if kind == "baseline" and name.startswith("  "):
                continue
            f = figs.get(name)
            if f:
                print(f"{name:<32}{f['n']:>5}{f['p50']:>9.1f}{f['p95']:>9.1f}{f['p99']:>9.1f}{f['max']:>9.1f}")
    if "follower before" in out and "follower after" in out:
        print(f"\n{'follower phase, ms p50 / p95 / p99':<34}{'before':>22}{'after':>22}")
        print("-" * 78)
        for name, _, _ in STAGES:
            b, f = out["follower before"].get(name), out["follower after"].get(name)
            if b and f:
                print(f"{name:<34}{b['p50']:>8.1f}{b['p95']:>7.1f}{b['p99']:>7.1f}{f['p50']:>8.1f}{f['p95']:>7.1f}"
                      f"{f['p99']:>7.1f}")
    print(f"load average (1, 5, 15 min) at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(json.dumps(out))
    if args.steps:
        from bench.latency import step_marks

        phases = windows.get(("follower", "after"), [])
        batches = [b for d, lo, hi in phases for b in step_marks.read(d / "worker-execute.log", [(lo, hi)])]
        print(f"\n== the execute stage by step, this code's follower phase{'s' if len(phases) > 1 else ''} "
              f"({len(batches)} batches; bench/latency/step_marks.py)")
        print(step_marks.table(batches))
        steps = {name: round(statistics.median(ms), 2) for name, ms in step_marks.rows(batches)}
        print(json.dumps({"bench": "latency steps", "unit": "ms p50", **steps}))
    for q in args.profile:
        profiled.report(logs / "after" / f"{q}.prof", f"the {q} worker (solo pool)")
    if args.keep_logs or args.profile:
        print(f"logs: {logs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
