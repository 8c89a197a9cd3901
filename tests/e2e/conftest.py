"""The fleet every e2e module shares (``tests.e2e.fleet``)."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from tests.e2e.fleet import run_fleet


@pytest.fixture(scope="package")
def fleet(tmp_path_factory: pytest.TempPathFactory, django_db_setup: Any, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    yield from run_fleet(tmp_path_factory, django_db_setup, django_db_blocker)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``test_user_chain`` runs its own fleet on its own chain, on this run's database,
    vhost and Redis prefix. The shared devnet fleet above lives until the package's last
    test, and its beat would scan the user's chain too (and the user fleet the devnet):
    so the user-chain tests run before every other e2e test, whose fleet starts after."""
    def is_user_chain(item: pytest.Item) -> bool:
        return item.path.name == "test_user_chain.py" and item.path.parent.name == "e2e"

    first = next((i for i, item in enumerate(items) if item.path.parent.name == "e2e"
                  and item.path.parent.parent.name == "tests"), None)
    if first is None:
        return
    user = [item for item in items if is_user_chain(item)]
    rest = [item for item in items[first:] if not is_user_chain(item)]
    items[first:] = user + rest
