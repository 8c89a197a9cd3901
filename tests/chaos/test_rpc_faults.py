"""RPC faults through the project's own fault-injecting proxy process
(``arbbot.devnet.faultproxy``) in front of anvil: a primary that is down, slow (past the
timeout) or answers garbage fails over to the secondary and its breaker opens; with every
endpoint down the scanner is unhealthy, publishes nothing and the hot state's head does
not move (nothing stale reaches the path stage), and it resumes by itself when a node
comes back. Real TCP, real ``RpcClient``; each case bounded by the client's timeouts."""

from __future__ import annotations

import time
from typing import Iterator

import pytest

from arbbot.chain.discovery import Factory
from arbbot.chain.rpc import RpcClient, RpcUnavailable
from arbbot.chain.scanner import Scanner, ScannerConfig
from arbbot.devnet.faultproxy import FaultProxy
from arbbot.hotstate import HotState
from arbbot.errors import RpcError
from arbbot.execution.runner import Pending
from arbbot.types import ExecutionResult, V2PoolState
from tests.chain.devchain import DevChain, build_v2_market
from tests.e2e.fleet import wait_for
from tests.execution.test_runner import Live, live_scored

COOLDOWN_S = 0.5


@pytest.fixture
def proxies(dev: DevChain) -> Iterator[tuple[FaultProxy, FaultProxy]]:
    p1, p2 = FaultProxy(dev.rpc.url), FaultProxy(dev.rpc.url)
    yield p1, p2
    p1.stop()
    p2.stop()


def _scanner(dev: DevChain, hot: HotState, urls: tuple[str, ...], cooldown_s: float = COOLDOWN_S) -> Scanner:
    mc = dev.deploy_multicall()
    factory, _ = build_v2_market(dev, n_tokens=4, n_pairs=4)
    cfg = ScannerConfig(chain_id=31337, rpc_urls=urls, multicall=mc, factories=(Factory(factory, "v2"),),
                        rpc_timeout_s=0.5, rpc_retries=1, breaker_threshold=2, breaker_cooldown_s=cooldown_s)
    return Scanner(cfg, store=hot)


def _states(dev: DevChain, scanner: Scanner) -> None:
    for p in dev.pairs:
        s = scanner.pools[p]
        assert isinstance(s, V2PoolState) and (s.reserve0, s.reserve1) == dev.onchain_reserves(p)


@pytest.mark.parametrize("fault", ["down", "slow", "garbage", "error"])
def test_a_faulty_primary_fails_over_and_its_breaker_opens(
    fault: str, dev: DevChain, hot: HotState, proxies: tuple[FaultProxy, FaultProxy]
) -> None:
    p1, p2 = proxies
    # a cooldown longer than the three polls take even on a busy machine: no half-open probe
    cooldown_s = 3.0
    scanner = _scanner(dev, hot, (p1.url, p2.url), cooldown_s)
    assert len(scanner.poll()) == 1
    pairs = list(dev.pairs.values())
    p1.set(fault, delay_s=2.0)  # slow: four times the client's timeout
    for i in range(3):
        dev.send_many(dev.random_swap_txs(pairs[i]))
        (d,) = scanner.poll()
        assert [s.address for s in d.states] == [pairs[i].address]
    h = scanner.health()
    assert h["healthy"]
    by_ep = {e["endpoint"]: e for e in h["rpc"]["endpoints"]}
    assert by_ep[f"127.0.0.1:{p1.port}"]["state"] == "open"
    assert by_ep[f"127.0.0.1:{p2.port}"]["state"] == "closed"
    _states(dev, scanner)
    if fault != "down":
        # once open, the faulty node is not asked again: only the two failures that opened
        # the breaker reached it (slow: two timeouts waited, not one per call)
        assert p1.stats()["counts"][fault] == 2
    # back to health: after the cooldown a probe closes the breaker and the primary is used again
    p1.set("pass")
    time.sleep(cooldown_s)
    dev.mine(1)
    before = p1.stats()["counts"]["pass"]
    assert len(scanner.poll()) == 1
    assert p1.stats()["counts"]["pass"] > before
    assert scanner.rpc.health()["endpoints"][0]["state"] == "closed"


