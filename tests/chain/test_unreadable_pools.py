"""One pool whose reads fail never stops the scan of the others: on anvil, registered
"pools" that revert (an ERC20), answer nothing (an address without code) or answer garbage
(code that returns all-ones words) are quarantined, their states never published, while
the genuine pairs keep syncing block by block; a pool that becomes readable is taken back."""

from __future__ import annotations

from arbbot.chain.discovery import Factory, PoolInfo
from arbbot.chain.scanner import Scanner, ScannerConfig
from arbbot.hotstate import HotState
from arbbot.types import V2PoolState, V3PoolState
from tests.chain.devchain import DevChain, build_v2_market

# PUSH32 ~0, PUSH1 0, MSTORE, PUSH32 ~0, PUSH1 32, MSTORE, PUSH1 64, PUSH1 0, RETURN:
# every call answers two all-ones words (reserves far beyond uint112, a sqrt price beyond
# the maximum)
GARBAGE_CODE = "0x7f" + "ff" * 32 + "600052" + "7f" + "ff" * 32 + "602052" + "60406000f3"


def _returning(r0: int, r1: int) -> str:
    """Code that answers any call with ``(r0, r1, 0)``: a sane getReserves()."""
    return ("0x7f" + r0.to_bytes(32, "big").hex() + "600052" + "7f" + r1.to_bytes(32, "big").hex()
            + "602052" + "60606000f3")


def test_unreadable_pools_never_stop_the_scan(dev: DevChain, hot: HotState) -> None:
    mc = dev.deploy_multicall()
    factory, tokens = build_v2_market(dev, n_tokens=4, n_pairs=4)
    garbage_v2, garbage_v3, eoa = "0x" + "a1" * 20, "0x" + "a2" * 20, "0x" + "a3" * 20
    for addr in (garbage_v2, garbage_v3):
        dev.rpc.call("anvil_setCode", [addr, GARBAGE_CODE])
    bad = [
        PoolInfo(tokens[0].lower(), "v2", tokens[1], tokens[2]),  # an ERC20: getReserves() reverts
        PoolInfo(eoa, "v2", tokens[1], tokens[2]),  # no code: empty answer
        PoolInfo(garbage_v2, "v2", tokens[1], tokens[2]),
        PoolInfo(garbage_v3, "v3", tokens[1], tokens[2], 3000, 60),
    ]
    cfg = ScannerConfig(chain_id=31337, rpc_urls=(dev.rpc.url,), multicall=mc, factories=(Factory(factory, "v2"),),
                        pools=tuple(bad), chunk_size=3)
    scanner = Scanner(cfg, store=hot)
    first = scanner.poll()
    assert len(first) == 1 and sorted(s.address for s in first[0].states) == sorted(dev.pairs)
    h = scanner.health()
    assert h["healthy"] and set(h["quarantined"]) == {i.address for i in bad}
    assert set(hot.get_pools()) == set(dev.pairs)

    pairs = list(dev.pairs.values())
    for i in range(6):  # the genuine pairs keep syncing while the bad ones are retried
        dev.send_many(dev.random_swap_txs(pairs[i % len(pairs)]))
        d = scanner.poll()
        assert [s.address for s in d[0].states] == [pairs[i % len(pairs)].address]
        assert d[0].block_number == dev.rpc.block_number()
    for p in dev.pairs:
        s = scanner.pools[p]
        assert isinstance(s, V2PoolState) and (s.reserve0, s.reserve1) == dev.onchain_reserves(p)
    assert scanner.quarantine[garbage_v2].failures >= 2  # retried, with a growing wait
    assert not set(hot.get_pools()) & {i.address for i in bad}

    # the garbage pool starts answering sanely: it is read again and published
    dev.rpc.call("anvil_setCode", [garbage_v2, _returning(1000, 2000)])
    found = None
    for _ in range(20):
        dev.mine(1)
        for d in scanner.poll():
            found = found or next((s for s in d.states if s.address == garbage_v2), None)
        if found:
            break
    assert isinstance(found, V2PoolState) and (found.reserve0, found.reserve1) == (1000, 2000)
    assert garbage_v2 not in scanner.quarantine and garbage_v2 in hot.get_pools()
    assert garbage_v3 in scanner.quarantine and not isinstance(scanner.pools.get(garbage_v3), V3PoolState)
