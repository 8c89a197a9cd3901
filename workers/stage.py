"""The decorator every stage task uses: a malformed message is rejected without requeue
(RabbitMQ dead-letters it to ``dead_letter``), never retried into a crash loop; other
per-item failures are logged and counted and the batch goes on."""

from __future__ import annotations

import functools
import logging
import time
from typing import Any, Callable, TypeVar

from celery.exceptions import Reject
from prometheus_client import Counter, Histogram

from arbbot.errors import WireFormatError

log = logging.getLogger("arbbot.stage")

F = TypeVar("F", bound=Callable[..., Any])

MALFORMED = Counter("arbbot_malformed_messages_total", "Messages rejected to the dead-letter queue", ["task"])
ITEMS = Counter("arbbot_stage_items_total", "Items processed per stage", ["stage"])
DURATION = Histogram(
    "arbbot_stage_seconds", "Task duration per stage", ["stage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)


def rejects_malformed(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        except (WireFormatError, KeyError, TypeError, ValueError) as exc:
            MALFORMED.labels(task=fn.__name__).inc()
            log.error("malformed message for %s, dead-lettering it: %s", fn.__name__, exc)
            raise Reject(f"malformed: {exc}", requeue=False) from exc
        finally:
            DURATION.labels(stage=fn.__module__.rsplit(".", 1)[-1]).observe(time.perf_counter() - started)

    return wrapper  # type: ignore[return-value]


def as_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise WireFormatError(f"{what} must be a list, got {type(value).__name__}")
    return value
