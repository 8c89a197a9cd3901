"""The one Celery app: broker, queue topology, routing by task module, beat schedule,
worker heartbeat (liveness), metrics, and the wiring of logs and traces.

Logs: Celery's own loggers and the tasks' go through ``arbbot.obs.logs`` (the
``setup_logging`` receiver keeps Celery from installing its formatter); each task starts
with no context fields of the one before. Traces (when ``OTEL_*`` asks for them,
``arbbot.obs.tracing``): the SDK is installed in the worker's (or beat's) main process
before the pool forks, and Celery's instrumentation carries the trace context in each
message's headers, so a block's trace runs scan -> path -> ml -> execute across queues.

Reliability choices: results are ignored (stages hand batches on, nobody waits);
``task_acks_late`` + ``task_reject_on_worker_lost`` are set per task, only on the
idempotent ones; a poison message (too large, undecodable, malformed, another wire
version) goes to ``dead_letter`` through the ``arbbot.dlx`` exchange with its reason
(``workers.deadletters``).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

import django

from arbbot.config import get_settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
if get_settings().metrics_port and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    # Prefork: tasks run in child processes, the metrics server in the parent. Multiprocess
    # mode (set before prometheus_client is first imported) sums the children's values.
    _prom_dir = Path(tempfile.gettempdir()) / f"arbbot-prometheus-{os.getpid()}"
    _prom_dir.mkdir(exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_prom_dir)
    # The celery CLI may already have imported prometheus_client (Flower's command plugin
    # does), fixing its value class before the variable was set: choose it again.
    from prometheus_client import values as _prom_values

    _prom_values.ValueClass = _prom_values.get_value_class()
django.setup()

from celery import Celery, bootsteps  # noqa: E402
from celery.signals import (  # noqa: E402
    beat_init,
    celeryd_after_setup,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

from arbbot.obs import logs, tracing  # noqa: E402

from workers import queues, serializer  # noqa: E402

settings = get_settings()


def _xchain_schedule(every_s: float) -> dict[str, dict[str, Any]]:
    """Beat's cross-chain entries, when ``ARBBOT_XCHAIN_TICK_S`` turns them on: the
    strategy's pass, and a resume of open sagas (a step whose message was lost) every ten."""
    if not every_s:
        return {}
    return {
        "xchain-tick": {"task": "workers.tasks.bridge.tick", "schedule": every_s},
        "xchain-resume": {"task": "workers.tasks.bridge.resume", "schedule": 10 * every_s},
    }


# every task message passes the poison checks of workers.deadletters on receipt
app = Celery("arbbot", task_cls="workers.deadletters:StageTask")
app.conf.update(
    broker_url=settings.broker_url,
    broker_use_ssl=settings.broker_ssl(),
    broker_connection_retry_on_startup=True,
    task_queues=queues.celery_queues(),
    task_default_queue="analytics",
    task_default_exchange=queues.EXCHANGE_NAME,
    task_default_exchange_type="direct",
    task_create_missing_queues=False,
    task_serializer="json",
    # the stage tasks' batches go as orjson's JSON (workers.serializer); both are accepted
    accept_content=["json", serializer.NAME],
    task_ignore_result=True,
    result_backend=None,
    worker_prefetch_multiplier=int(os.environ.get("ARBBOT_PREFETCH", "8")),
    worker_hijack_root_logger=False,
    # Task events feed Flower (and its Prometheus metrics); one event per task state, and
    # tasks carry batches, so the overhead stays small.
    worker_send_task_events=True,
    task_time_limit=120,
    # Celery's Django fixup closes every database connection before and after each task
    # unless told to reuse them: a new connection (10-13 ms here) on each block's path, ml
    # and execute task, on the path to the execute decision. Reused instead, for this many
    # tasks (counted twice: before and after), with Django's own rule between tasks
    # (``_db_between_tasks``: a broken, errored or CONN_MAX_AGE-old connection is closed).
    CELERY_DB_REUSE_MAX=1000,
    # a pool process prepares its chains' resources before it says it is up (_warm_process)
    worker_proc_alive_timeout=60.0,
    task_soft_time_limit=100,
    broker_transport_options={"confirm_publish": True},
    beat_schedule={
        "scan-tick": {
            # The fallback: each chain's block follower (manage.py arbbot follow) sends its
            # scans as blocks arrive; the tick scans only chains no follower holds.
            "task": "workers.tasks.scan.tick",
            # No "expires": an expired task is rejected, which would dead-letter every tick
            # that waited; a late tick is harmless (scan_chain takes a per-chain lock).
            "schedule": settings.scan_interval_s,
        },
        "execute-reconcile": {"task": "workers.tasks.execute.reconcile", "schedule": 60.0},
        "execute-follow": {"task": "workers.tasks.execute.follow", "schedule": 1.0},
        # Retrain the learned scorer on the last days' outcomes; the challenger replaces the
        # champion only if it beats it on the latest blocks (arbbot ml list shows each run).
        "ml-train": {"task": "workers.tasks.ml.train", "schedule": 3600.0},
    } | _xchain_schedule(settings.xchain_tick_s),
)


