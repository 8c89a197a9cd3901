"""Read a Uniswap V3 pool's whole swap state from its address alone into a ``V3PoolState``.

For callers that know nothing about the pool yet (the V3 exactness tests against the
genuine contracts): the immutables (``fee``, ``tickSpacing``, ``token0``, ``token1``) are
read first, then ``slot0`` and ``liquidity``, then the initialized ticks through the one
``tickBitmap`` walker (``arbbot.chain.multicall.read_v3_ticks``). Plain ``eth_call``s in
JSON-RPC batches (``DirectCaller``: no Multicall3 needed), decoded by slicing; every
mutable read is pinned to one block number, so the state is consistent. The scanner does
not use this module: it knows its pools' immutables from their creation logs.

By default all words of the pool's tick range are read, so the simulation in
``arbbot.pools.v3`` is exact for any swap size; ``word_radius`` limits the read to words
around the current tick (then swaps that leave that window are only approximate).
"""

from __future__ import annotations

from arbbot.chain.abi import address_word, int_word, selector, uint_word
from arbbot.chain.multicall import DirectCaller, SubCall, bitmap_words, read_v3_ticks
from arbbot.chain.rpc import RpcClient
from arbbot.errors import RpcError
from arbbot.types import V3PoolState

_IMMUTABLES = [selector(s) for s in ("fee()", "tickSpacing()", "token0()", "token1()")]
_SLOT0 = selector("slot0()")
_LIQUIDITY = selector("liquidity()")

BATCH_LIMIT = 1000  # eth_calls per HTTP request


def _replies(runner: DirectCaller, pool: str, selectors: list[bytes], block: int | str) -> list[bytes]:
    out = [data for _, data in runner.run([SubCall.make(pool, s) for s in selectors], block)]
    if any(len(d) < 32 for d in out):
        raise RpcError(f"short return data from {pool} at {block}")
    return out


def read_v3_state(
    rpc: RpcClient,
    pool_address: str,
    block: str | int = "latest",
    *,
    word_radius: int | None = None,
) -> V3PoolState:
    """The pool's ``V3PoolState`` at ``block`` (``"latest"`` is resolved to a number
    first, and every mutable read uses it)."""
    pool = pool_address.lower()
    runner = DirectCaller(rpc, batch_size=BATCH_LIMIT)
    block_number = rpc.block_number() if block == "latest" else (block if isinstance(block, int) else int(block, 16))
    fee, spacing, token0, token1 = _replies(runner, pool, _IMMUTABLES, "latest")
    tick_spacing = int_word(spacing, 0)
    s0, liq = _replies(runner, pool, [_SLOT0, _LIQUIDITY], block_number)
    tick = int_word(s0, 1)
    words = bitmap_words(tick_spacing, tick, word_radius)
    return V3PoolState(
        address=pool,
        token0=address_word(token0, 0),
        token1=address_word(token1, 0),
        fee_pips=uint_word(fee, 0),
        tick_spacing=tick_spacing,
        sqrt_price_x96=uint_word(s0, 0),
        tick=tick,
        liquidity=uint_word(liq, 0),
        ticks=read_v3_ticks(runner, pool, tick_spacing, block_number, words=words),
        block_number=block_number,
    )
