"""What each stage worker's pool process sets up before its first task
(``workers.celery_app._warm_process``)."""

from __future__ import annotations

import sys
from typing import Iterator

import pytest

from workers import celery_app


@pytest.fixture
def interval() -> Iterator[None]:
    before = sys.getswitchinterval()
    yield
    sys.setswitchinterval(before)


def test_a_pool_process_shortens_its_gil_switch_interval(interval: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread back from a socket (the execute stage's claim) waits for the GIL at most this
    long while the other thread (the re-validation ahead) computes: 0.5 ms, not CPython's 5."""
    monkeypatch.setattr(celery_app, "_consumed", set())  # no queue: nothing else to build
    sys.setswitchinterval(0.005)
    celery_app._warm_process()
    assert sys.getswitchinterval() == pytest.approx(celery_app.STAGE_SWITCH_INTERVAL_S)
    assert celery_app.STAGE_SWITCH_INTERVAL_S <= 0.001
