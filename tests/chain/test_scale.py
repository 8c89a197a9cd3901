"""A chain with thousands of genuine Uniswap V2 pairs (``arbbot.devnet.bulk``: each made by
the npm ``UniswapV2Factory`` through Router02's ``addLiquidity``): the backfill finds every
pair exactly once, the scanner's first snapshot holds each watched pair once with the
reserves ``getReserves()`` returns, and the pool filter decides what is watched: deny and
allow lists, and a minimum liquidity that admits pools as blocks deepen them. Correctness
only; the timings are ``bench/scale``'s."""

from __future__ import annotations

from collections import Counter
from typing import Iterator

import pytest

from arbbot.chain.backfill import MemoryLedger, backfill
from arbbot.chain.discovery import Factory
from arbbot.chain.pool_filter import PoolFilter
from arbbot.chain.rpc import RpcClient
from arbbot.chain.scanner import Scanner, ScannerConfig
from arbbot.chain.tx import encode_call
from arbbot.devnet.anvil import start_anvil
from arbbot.devnet.bulk import DEPLOYER, V2Market, V2Pair, build_v2_pairs, pair_reserves, send_batched
from arbbot.types import V2PoolState

N_PAIRS = 2_000


@pytest.fixture(scope="module")
def chain() -> Iterator[tuple[RpcClient, V2Market]]:
    node = start_anvil(gas_limit=1_000_000_000)
    try:
        rpc = RpcClient(node.url, timeout_s=120)
        yield rpc, build_v2_pairs(rpc, N_PAIRS)
    finally:
        node.stop()


def scanner_for(rpc: RpcClient, m: V2Market, pool_filter: PoolFilter, **kw: object) -> Scanner:
    ledger = MemoryLedger()
    backfill(rpc, [Factory(m.factory, "v2", m.first_block)], ledger, to_block=m.last_block, max_chunk=50)
    cfg = ScannerConfig(
        chain_id=31337, rpc_urls=(rpc.url,), multicall=m.multicall,
        factories=(Factory(m.factory, "v2", m.first_block, discovered_to=m.last_block),),
        pools=tuple(ledger.pools), pool_filter=pool_filter, read_tokens=False, check_transfers=False,
        rpc_timeout_s=60, **kw,  # type: ignore[arg-type]
    )
    return Scanner(cfg)


def test_every_pair_is_found_once_and_read_as_on_chain(chain: tuple[RpcClient, V2Market]) -> None:
    rpc, m = chain
    assert len(m.pairs) == N_PAIRS and len({p.address for p in m.pairs}) == N_PAIRS
    n_created = int(rpc.eth_call(m.factory, encode_call("allPairsLength()")), 16)
    assert n_created == N_PAIRS, "every pair made by the factory"

    ledger = MemoryLedger()
    res = backfill(rpc, [Factory(m.factory, "v2", m.first_block)], ledger, to_block=m.last_block, max_chunk=7)
    counts = Counter(p.address for p in ledger.pools)
    assert res.pools_found == N_PAIRS and set(counts) == {p.address for p in m.pairs}
    assert set(counts.values()) == {1}, "no pair twice across chunks"

    scanner = scanner_for(rpc, m, PoolFilter())
    (first,) = scanner.poll()
    addrs = [s.address for s in first.states]
    assert len(addrs) == N_PAIRS == len(set(addrs)) and set(addrs) == set(scanner.infos)
    head = first.block_hash
    expected = pair_reserves(rpc, addrs, head)
    assert {s.address: (s.reserve0, s.reserve1) for s in first.states if isinstance(s, V2PoolState)} == expected
    mirror = {p.address: (p.reserve0, p.reserve1) for p in m.pairs}
    assert expected == mirror, "the builder's reserves are the chain's"


