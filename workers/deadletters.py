"""Dead letters: how a poison message leaves its queue, and the operator's view of them.

Owns the reason a message was dead-lettered and the ``dead_letter`` queue's inspection and
replay (``manage.py arbbot deadletters list|replay``). A message is dead-lettered, never
retried into a crash loop, when

- its body is larger than ``Settings.max_message_bytes`` (checked by the worker's main
  process on receipt, before anything decodes it: a 50 MB batch would cost its worker
  hundreds of MB to parse, and a worker killed for memory would get it again),
- its body does not decode, or is not a Celery protocol-2 body ``[args, kwargs, embed]``
  (Celery itself would drop the first silently and reject the second without a word),
- its task finds a field malformed or of another wire version (``WireFormatError``, in
  ``workers.stage.rejects_malformed``),
- it killed its worker process (SIGKILL, OOM, a segfault mid-task) ``Settings.max_deliveries``
  times: the tasks are ``acks_late`` with ``reject_on_worker_lost``, so RabbitMQ hands such a
  message out again and again, a crash loop. ``StageTask`` counts each start of a
  *redelivered* message in Redis (``Fleet.delivery_started``, keyed by the task id, with a
  TTL) before its body runs and deletes the count when it finishes, however it ends; a
  start that never finished is a worker that died under it. On receipt the main process
  reads the count of a redelivered message (``redelivered`` flag of the AMQP delivery) and
  dead-letters it, reason ``killed its worker N times``, once the first delivery (uncounted)
  plus the unfinished starts reach the limit. A first delivery costs no Redis round trip:
  only redeliveries, which are rare, pay one on receipt and two around the run. A message
  redelivered only because its worker died while it waited in the prefetch counts once at
  most (its first delivery); one that died under it fewer times than the limit runs again.

Such a message is published again, byte for byte with its headers, to the ``arbbot.dlx``
exchange with two headers more: ``x-arbbot-reason`` (why) and ``x-arbbot-queue`` (where it
came from), then acknowledged. If that publish fails the message is rejected without
requeue instead, which RabbitMQ dead-letters through the queue's own arguments (reason
``rejected`` in ``x-death``, the way Celery's own rejections such as an unknown task
arrive too).

``list_dead_letters`` reads the queue without consuming it (messages taken unacknowledged,
then returned by closing the channel); ``replay`` publishes chosen messages back to their
queue and only then acknowledges them. Replay is for after a fix (a worker that speaks the
new wire version): a message still poison is dead-lettered again, with its reason.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import redis
from celery import Task
from celery.worker.strategy import default as default_strategy
from kombu import Connection, Queue

from arbbot.config import get_settings
from workers import queues

log = logging.getLogger("arbbot.deadletters")

REASON_HEADER = "x-arbbot-reason"
QUEUE_HEADER = "x-arbbot-queue"
AT_HEADER = "x-arbbot-dead-lettered-at"
_BROKER_HEADERS = ("x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
                   "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason")


def _publish_dead(producer: Any, body: Any, headers: dict[str, Any], properties: dict[str, Any], *,
                  queue: str, reason: str, serializer: str | None = None) -> None:
    producer.publish(
        body,
        exchange=queues.dlx,
        routing_key=queues.DEAD_LETTER_QUEUE,
        headers={**headers, REASON_HEADER: reason[:1000], QUEUE_HEADER: queue, AT_HEADER: time.time()},
        delivery_mode=2,
        serializer=serializer,
        retry=True,
        retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
        **properties,
    )


def dead_letter_message(app: Any, message: Any, reason: str) -> None:
    """Dead-letter a received kombu ``message`` as it is, with ``reason`` (module docstring)."""
    queue = str((message.delivery_info or {}).get("routing_key") or "unknown")
    props = {k: v for k, v in (message.properties or {}).items() if k in ("correlation_id", "reply_to", "priority")}
    try:
        with app.producer_pool.acquire(block=True, timeout=10) as producer:
            _publish_dead(producer, message.body, dict(message.headers or {}), {
                "content_type": message.content_type, "content_encoding": message.content_encoding, **props,
            }, queue=queue, reason=reason)
    except Exception:
        log.exception("could not publish a dead letter from %s; rejecting it to the broker's DLX", queue)
        message.reject(requeue=False)
        return
    message.ack()
    log.error("dead-lettered a message from %s: %s", queue, reason)


def dead_letter_task(task: Task, reason: str) -> None:
    """Dead-letter the message the running ``task`` was called with (its args, kwargs,
    id and name, re-encoded as Celery protocol 2), with ``reason``. Raises when the
    publish fails (the caller then rejects the message)."""
    req = task.request
    queue = str((req.delivery_info or {}).get("routing_key") or "unknown")
    msg = task.app.amqp.as_task_v2(req.id, task.name, list(req.args or ()), dict(req.kwargs or {}))
    with task.app.producer_pool.acquire(block=True, timeout=10) as producer:
        _publish_dead(producer, msg.body, dict(msg.headers), dict(msg.properties), queue=queue, reason=reason,
                      serializer="json")


def bounded(task: Task, app: Any, consumer: Any, **kw: Any) -> Callable[..., Any]:
    """The worker's strategy for the stage tasks: Celery's default, after the checks of
    the module docstring that run in the main process on receipt."""
    inner = default_strategy(task, app, consumer, **kw)
    settings = get_settings()
    limit, max_deliveries = settings.max_message_bytes, settings.max_deliveries

    def handler(message: Any, body: Any, ack: Any, reject: Any, callbacks: Any, **more: Any) -> Any:
        size = len(message.body or b"")
        if limit and size > limit:
            from workers.stage import MALFORMED

            MALFORMED.labels(task=task.name.rsplit(".", 1)[-1]).inc()
            dead_letter_message(app, message, f"too large: {size} bytes, the limit is {limit}")
            return None
        if body is None:
            try:
                payload = message.payload
            except Exception as exc:
                dead_letter_message(app, message, f"undecodable body: {type(exc).__name__}: {exc}"[:300])
                return None
            if not (isinstance(payload, (list, tuple)) and len(payload) == 3 and isinstance(payload[0], (list, tuple))
                    and isinstance(payload[1], dict)):
                dead_letter_message(app, message, "not a Celery protocol-2 body [args, kwargs, embed]")
                return None
        if max_deliveries and (message.delivery_info or {}).get("redelivered"):
            killed = _deliveries_killed(message, max_deliveries)
            if killed:
                dead_letter_message(app, message, f"killed its worker {killed} times")
                _forget_deliveries(str((message.headers or {}).get("id") or ""))
                return None
        return inner(message, body, ack, reject, callbacks, **more)

    return handler


@functools.lru_cache(maxsize=1)
def _max_deliveries() -> int:
    return get_settings().max_deliveries


def _fleet() -> Any:
    from workers import runtime

    return runtime.fleet()


def _deliveries_killed(message: Any, max_deliveries: int) -> int:
    """How many deliveries of the redelivered ``message`` died with their worker, when that
    reaches ``max_deliveries``; else 0 (run it). The first delivery is not counted in Redis:
    it is taken to have died (the message came back)."""
    task_id = (message.headers or {}).get("id")
    if not task_id:
        return 0
    if max_deliveries <= 1:
        return 1
    try:
        killed = 1 + _fleet().deliveries_unfinished(str(task_id))
    except redis.RedisError as exc:  # run it: an outage is no reason to drop work
        log.warning("could not read the delivery count of %s: %s", task_id, exc)
        return 0
    return killed if killed >= max_deliveries else 0


def _forget_deliveries(task_id: str) -> None:
    if not task_id:
        return
    try:
        _fleet().delivery_finished(task_id)
    except redis.RedisError as exc:  # the count expires by itself
        log.warning("could not clear the delivery count of %s: %s", task_id, exc)


class StageTask(Task):
    """The fleet's task class: the stage checks of ``bounded`` on every task message, and
    the count of redelivered starts that never finished (module docstring)."""

    Strategy = "workers.deadletters:bounded"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        info = self.request.delivery_info
        if not (info and info.get("redelivered")) or not _max_deliveries():
            return super().__call__(*args, **kwargs)
        task_id = str(self.request.id)
        try:
            _fleet().delivery_started(task_id)
        except redis.RedisError as exc:
            log.warning("could not count the start of %s: %s", task_id, exc)
        try:
            return super().__call__(*args, **kwargs)
        finally:  # finished, however: not a start that killed its worker
            _forget_deliveries(task_id)


# ------------------------------------------------------------------ inspection and replay


@dataclass(frozen=True)
class DeadLetter:
    task_id: str
    task: str
    queue: str
    reason: str
    size_bytes: int
    dead_lettered_at: float | None


def _describe(message: Any) -> DeadLetter:
    h = dict(message.headers or {})
    queue, reason = h.get(QUEUE_HEADER), h.get(REASON_HEADER)
    at = h.get(AT_HEADER)
    deaths = h.get("x-death") or []
    if deaths and isinstance(deaths, list) and isinstance(deaths[0], dict):
        queue = queue or deaths[0].get("queue")
        if reason is None:
            reason = f"{deaths[0].get('reason', 'rejected')} by a worker or the broker (no reason recorded)"
        if at is None and deaths[0].get("time") is not None:
            t = deaths[0]["time"]
            at = t.timestamp() if hasattr(t, "timestamp") else t
    return DeadLetter(
        task_id=str(h.get("id") or message.properties.get("correlation_id") or "?"),
        task=str(h.get("task") or "?"),
        queue=str(queue or "?"),
        reason=str(reason or "?"),
        size_bytes=len(message.body or b""),
        dead_lettered_at=float(at) if isinstance(at, (int, float)) else None,
    )


def _dead_letter_queue() -> Queue:
    return next(q for q in queues.celery_queues() if q.name == queues.DEAD_LETTER_QUEUE)


def _take(conn: Connection, limit: int) -> tuple[Any, list[Any]]:
    channel = conn.channel()
    q = _dead_letter_queue().bind(channel)
    q.declare()
    taken = []
    while len(taken) < limit:
        m = q.get(no_ack=False, accept=None)
        if m is None:
            break
        taken.append(m)
    return channel, taken


def list_dead_letters(broker_url: str, limit: int = 100, *, ssl: bool | dict[str, Any] = False) -> list[DeadLetter]:
    """Up to ``limit`` dead letters, oldest first; the queue is left as it was. ``ssl``: the
    broker's TLS options (``Settings.broker_ssl``)."""
    with Connection(broker_url, ssl=ssl, connect_timeout=10) as conn:
        channel, taken = _take(conn, limit)
        try:
            return [_describe(m) for m in taken]
        finally:
            channel.close()  # every message taken goes back, unconsumed


