#!/usr/bin/env python
"""What a hop of the hot path pays at the broker, by delivery mode: is a transient message
(or no publisher confirm) worth its loss of crash safety?

A consumer waits on a durable queue of its own (prefetch 8, as the workers); a publisher sends
``--messages`` messages of ``--bytes`` (a block's batch is a few kB), one every 10 ms, and
times each publish (until the broker confirmed it, when confirms are on) and each
publish -> delivery. Three settings, each run twice, interleaved, in the same run:
persistent + confirm (the fleet's), transient + confirm, persistent without confirm.

The next stage starts when the message is delivered, not when the publisher's confirm
returns: only the delivery column is on the way to the execute decision.

Run: ``.venv/bin/python bench/latency/broker.py [--messages 300] [--bytes 4000]``; prints a
table and a JSON line. Uses ``ARBBOT_BROKER_URL`` (default the local broker); its queue is
deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.traces import pct  # noqa: E402  (after the path: run as a script)


def main() -> int:
    from kombu import Connection, Exchange, Producer, Queue

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--bytes", type=int, default=4000)
    args = ap.parse_args()
    url = os.environ.get("ARBBOT_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    name = f"arbbot-bench-broker-{uuid.uuid4().hex[:8]}"
    exchange = Exchange("", type="direct")
    queue = Queue(name, exchange, routing_key=name, durable=True)

    def run(delivery_mode: int, confirm: bool) -> dict[str, float]:
        n, received, ready, done = args.messages, {}, threading.Event(), threading.Event()

        def consume() -> None:
            with Connection(url) as conn:
                def on(body: dict, message: object) -> None:
                    received[body["i"]] = time.perf_counter()
                    message.ack()  # type: ignore[attr-defined]
                    if len(received) == n:
                        done.set()

                with conn.Consumer(queue, callbacks=[on], prefetch_count=8):
                    ready.set()
                    while not done.is_set():
                        try:
                            conn.drain_events(timeout=0.5)
                        except TimeoutError:
                            pass

        threading.Thread(target=consume, daemon=True).start()
        ready.wait(30)
        sent, publish = {}, []
        with Connection(url, transport_options={"confirm_publish": confirm}) as conn:
            producer = Producer(conn.default_channel)
            for i in range(n):
                t0 = time.perf_counter()
                producer.publish({"i": i, "pad": "x" * args.bytes}, routing_key=name, delivery_mode=delivery_mode,
                                 serializer="json", declare=[queue])
                publish.append((time.perf_counter() - t0) * 1000)
                sent[i] = t0
                time.sleep(0.01)
        done.wait(30)
        deliver = [(received[i] - sent[i]) * 1000 for i in range(n) if i in received]
        return {"publish_p50": statistics.median(publish), "publish_p95": pct(publish, 95),
                "deliver_p50": statistics.median(deliver), "deliver_p95": pct(deliver, 95),
                "deliver_p99": pct(deliver, 99), "received": len(deliver)}

    settings = {"persistent + confirm (the fleet's)": (2, True), "transient + confirm": (1, True),
                "persistent, no confirm": (2, False)}
    rows: dict[str, list[dict[str, float]]] = {k: [] for k in settings}
    try:
        for _ in range(2):
            for label, (mode, confirm) in settings.items():
                rows[label].append(run(mode, confirm))
    finally:
        with Connection(url) as conn:
            queue(conn.default_channel).delete()
    load = os.getloadavg()
    print(f"{'ms (median of 2 runs)':<36}{'publish p50':>12}{'p95':>7}{'deliver p50':>13}{'p95':>7}{'p99':>7}")
    print("-" * 82)
    out = {"bench": "broker-hop", "unit": "ms", "messages": args.messages, "bytes": args.bytes,
           "load_avg_1": round(load[0], 2), "settings": {}}
    for label, runs in rows.items():
        f = {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}
        out["settings"][label] = f
        print(f"{label:<36}{f['publish_p50']:>12.2f}{f['publish_p95']:>7.2f}{f['deliver_p50']:>13.2f}"
              f"{f['deliver_p95']:>7.2f}{f['deliver_p99']:>7.2f}")
    print(f"load average (1 min): {load[0]:.2f}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
