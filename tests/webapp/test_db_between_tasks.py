"""A worker's database connection between two tasks (``workers.celery_app._db_between_tasks``)
on the real PostgreSQL: a quiet reused connection is not asked ``SELECT 1`` before the next
task's first query, and one the server closed meanwhile is still found out and replaced."""

from __future__ import annotations

import select
from typing import Iterator

import psycopg
import pytest
from django.db import connection

from webapp.core.models import Chain
from workers.celery_app import _db_between_tasks


@pytest.fixture
def health_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Each of Django's health checks (``is_usable``) of the default connection, its answer."""
    asked: list[bool] = []
    usable = connection.is_usable

    def spy() -> bool:
        asked.append(usable())
        return asked[-1]

    monkeypatch.setattr(connection, "is_usable", spy)
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    yield asked


@pytest.mark.django_db(transaction=True)
def test_a_quiet_connection_goes_to_the_next_task_without_a_round_trip(health_checks: list[bool]) -> None:
    Chain.objects.count()  # a task's query: the connection is open and idle
    _db_between_tasks()  # postrun, then prerun
    _db_between_tasks()
    assert Chain.objects.count() == 0
    assert health_checks == []  # Django's own rule alone: one SELECT 1 here

    connection.health_check_done = False  # as close_old_connections leaves it
    assert Chain.objects.count() == 0 and health_checks == [True]  # the check this skips, as Django runs it


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_closed_between_tasks_is_replaced(health_checks: list[bool]) -> None:
    Chain.objects.count()
    pid = connection.connection.info.backend_pid
    fd = connection.connection.fileno()
    _db_between_tasks()  # postrun: still quiet
    s = connection.settings_dict
    with psycopg.connect(host=s["HOST"], port=s["PORT"], user=s["USER"], password=s["PASSWORD"],
                         dbname=s["NAME"], autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
    assert select.select([fd], [], [], 10)[0], "the server never closed the connection"  # its FATAL, then EOF

    _db_between_tasks()  # prerun: the socket has something to say, so Django asks
    assert Chain.objects.count() == 0  # on a new connection, the task none the wiser
    assert health_checks == [False]
    assert connection.connection.info.backend_pid != pid
