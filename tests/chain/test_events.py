"""``arbbot.chain.events``: what each log means (constructed logs for every branch of
``classify_log``), and ``block_events`` over the real logs of a Uniswap V2 market on
anvil, which must end at the on-chain reserves of every pair it discovers."""

from __future__ import annotations

from typing import Any

from eth_abi import encode

from arbbot.chain.discovery import PAIR_CREATED, POOL_CREATED, Factory, PoolInfo
from arbbot.chain.events import (
    V2_SYNC,
    V3_BURN,
    V3_INITIALIZE,
    V3_MINT,
    V3_SWAP,
    WATCHED_TOPICS,
    Created,
    Reread,
    Reserves,
    Swapped,
    block_events,
    classify_log,
)
from tests.chain.devchain import DevChain, build_v2_market

V2F = "0x" + "f2" * 20
V3F = "0x" + "f3" * 20
PAIR = "0x" + "a2" * 20
POOL = "0x" + "a3" * 20
T0, T1 = "0x" + "11" * 20, "0x" + "22" * 20
FACTORIES = {V2F: Factory(V2F, "v2", fee_pips=2500), V3F: Factory(V3F, "v3")}
POOLS = {PAIR: PoolInfo(PAIR, "v2", T0, T1), POOL: PoolInfo(POOL, "v3", T0, T1, 500, 10)}


def _topic_word(value: Any, typ: str = "address") -> str:
    return "0x" + encode([typ], [value]).hex()


def _log(address: str, topics: list[str], types: list[str] = [], values: list[Any] = []) -> dict[str, Any]:
    data = encode(types, values) if types else b""
    return {"address": address.upper().replace("0X", "0x"), "topics": topics, "data": "0x" + data.hex(),
            "blockNumber": "0x2a"}


def _sync(pair: str, r0: int, r1: int) -> dict[str, Any]:
    return _log(pair, [V2_SYNC], ["uint112", "uint112"], [r0, r1])


def test_sync_of_a_known_pair_is_its_reserves() -> None:
    assert classify_log(_sync(PAIR, 10**18, 3 * 10**18), POOLS, FACTORIES) == Reserves(PAIR, 10**18, 3 * 10**18)


def test_swap_of_a_known_v3_pool_is_its_price_liquidity_and_negative_tick() -> None:
    lg = _log(POOL, [V3_SWAP, _topic_word(T0), _topic_word(T1)],
              ["int256", "int256", "uint160", "uint128", "int24"], [-5, 7, 2**96 - 1, 12345, -887])
    assert classify_log(lg, POOLS, FACTORIES) == Swapped(POOL, 2**96 - 1, 12345, -887)


def test_mint_burn_initialize_mean_reread() -> None:
    for t in (V3_MINT, V3_BURN, V3_INITIALIZE):
        assert classify_log(_log(POOL, [t]), POOLS, FACTORIES) == Reread(POOL)


def test_creation_by_a_known_factory_of_the_matching_kind() -> None:
    pair_created = _log(V2F, [PAIR_CREATED, _topic_word(T0), _topic_word(T1)], ["address", "uint256"], [PAIR, 1])
    ev = classify_log(pair_created, {}, FACTORIES)
    assert ev == Created(PoolInfo(PAIR, "v2", T0, T1, 2500, 0, V2F, 42))
    pool_created = _log(V3F, [POOL_CREATED, _topic_word(T0), _topic_word(T1), _topic_word(500, "uint24")],
                        ["int24", "address"], [-10, POOL])
    ev = classify_log(pool_created, {}, FACTORIES)
    assert ev == Created(PoolInfo(POOL, "v3", T0, T1, 500, -10, V3F, 42))
    # the wrong kind of factory, or an unknown one, creates nothing
    assert classify_log({**pair_created, "address": V3F}, {}, FACTORIES) is None
    assert classify_log({**pool_created, "address": "0x" + "99" * 20}, {}, FACTORIES) is None


def test_logs_that_mean_nothing() -> None:
    assert classify_log(_sync("0x" + "99" * 20, 1, 2), POOLS, FACTORIES) is None  # unknown pair
    assert classify_log(_sync(POOL, 1, 2), POOLS, FACTORIES) is None  # a Sync from a V3 pool
    assert classify_log(_log(PAIR, [V3_MINT]), POOLS, FACTORIES) is None  # a Mint from a V2 pair
    assert classify_log(_log(PAIR, []), POOLS, FACTORIES) is None  # anonymous


def test_a_pool_created_in_the_block_is_known_to_the_logs_after_it() -> None:
    pair_created = _log(V2F, [PAIR_CREATED, _topic_word(T0), _topic_word(T1)], ["address", "uint256"], [PAIR, 1])
    before = _sync(PAIR, 1, 1)  # before its creation: nobody knows the pair yet
    ev = block_events([before, pair_created, _sync(PAIR, 5, 6), _sync(PAIR, 7, 8)], {}, FACTORIES)
    assert [i.address for i in ev.created] == [PAIR]
    assert ev.reserves == {PAIR: Reserves(PAIR, 7, 8)}  # the last Sync wins
    assert ev.touched() == {PAIR}
    # a creation log of a pool already known is not a new pool
    assert block_events([pair_created], POOLS, FACTORIES).created == []


def test_block_events_over_a_real_v2_market_end_at_the_onchain_reserves(dev: DevChain) -> None:
    factory, _ = build_v2_market(dev, n_tokens=4, n_pairs=5)
    pairs = list(dev.pairs.values())
    for p in pairs[:3]:
        dev.send_many(dev.random_swap_txs(p))
    logs = dev.rpc.call("eth_getLogs", [{"fromBlock": "0x0", "toBlock": "latest", "topics": [WATCHED_TOPICS]}])
    by_block: dict[int, list[dict[str, Any]]] = {}
    for lg in logs:
        by_block.setdefault(int(lg["blockNumber"], 16), []).append(lg)
    known: dict[str, PoolInfo] = {}
    reserves: dict[str, tuple[int, int]] = {}
    for n in sorted(by_block):
        ev = block_events(by_block[n], known, {factory: Factory(factory, "v2")})
        known.update({i.address: i for i in ev.created})
        reserves.update({a: (r.reserve0, r.reserve1) for a, r in ev.reserves.items()})
    assert set(known) == set(dev.pairs)
    assert all((known[a].token0, known[a].token1) == (p.token0, p.token1) for a, p in dev.pairs.items())
    assert reserves == {a: dev.onchain_reserves(a) for a in dev.pairs}
