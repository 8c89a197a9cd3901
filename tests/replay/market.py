"""A small synthetic market for replay tests: WETH/USDC on two V2 pairs and one more
token, blocks that move one pair's price, written as a recording."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from arbbot.replay.backtest import BacktestStrategy
from arbbot.replay.recording import RecordedBlock, RecordingWriter
from arbbot.types import PoolDelta, V2PoolState

CHAIN_ID = 31337
WETH = "0x" + "c0" * 20
USDC = "0x" + "a0" * 20
LINK = "0x" + "b0" * 20
POOL_A = "0x" + "01" * 20  # WETH/USDC
POOL_B = "0x" + "02" * 20  # WETH/USDC, the one the blocks move
POOL_C = "0x" + "03" * 20  # WETH/LINK
GAS_PRICE = 10**9
E18 = 10**18


def pool(address: str, t0: str, t1: str, r0: int, r1: int, block: int) -> V2PoolState:
    return V2PoolState(address, t0, t1, r0, r1, 3000, block)


def block_hash(n: int) -> str:
    return "0x" + f"{n:064x}"


def delta(n: int, states: Iterable[V2PoolState], **kw: Any) -> PoolDelta:
    return PoolDelta(CHAIN_ID, n, block_hash(n), tuple(states), base_fee_wei=GAS_PRICE, gas_price_wei=GAS_PRICE, **kw)


def market_blocks(first: int, count: int, gap_every: int = 3) -> list[RecordedBlock]:
    """Block ``first`` holds every pool; each later block moves POOL_B, every
    ``gap_every``-th one by a few percent (an arbitrage), the others back to par."""
    blocks = [RecordedBlock(delta(first, [
        pool(POOL_A, USDC, WETH, 4_000_000 * 10**6, 1000 * E18, first),
        pool(POOL_B, USDC, WETH, 4_000_000 * 10**6, 1000 * E18, first),
        pool(POOL_C, LINK, WETH, 200_000 * E18, 1000 * E18, first),
    ]))]
    for n in range(first + 1, first + count):
        skew = 3 + (n % 5) if (n - first) % gap_every == 0 else 0
        r_usdc = 4_000_000 * 10**6 * (100 + skew) // 100
        blocks.append(RecordedBlock(delta(n, [pool(POOL_B, USDC, WETH, r_usdc, 1000 * E18, n)])))
    return blocks


def meta(strategy: BacktestStrategy | None = None) -> dict[str, Any]:
    return {
        "chain_id": CHAIN_ID,
        "chain": {"name": "synthetic", "weth": WETH, "executor": "0x" + "ee" * 20, "is_devnet": True},
        "strategy": (strategy or BacktestStrategy()).to_wire(),
        "fee_policy": {"inclusion_blocks": 3, "priority_percentile": 50.0, "history_blocks": 10},
        "exclusions": {},
        "state_dump": None,
    }


def write_market(directory: Path, first: int = 100, count: int = 30, **kw: Any) -> Path:
    writer = RecordingWriter(directory, CHAIN_ID)
    path = None
    for b in market_blocks(first, count, **kw):
        path = writer.append(b, lambda block, p: meta())
    assert path is not None
    return path
