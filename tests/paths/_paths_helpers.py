"""Small graph builders shared by the path tests."""

from __future__ import annotations

from arbbot.types import V2PoolState

BLOCK_HASH = "0x" + "00" * 32


def tok(i: int) -> str:
    return "0x" + f"{i:02x}" * 20


def addr(i: int) -> str:
    return "0x%040x" % (0x1000 + i)


WETH, USDC, DAI = tok(0xEE), tok(0xC0), tok(0xDA)


def v2(i: int, t0: str, t1: str, r0: int, r1: int, fee: int = 3000) -> V2PoolState:
    return V2PoolState(address=addr(i), token0=t0, token1=t1, reserve0=r0, reserve1=r1, fee_pips=fee)


def evaluate(engine, changed=None, gas_price_wei: int = 0):  # type: ignore[no-untyped-def]
    return engine.evaluate(
        changed, chain_id=1, block_number=1, block_hash=BLOCK_HASH, gas_price_wei=gas_price_wei
    )
