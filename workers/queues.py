"""The RabbitMQ topology, declared once. Celery, ``infrastructure/rabbitmq/definitions.json``,
the compose worker services, the Kubernetes/KEDA triggers and the Helm values all name
these queues; ``tests/deploy`` checks they agree.
"""

from __future__ import annotations

from kombu import Exchange, Queue

# The pipeline stages, each served by its own worker pool.
STAGE_QUEUES: tuple[str, ...] = ("scan", "path", "ml", "execute", "bridge", "analytics")
DEAD_LETTER_QUEUE = "dead_letter"

EXCHANGE_NAME = "arbbot"  # direct exchange; routing key == queue name
DLX_NAME = "arbbot.dlx"  # dead-letter exchange; routing key "dead_letter"

exchange = Exchange(EXCHANGE_NAME, type="direct", durable=True)
dlx = Exchange(DLX_NAME, type="direct", durable=True)


def queue_arguments() -> dict[str, str]:
    """Arguments every stage queue is declared with. Must equal definitions.json, or the
    broker closes the channel with PRECONDITION_FAILED."""
    return {"x-dead-letter-exchange": DLX_NAME, "x-dead-letter-routing-key": DEAD_LETTER_QUEUE}


def celery_queues() -> list[Queue]:
    queues = [
        Queue(name, exchange, routing_key=name, durable=True, queue_arguments=queue_arguments())
        for name in STAGE_QUEUES
    ]
    queues.append(Queue(DEAD_LETTER_QUEUE, dlx, routing_key=DEAD_LETTER_QUEUE, durable=True))
    return queues


def route_for_task(name: str) -> str | None:
    """Routing by task module: ``workers.tasks.<queue>.<task>`` goes to ``<queue>``."""
    parts = name.split(".")
    if len(parts) >= 4 and parts[0] == "workers" and parts[1] == "tasks" and parts[2] in STAGE_QUEUES:
        return parts[2]
    return None


def declare_topology(connection: object) -> None:
    """Declare every exchange and queue (the dead-letter queue included) on ``connection``.

    Workers only declare the queues they consume; without this, a message rejected before
    anyone declared ``dead_letter`` would be dropped by the DLX. Idempotent, and the
    arguments equal ``definitions.json`` so a broker loaded from it accepts the redeclare."""
    from kombu import Connection

    assert isinstance(connection, Connection)
    channel = connection.default_channel
    for q in celery_queues():
        q.bind(channel).declare()
