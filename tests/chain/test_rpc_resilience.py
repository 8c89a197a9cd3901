"""RPC failover on two endpoints (two killable proxies in front of one anvil): one killed
mid-run, sync continues; both killed, the scanner is unhealthy and publishes nothing;
one revived, it recovers without a restart. Plus breaker and label unit checks."""

from __future__ import annotations

import time

import pytest
from prometheus_client import REGISTRY

from arbbot.chain.discovery import Factory
from arbbot.chain.rpc import RpcClient, RpcUnavailable, endpoint_label
from arbbot.chain.scanner import Scanner, ScannerConfig
from arbbot.errors import RpcError
from arbbot.hotstate import HotState
from arbbot.types import V2PoolState
from tests.chain.devchain import DevChain, RpcProxy, build_v2_market


def test_endpoint_label_never_leaks_credentials() -> None:
    assert endpoint_label("https://user:s3cret@rpc.example.org:8443/v3/APIKEY?x=1") == "rpc.example.org:8443"
    assert endpoint_label("https://eth.example.com/KEY") == "eth.example.com:443"
    assert endpoint_label("http://127.0.0.1:8545") == "127.0.0.1:8545"


def test_breaker_opens_fails_fast_and_half_opens() -> None:
    dead = "http://127.0.0.1:9"  # discard port: connection refused
    rpc = RpcClient([dead], timeout_s=0.5, retries=0, breaker_threshold=2, breaker_cooldown_s=0.3)
    for _ in range(2):
        with pytest.raises(RpcUnavailable):
            rpc.block_number()
    h = rpc.health()
    assert not h["healthy"] and h["endpoints"][0]["state"] == "open"
    assert "127.0.0.1:9" in str(h) and h["endpoints"][0]["consecutive_failures"] == 2
    time.sleep(0.35)
    assert rpc.health()["endpoints"][0]["state"] == "half_open" and rpc.healthy


def test_node_error_is_an_answer_not_an_outage(anvil) -> None:  # type: ignore[no-untyped-def]
    rpc = RpcClient([anvil.url], breaker_threshold=1)
    with pytest.raises(RpcError) as exc:
        rpc.call("eth_noSuchMethod", [])
    assert not isinstance(exc.value, RpcUnavailable)
    assert rpc.health()["endpoints"][0]["state"] == "closed"


def test_failover_outage_and_recovery(dev: DevChain, hot: HotState) -> None:
    mc = dev.deploy_multicall()
    factory, _ = build_v2_market(dev, n_tokens=4, n_pairs=5)
    p1, p2 = RpcProxy(dev.rpc.url), RpcProxy(dev.rpc.url)
    try:
        cfg = ScannerConfig(
            chain_id=31337, rpc_urls=(p1.url, p2.url), multicall=mc, factories=(Factory(factory, "v2"),),
            rpc_timeout_s=2.0, rpc_retries=1, breaker_threshold=2, breaker_cooldown_s=0.3,
        )
        scanner = Scanner(cfg, store=hot)
        assert len(scanner.poll()) == 1
        pairs = list(dev.pairs.values())

        p1.kill()  # primary dies mid-run
        dev.send_many(dev.random_swap_txs(pairs[0]))
        d = scanner.poll()
        assert len(d) == 1 and [s.address for s in d[0].states] == [pairs[0].address]
        h = scanner.health()
        assert h["healthy"]
        by_ep = {e["endpoint"]: e for e in h["rpc"]["endpoints"]}
        assert by_ep[f"127.0.0.1:{p1.port}"]["state"] == "open"
        assert by_ep[f"127.0.0.1:{p2.port}"]["state"] == "closed"
        head_before = hot.head()

        p2.kill()  # both down
        dev.send_many(dev.random_swap_txs(pairs[1]))
        for _ in range(3):
            assert scanner.poll() == []
        h = scanner.health()
        assert not h["healthy"] and "down" in h["last_error"]
        assert hot.head() == head_before  # nothing stale published

        p1.revive()  # primary back: recovers without a restart
        time.sleep(0.35)
        d = scanner.poll()
        assert len(d) == 1 and [s.address for s in d[0].states] == [pairs[1].address]
        assert scanner.health()["healthy"]
        for p in dev.pairs:
            s = scanner.pools[p]
            assert isinstance(s, V2PoolState) and (s.reserve0, s.reserve1) == dev.onchain_reserves(p)
        assert hot.head()[0] == dev.rpc.block_number()  # type: ignore[index]

        # each poll starts with one batch: the latest header and the gas price
        errors = REGISTRY.get_sample_value(
            "arbbot_rpc_errors_total",
            {"endpoint": f"127.0.0.1:{p2.port}", "method": "batch:mixed", "kind": "connection"},
        )
        assert errors and errors >= 1
        assert REGISTRY.get_sample_value(
            "arbbot_rpc_request_seconds_count", {"endpoint": f"127.0.0.1:{p1.port}", "method": "batch:mixed"}
        )
    finally:
        p1.kill()
        p2.kill()
