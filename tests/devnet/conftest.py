"""A devnet (V2 and V3) deployed once per test module on a free port (automine), in a tmp dir."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from arbbot.devnet.anvil import Anvil
from arbbot.devnet.record import Deployment
from arbbot.devnet.scenarios import deployed_devnet


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Anvil, Deployment, Path]]:
    directory = tmp_path_factory.mktemp("devnet")
    with deployed_devnet(directory, v3=True) as (anvil, dep):
        yield anvil, dep, directory
