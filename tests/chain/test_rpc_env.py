"""The RPC client reads the environment's proxy once per endpoint, not per request, and
still goes through it: with ``HTTP_PROXY`` set, calls reach the node through the proxy;
an endpoint named in ``NO_PROXY`` goes direct."""

from __future__ import annotations

import pytest

from arbbot.chain.rpc import RpcClient
from arbbot.devnet.anvil import Anvil
from tests.chain.devchain import RpcProxy


def test_the_environments_proxy_is_honoured(anvil: Anvil, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = RpcProxy(anvil.url)  # answers any POST by forwarding it: an HTTP proxy for this test
    try:
        for k in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(k, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("http_proxy", proxy.url)
        via = RpcClient(anvil.url, timeout_s=10)
        assert via.block_number() >= 0 and via.block_number() >= 0
        assert proxy.requests == 2
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        direct = RpcClient(anvil.url, timeout_s=10)
        assert direct.block_number() >= 0 and proxy.requests == 2
    finally:
        proxy.kill()