def _route(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> dict[str, str] | None:
    queue = queues.route_for_task(name)
    if queue is None:
        return None
    return {"queue": queue, "exchange": queues.EXCHANGE_NAME, "routing_key": queue}


app.conf.task_routes = (_route,)

app.conf.worker_consumer = "workers.consumer:Consumer"
app.autodiscover_tasks(["workers.tasks.scan", "workers.tasks.path", "workers.tasks.ml",
                        "workers.tasks.execute", "workers.tasks.bridge", "workers.tasks.analytics"],
                       related_name=None, force=True)


def warm_publisher(tasks: Iterable[Any]) -> None:
    """What a process's first publish of each of ``tasks`` would do on its way, done now (a
    process's start): the producer pool's connection opened, each task's queue declared on
    it (Celery declares a task's queue on its first publish over a connection), each task's
    class made and the result backend loaded (Celery makes them at a task's first
    ``delay``: ~40 ms in a quiet process, measured)."""
    from kombu.common import maybe_declare

    tasks = [getattr(task, "_get_current_object", lambda: task)() for task in tasks]
    if not tasks:
        return
    with app.producer_or_acquire() as producer:
        # one attempt (a broker that is down fails it at once, and the first publish waits
        # for the broker as it would have): a starting process is never held by the retries
        producer.connection.ensure_connection(max_retries=1)
        for name in dict.fromkeys(queues.route_for_task(task.name) for task in tasks):
            if name is not None:
                maybe_declare(app.amqp.queues[name], producer.channel)
    app.backend  # noqa: B018  (made on first use: a send's result)
    app.AsyncResult  # noqa: B018


class Heartbeat(bootsteps.StartStopStep):
    """Touches ``ARBBOT_HEARTBEAT_FILE`` every few seconds from the consumer's timer, so
    a liveness probe can check the file's age instead of the slow ``celery inspect ping``.
    The timer runs in the consumer's event loop: a wedged consumer stops touching it."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        self.tref = None

    def start(self, worker: Any) -> None:
        from workers.health import touch

        touch()
        self.tref = worker.timer.call_repeatedly(5.0, touch, priority=10)

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()


app.steps["worker"].add(Heartbeat)


@setup_logging.connect
def _setup_logging(loglevel: Any = None, **_: Any) -> None:
    level = logging.getLevelName(loglevel) if isinstance(loglevel, int) else (loglevel or settings.log_level)
    logs.configure(settings.log_format, str(level))


@task_prerun.connect
def _fresh_log_context(**_: Any) -> None:
    logs.clear()


@worker_init.connect
def _worker_tracing(sender: Any = None, **_: Any) -> None:
    from workers import runtime

    consume = getattr(getattr(sender, "app", app).amqp.queues, "consume_from", None) or {}
    runtime.start_tracing("arbbot-worker-" + "-".join(sorted(consume)) if consume else "arbbot-worker")


@beat_init.connect
def _beat_tracing(**_: Any) -> None:
    from workers import runtime

    runtime.start_tracing("arbbot-beat")


@worker_process_shutdown.connect
def _flush_spans(**_: Any) -> None:
    tracing.flush()


@task_prerun.connect
@task_postrun.connect
def _db_between_tasks(**_: Any) -> None:
    """What Django does between two requests: close a connection that is unusable (after an
    error, or PostgreSQL restarted) or older than CONN_MAX_AGE, and health-check a reused one
    on its next use, so the next task connects afresh only when it must. The health check
    (``CONN_HEALTH_CHECKS``: a ``SELECT 1``, one round trip on each task's way, the execute
    stage's claim included) is skipped for a connection whose socket is quiet
    (``_quiet``)."""
    from django.db import close_old_connections, connections

    close_old_connections()
    for conn in connections.all(initialized_only=True):
        if not conn.health_check_done and _quiet(conn.connection):
            conn.health_check_done = True


def _quiet(raw: Any) -> bool:
    """Whether an idle psycopg connection's socket has nothing to read. Between two queries
    the server sends nothing unless it is closing the connection (a restart, a crash, its
    backend terminated: an error message, then the end of the stream) or has something to
    say (a notice): either makes the socket readable, and Django's own check then asks.
    A connection with nothing to read answered its last query and has not been closed by
    the server since; one whose network path died silently is not told apart here, as it
    is not by the ``SELECT 1`` before its TCP timeout."""
    import select

    from psycopg import pq

    try:
        if raw is None or raw.closed or raw.info.transaction_status != pq.TransactionStatus.IDLE:
            return False
        readable, _, _ = select.select([raw.fileno()], [], [], 0)
    except Exception:  # anything odd: Django's check decides
        return False
    return not readable


@worker_init.connect
@beat_init.connect
def _declare_topology(**_: Any) -> None:
    with app.connection_for_write() as conn:
        queues.declare_topology(conn)


_consumed: set[str] = set()  # the queues this worker consumes (set in the parent, inherited by its children)


@celeryd_after_setup.connect
def _warm_path_kernels(sender: Any = None, instance: Any = None, **_: Any) -> None:
    """A worker consuming the path queue compiles the sizing kernels (about 10 s, or loads
    them from numba's on-disk cache in well under one) before it forks its pool and takes
    tasks, so the first pool change it evaluates is not the one that pays for it. The
    execute queue re-sizes with the same kernels: without this its first execution
    decided about 0.5-0.9 s after its block arrived. A worker consuming the path or the ml
    queue compiles the feature and scoring kernels the same way (the path task decides its
    blocks: ``workers.tasks.path.decide_here``)."""
    consume = getattr(getattr(instance, "app", app).amqp.queues, "consume_from", None) or {}
    _consumed.update(consume)
    if "path" in consume or "execute" in consume:
        from arbbot.paths import _kernels

        t0 = time.monotonic()
        _kernels.warm()
        logging.getLogger(__name__).info("path sizing kernels compiled in %.1f s", time.monotonic() - t0)
    if "ml" in consume or "path" in consume:  # the features and the learned scorer's kernel (arbbot.scoring.kernel)
        from arbbot.scoring import kernel

        t0 = time.monotonic()
        kernel.warm()
        logging.getLogger(__name__).info("scoring kernels compiled in %.1f s", time.monotonic() - t0)


@worker_process_init.connect
def _warm_process(**_: Any) -> None:
    """Each pool process of a stage starts its refresher (``workers.kept``: the strategy and
    the like read again in the background, not on a block's way), builds its per-chain
    resources (``workers.runtime``: the execute runner with its RPC session and limits, and
    what its first batch reads; the path stage, its decision's inputs and its publisher; a
    scan worker's publisher and lock renewal thread) and its database connection before it takes a
    task, so the first block's batch does not pay for them (with the kernels, up to a second
    on the first decision).
    Best effort: what fails here is built again by the first task that needs it, which then
    reports the error."""
    from django.db import connections

    from webapp.core import selectors

    if _consumed & {"scan", "path", "ml", "execute"}:  # the stages that keep values (pool filter, strategy, ...)
        from workers import kept

        kept.start_refresher()
    builders = [b for q, b in (("path", _warm_path), ("execute", _warm_execute)) if q in _consumed]
    if not builders and "scan" not in _consumed:
        return
    if "scan" in _consumed:  # a scan's lock is renewed by it: its start would wait on the first block's way
        from arbbot.hotstate import renewals

        renewals.start()
    t0 = time.monotonic()
    try:
        for chain in selectors.chains_active():
            for build in builders:
                build(chain.chain_id)

        from workers.tasks import path

        sends = {"scan": (path.find,), "path": path.publishes()}  # what a scan, a path worker publishes
        warm_publisher([task for q, tasks in sends.items() if q in _consumed for task in tasks])
        logging.getLogger(__name__).info("chains' resources prepared in %.2f s", time.monotonic() - t0)
    except Exception as exc:
        logging.getLogger(__name__).warning("could not prepare the chains' resources: %s: %s",
                                            type(exc).__name__, exc)
        connections.close_all()


def _warm_path(chain_id: int) -> None:
    """The chain's path stage built (not primed: a chain of 100k pools takes seconds to read
    and index, and a pool process that is not up within ``worker_proc_alive_timeout`` is
    killed and started again; its first block builds it, in a task with a time limit, as a
    scan worker's first poll reads the hot state), and what its decision reads."""
    from workers import runtime
    from workers.tasks import ml

    runtime.path_stage(chain_id)
    ml.warm(chain_id)


def _warm_execute(chain_id: int) -> None:
    """The chain's runner built, and what a first batch reads read (``stage.warm``)."""
    from arbbot.execution import stage
    from workers import runtime

    stage.warm(runtime.runner(chain_id))


@worker_ready.connect
def _on_ready(**_: Any) -> None:
    from workers.health import touch

    touch()
    if settings.metrics_port:
        from prometheus_client import CollectorRegistry, ProcessCollector, multiprocess, start_http_server

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        # process_* (the workers dashboard): this main process's; the pool children's
        # resources are not summed (multiprocess mode has no process metrics)
        ProcessCollector(registry=registry)
        start_http_server(settings.metrics_port, registry=registry)


@worker_ready.connect
def _say_mode(sender: Any = None, **_: Any) -> None:
    """An execute worker says at start, per active chain, what mode it runs and, when live
    was asked without a key or an executor, that it will refuse to send and why."""
    consume = getattr(getattr(sender, "app", app).amqp.queues, "consume_from", None) or {}
    if "execute" not in consume:
        return
    from django.db import connections

    from workers import runtime

    log = logging.getLogger("arbbot.execute.mode")
    try:
        for level, line in runtime.mode_at_start():
            log.log(level, "%s", line)
    except Exception as exc:  # the database is not reachable yet: the runner still checks each send
        log.error("could not read the chains' modes at start: %s: %s", type(exc).__name__, exc)
    finally:
        connections.close_all()  # opened in the parent process: not to be shared with pool children


@worker_shutdown.connect
def _on_shutdown(**_: Any) -> None:
    tracing.flush()
    try:
        settings.heartbeat_file.unlink()
    except FileNotFoundError:
        pass
