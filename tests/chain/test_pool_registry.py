"""``arbbot.chain.pool_registry``: reading known pools through Multicall3 (or plain
eth_calls) at a block hash gives the on-chain reserves, and the registry forgets and
adopts pools as the scanner's reorg repair and cursor hand-over need."""

from __future__ import annotations

from arbbot.chain.discovery import PoolInfo
from arbbot.chain.multicall import DirectCaller, Multicaller
from arbbot.chain.pool_registry import PoolRegistry
from arbbot.types import V2PoolState
from tests.chain.devchain import DevChain, build_v2_market


def test_read_at_a_block_hash_equals_the_chain(dev: DevChain) -> None:
    build_v2_market(dev, n_tokens=4, n_pairs=4)
    mc = Multicaller(dev.rpc, dev.deploy_multicall(), chunk_size=3)
    infos = [PoolInfo(p.address, "v2", p.token0, p.token1, created_block=i) for i, p in enumerate(dev.pairs.values())]
    reg = PoolRegistry(mc, infos=infos)
    head = dev.rpc.call("eth_getBlockByNumber", ["latest", False])
    pinned = {p: dev.onchain_reserves(p) for p in dev.pairs}
    dev.send_many(dev.random_swap_txs(next(iter(dev.pairs.values()))))  # the chain moves on
    states = reg.read_all(head["hash"], int(head["number"], 16))
    assert [s.address for s in states] == sorted(dev.pairs)
    assert {s.address: (s.reserve0, s.reserve1) for s in states if isinstance(s, V2PoolState)} == pinned
    assert reg.states == {s.address: s for s in states}
    direct = PoolRegistry(DirectCaller(dev.rpc), infos=infos).read_all(head["hash"], int(head["number"], 16))
    assert direct == states

    dropped = reg.forget_after(1)
    assert dropped == {i.address for i in infos if i.created_block > 1}
    assert set(reg.infos) == set(reg.states) == {i.address for i in infos if i.created_block <= 1}

    fresh = PoolRegistry(mc)
    fresh.adopt({s.address: s for s in states})
    assert sorted(fresh.infos) == sorted(dev.pairs)
    assert all(fresh.infos[a].token0 == dev.pairs[a].token0 for a in dev.pairs)


def test_a_pool_that_does_not_answer_is_left_out_not_an_error(dev: DevChain) -> None:
    build_v2_market(dev, n_tokens=2, n_pairs=1)
    mc = Multicaller(dev.rpc, dev.deploy_multicall())
    good = next(iter(dev.pairs.values()))
    eoa = "0x" + "12" * 20
    infos = [PoolInfo(eoa, "v2", "0x" + "01" * 20, "0x" + "02" * 20), PoolInfo(good.address, "v2", good.token0, good.token1)]
    reg = PoolRegistry(mc, infos=infos)
    states = reg.read_all("latest", dev.rpc.block_number())
    assert [s.address for s in states] == [good.address]
    assert set(reg.states) == {good.address}
    failed = reg.drain_failed()
    assert set(failed) == {eoa} and "getReserves" in failed[eoa]
    assert reg.drain_failed() == {}