@pytest.mark.parametrize("fault", ["down", "garbage"])
def test_all_endpoints_down_publish_nothing_and_recover(
    fault: str, dev: DevChain, hot: HotState, proxies: tuple[FaultProxy, FaultProxy]
) -> None:
    p1, p2 = proxies
    scanner = _scanner(dev, hot, (p1.url, p2.url))
    assert len(scanner.poll()) == 1
    head_before = hot.head()
    pools_before = hot.get_pools()
    pairs = list(dev.pairs.values())
    p1.set(fault)
    p2.set(fault)
    dev.send_many(dev.random_swap_txs(pairs[0]))  # the chain moves on while no node answers
    for _ in range(5):
        assert scanner.poll() == []
    if fault != "down":  # fails fast once the breakers are open: one probe a poll, no retry storm
        assert p1.stats()["counts"][fault] + p2.stats()["counts"][fault] <= 2 * 2 + 5
    h = scanner.health()
    assert not h["healthy"] and "down" in h["last_error"]
    assert all(e["state"] == "open" for e in h["rpc"]["endpoints"])
    assert hot.head() == head_before and hot.get_pools() == pools_before  # nothing stale published
    with pytest.raises(RpcUnavailable):
        scanner.rpc.block_number()

    p2.set("pass")  # one node back: picked up without a restart, the missed block delivered
    time.sleep(COOLDOWN_S)
    d = scanner.poll()
    assert [x.block_number for x in d] == [dev.rpc.block_number()]
    assert [s.address for s in d[0].states] == [pairs[0].address]
    assert scanner.health()["healthy"]
    _states(dev, scanner)


def test_a_send_through_a_dead_node_is_never_repeated(dev: DevChain, proxies: tuple[FaultProxy, FaultProxy]) -> None:
    """A read that times out is retried elsewhere; a send that may have reached the node is
    not (the journal and the follow pass decide what happened to it)."""
    p1, p2 = proxies
    p1.set("slow", delay_s=2.0)
    rpc = RpcClient([p1.url, p2.url], timeout_s=0.5, retries=1, breaker_threshold=5)
    assert rpc.block_number() == dev.rpc.block_number()  # the read failed over
    before = p2.stats()["counts"]["pass"]
    with pytest.raises(Exception, match="not retried"):
        rpc.call("eth_sendRawTransaction", ["0x00"])
    assert p2.stats()["counts"]["pass"] == before  # never sent to the second node


# ------------------------------------------------------------ live execution through faults
# The live runner of tests/execution/test_runner.py (stand-in executor on anvil, the fleet's
# nonces in Redis), its RPC through a fault proxy: the node it would send to is a real one.


@pytest.fixture
def live_proxy(node: RpcClient, hot: HotState) -> Iterator[tuple[Live, FaultProxy]]:
    proxy = FaultProxy(node.url)
    yield Live(node, hot), proxy
    proxy.stop()


@pytest.mark.parametrize("fault", ["down", "slow", "garbage", "error"])
def test_no_execution_goes_out_through_a_faulty_node(fault: str, live_proxy: tuple[Live, FaultProxy]) -> None:
    live, proxy = live_proxy
    rpc = RpcClient([proxy.url], timeout_s=0.5, retries=1, breaker_threshold=2, breaker_cooldown_s=COOLDOWN_S)
    runner = live.runner(rpc=rpc)
    proxy.set(fault, delay_s=2.0)
    for n in range(3):  # re-validation cannot be done: nothing is signed, nothing is sent
        with pytest.raises(RpcError):
            runner.submit(live_scored(n))
    assert live.sent() == 0
    assert not rpc.healthy
    proxy.set("pass")
    time.sleep(COOLDOWN_S)
    assert isinstance(runner.submit(live_scored(0)), Pending) and live.sent() == 1


def test_a_send_that_times_out_is_sent_once_never_twice(live_proxy: tuple[Live, FaultProxy]) -> None:
    """The node takes the transaction but answers too late: the runner reports the send as
    failed and never repeats it, here or through another endpoint; the transaction the
    node took is the only one (what happened to it is the follow pass's to find)."""
    live, proxy = live_proxy
    spare = FaultProxy(live.node.url)
    try:
        rpc = RpcClient([proxy.url, spare.url], timeout_s=0.5, retries=2, breaker_threshold=5)
        proxy.set("slow", delay_s=1.5, methods=("eth_sendRawTransaction",))
        result = live.runner(rpc=rpc).submit(live_scored(0))
        assert isinstance(result, ExecutionResult) and result.status == "failed"
        assert "not retried" in result.reason
        wait_for(lambda: live.sent() == 1, 10, "the late send to reach the node")
        assert proxy.stats()["counts"]["slow"] == 1
        assert spare.stats()["counts"]["pass"] == 0  # no send through the other endpoint
        live.node.call("evm_mine")
        assert live.sent() == 1
    finally:
        spare.stop()
