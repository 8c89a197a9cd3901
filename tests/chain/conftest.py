"""Fixtures for chain tests: anvil nodes on free ports (Redis fixtures: tests/conftest.py)."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from arbbot.chain.rpc import RpcClient
from arbbot.devnet.anvil import Anvil, start_anvil
from tests.chain.devchain import DevChain


@pytest.fixture
def make_anvil() -> Iterator[Callable[..., Anvil]]:
    started: list[Anvil] = []

    def make(**kw: Any) -> Anvil:
        a = start_anvil(**kw)
        started.append(a)
        return a

    yield make
    for a in started:
        a.stop()


@pytest.fixture
def anvil(make_anvil: Callable[..., Anvil]) -> Anvil:
    return make_anvil()


@pytest.fixture
def dev(anvil: Anvil) -> DevChain:
    return DevChain(RpcClient(anvil.url, timeout_s=30))