def test_deny_and_allow_lists_decide_what_is_watched(chain: tuple[RpcClient, V2Market]) -> None:
    rpc, m = chain
    denied = {m.tokens[3], m.tokens[10]}
    allowed = set(m.tokens[:20])
    f = PoolFilter(allow_tokens=frozenset(allowed), deny_tokens=frozenset(denied))
    scanner = scanner_for(rpc, m, f)
    (first,) = scanner.poll()
    want = {p.address for p in m.pairs
            if {p.token0, p.token1} <= allowed and not {p.token0, p.token1} & denied}
    assert 0 < len(want) < N_PAIRS
    assert {s.address for s in first.states} == want == scanner.watched
    assert len(scanner.infos) == N_PAIRS, "the others are known (never rediscovered), not watched"
    assert set(scanner.pools) == want

    # a block swapping in a watched and an unwatched pair publishes only the watched one
    inside = next(p for p in m.pairs if p.address in want)
    outside = next(p for p in m.pairs if p.address not in want)
    swap_both(rpc, m, [inside.token0, inside.token1], [outside.token0, outside.token1])
    (delta,) = scanner.poll()
    assert [s.address for s in delta.states] == [inside.address]
    assert pair_reserves(rpc, [inside.address], delta.block_hash)[inside.address] == (
        delta.states[0].reserve0, delta.states[0].reserve1)  # type: ignore[union-attr]


def swap_both(rpc: RpcClient, m: V2Market, *paths: list[str]) -> None:
    """One block: a small Router02 swap along each of ``paths``."""
    send_batched(rpc, DEPLOYER, [
        {"to": m.router, "gas": hex(500_000), "data": encode_call(
            "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
            [10**18, 0, path, DEPLOYER, 2**40])}
        for path in paths
    ])


def test_minimum_liquidity_admits_deep_pools_and_their_tail(chain: tuple[RpcClient, V2Market]) -> None:
    rpc, m = chain
    quote = m.tokens[0]  # the hub: paired with every other token
    minimum = 500_000 * 10**18
    f = PoolFilter(min_liquidity_token=quote, min_liquidity=minimum)
    scanner = scanner_for(rpc, m, f, unread_pools_per_block=10_000)
    (first,) = scanner.poll()

    now = pair_reserves(rpc, [p.address for p in m.pairs], first.block_hash)  # earlier tests swapped

    def reserve_of(p: V2Pair, token: str) -> int:
        return now[p.address][0 if p.token0 == token else 1]

    hub = [p for p in m.pairs if quote in (p.token0, p.token1)]
    deep = {p.address for p in hub if reserve_of(p, quote) >= minimum}
    liquid = {p.token1 if p.token0 == quote else p.token0 for p in hub if p.address in deep}
    tail = {p.address for p in m.pairs if quote not in (p.token0, p.token1) and {p.token0, p.token1} <= liquid}
    assert deep and tail and len(deep) < len(hub) and len(deep | tail) < N_PAIRS
    assert {s.address for s in first.states} == deep | tail == scanner.watched
    assert pair_reserves(rpc, sorted(deep | tail), first.block_hash) == {
        s.address: (s.reserve0, s.reserve1) for s in first.states if isinstance(s, V2PoolState)}

    # a shallow hub pool made deep by liquidity: admitted in that block with its Sync's
    # reserves; the tail pools it makes admissible are read in the next block
    shallow = min((p for p in hub if p.address not in deep), key=lambda p: reserve_of(p, quote))
    other = shallow.token1 if shallow.token0 == quote else shallow.token0
    send_batched(rpc, DEPLOYER, [{"to": m.router, "gas": hex(3_000_000), "data": encode_call(
        "addLiquidity(address,address,uint256,uint256,uint256,uint256,address,uint256)",
        [quote, other, minimum, minimum * 10**6, 0, 0, DEPLOYER, 2**40])}])
    (delta,) = scanner.poll()
    assert shallow.address in {s.address for s in delta.states}
    unlocked = {p.address for p in m.pairs if quote not in (p.token0, p.token1)
                and {p.token0, p.token1} <= liquid | {other} and other in (p.token0, p.token1)}
    assert unlocked and unlocked <= scanner.watched
    rpc.call("evm_mine", [])
    (nxt,) = scanner.poll()
    assert {s.address for s in nxt.states} == unlocked
    assert set(scanner.pools) == scanner.watched == deep | tail | {shallow.address} | unlocked
    watched = sorted(scanner.watched)
    assert pair_reserves(rpc, watched, nxt.block_hash) == {
        a: (s.reserve0, s.reserve1) for a in watched if isinstance(s := scanner.pools[a], V2PoolState)}
