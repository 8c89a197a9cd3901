"""The configured pool filter reaches the fleet's scanner: the pools the backfill recorded
load from the Pool table once each (streamed, as ``PoolInfo``), and only those the chain's
``pool_filter`` admits are watched."""

from __future__ import annotations

from typing import Iterator

import pytest

from arbbot.chain.discovery import PoolInfo
from arbbot.chain.pool_filter import PoolFilter

CHAIN_ID = 777_001
FACTORY = "0x" + "f1" * 20


def addr(i: int) -> str:
    return "0x" + f"{i:040x}"


TOKENS = [addr(0xA000 + i) for i in range(30)]
DENIED = TOKENS[7]


@pytest.fixture
def runtime_scanner() -> Iterator[None]:
    from workers import runtime

    runtime.scanner.cache_clear()
    yield
    runtime.scanner.cache_clear()


@pytest.mark.django_db
def test_the_fleet_scanner_watches_what_the_filter_admits(runtime_scanner: None) -> None:
    from webapp.core import selectors, services
    from workers import runtime

    services.config_apply({"chains": [{
        "chain_id": CHAIN_ID, "name": "filtered", "rpc_urls": ["http://127.0.0.1:9"],
        "multicall3": "0xcA11bde05977b3631167028862bE2a173976CA11", "weth": TOKENS[0],
        "dexes": [{"name": "v2", "kind": "v2", "factory": FACTORY,
                   "init_code_hash": "0x96e8ac4277198ff8b6f785478aa9a39f403cb768dd02cbee326c3e7da348845f",
                   "start_block": 0}],
        "pool_filter": {"deny_tokens": [DENIED]},
    }]})
    pools = [
        PoolInfo(addr(0xB000 + n), "v2", a, b, factory=FACTORY, created_block=n // 100)
        for n, (a, b) in enumerate((a, b) for i, a in enumerate(TOKENS) for b in TOKENS[i + 1 :])
    ]
    ledger = services.DbBackfillLedger(CHAIN_ID)
    for blk in range(pools[-1].created_block + 1):
        ledger.record(FACTORY, blk, blk, [p for p in pools if p.created_block == blk])

    loaded = selectors.discovery_config(CHAIN_ID)["pools"]
    assert sorted(p.address for p in loaded) == sorted(p.address for p in pools), "each pool once"
    assert selectors.pool_filter_of(CHAIN_ID) == {"allow_tokens": [], "deny_tokens": [DENIED], "min_liquidity": None}

    scanner = runtime.scanner(CHAIN_ID)  # built as the scan workers build it; no node needed yet
    assert scanner.config.pool_filter == PoolFilter(deny_tokens=frozenset({DENIED}))
    assert set(scanner.infos) == {p.address for p in pools}
    assert scanner.watched == {p.address for p in pools if DENIED not in (p.token0, p.token1)}
    assert len(scanner.watched) == len(pools) - (len(TOKENS) - 1)
