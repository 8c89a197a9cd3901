"""Test-session isolation on the shared services of this machine.

Several test runs may share one PostgreSQL, Redis and RabbitMQ (developers, CI). Each run
gets its own test database name, Redis key prefix and RabbitMQ vhost, set in the
environment here, before Django or Celery read it, so worker subprocesses inherit them.
``make test`` runs the suite in two pytest-xdist processes: each is a run of its own here
(its own prefix, vhost, devnet directory and heartbeat file; pytest-django gives each its
own test database), never the values its parent process set and it inherited.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from typing import Iterator

import pytest
import redis
from hypothesis import settings

from arbbot.hotstate import HotState

RUN_ID = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"

#: the names this file set in the environment (below), so that a process started with that
#: environment knows them for its parent's: an xdist worker sets its own instead
_SET_HERE = "ARBBOT_TEST_SET_HERE"
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _name in filter(None, os.environ.pop(_SET_HERE, "").split(",")):
        os.environ.pop(_name, None)
_before = set(os.environ)

# Property tests: `make test` runs the deterministic profile (same examples every run, no
# example database), so CI cannot flake on a newly drawn case; `make test-explore` runs the
# random one, and a case it finds becomes an @example of its test.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

os.environ.setdefault("ARBBOT_REDIS_PREFIX", f"test-{RUN_ID}")
os.environ.setdefault("ARBBOT_HEARTBEAT_FILE", f"/tmp/arbbot-test-heartbeat-{RUN_ID}")
# never the checkout's .devnet: a demo's signer key or deployment there is not this run's
os.environ.setdefault("ARBBOT_DEVNET_DIR", f"/tmp/arbbot-test-devnet-{RUN_ID}")

_VHOST: str | None = None


def _rabbitmqctl(*args: str) -> bool:
    exe = shutil.which("rabbitmqctl")
    if not exe:
        return False
    return subprocess.run([exe, "-q", *args], capture_output=True, timeout=60).returncode == 0


def broker_vhost() -> str:
    """Create this run's vhost once (the default '/' is used if rabbitmqctl is absent)."""
    global _VHOST
    if _VHOST is None:
        name = f"arbbot-test-{RUN_ID}"
        if _rabbitmqctl("add_vhost", name) and _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*"):
            _VHOST = name
        else:
            _VHOST = "/"
    return _VHOST


# pytest-django loads the Django settings before this file runs: their ``ARBBOT`` was read
# from the environment without this run's prefix and vhost. Read again, so in-process
# services (``services._hotstate``) use this run's keys, never the default ``arbbot:``.
def _reread_arbbot_settings() -> None:
    from django.conf import settings as django_settings

    from arbbot.config import get_settings

    if django_settings.configured:
        django_settings.ARBBOT = get_settings()


if "ARBBOT_BROKER_URL" not in os.environ:
    vhost = broker_vhost()
    os.environ["ARBBOT_BROKER_URL"] = "amqp://guest:guest@127.0.0.1:5672/" + (
        "" if vhost == "/" else vhost
    )
os.environ[_SET_HERE] = ",".join(sorted(set(os.environ) - _before))
_reread_arbbot_settings()


@pytest.fixture
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(os.environ.get("ARBBOT_REDIS_URL", "redis://127.0.0.1:6379/0"))


@pytest.fixture
def prefix() -> str:
    """A Redis key prefix of this test's own, inside this run's."""
    return f"{os.environ['ARBBOT_REDIS_PREFIX']}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def hot(redis_client: redis.Redis, prefix: str) -> Iterator[HotState]:
    """An empty hot state of chain 31337 on the real Redis, cleared afterwards."""
    h = HotState(redis_client, prefix, 31337)
    yield h
    h.clear()


def pytest_sessionfinish(session, exitstatus):  # type: ignore[no-untyped-def]
    if _VHOST and _VHOST != "/":
        _rabbitmqctl("delete_vhost", _VHOST)
    try:
        import redis

        r = redis.Redis.from_url(os.environ.get("ARBBOT_REDIS_URL", "redis://127.0.0.1:6379/0"))
        keys = list(r.scan_iter(match=os.environ["ARBBOT_REDIS_PREFIX"] + "*", count=1000))
        if keys:
            r.delete(*keys)
    except Exception:
        pass
