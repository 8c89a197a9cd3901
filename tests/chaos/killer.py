"""A test-only task that kills the worker process running it: loaded only by the chaos
suite's workers (``procs.worker(include="tests.chaos.killer")``), never by the fleet."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from workers.celery_app import app


@app.task(name="tests.chaos.killer.run", acks_late=True, reject_on_worker_lost=True)
def run(marker: str, kills: int) -> None:
    """Note this run in ``marker`` (one line a run); SIGKILL this process on the first
    ``kills`` runs, as an OOM kill or a segfault mid-task would."""
    path = Path(marker)
    with path.open("a") as f:
        f.write(f"{os.getpid()}\n")
    if len(path.read_text().splitlines()) <= kills:
        os.kill(os.getpid(), signal.SIGKILL)
