#!/usr/bin/env python
"""Block arrival to scan enqueued: the follower over WebSocket, the follower polling every
100 ms, and the old once-a-second beat tick, side by side on one anvil.

For each block: ``t0`` is taken just before ``evm_mine`` (so the figure includes that
call's round trip, about half a millisecond here), and the block counts as enqueued when
the scan message that covers it is *received back from the real scan queue* (RabbitMQ, a
vhost of its own), so the publish and the broker hop are in the figure. Blocks are mined
at random moments (0-300 ms apart; 0-1 s for the tick), so the poll and the tick are hit
at random phases.
The beat tick is the same scan_chain message sent every second, as beat did; a block is
covered by the first tick that reaches the queue after it was mined.

Run: ``.venv/bin/python bench/follower/run.py [--blocks 60] [--beat-blocks 20]``; prints a
table and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
RUN = uuid.uuid4().hex[:8]
VHOST = f"arbbot-bench-follower-{RUN}"
os.environ["ARBBOT_REDIS_PREFIX"] = f"bench-follower-{RUN}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
os.environ.setdefault("ARBBOT_DEVNET", "1")  # a devnet of its own: the development SECRET_KEY is allowed


def _vhost() -> bool:
    ok = subprocess.run(["rabbitmqctl", "-q", "add_vhost", VHOST], capture_output=True).returncode == 0
    ok = ok and subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"],
                               capture_output=True).returncode == 0
    if ok:
        os.environ["ARBBOT_BROKER_URL"] = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
    return ok


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, default=60, help="blocks per follower mode")
    ap.add_argument("--beat-blocks", type=int, default=20, help="blocks for the 1 s beat tick")
    args = ap.parse_args()
    own_vhost = _vhost()

    from kombu import Connection, Consumer

    from arbbot.chain.follower import Follower
    from arbbot.chain.rpc import RpcClient
    from arbbot.devnet.anvil import start_anvil
    from workers import queues
    from workers.tasks import scan

    anvil = start_anvil(chain_id=random.randint(900_000, 999_999))
    rpc = anvil.rpc()
    chain_id = rpc.chain_id()
    got: queue.Queue[tuple[float, Any]] = queue.Queue()  # (received at, block or None for a tick)
    stop = threading.Event()
    ready = threading.Event()

    def consume() -> None:
        conn = Connection(os.environ.get("ARBBOT_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"))
        queues.declare_topology(conn)
        q = next(x for x in queues.celery_queues() if x.name == "scan")

        def on_message(body: Any, message: Any) -> None:
            now = time.time()
            message.ack()
            a, kw, _ = body
            if a and a[0] == chain_id:
                got.put((now, kw.get("block")))

        with Consumer(conn, queues=[q], callbacks=[on_message], accept=["json"]):
            ready.set()
            while not stop.is_set():
                try:
                    conn.drain_events(timeout=0.2)
                except socket.timeout:
                    pass
        conn.release()

    threading.Thread(target=consume, daemon=True).start()
    ready.wait(10)
    results: dict[str, list[float]] = {}
    try:
        for mode in ("ws", "poll"):
            f = Follower(RpcClient(anvil.url, timeout_s=2, retries=0), lambda h: scan.announce(chain_id, h),
                         chain_id=chain_id, ws_urls=[f"ws://127.0.0.1:{anvil.port}"] if mode == "ws" else [],
                         poll_interval_s=0.1)
            fstop = threading.Event()
            t = threading.Thread(target=f.run, args=(fstop,), daemon=True)
            t.start()
            head = rpc.block_number()
            while got.get(timeout=10)[1] != head:  # the announcement of the head at start
                pass
            lat = []
            for _ in range(args.blocks):
                time.sleep(random.uniform(0, 0.3))
                t0 = time.time()
                rpc.call("evm_mine")
                head += 1
                while True:
                    at, block = got.get(timeout=10)
                    if block == head:
                        lat.append(at - t0)
                        break
            fstop.set()
            t.join(5)
            results[mode] = lat

        tick_stop = threading.Event()

        def beat() -> None:
            while not tick_stop.wait(1.0):
                scan.scan_chain.delay(chain_id)

        while not got.empty():
            got.get()
        threading.Thread(target=beat, daemon=True).start()
        lat = []
        for _ in range(args.beat_blocks):
            time.sleep(random.uniform(0, 1.0))  # after a tick: any phase of the next one
            t0 = time.time()
            rpc.call("evm_mine")
            while True:
                at, block = got.get(timeout=10)
                if block is None and at >= t0:
                    lat.append(at - t0)
                    break
        tick_stop.set()
        results["beat_1s"] = lat
    finally:
        stop.set()
        anvil.stop()
        if own_vhost:
            subprocess.run(["rabbitmqctl", "-q", "delete_vhost", VHOST], capture_output=True)

    print("\nblock arrival -> scan message back from RabbitMQ (ms)")
    print(f"{'mode':<28}{'n':>5}{'p50':>10}{'p95':>10}{'p99':>10}{'max':>10}")
    print("-" * 73)
    names = {"ws": "follower, newHeads (ws)", "poll": "follower, poll 100 ms", "beat_1s": "beat tick, 1 s (old)"}
    out: dict[str, Any] = {"bench": "follower", "unit": "ms"}
    for mode, xs in results.items():
        ms = [x * 1000 for x in xs]
        row = {"n": len(ms), "p50": round(statistics.median(ms), 2), "p95": round(pct(ms, 95), 2),
               "p99": round(pct(ms, 99), 2), "max": round(max(ms), 2)}
        out[mode] = row
        print(f"{names[mode]:<28}{row['n']:>5}{row['p50']:>10.2f}{row['p95']:>10.2f}{row['p99']:>10.2f}"
              f"{row['max']:>10.2f}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
