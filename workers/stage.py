"""The decorator every stage task uses: a malformed message is dead-lettered with its
reason (``workers.deadletters``), never retried into a crash loop; a batch that failed
because the database or Redis was unreachable (a restart, a failover) is retried with
backoff, and dead-lettered with its reason once ``TRANSIENT_RETRIES`` are spent, never
dropped (the stages are idempotent: what the first attempt recorded is not recorded
twice); other per-item failures are logged and counted and the batch goes on."""

from __future__ import annotations

import functools
import json
import logging
import time
from typing import Any, Callable, Sequence, TypeVar

import redis
from celery.exceptions import Reject
from django.db import InterfaceError as DbInterfaceError
from django.db import OperationalError as DbOperationalError
from prometheus_client import Counter, Gauge, Histogram

from arbbot import obs
from arbbot.errors import WireFormatError
from arbbot.types import Opportunity

log = logging.getLogger("arbbot.stage")

F = TypeVar("F", bound=Callable[..., Any])

# Metric names are the ones infrastructure/README.md documents and the dashboards and
# alert rules read.
MALFORMED = Counter("arbbot_malformed_messages_total", "Messages rejected to the dead-letter queue", ["task"])
ITEMS = Counter("arbbot_stage_items_total", "Items processed per stage", ["stage"])
BATCHES = Counter("arbbot_stage_batches_total", "Batches (messages) processed per stage", ["stage"])
ERRORS = Counter("arbbot_stage_errors_total", "Items or batches that failed, per stage", ["stage"])
DURATION = Histogram(
    "arbbot_stage_batch_seconds", "Wall time per batch, per stage", ["stage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
OPPORTUNITIES = Counter("arbbot_opportunities_total", "Opportunities found by the path stage", ["chain"])
BLOCKS_SINCE_OPPORTUNITY = Gauge(
    "arbbot_blocks_since_last_opportunity", "Blocks evaluated since the last opportunity", ["chain"],
    multiprocess_mode="max",
)
EXECUTIONS = Counter("arbbot_executions_total", "Execution attempts by outcome", ["chain", "status"])
#: From the block's arrival (follower stamp) to the execute stage's decision per opportunity
#: (``arbbot.execution.stage``); the devnet's target is far under 50 ms.
BLOCK_TO_DECISION = Histogram(
    "arbbot_block_to_decision_seconds", "Block arrival to the execute decision, per opportunity", ["chain"],
    buckets=(0.002, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5),
)
GAS_SPENT = Counter("arbbot_gas_spent_wei_total", "Gas paid by sent transactions, wei", ["chain"])
#: The ml stage's score of every opportunity it decided on (the rule scorer's: profit / gas),
#: by the model that scored it and its decision (``execute``, ``skip``).
MODEL_SCORE = Histogram(
    "arbbot_model_score", "Score of each decided opportunity, by model and decision", ["chain", "model", "decision"],
    buckets=(0, 0.5, 1, 1.5, 2, 3, 5, 10, 20, 50, 100, 1000),
)
#: Where a block's time goes: from its arrival to each mark of its trace (``Trace``).
SINCE_ARRIVAL = Histogram(
    "arbbot_block_since_arrival_seconds", "Block arrival to each stage mark (scan.start, path.sent, ...)",
    ["chain", "mark"],
    buckets=(0.001, 0.002, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5),
)
trace_log = logging.getLogger("arbbot.trace")


def bind_batch(opps: Sequence[Opportunity]) -> None:
    """Name a batch's chain and block on its log lines and span, where the batch has one."""
    chains = {o.chain_id for o in opps}
    blocks = {o.block_number for o in opps}
    obs.bind(chain=chains.pop() if len(chains) == 1 else None, block=blocks.pop() if len(blocks) == 1 else None)


#: The database or Redis unreachable: the batch is tried again later, not failed.
TRANSIENT = (DbOperationalError, DbInterfaceError, redis.ConnectionError, redis.TimeoutError)
TRANSIENT_RETRIES = 30  # with the backoff below: about two and a half minutes
RETRIES = Counter("arbbot_stage_retries_total", "Batches retried after a database or Redis outage", ["stage"])


def _retry_delay_s(retries: int) -> float:
    return min(5.0, 0.25 * 2**retries)


def rejects_malformed(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        stage = fn.__module__.rsplit(".", 1)[-1]
        BATCHES.labels(stage=stage).inc()
        try:
            return fn(*args, **kwargs)
        except WireFormatError as exc:  # decoding failed: the message itself is bad
            MALFORMED.labels(task=fn.__name__).inc()
            ERRORS.labels(stage=stage).inc()
            log.error("malformed message for %s, dead-lettering it: %s", fn.__name__, exc)
            from celery import current_task

            from workers.deadletters import dead_letter_task

            try:
                dead_letter_task(current_task, f"malformed: {exc}")
            except Exception:  # the broker's DLX takes it instead, without the reason
                log.exception("could not publish the dead letter; rejecting it")
                raise Reject(f"malformed: {exc}", requeue=False) from exc
            return None
        except TRANSIENT as exc:
            from celery import current_task

            from workers.deadletters import dead_letter_task

            ERRORS.labels(stage=stage).inc()
            if current_task.request.retries >= TRANSIENT_RETRIES:
                log.error("%s: %s still unreachable after %d retries, dead-lettering the batch",
                          fn.__name__, type(exc).__name__, TRANSIENT_RETRIES)
                dead_letter_task(current_task, f"gave up after {TRANSIENT_RETRIES} retries: "
                                               f"{type(exc).__name__}: {exc}"[:500])
                return None
            RETRIES.labels(stage=stage).inc()
            log.warning("%s: %s (%s), retrying the batch", fn.__name__, type(exc).__name__, str(exc)[:200])
            raise current_task.retry(countdown=_retry_delay_s(current_task.request.retries),
                                     max_retries=TRANSIENT_RETRIES + 1) from exc  # None: Celery's 3
        except Exception:
            ERRORS.labels(stage=stage).inc()
            raise
        finally:
            DURATION.labels(stage=stage).observe(time.perf_counter() - started)

    return wrapper  # type: ignore[return-value]


def as_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise WireFormatError(f"{what} must be a list, got {type(value).__name__}")
    return value


class Trace:
    """A block's way through the stages, carried from task to task as the ``trace`` keyword
    (a list of ``[mark, unix time]``, first ``arrived``): each stage adds when it started
    and when it handed on. The execute stage observes every mark against the arrival
    (``arbbot_block_since_arrival_seconds``) and each decision (``decided``), and logs the
    whole trace with the decisions' times as one JSON line on ``arbbot.trace``
    (``bench/latency`` reads it). A message without one (an old producer) carries none on."""

    def __init__(self, marks: Any = None) -> None:
        ok = isinstance(marks, list) and all(
            isinstance(m, list) and len(m) == 2 and isinstance(m[0], str) and isinstance(m[1], (int, float))
            for m in marks
        )
        self.marks: list[list[Any]] | None = [list(m) for m in marks] if ok and marks else None

    @classmethod
    def start(cls, arrived_at: float | None) -> Trace:
        return cls([["arrived", arrived_at]] if arrived_at else None)

    def mark(self, name: str, at: float | None = None) -> Trace:
        if self.marks is not None:
            self.marks.append([name, time.time() if at is None else at])
        return self

    def wire(self, name: str) -> list[list[Any]] | None:
        """The trace to send on, marked ``name`` (when it is sent)."""
        return None if self.marks is None else [*self.marks, [name, time.time()]]

    def done(self, chain_id: int, block: int, decided_at: list[float]) -> None:
        if self.marks is None:
            return
        arrived = self.marks[0][1]
        chain = str(chain_id)
        for name, at in [*self.marks[1:], *(["decided", d] for d in decided_at)]:
            SINCE_ARRIVAL.labels(chain=chain, mark=name).observe(max(0.0, at - arrived))
        if trace_log.isEnabledFor(logging.INFO):
            trace_log.info("%s", json.dumps({"chain": chain_id, "block": block, "marks": self.marks,
                                             "decided_at": decided_at}))
