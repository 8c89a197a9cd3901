"""Scanner on genuine Uniswap V2 pairs: bootstrap, incremental Sync-driven sync, exact
equality with on-chain getReserves after thousands of random swaps, hot state in Redis."""

from __future__ import annotations

from arbbot.chain.discovery import Factory
from arbbot.chain.rpc import RpcClient
from arbbot.chain.scanner import Scanner, ScannerConfig
from arbbot.hotstate import HotState
from arbbot.types import PoolDelta, V2PoolState
from tests.chain.devchain import DevChain, build_v2_market


def _assert_exact(dev: DevChain, scanner: Scanner, hot: HotState | None = None) -> None:
    pairs = sorted(dev.pairs)
    onchain = dev.rpc.batch([("eth_call", [{"to": p, "data": "0x0902f1ac"}, "latest"]) for p in pairs])
    stored = hot.get_pools() if hot else {}
    for p, raw in zip(pairs, onchain):
        d = bytes.fromhex(raw[2:])
        want = (int.from_bytes(d[0:32], "big"), int.from_bytes(d[32:64], "big"))
        s = scanner.pools[p]
        assert isinstance(s, V2PoolState)
        assert (s.reserve0, s.reserve1) == want, p
        assert (dev.pairs[p].reserve0, dev.pairs[p].reserve1) == want  # the mirror agrees too
        if hot:
            h = stored[p]
            assert isinstance(h, V2PoolState) and (h.reserve0, h.reserve1) == want


def test_thousands_of_random_swaps_stay_exact(dev: DevChain, hot: HotState) -> None:
    mc = dev.deploy_multicall()
    factory, _ = build_v2_market(dev, n_tokens=12, n_pairs=40)
    cfg = ScannerConfig(chain_id=31337, rpc_urls=(dev.rpc.url,), multicall=mc,
                        factories=(Factory(factory, "v2"),), chunk_size=16)
    scanner = Scanner(cfg, store=hot)
    first = scanner.poll()
    assert len(first) == 1 and len(first[0].states) == 40
    _assert_exact(dev, scanner, hot)

    pairs = list(dev.pairs.values())
    swaps = 0
    deltas: list[PoolDelta] = []
    for block in range(25):
        txs = []
        for _ in range(100):
            txs += dev.random_swap_txs(dev.rng.choice(pairs))
            swaps += 1
        dev.send_many(txs)
        if block % 3 == 0:  # sometimes several blocks pile up between polls
            deltas += scanner.poll()
        if block % 7 == 0:
            dev.mine(2)  # empty blocks: still one (empty) delta each
    deltas += scanner.poll()
    assert swaps >= 2500
    head = dev.rpc.block_number()
    assert [d.block_number for d in deltas] == list(range(first[0].block_number + 1, head + 1))
    assert all(not d.reorg for d in deltas)
    assert sum(len(d.states) for d in deltas) > 0
    _assert_exact(dev, scanner, hot)
    assert hot.head() == (head, dev.rpc.call("eth_getBlockByNumber", ["latest", False])["hash"])

    # a restarted worker resumes from the cursor in Redis: no bootstrap, next block only
    again = Scanner(cfg, store=hot)
    dev.send_many(dev.random_swap_txs(pairs[0]))
    d2 = again.poll()
    assert [d.block_number for d in d2] == [head + 1]
    assert [s.address for s in d2[0].states] == [pairs[0].address]
    _assert_exact(dev, again, hot)


def test_new_pair_discovered_while_following(dev: DevChain) -> None:
    mc = dev.deploy_multicall()
    factory, tokens = build_v2_market(dev, n_tokens=4, n_pairs=3)
    scanner = Scanner(ScannerConfig(chain_id=31337, rpc_urls=(dev.rpc.url,), multicall=mc,
                                    factories=(Factory(factory, "v2"),)))
    assert len(scanner.poll()[0].states) == 3
    extra = dev.create_pair(factory, tokens[2], tokens[3])
    dev.add_liquidity(extra, 10**20, 3 * 10**20)
    deltas = scanner.poll()
    assert extra.address in scanner.pools
    s = scanner.pools[extra.address]
    assert isinstance(s, V2PoolState) and (s.reserve0, s.reserve1) == dev.onchain_reserves(extra.address)
    assert deltas[0].states[0].address == extra.address
    assert scanner.tokens[tokens[3].lower()].symbol == "T3"
    assert scanner.tokens[tokens[3].lower()].decimals == 18


def test_full_refresh_matches_incremental(dev: DevChain) -> None:
    mc = dev.deploy_multicall()
    factory, _ = build_v2_market(dev, n_tokens=6, n_pairs=15)
    cfg = ScannerConfig(chain_id=31337, rpc_urls=(dev.rpc.url,), multicall=mc,
                        factories=(Factory(factory, "v2"),), chunk_size=4, calls_per_request=2, concurrency=3)
    scanner = Scanner(cfg)
    scanner.poll()
    for p in list(dev.pairs.values())[:10]:
        dev.send_many(dev.random_swap_txs(p))
    scanner.poll()
    incremental = dict(scanner.pools)
    head = dev.rpc.block_number()
    fresh = {s.address: s for s in scanner.full_refresh(head)}
    assert {a: (s.reserve0, s.reserve1) for a, s in fresh.items()} == {  # type: ignore[union-attr]
        a: (s.reserve0, s.reserve1) for a, s in incremental.items()  # type: ignore[union-attr]
    }
    RpcClient  # noqa: B018
