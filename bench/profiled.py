"""A fleet worker run under cProfile, and its profile printed: the ``--profile QUEUE``
option of ``bench.latency.run`` and ``bench.pipeline.run``."""

from __future__ import annotations

import pstats
import sys
from pathlib import Path


def worker(celery: str, prof: Path) -> tuple[list[str], list[str]]:
    """The command prefix and pool options of a celery worker run under cProfile: the solo
    pool, so that its tasks run in the profiled process; the profile goes to ``prof`` when
    the worker stops."""
    return [sys.executable, "-m", "cProfile", "-o", str(prof), celery], ["--pool", "solo"]


def report(prof: Path, title: str, lines: int = 45) -> None:
    """The project's functions in ``prof``, by cumulative time."""
    print(f"\n== cProfile of {title}, by cumulative time", flush=True)
    pstats.Stats(str(prof)).sort_stats("cumulative").print_stats("arbbot|webapp|workers", lines)
