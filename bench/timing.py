"""Timing of one call for the micro-benchmarks (``bench.obs``, ``bench.deliveries``)."""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable


def per_call_us(fn: Callable[[], Any], n: int, rounds: int = 5) -> float:
    """Median over ``rounds`` of the mean time of ``n`` calls, in microseconds."""
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        out.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(out)
