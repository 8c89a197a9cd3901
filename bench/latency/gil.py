#!/usr/bin/env python
"""What a thread's round trips cost while another thread of the process computes, by the
interpreter's switch interval (``sys.setswitchinterval``): the execute stage claims a batch
(database round trips) on the task's thread while its re-validation ahead (re-sizing and
encoding in Python, then a node round trip) runs on the background thread.

A thread that comes back from a socket needs the GIL; while the other thread computes, it
waits until that thread is asked to drop it, which happens after the switch interval (5 ms by
default). A claim of three round trips can so wait up to 15 ms longer than its work.

Per switch interval, interleaved in rounds: the main thread makes ``--trips`` Redis round
trips (``PING``, the real Redis of ``ARBBOT_REDIS_URL``) while a second thread runs the path
sizing's exact integer arithmetic in a loop; the main thread's time for them (p50, p95), and
how much work the second thread did meanwhile (its share of the time is what it gives up).
Alone: the same round trips with no second thread. Prints a table and a JSON line.

Run: ``.venv/bin/python bench/latency/gil.py [--trips 4] [--samples 200]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time

import redis

INTERVALS_S = (0.005, 0.001, 0.0005, 0.0001)


def compute(stop: threading.Event, done: list[int]) -> None:
    """Exact integer sizing-like work (the V2 closed form on 256-bit reserves) until told."""
    n = 0
    r0, r1 = 10**24 + 7, 3 * 10**27 + 11
    while not stop.is_set():
        for k in range(200):
            a = (r0 + k) * (r1 - k) * 997 * 1000
            n += int(a**0.5) & 1 if a < 2**1000 else 0
        n += 1
    done.append(n)


def sample(client: redis.Redis, trips: int, busy: bool) -> tuple[float, int]:
    stop, done = threading.Event(), []  # type: ignore[var-annotated]
    worker = threading.Thread(target=compute, args=(stop, done), daemon=True) if busy else None
    if worker:
        worker.start()
        time.sleep(0.002)  # the other thread is computing when the trips start
    t0 = time.perf_counter()
    for _ in range(trips):
        client.ping()
    elapsed = (time.perf_counter() - t0) * 1000
    if worker:
        stop.set()
        worker.join()
    return elapsed, done[0] if done else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trips", type=int, default=4, help="round trips a sample (a claim makes 3-4)")
    ap.add_argument("--samples", type=int, default=200, help="samples per setting, interleaved in rounds")
    args = ap.parse_args()
    for name in ("trips", "samples"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} {getattr(args, name)}: must be positive")
    client = redis.Redis.from_url(os.environ.get("ARBBOT_REDIS_URL", "redis://127.0.0.1:6379/0"))
    client.ping()
    default = sys.getswitchinterval()
    settings = [("alone", None), *((f"{s * 1000:g} ms", s) for s in INTERVALS_S)]
    times: dict[str, list[float]] = {name: [] for name, _ in settings}
    work: dict[str, list[int]] = {name: [] for name, _ in settings}
    rounds = 10
    try:
        for _ in range(rounds):
            for name, interval in settings:
                sys.setswitchinterval(interval or default)
                for _ in range(max(1, args.samples // rounds)):
                    ms, n = sample(client, args.trips, interval is not None)
                    times[name].append(ms)
                    work[name].append(n)
    finally:
        sys.setswitchinterval(default)
    figs = {}
    print(f"{f'{args.trips} Redis round trips beside a computing thread, ms':<58}{'p50':>8}{'p95':>8}")
    for name, _ in settings:
        s = sorted(times[name])
        figs[name] = {"p50": round(statistics.median(s), 3), "p95": round(s[int(0.95 * (len(s) - 1))], 3)}
        print(f"{'switch interval ' + name if name != 'alone' else 'alone (no other thread)':<58}"
              f"{figs[name]['p50']:>8.3f}{figs[name]['p95']:>8.3f}")
    print(json.dumps({"bench": "gil-switch", "unit": "ms", "trips": args.trips, "default_s": default, **figs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
