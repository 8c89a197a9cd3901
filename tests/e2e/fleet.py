"""The e2e fleet: a devnet with the genuine contracts, one real Celery worker process per
queue and beat, in live mode, on this run's database, Redis prefix and RabbitMQ vhost.
``start_workers`` starts and stops those processes for any environment (``test_user_chain``
runs them on its own chain). One fleet serves every e2e module (``conftest.fleet`` is
package-scoped: it stops after the last e2e test): a second fleet on the same chain id
would meet the first one's leftovers in the broker and the hot state.

The hot state is cleared through ``workers.runtime.hotstate`` (this run's Redis prefix);
``services._hotstate`` reads the Django settings, built in this process before
``tests/conftest.py`` set the run's prefix, so it would clear the default ``arbbot`` one."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from arbbot.devnet.scenarios import deployed_devnet
from tests.otlp import Collector

ROOT = Path(__file__).resolve().parents[2]
QUEUES = ("scan", "path", "ml", "execute", "bridge", "analytics")


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str, poll_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


@contextlib.contextmanager
def start_workers(env: dict[str, str], logs: Path, follow: tuple[int, str] | None = None) -> Iterator[dict[str, int]]:
    """One real Celery worker process per queue and beat, with ``env`` (this run's database,
    broker vhost, Redis prefix, mode, key...), logging into ``logs``; yields each queue's
    metrics port once every worker is up, and stops them all (warm shutdown) on exit.
    ``follow`` = (chain id, WebSocket URL): also the chain's block follower, as an operator
    runs it (``manage.py arbbot follow``), started once the workers are up and yielded
    once it holds the chain's lease (beat's tick then leaves the chain to it)."""
    from arbbot.devnet.anvil import free_port

    celery = str(Path(sys.executable).parent / "celery")
    metrics_ports = {q: free_port() for q in QUEUES}
    procs = []
    try:
        for q in QUEUES:
            log = open(logs / f"{q}.log", "wb")
            procs.append(
                subprocess.Popen(
                    [celery, "-A", "workers.celery_app", "worker", "-Q", q, "-n", f"{q}-{uuid.uuid4().hex[:6]}@%h",
                     "--pool", "prefork", "--concurrency", "1", "-l", "INFO"],
                    cwd=ROOT,
                    env={**env, "ARBBOT_HEARTBEAT_FILE": str(logs / f"hb-{q}"),
                         "ARBBOT_METRICS_PORT": str(metrics_ports[q])},
                    stdout=log, stderr=subprocess.STDOUT,
                )
            )
        beat_log = open(logs / "beat.log", "wb")
        procs.append(
            subprocess.Popen(
                [celery, "-A", "workers.celery_app", "beat", "-l", "INFO", "-s", str(logs / "beat-schedule")],
                cwd=ROOT, env=env, stdout=beat_log, stderr=subprocess.STDOUT,
            )
        )
        # a deadline, not a measure: six workers starting on a shared 2-core machine, the
        # path and execute ones compiling numba kernels on a clean clone (about 100 s under
        # load); the wait ends as soon as every heartbeat is there
        start_s = float(os.environ.get("ARBBOT_E2E_START_S", "300"))
        wait_for(lambda: all((logs / f"hb-{q}").exists() for q in QUEUES), start_s, "every worker to start")
        if follow is not None:
            from arbbot.chain.follower import LEASE_TTL_S
            from workers import runtime

            chain_id, ws_url = follow
            procs.append(subprocess.Popen(
                [sys.executable, "manage.py", "arbbot", "follow", "--chain", str(chain_id), "--ws", ws_url],
                cwd=ROOT, env={**env, "ARBBOT_HEARTBEAT_FILE": str(logs / "hb-follower")},
                stdout=open(logs / "follower.log", "wb"), stderr=subprocess.STDOUT,
            ))
            lease = runtime.hotstate(chain_id).follower_lock(LEASE_TTL_S)
            wait_for(lease.locked, 60, f"the follower of chain {chain_id} to hold its lease")
        yield metrics_ports
    finally:
        for p in procs:
            p.terminate()  # SIGTERM: warm shutdown
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        _purge_queues()


def _purge_queues() -> None:
    """Drop what a fleet left on the run's stage queues (a test that failed mid-block: its
    records waiting their countdown, a batch in flight), so the next fleet on the run's vhost
    never writes another test's rows into the database its test reads."""
    from workers.celery_app import app

    with app.connection_for_write() as conn:
        for q in QUEUES:
            try:
                with conn.channel() as channel:  # one each: a refused purge closes its channel
                    channel.queue_purge(q)
            except Exception:  # not declared on this vhost: nothing to drop
                pass


def run_fleet(tmp_path_factory: pytest.TempPathFactory, django_db_setup: Any, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    from django.db import connection

    from webapp.core import services
    from workers import runtime

    devnet_dir = tmp_path_factory.mktemp("devnet")
    logs = tmp_path_factory.mktemp("logs")
    recordings = tmp_path_factory.mktemp("recordings")
    with deployed_devnet(devnet_dir, v3=True) as (anvil, dep), Collector() as traces:
        # A new devnet under the same chain id is a new chain: an earlier fleet's hot state
        # (its cursor ahead of this chain's head, its nonces) is not this one's.
        runtime.hotstate(dep.chain_id).clear()
        with django_db_blocker.unblock():
            services.chain_register_deployment({**dep.to_json(), "name": "e2e-devnet"})
            db_name = connection.settings_dict["NAME"]
        env = dict(
            os.environ,
            ARBBOT_DATABASE_NAME=db_name,
            ARBBOT_DEVNET_DIR=str(devnet_dir),
            ARBBOT_MODE="live",
            ARBBOT_SCAN_INTERVAL="0.3",
            ARBBOT_RECORD_DIR=str(recordings),  # the scan stage records every block (test_backtest_fidelity)
            PYTHONUNBUFFERED="1",
            # tracing on, toward this process's collector (as compose points it at Jaeger)
            OTEL_EXPORTER_OTLP_ENDPOINT=traces.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="200",
        )
        env.pop("ARBBOT_SIGNER_KEY", None)
        try:
            with start_workers(env, logs) as metrics_ports:
                yield {"anvil": anvil, "rpc": anvil.rpc(), "dep": dep, "logs": logs, "env": env,
                       "metrics_ports": metrics_ports, "traces": traces, "recordings": recordings}
        finally:
            # The fleet's rows were committed outside any test transaction: remove them so
            # later tests start from an empty database.
            from webapp.core.models import Chain

            with django_db_blocker.unblock():
                services.chain_history_forget(dep.chain_id)
                Chain.objects.filter(chain_id=dep.chain_id).delete()
            runtime.hotstate(dep.chain_id).clear()
            if os.environ.get("ARBBOT_E2E_SHOW_LOGS"):
                for f in sorted(logs.glob("*.log")):
                    sys.stderr.write(f"==== {f.name}\n{f.read_text()[-4000:]}\n")


