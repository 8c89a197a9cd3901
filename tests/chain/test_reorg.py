"""Reorgs on anvil (``anvil_reorg`` and ``evm_snapshot``/``evm_revert``) at depth 1 and 3:
detected from the parent hash, walked back to the common ancestor, the affected pools
re-read at the new head, one correction ``PoolDelta(reorg=True, orphaned_hashes=...)``."""

from __future__ import annotations

import pytest

from arbbot.chain.discovery import Factory
from arbbot.chain.scanner import Scanner, ScannerConfig
from arbbot.chain.tx import encode_call
from arbbot.hotstate import HotState
from arbbot.types import V2PoolState
from tests.chain.devchain import DevChain, build_v2_market


def _setup(dev: DevChain, hot: HotState) -> tuple[Scanner, list[str]]:
    mc = dev.deploy_multicall()
    factory, _ = build_v2_market(dev, n_tokens=4, n_pairs=6)
    scanner = Scanner(
        ScannerConfig(chain_id=31337, rpc_urls=(dev.rpc.url,), multicall=mc, factories=(Factory(factory, "v2"),)),
        store=hot,
    )
    scanner.poll()
    return scanner, sorted(dev.pairs)


def _assert_onchain(dev: DevChain, scanner: Scanner, hot: HotState) -> None:
    stored = hot.get_pools()
    for p in dev.pairs:
        want = dev.onchain_reserves(p)
        s = scanner.pools[p]
        assert isinstance(s, V2PoolState) and (s.reserve0, s.reserve1) == want
        h = stored[p]
        assert isinstance(h, V2PoolState) and (h.reserve0, h.reserve1) == want


def _swap_blocks(dev: DevChain, pairs: list[str], n: int) -> list[str]:
    return [dev.send_many(dev.random_swap_txs(dev.pairs[pairs[i]])) or "" for i in range(n)]


@pytest.mark.parametrize("depth", [1, 3])
def test_anvil_reorg_detected_and_repaired(dev: DevChain, hot: HotState, depth: int) -> None:
    scanner, pairs = _setup(dev, hot)
    orphan_hashes = _swap_blocks(dev, pairs, depth)
    seen = scanner.poll()
    assert [d.block_hash for d in seen] == orphan_hashes
    # the replacement branch: a donation + sync() on the last pair in its first block
    p5 = dev.pairs[pairs[5]]
    donate = dev.tx(p5.token0, encode_call("transfer(address,uint256)", [p5.address, 10**18]), 80_000)
    sync = dev.tx(p5.address, encode_call("sync()"), 100_000)
    dev.rpc.call("anvil_reorg", [depth, [[donate, 0], [sync, 0]]])
    head = dev.rpc.call("eth_getBlockByNumber", ["latest", False])
    assert head["hash"] not in orphan_hashes

    deltas = scanner.poll()
    assert len(deltas) == 1
    d = deltas[0]
    assert d.reorg and set(d.orphaned_hashes) == set(orphan_hashes)
    # marked orphaned in the hot state with the correcting block, before anyone sees the delta
    assert all(hot.is_orphaned(h) for h in orphan_hashes) and not hot.is_orphaned(head["hash"])
    assert (d.block_number, d.block_hash) == (int(head["number"], 16), head["hash"])
    # the delta prices gas from the node: base fee from the header, gas price from the node
    assert d.base_fee_wei == int(head["baseFeePerGas"], 16)
    assert d.gas_price_wei == int(dev.rpc.call("eth_gasPrice"), 16) > 0
    assert {s.address for s in d.states} == set(pairs[:depth]) | {pairs[5]}
    _assert_onchain(dev, scanner, hot)
    assert hot.head() == (d.block_number, d.block_hash)
    assert scanner.stats.reorgs == 1

    # life goes on on the new branch
    dev.rpc.call("evm_mine", [])
    nxt = scanner.poll()
    assert len(nxt) == 1 and not nxt[0].reorg and nxt[0].states == ()


@pytest.mark.parametrize("depth", [1, 3])
def test_snapshot_revert_reorg(dev: DevChain, hot: HotState, depth: int) -> None:
    scanner, pairs = _setup(dev, hot)
    snap = dev.rpc.call("evm_snapshot", [])
    fork_point = dev.rpc.block_number()
    orphan_hashes = _swap_blocks(dev, pairs, depth)
    assert len(scanner.poll()) == depth
    assert dev.rpc.call("evm_revert", [snap])
    dev.resync_mirror()
    # the other branch is one block longer and touches different pools
    new_hashes = [dev.send_many(dev.random_swap_txs(dev.pairs[pairs[5 - i]])) for i in range(depth + 1)]
    deltas = scanner.poll()
    assert len(deltas) == 1 and deltas[0].reorg
    assert set(deltas[0].orphaned_hashes) == set(orphan_hashes)
    assert deltas[0].block_hash == new_hashes[-1] and deltas[0].block_number == fork_point + depth + 1
    assert {s.address for s in deltas[0].states} == set(pairs[:depth]) | {pairs[5 - i] for i in range(depth + 1)}
    _assert_onchain(dev, scanner, hot)


def test_revert_to_shorter_chain(dev: DevChain, hot: HotState) -> None:
    scanner, pairs = _setup(dev, hot)
    snap = dev.rpc.call("evm_snapshot", [])
    ancestor = dev.rpc.call("eth_getBlockByNumber", ["latest", False])
    orphan_hashes = _swap_blocks(dev, pairs, 3)
    scanner.poll()
    dev.rpc.call("evm_revert", [snap])  # head is now 3 blocks lower, nothing mined yet
    deltas = scanner.poll()
    assert len(deltas) == 1 and deltas[0].reorg and set(deltas[0].orphaned_hashes) == set(orphan_hashes)
    assert deltas[0].block_hash == ancestor["hash"]
    _assert_onchain(dev, scanner, hot)
    assert scanner.poll() == []
