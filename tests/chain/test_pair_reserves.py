"""V2 reserves through ``PairReserves`` (the project's runtime code run by an ``eth_call``
state override) on anvil with the genuine pairs: exactly what ``getReserves()`` answers,
pinned to a block hash, a broken "pair" (no code, a reverting ERC20, garbage, a gas
burner) reads as None without failing the others; a node that refuses state overrides is
read through Multicall3 from then on, and node trouble is raised, not taken for a refusal."""

from __future__ import annotations

import pytest

from arbbot.chain.multicall import Multicaller, read_v2_reserves
from arbbot.chain.rpc import RpcClient, RpcUnavailable
from tests.chain.devchain import DevChain, RpcProxy, build_v2_market
from tests.chain.test_unreadable_pools import GARBAGE_CODE

BURNER_CODE = "0x5b600056"  # JUMPDEST PUSH1 0 JUMP: loops until its gas is gone


def test_pair_reserves_equal_get_reserves_and_isolate_broken_pairs(dev: DevChain) -> None:
    mc_addr = dev.deploy_multicall()
    _, tokens = build_v2_market(dev, n_tokens=5, n_pairs=10)
    eoa, garbage, burner = "0x" + "a3" * 20, "0x" + "a1" * 20, "0x" + "a4" * 20
    dev.rpc.call("anvil_setCode", [garbage, GARBAGE_CODE])
    dev.rpc.call("anvil_setCode", [burner, BURNER_CODE])
    pairs = sorted(dev.pairs)
    asked = [pairs[0], eoa, tokens[0].lower(), *pairs[1:5], burner, garbage, *pairs[5:]]
    mc = Multicaller(dev.rpc, mc_addr, concurrency=2, calls_per_request=1)
    head = dev.rpc.call("eth_getBlockByNumber", ["latest", False])
    got = mc.v2_reserves(asked, head["hash"])
    assert mc.pair_reader, "anvil takes state overrides"
    for a, r in zip(asked, got):
        assert r == (dev.onchain_reserves(a) if a in dev.pairs else None), a
    # the same as aggregate3 gives, and pinned to the block: a later swap is not seen
    old = Multicaller(dev.rpc, mc_addr, pair_reader=False)
    assert old.v2_reserves(pairs, head["hash"]) == [r for a, r in zip(asked, got) if a in dev.pairs]
    dev.send_many(dev.random_swap_txs(dev.pairs[pairs[0]]))
    assert mc.v2_reserves(pairs[:1], head["hash"]) == [got[0]]
    assert mc.v2_reserves(pairs[:1], "latest") == [dev.onchain_reserves(pairs[0])] != [got[0]]


def test_a_node_without_state_overrides_is_read_through_multicall3(dev: DevChain) -> None:
    mc_addr = dev.deploy_multicall()
    build_v2_market(dev, n_tokens=4, n_pairs=6)
    pairs = sorted(dev.pairs)
    want = [dev.onchain_reserves(a) for a in pairs]
    proxy = RpcProxy(dev.rpc.url, refuse_overrides=True)
    try:
        rpc = RpcClient(proxy.url, timeout_s=30, retries=0, breaker_threshold=100)
        mc = Multicaller(rpc, mc_addr)
        assert read_v2_reserves(mc, pairs, "latest") == want
        assert not mc.pair_reader and proxy.refused == 1
        assert read_v2_reserves(mc, pairs, "latest") == want and proxy.refused == 1, "not asked again"

        # a node that is down is node trouble: raised, and the reader stays on
        mc2 = Multicaller(RpcClient(proxy.url, timeout_s=5, retries=0), mc_addr)
        proxy.kill()
        with pytest.raises(RpcUnavailable):
            mc2.v2_reserves(pairs, "latest")
        assert mc2.pair_reader
    finally:
        proxy.kill()
