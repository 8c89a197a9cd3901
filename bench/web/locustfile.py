"""Locust users for ``bench/web/run.py``: each GETs the console's public pages (the health
check and the login page) - as fast as it can (``LOADWEB_PACE=0``) or at a steady pace per
user - and every response's status is counted; the counts, latencies and the run's
duration go to the JSON file ``LOADWEB_OUT`` when Locust quits."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from typing import Any

from locust import HttpUser, constant, constant_throughput, events, task

STATUS: Counter[int] = Counter()
LATENCY_MS: list[float] = []
STARTED: list[float] = []
PACE = float(os.environ.get("LOADWEB_PACE", "0"))  # requests/s per user; 0: no wait


@events.request.add_listener
def _count(response: Any = None, response_time: float = 0.0, exception: Exception | None = None, **_: Any) -> None:
    if not STARTED:
        STARTED.append(time.monotonic())
    code = getattr(response, "status_code", 0) or 0
    STATUS[code] += 1
    LATENCY_MS.append(response_time)


@events.quitting.add_listener
def _write(environment: Any, **_: Any) -> None:
    out = os.environ.get("LOADWEB_OUT")
    if not out:
        return
    duration = time.monotonic() - STARTED[0] if STARTED else 0.0
    lat = sorted(LATENCY_MS)

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 1) if lat else 0.0

    with open(out, "w") as f:
        json.dump({"status": {str(k): v for k, v in STATUS.items()}, "duration_s": round(duration, 2),
                   "p50_ms": pct(0.5), "p95_ms": pct(0.95), "p99_ms": pct(0.99)}, f)
    environment.process_exit_code = 0  # 429s are the point here, not failures of the run


class Visitor(HttpUser):
    wait_time = constant_throughput(PACE) if PACE > 0 else constant(0)

    @task(3)
    def health(self) -> None:
        with self.client.get("/healthz", name="/healthz", catch_response=True) as r:
            r.success()

    @task(1)
    def login_page(self) -> None:
        with self.client.get("/accounts/login/", name="/accounts/login/", catch_response=True) as r:
            r.success()
