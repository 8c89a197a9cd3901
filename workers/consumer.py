"""The worker's consumer (Celery's ``worker_consumer``): how a worker reconnects to a lost
broker, and the connection its monitoring events go out on.

Kept apart from ``workers.celery_app`` (no Django here) so that ``bench/latency/hop.py``
runs the same consumer in its own app.
"""

from __future__ import annotations

from typing import Any

from celery.worker.consumer import Consumer as _CeleryConsumer

#: The longest wait between two attempts to reach a lost broker. Celery leaves kombu's
#: defaults (2 s, then 2 s more each time, up to 30 s), so a worker could sit 20-30 s idle
#: after the broker came back; measured by tests/chaos, this resumes within a few seconds.
BROKER_RECONNECT_MAX_S = 2.0

#: The name a worker's events connection gives RabbitMQ, before the worker's name.
EVENTS_CONNECTION = "arbbot events"


class Consumer(_CeleryConsumer):
    """Celery's consumer, reconnecting to a lost broker every ``BROKER_RECONNECT_MAX_S``,
    whose monitoring events (Flower's ``task-received``, ``task-started``, ...) are published
    without waiting for the broker's confirm.

    The fleet publishes with confirms (``confirm_publish``): a task message is not lost
    once its publish returns. An event is telemetry, and its wait lay on each hop's way: the
    pool's parent flushes the ``task-received`` of a message before it hands the message to
    its child, one round trip to RabbitMQ (``bench/latency/hop.py``). The events' connection
    is the only one this method opens (Celery's ``Events`` step); task messages, the
    dead-letter publisher and the stages' own publishes go through others, confirmed."""

    def ensure_connected(self, conn: Any) -> Any:
        ensure = conn.ensure_connection
        conn.ensure_connection = lambda *a, **kw: ensure(
            *a, **{"interval_start": 0.5, "interval_step": 0.5, "interval_max": BROKER_RECONNECT_MAX_S, **kw})
        return super().ensure_connected(conn)

    def connection_for_write(self, url: str | None = None, heartbeat: float | None = None) -> Any:
        options = {"confirm_publish": False,
                   # RabbitMQ shows it (``user_provided_name``): which connection is whose
                   "client_properties": {"connection_name": f"{EVENTS_CONNECTION} {self.hostname}"}}
        return self.ensure_connected(self.app.connection_for_write(
            url=url, heartbeat=heartbeat, transport_options=options))
