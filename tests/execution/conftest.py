"""The executor tests' chain: a devnet (V2 and V3, the project's ArbExecutor) deployed once
per test module on a free port, and each test starting from the freshly deployed state."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import LocalSigner
from arbbot.devnet.anvil import Anvil, start_anvil
from arbbot.devnet.record import Deployment
from arbbot.devnet.scenarios import deployed_devnet, read_signer_key, revert_to, snapshot
from tests.execution.executor_helpers import STAND_IN_EXECUTOR, STAND_IN_PROFIT, stand_in_executor

Devnet = tuple[Anvil, Deployment, Path]


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    directory = tmp_path_factory.mktemp("devnet-exec")
    with deployed_devnet(directory, v3=True) as (anvil, dep):
        yield anvil, dep, directory


@pytest.fixture()
def chain(devnet: Devnet) -> Iterator[tuple[RpcClient, Deployment, LocalSigner]]:
    """Each test starts from the freshly deployed state."""
    anvil, dep, directory = devnet
    rpc = anvil.rpc()
    snap = snapshot(rpc)
    signer = LocalSigner(rpc, read_signer_key(directory))
    try:
        yield rpc, dep, signer
    finally:
        revert_to(rpc, snap)


@pytest.fixture(scope="module")
def stand_in_node() -> Iterator[RpcClient]:
    """A bare anvil where ``STAND_IN_EXECUTOR`` answers every call with ``STAND_IN_PROFIT``
    (``executor_helpers.stand_in_executor``), one per test module."""
    anvil = start_anvil()
    rpc = anvil.rpc()
    rpc.call("anvil_setCode", [STAND_IN_EXECUTOR, stand_in_executor(STAND_IN_PROFIT)])
    yield rpc
    anvil.stop()