def replay(broker_url: str, task_ids: Iterable[str] | None = None, limit: int = 1000, *,
           ssl: bool | dict[str, Any] = False) -> list[DeadLetter]:
    """Publish the dead letters with these task ids (all, when None) back to the queue
    they came from, acknowledging each only after its publish; returns what was replayed."""
    wanted = None if task_ids is None else set(task_ids)
    done: list[DeadLetter] = []
    # publisher confirms: a message is acknowledged here only once the broker has its copy
    with Connection(broker_url, ssl=ssl, connect_timeout=10, transport_options={"confirm_publish": True}) as conn:
        channel, taken = _take(conn, limit)
        try:
            producer = conn.Producer(channel=conn.channel())
            for m in taken:
                d = _describe(m)
                if (wanted is not None and d.task_id not in wanted) or d.queue not in queues.STAGE_QUEUES:
                    continue
                headers = {k: v for k, v in (m.headers or {}).items()
                           if k not in (REASON_HEADER, QUEUE_HEADER, AT_HEADER) and k not in _BROKER_HEADERS}
                producer.publish(m.body, exchange=queues.exchange, routing_key=d.queue, headers=headers,
                                 content_type=m.content_type, content_encoding=m.content_encoding, delivery_mode=2,
                                 retry=True)
                m.ack()
                done.append(d)
        finally:
            channel.close()
    return done
