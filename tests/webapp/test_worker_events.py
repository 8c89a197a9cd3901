"""A real worker's monitoring events (``workers.consumer``) on the real RabbitMQ: every task
state still reaches an event receiver (Flower's view), and they go out on a connection of
their own whose channels are not in confirm mode, so no hop waits for an event's confirm.
(Outside ``tests/e2e``: that package's fleet would consume the analytics queue.)"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.fleet import wait_for
from tests.webapp.test_ml_worker import workers
from workers.celery_app import app
from workers.consumer import EVENTS_CONNECTION
from workers.tasks import analytics

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def rabbitmqctl(*args: str) -> Any:
    exe = shutil.which("rabbitmqctl")
    if exe is None:
        pytest.skip("rabbitmqctl is not installed")
    out = subprocess.run([exe, "-q", "--formatter", "json", *args], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def events_channels(worker: str) -> list[bool]:
    """The confirm mode of each channel on the worker's events connection (none: no such connection)."""
    vhost = app.connection_for_write().virtual_host
    pids = [c["pid"] for c in rabbitmqctl("list_connections", "pid", "client_properties", "vhost")
            if c["vhost"] == vhost
            and ["connection_name", "longstr", f"{EVENTS_CONNECTION} {worker}"] in c["client_properties"]]
    return [ch["confirm"] for ch in rabbitmqctl("list_channels", "connection", "confirm") if ch["connection"] in pids]


def test_a_worker_sends_every_task_event_without_waiting_for_confirms(tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    stop = threading.Event()

    def listen() -> None:
        with app.connection_for_read() as conn:
            receiver = app.events.Receiver(conn, handlers={"*": events.append})
            while not stop.is_set():
                try:
                    receiver.capture(limit=None, timeout=0.5, wakeup=False)
                except (socket.timeout, TimeoutError):
                    pass

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    try:
        with workers(tmp_path, queues=("analytics",)):
            # the worker's heartbeats come every 2 s: once one is here, the receiver is listening
            hostname = wait_for(lambda: next((e["hostname"] for e in events if e["type"] == "worker-heartbeat"), None),
                                300, "the worker's first heartbeat")
            task_id = analytics.record_opportunities.delay([]).id

            def states() -> set[str] | None:
                got = {e["type"] for e in list(events) if e.get("uuid") == task_id}
                return got if "task-succeeded" in got else None

            assert {"task-received", "task-started", "task-succeeded"} <= wait_for(states, 60, "the task's events")
            confirms = events_channels(hostname)
            assert confirms and not any(confirms), confirms  # it published, unconfirmed
    finally:
        stop.set()
        listener.join(timeout=10)
