"""Processes the chaos suite starts and stops itself: Celery workers on a broker URL of
its choosing, a private RabbitMQ vhost, and task messages published byte for byte."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

from kombu import Connection

from tests.e2e.fleet import wait_for

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def worker(queues: str, env: dict[str, str], logs: Path, *, concurrency: int = 1,
           name: str | None = None, include: str | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """One real Celery worker (prefork) consuming ``queues`` (comma-separated), logging to
    ``logs/<name>.log``; yields once it is up (its heartbeat file exists), stops it
    (SIGTERM, then SIGKILL after 30 s) on exit. ``include``: more task modules to load
    (Celery's ``--include``), such as the chaos suite's own test tasks."""
    name = name or f"{queues.replace(',', '-')}-{uuid.uuid4().hex[:6]}"
    hb = logs / f"hb-{name}"
    hb.unlink(missing_ok=True)
    log = open(logs / f"{name}.log", "ab")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "workers.celery_app", "worker", "-Q", queues,
         "-n", f"{name}@%h", "--pool", "prefork", "--concurrency", str(concurrency), "-l", "INFO",
         *(["--include", include] if include else [])],
        cwd=ROOT, env={**env, "ARBBOT_HEARTBEAT_FILE": str(hb), "PYTHONUNBUFFERED": "1"},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_for(lambda: hb.exists() or proc.poll() is not None, 240, f"worker {name} to start")  # a loaded 2-core machine
        assert proc.poll() is None, f"worker {name} exited: {(logs / f'{name}.log').read_text()[-3000:]}"
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def _rabbitmqctl(*args: str) -> bool:
    exe = shutil.which("rabbitmqctl")
    return bool(exe) and subprocess.run([exe, "-q", *args], capture_output=True, timeout=60).returncode == 0


@contextlib.contextmanager
def private_vhost(host: str = "127.0.0.1:5672") -> Iterator[str]:
    """A vhost of its own on the machine's broker (its queues, its dead letters), deleted
    after; yields its broker URL."""
    name = f"arbbot-chaos-{uuid.uuid4().hex[:8]}"
    if not (_rabbitmqctl("add_vhost", name) and _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")):
        import pytest

        pytest.skip("rabbitmqctl cannot make a vhost here")
    try:
        yield f"amqp://guest:guest@{host}/{name}"
    finally:
        _rabbitmqctl("delete_vhost", name)


def publish_task(conn: Connection, task: str, args: list[Any], queue: str, *, raw_body: bytes | None = None,
                 task_id: str | None = None) -> str:
    """Publish a Celery protocol-2 message for ``task`` to ``queue`` as the fleet does (or,
    with ``raw_body``, those headers with any body at all); returns its task id."""
    from workers import queues

    task_id = task_id or str(uuid.uuid4())
    headers = {"lang": "py", "task": task, "id": task_id, "root_id": task_id, "parent_id": None, "group": None,
               "retries": 0, "eta": None, "expires": None, "argsrepr": "...", "kwargsrepr": "{}",
               "origin": "chaos", "ignore_result": True}
    body = raw_body if raw_body is not None else json.dumps(
        [args, {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]).encode()
    conn.Producer().publish(body, exchange=queues.exchange, routing_key=queue, headers=headers,
                            content_type="application/json", content_encoding="utf-8", delivery_mode=2,
                            correlation_id=task_id)
    return task_id
