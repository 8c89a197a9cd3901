"""The pool filter while the fleet's scanner runs, on anvil with the genuine V2 pairs, the
real database and the real hot state: an edit applied with ``config apply`` is in force at
the scanner's next block without a restart (pools admitted are read and published in that
block, pools dropped leave in it), and admission is two-way: a pool whose reserve of the
quote token falls below the liquidity rule's exit level (hysteresis) leaves the watched set
in that block, with the pools it alone made admissible, announced as a quarantined pool is
(deleted from the hot state, named in the block's changed set and in ``removed``), and comes
back when its reserve returns."""

from __future__ import annotations

import random
from typing import Any, Iterator

import pytest

from arbbot.chain.pool_filter import EXIT_PERCENT
from arbbot.chain.rpc import RpcClient
from arbbot.devnet.anvil import Anvil, start_anvil
from arbbot.types import PoolDelta, V2PoolState
from tests.chain.devchain import DevChain, V2Pair, build_v2_market


@pytest.fixture
def own_anvil() -> Iterator[Anvil]:
    a = start_anvil(chain_id=random.randint(700_000, 799_999))  # no other test's hot state
    yield a
    a.stop()


def _apply(chain_id: int, url: str, mc: str, factory: str, quote: str, minimum: int | None) -> None:
    from webapp.core import services

    services.config_apply({"chains": [{
        "chain_id": chain_id, "name": "filtered-live", "rpc_urls": [url], "multicall3": mc, "weth": quote,
        "dexes": [{"name": "v2", "kind": "v2", "factory": factory,
                   "init_code_hash": "0x96e8ac4277198ff8b6f785478aa9a39f403cb768dd02cbee326c3e7da348845f",
                   "start_block": 0}],
        "tokens": "discover",
        "pool_filter": {"min_liquidity": None if minimum is None else {"token": quote, "amount": str(minimum)}},
    }]}, source="test")


def _quote_reserve(p: V2Pair, quote: str) -> int:
    return p.reserve0 if p.token0 == quote else p.reserve1


def _take_quote_out(dev: DevChain, p: V2Pair, quote: str, fraction: float) -> list[dict[str, Any]]:
    """A swap of the other token in that takes about ``fraction`` of the quote reserve out."""
    quote_is_0 = p.token0 == quote
    r_in = p.reserve1 if quote_is_0 else p.reserve0
    amount = int(r_in * fraction / (1 - fraction) / 0.997) + 1
    return dev.swap_txs(p, not quote_is_0, amount)


def _next(scanner: Any, dev: DevChain, txs: list[dict[str, Any]] | None = None) -> PoolDelta:
    if txs:
        dev.send_many(txs)
    else:
        dev.mine(1)
    [d] = scanner.poll()
    return d


@pytest.mark.django_db
def test_a_filter_edit_reaches_the_running_scanner_and_admission_is_two_way(
    own_anvil: Anvil, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers import runtime

    # a worker keeps the filter a second (``runtime.pool_filters``); here each poll reads it
    monkeypatch.setattr(runtime.pool_filters, "ttl", 0.0)
    dev = DevChain(RpcClient(own_anvil.url, timeout_s=30))
    mc = dev.deploy_multicall()
    factory, tokens = build_v2_market(dev, n_tokens=4, n_pairs=6)
    quote = tokens[0].lower()
    chain_id = dev.rpc.chain_id()
    pairs = {a: p for a, p in dev.pairs.items()}
    with_quote = sorted(a for a, p in pairs.items() if quote in (p.token0, p.token1))
    without = sorted(set(pairs) - set(with_quote))
    assert len(with_quote) == 3 and len(without) == 3

    _apply(chain_id, dev.rpc.url, mc, factory, quote, 10**40)  # no pool is that deep
    runtime.reset()
    hot = runtime.hotstate(chain_id)
    hot.clear()
    try:
        scanner = runtime.scanner(chain_id)  # built once, as a scan worker builds it
        [first] = scanner.poll()
        assert first.states == () and scanner.watched == set() and set(scanner.infos) == set(pairs)

        # the filter relaxed with config apply: every pool joins at the next block
        _apply(chain_id, dev.rpc.url, mc, factory, quote, 1)
        d = _next(scanner, dev)
        assert {s.address for s in d.states} == set(pairs) and d.removed == ()
        assert set(hot.get_pools()) == set(pairs) and scanner.watched == set(pairs)
        for s in d.states:
            assert isinstance(s, V2PoolState) and (s.reserve0, s.reserve1) == dev.onchain_reserves(s.address)

        # the minimum set at the shallowest quote pool's reserve: all stay
        shallow = min(with_quote, key=lambda a: _quote_reserve(pairs[a], quote))
        minimum = _quote_reserve(pairs[shallow], quote)
        other = pairs[shallow].token1 if pairs[shallow].token0 == quote else pairs[shallow].token0
        dependants = {a for a in without if other in (pairs[a].token0, pairs[a].token1)}
        _apply(chain_id, dev.rpc.url, mc, factory, quote, minimum)
        d = _next(scanner, dev)
        assert d.removed == () and scanner.watched == set(pairs)

        # its quote reserve falls a little below the minimum: kept (hysteresis)
        d = _next(scanner, dev, _take_quote_out(dev, pairs[shallow], quote, 0.05))
        assert shallow in {s.address for s in d.states} and d.removed == ()
        assert _quote_reserve(pairs[shallow], quote) * 100 >= minimum * EXIT_PERCENT
        assert scanner.watched == set(pairs)

        # and below the exit level: it leaves in that block, with the pools its other token
        # was liquid through (no other quote pool of that token is deep enough: none here)
        deeper = [a for a in with_quote if a != shallow and other in (pairs[a].token0, pairs[a].token1)]
        assert not deeper
        d = _next(scanner, dev, _take_quote_out(dev, pairs[shallow], quote, 0.15))
        assert _quote_reserve(pairs[shallow], quote) * 100 < minimum * EXIT_PERCENT
        assert set(d.removed) == {shallow} | dependants and dependants
        assert not set(d.removed) & {s.address for s in d.states}
        assert not set(hot.get_pools()) & set(d.removed)
        assert {a.decode() for a in hot.redis.smembers(hot.key(f"changed:{d.block_number}"))} >= set(d.removed)
        assert scanner.watched == set(pairs) - set(d.removed)

        # the reserve comes back: admitted again by its own Sync log, its dependants read
        quote_is_0 = pairs[shallow].token0 == quote
        back = dev.swap_txs(pairs[shallow], quote_is_0, minimum // 2)
        d = _next(scanner, dev, back)
        assert shallow in {s.address for s in d.states}
        d = _next(scanner, dev)
        assert dependants <= {s.address for s in d.states}
        assert scanner.watched == set(pairs) and set(hot.get_pools()) == set(pairs)

        # a deny list applied: the denied token's pools leave at the next block
        from webapp.core import services

        services.config_apply({"chains": [{"chain_id": chain_id, "pool_filter": {"deny_tokens": [other]}}]})
        d = _next(scanner, dev)
        assert set(d.removed) == {a for a, p in pairs.items() if other in (p.token0, p.token1)}
        assert set(hot.get_pools()) == set(pairs) - set(d.removed)
    finally:
        hot.clear()
        runtime.reset()
