"""The scan stage follows from where the backfill stopped: its first poll discovers only
after the cursor (the backfilled pools come in its config), never a long range inside a
scan task (it follows from the head and says to run ``arbbot backfill``), and a worker
restarted after a backfill reads the backfilled pools it has no state for."""

from __future__ import annotations

import logging

import pytest

from arbbot.chain.backfill import MemoryLedger, backfill
from arbbot.chain.discovery import Factory
from arbbot.chain.rpc import RpcClient
from arbbot.chain.scanner import Scanner, ScannerConfig
from arbbot.hotstate import HotState
from tests.chain.devchain import DevChain
from tests.chain.test_backfill import RangeLimitProxy, spread_market


def _config(dev: DevChain, url: str, mc: str, factories: list[Factory], pools: list, **kw: object) -> ScannerConfig:
    return ScannerConfig(chain_id=31337, rpc_urls=(url,), multicall=mc, factories=tuple(factories),
                         pools=tuple(pools), read_tokens=False, check_transfers=False, **kw)  # type: ignore[arg-type]


def test_first_poll_discovers_after_the_backfill_cursor_only(dev: DevChain) -> None:
    mc = dev.deploy_multicall()
    m = spread_market(dev, n_tokens=5, gap=15, v3_pools=2)
    cursor = dev.rpc.block_number() - 3
    ledger = MemoryLedger()
    backfill(dev.rpc, [Factory(m.v2, "v2", start_block=m.v2_start), Factory(m.v3, "v3", start_block=m.v3_start)],
             ledger, to_block=cursor, max_chunk=50)
    # pools created after the backfill stopped: the scanner's to find
    late = [dev.create_pair(m.v2, m.tokens[0], dev.deploy_token("Late", "LATE")).address]
    head = dev.rpc.block_number()
    proxy = RangeLimitProxy(dev.rpc.url)
    try:
        factories = [Factory(m.v2, "v2", start_block=m.v2_start, discovered_to=ledger.cursors[m.v2]),
                     Factory(m.v3, "v3", start_block=m.v3_start, discovered_to=ledger.cursors[m.v3])]
        scanner = Scanner(_config(dev, proxy.url, mc, factories, ledger.pools, bootstrap_discover_max_blocks=100))
        (delta,) = scanner.poll()
    finally:
        proxy.kill()
    discovery = [f for f in proxy.filters if f.get("address") in (m.v2, m.v3)]
    assert {(f["address"], int(f["fromBlock"], 16)) for f in discovery} == {(m.v2, cursor + 1), (m.v3, cursor + 1)}
    assert all(int(f["toBlock"], 16) == head for f in discovery)
    assert sorted(s.address for s in delta.states) == sorted(m.pools + late)
    assert all(s.block_number == head for s in delta.states)


def test_a_long_range_without_backfill_is_not_discovered_in_a_scan_task(
    dev: DevChain, caplog: pytest.LogCaptureFixture
) -> None:
    mc = dev.deploy_multicall()
    m = spread_market(dev, n_tokens=4, gap=40, v3_pools=0)
    scanner = Scanner(_config(dev, dev.rpc.url, mc, [Factory(m.v2, "v2", start_block=m.v2_start)], [],
                              bootstrap_discover_max_blocks=100))
    with caplog.at_level(logging.WARNING, logger="arbbot.chain.scanner"):
        (first,) = scanner.poll()
    assert first.states == ()  # the history is the backfill's work
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "arbbot backfill --chain 31337" in warning and m.v2 in warning
    assert scanner.stats.extra["discovery_skipped"] == [m.v2]
    # from the head onward the factory's new pools are followed as usual
    new = dev.create_pair(m.v2, m.tokens[0], dev.deploy_token("New", "NEW")).address
    got = {s.address for d in scanner.poll() for s in d.states}
    assert new in got and not got & set(m.pools)


def test_a_restarted_worker_reads_the_backfilled_pools_it_has_no_state_for(dev: DevChain, hot: HotState) -> None:
    mc = dev.deploy_multicall()
    m = spread_market(dev, n_tokens=4, gap=10, v3_pools=1)
    for p in list(dev.pairs.values())[:2]:
        dev.add_liquidity(p, 10**21, 2 * 10**21)
    head = dev.rpc.block_number()
    # the fleet was following this chain before anyone ran the backfill
    old = Scanner(_config(dev, dev.rpc.url, mc, [Factory(m.v2, "v2", start_block=m.v2_start)], [],
                          bootstrap_discover_max_blocks=5), store=hot)
    assert old.poll()[0].states == ()
    ledger = MemoryLedger()
    backfill(RpcClient(dev.rpc.url), [Factory(m.v2, "v2", start_block=m.v2_start),
                                      Factory(m.v3, "v3", start_block=m.v3_start)], ledger, to_block=head)
    # a worker (re)started afterwards is built with the backfilled pools; the store's cursor
    # says the chain is bootstrapped, so the pools are read with the next blocks
    restarted = Scanner(_config(dev, dev.rpc.url, mc, [Factory(m.v2, "v2", discovered_to=head),
                                                       Factory(m.v3, "v3", discovered_to=head)], ledger.pools,
                                unread_pools_per_block=4), store=hot)
    states: dict[str, object] = {}
    for _ in range(5):
        dev.rpc.call("evm_mine", [])
        for d in restarted.poll():
            states.update({s.address: s for s in d.states})
        if len(states) == len(m.pools):
            break
    assert sorted(states) == sorted(m.pools)
    assert set(hot.get_pools()) == set(m.pools)
    funded = list(dev.pairs.values())[0]
    stored = hot.get_pools()[funded.address]
    assert (stored.reserve0, stored.reserve1) == (funded.reserve0, funded.reserve1)  # type: ignore[attr-defined]


def test_a_cursor_beyond_the_head_is_not_trusted(dev: DevChain, caplog: pytest.LogCaptureFixture) -> None:
    """A devnet reset under the same id: the backfill's cursor names blocks that do not exist."""
    mc = dev.deploy_multicall()
    m = spread_market(dev, n_tokens=3, gap=5, v3_pools=0)
    head = dev.rpc.block_number()
    f = Factory(m.v2, "v2", start_block=m.v2_start, discovered_to=head + 1000)
    with caplog.at_level(logging.WARNING, logger="arbbot.chain.scanner"):
        (first,) = Scanner(_config(dev, dev.rpc.url, mc, [f], [])).poll()
    assert sorted(s.address for s in first.states) == sorted(m.pools)
    assert "beyond the head" in caplog.text
