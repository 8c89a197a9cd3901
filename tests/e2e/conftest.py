"""The fleet every e2e module shares (``tests.e2e.fleet``)."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from tests.e2e.fleet import run_fleet


@pytest.fixture(scope="package")
def fleet(tmp_path_factory: pytest.TempPathFactory, django_db_setup: Any, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    yield from run_fleet(tmp_path_factory, django_db_setup, django_db_blocker)
