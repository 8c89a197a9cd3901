#!/usr/bin/env python
"""What one Celery hop costs from publish to the task's first line, by worker pool and by
the settings the fleet runs with: would the solo pool, or task events without publisher
confirms, buy back enough of the ~4 ms a hop of the block-to-decision path costs?

A worker of this module's own app (one queue, ``--concurrency 1``, prefetch 8, acks late,
as the fleet's workers) runs a task that writes how long after its publish it started; a
publisher sends ``--messages`` messages of ``--bytes`` (a block's batch is a few kB), one
every 20 ms. Variants, each run ``--rounds`` times, interleaved: prefork with the fleet's
consumer (``workers.consumer``: tasks confirmed, events not), prefork with events and
confirms (the fleet's settings before it), prefork without task events, prefork without publisher
confirms, solo with and without events, threads.

Run: ``.venv/bin/python bench/latency/hop.py [--messages 300] [--rounds 2]``; prints a table
and a JSON line. Uses a RabbitMQ vhost of its own (``rabbitmqctl``), deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.traces import pct  # noqa: E402  (after the path: run as a script)

VHOST = f"arbbot-bench-hop-{uuid.uuid4().hex[:8]}"
BROKER = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
VARIANTS = (  # name, pool, task events, publisher confirms (True: tasks and events, "tasks": tasks only)
    ("prefork, events unconfirmed (the fleet's)", "prefork", True, "tasks"),
    ("prefork, events, confirms", "prefork", True, True),
    ("prefork, no task events", "prefork", False, True),
    ("prefork, no publisher confirms", "prefork", True, False),
    ("solo, events, confirms", "solo", True, True),
    ("solo, no task events", "solo", False, True),
    ("threads, events, confirms", "threads", True, True),
)


CONFIRMS: dict[str, bool | str] = {"True": True, "False": False, "tasks": "tasks"}  # HOP_CONFIRMS -> confirms


def make_app(events: bool, confirms: bool | str, out: str):  # type: ignore[no-untyped-def]
    """``confirms="tasks"``: the fleet's consumer (``workers.consumer``), whose events
    go out unconfirmed, the tasks confirmed."""
    from celery import Celery

    app = Celery("hop", broker=os.environ.get("HOP_BROKER", BROKER))
    app.conf.update(task_serializer="json", accept_content=["json"], task_ignore_result=True, result_backend=None,
                    worker_prefetch_multiplier=8, worker_send_task_events=events, task_acks_late=True,
                    broker_transport_options={"confirm_publish": bool(confirms)}, worker_hijack_root_logger=False)
    if confirms == "tasks":
        app.conf.worker_consumer = "workers.consumer:Consumer"

    @app.task(name="hop.stamp")
    def stamp(sent: float, pad: str = "") -> None:
        with open(out, "a") as f:
            f.write(f"{(time.time() - sent) * 1000:.3f}\n")

    return app


if os.environ.get("HOP_OUT"):  # the worker's import: ``celery -A bench.latency.hop:app``
    app = make_app(os.environ["HOP_EVENTS"] == "1", CONFIRMS[os.environ["HOP_CONFIRMS"]], os.environ["HOP_OUT"])


def run(pool: str, events: bool, confirms: bool | str, messages: int, size: int, tmp: Path) -> list[float]:
    out = tmp / f"{uuid.uuid4().hex}.txt"
    env = {**os.environ, "HOP_OUT": str(out), "HOP_EVENTS": str(int(events)), "HOP_CONFIRMS": str(confirms),
           "HOP_BROKER": BROKER}
    celery = str(Path(sys.executable).parent / "celery")
    worker = subprocess.Popen([celery, "-A", "bench.latency.hop:app", "worker", "-Q", "celery", "--pool", pool,
                               "--concurrency", "1", "-l", "WARNING"], env=env, cwd=Path(__file__).resolve().parents[2],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        app = make_app(events, confirms, str(out))
        with app.connection_for_write() as conn:
            app.send_task("hop.stamp", args=[time.time()], connection=conn)  # the worker is up once this lands
            deadline = time.monotonic() + 60
            while not out.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            out.unlink(missing_ok=True)
            pad = "x" * size
            for _ in range(messages):
                app.send_task("hop.stamp", args=[time.time(), pad], connection=conn)
                time.sleep(0.02)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not out.exists() or len(out.read_text().split()) < messages):
            time.sleep(0.05)
        return [float(x) for x in out.read_text().split()]
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--bytes", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    subprocess.run(["rabbitmqctl", "add_vhost", VHOST], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"], check=True,
                   capture_output=True)
    load = os.getloadavg()[0]
    results: dict[str, list[float]] = {name: [] for name, *_ in VARIANTS}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.rounds):
                for name, pool, events, confirms in VARIANTS:
                    results[name] += run(pool, events, confirms, args.messages, args.bytes, Path(tmp))
    finally:
        subprocess.run(["rabbitmqctl", "delete_vhost", VHOST], capture_output=True)
    print(f"publish -> task start, ms ({args.messages} x {args.rounds} messages of {args.bytes} bytes; "
          f"load {load:.1f} -> {os.getloadavg()[0]:.1f})")
    print(f"{'variant':<42} {'p50':>6} {'p95':>6} {'p99':>6}")
    figures = {}
    for name, xs in results.items():
        figures[name] = {"n": len(xs), **{f"p{p}": round(pct(xs, p), 2) for p in (50, 95, 99)}}
        print(f"{name:<42} {figures[name]['p50']:>6} {figures[name]['p95']:>6} {figures[name]['p99']:>6}")
    print(json.dumps({"bench": "celery-hop", "unit": "ms", "load_start": round(load, 2), "variants": figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
