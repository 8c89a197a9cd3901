"""The test run's isolation on the shared services (``tests/conftest.py``): each pytest
process, the xdist workers of ``make test`` included, on names of its own."""

from __future__ import annotations

import os

from tests import conftest


def test_this_process_runs_on_a_prefix_vhost_and_devnet_of_its_own() -> None:
    """What conftest set names this process's run id, which begins with its own pid: an
    xdist worker never runs on the names its parent set (it inherits them), which made the
    two workers consume each other's messages and write rows into each other's databases."""
    assert conftest.RUN_ID.startswith(f"{os.getpid()}-")
    set_here = set(os.environ[conftest._SET_HERE].split(","))
    for name in ("ARBBOT_REDIS_PREFIX", "ARBBOT_HEARTBEAT_FILE", "ARBBOT_DEVNET_DIR"):
        if name in set_here:  # a value the developer set is theirs
            assert conftest.RUN_ID in os.environ[name], name
    if "ARBBOT_BROKER_URL" in set_here and conftest._VHOST != "/":
        assert os.environ["ARBBOT_BROKER_URL"].endswith(f"/arbbot-test-{conftest.RUN_ID}")
