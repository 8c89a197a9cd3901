"""Fixtures for chain tests: anvil nodes on free ports, Redis under a unique prefix."""

from __future__ import annotations

import os
import uuid
from typing import Any, Callable, Iterator

import pytest
import redis

from arbbot.chain.rpc import RpcClient
from arbbot.devnet.anvil import Anvil, start_anvil
from arbbot.hotstate import HotState
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


@pytest.fixture
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(os.environ.get("ARBBOT_REDIS_URL", "redis://127.0.0.1:6379/0"))


@pytest.fixture
def prefix() -> str:
    return f"{os.environ.get('ARBBOT_REDIS_PREFIX', 'test')}-chain-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def hot(redis_client: redis.Redis, prefix: str) -> Iterator[HotState]:
    h = HotState(redis_client, prefix, 31337)
    yield h
    h.clear()
