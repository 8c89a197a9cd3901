"""Read a Uniswap V3 pool's swap state from a node into a ``V3PoolState``.

Raw JSON-RPC batches of pre-encoded ``eth_call``s, decoded by slicing (no contract
layer): one batch for the immutables and the block number, one for ``slot0``,
``liquidity`` and the ``tickBitmap`` words, one for ``ticks(i)`` of every set bit. All
mutable reads are pinned to one block number, so the state is consistent.

The result lists every initialized tick in the words read (with its ``liquidityNet``,
even when that is 0: an initialized tick still ends a swap step). By default all words
of the pool's tick range are read, so the simulation in ``arbbot.pools.v3`` is exact for
any swap size; ``word_radius`` limits the read to words around the current tick (then
swaps that leave that window are only approximate).
"""

from __future__ import annotations

from typing import Any, Sequence

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import encode_call
from arbbot.errors import RpcError
from arbbot.math.tick_math import MAX_TICK, MIN_TICK
from arbbot.types import V3PoolState

_SLOT0 = encode_call("slot0()")
_LIQUIDITY = encode_call("liquidity()")
_FEE = encode_call("fee()")
_TICK_SPACING = encode_call("tickSpacing()")
_TOKEN0 = encode_call("token0()")
_TOKEN1 = encode_call("token1()")
_BITMAP_SELECTOR = encode_call("tickBitmap(int16)", [0])[:10]
_TICKS_SELECTOR = encode_call("ticks(int24)", [0])[:10]

BATCH_LIMIT = 1000  # eth_calls per HTTP request


def _word(data: str, index: int) -> int:
    """The ``index``-th 32-byte word of 0x-hex return data, unsigned."""
    start = 2 + 64 * index
    chunk = data[start : start + 64]
    if len(chunk) != 64:
        raise RpcError(f"short return data ({len(data)} hex chars) for word {index}")
    return int(chunk, 16)


def _signed(value: int) -> int:
    """Two's-complement ABI word -> Python int (ABI sign-extends to 256 bits)."""
    return value - (1 << 256) if value >> 255 else value


def _int_arg(value: int) -> str:
    """A signed int as one ABI word (hex, no 0x)."""
    return format(value & ((1 << 256) - 1), "064x")


def _address(data: str) -> str:
    return "0x" + format(_word(data, 0), "040x")


def _calls(pool: str, datas: Sequence[str], block: str) -> list[tuple[str, list[Any]]]:
    return [("eth_call", [{"to": pool, "data": d}, block]) for d in datas]


def _batch(rpc: RpcClient, calls: list[tuple[str, list[Any]]]) -> list[Any]:
    out: list[Any] = []
    for i in range(0, len(calls), BATCH_LIMIT):
        out.extend(rpc.batch(calls[i : i + BATCH_LIMIT]))
    return out


def word_range(tick: int, tick_spacing: int, word_radius: int | None) -> range:
    """The ``tickBitmap`` word positions to read (int16, over compressed ticks)."""
    lo = (MIN_TICK // tick_spacing) >> 8
    hi = (MAX_TICK // tick_spacing) >> 8
    if word_radius is not None:
        here = (tick // tick_spacing) >> 8
        lo, hi = max(lo, here - word_radius), min(hi, here + word_radius)
    return range(lo, hi + 1)


def initialized_ticks(words: dict[int, int], tick_spacing: int) -> list[int]:
    """Ticks whose bit is set in the bitmap ``{word_pos: word}`` (bit b of word w is the
    compressed tick ``w * 256 + b``)."""
    out = []
    for pos in sorted(words):
        word = words[pos]
        while word:
            low = word & -word
            bit = low.bit_length() - 1
            out.append((pos * 256 + bit) * tick_spacing)
            word ^= low
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
    head = _batch(
        rpc,
        [("eth_blockNumber", [])] + _calls(pool, [_FEE, _TICK_SPACING, _TOKEN0, _TOKEN1], "latest"),
    )
    block_number = int(head[0], 16) if block == "latest" else (block if isinstance(block, int) else int(block, 16))
    tag = hex(block_number)
    fee = _word(head[1], 0)
    spacing = _signed(_word(head[2], 0))
    token0, token1 = _address(head[3]), _address(head[4])

    # slot0 and liquidity first, so the word window can centre on the current tick
    s0, liq = _batch(rpc, _calls(pool, [_SLOT0, _LIQUIDITY], tag))
    sqrt_price_x96 = _word(s0, 0)
    tick = _signed(_word(s0, 1))
    liquidity = _word(liq, 0)

    positions = list(word_range(tick, spacing, word_radius))
    replies = _batch(rpc, _calls(pool, [_BITMAP_SELECTOR + _int_arg(p) for p in positions], tag))
    words = {p: _word(r, 0) for p, r in zip(positions, replies) if _word(r, 0)}
    tick_list = initialized_ticks(words, spacing)

    replies = _batch(rpc, _calls(pool, [_TICKS_SELECTOR + _int_arg(t) for t in tick_list], tag))
    # ticks(int24) -> (liquidityGross, liquidityNet, feeGrowthOutside0, feeGrowthOutside1,
    #                  tickCumulativeOutside, secondsPerLiquidityOutside, secondsOutside, initialized)
    ticks = tuple((t, _signed(_word(r, 1))) for t, r in zip(tick_list, replies))
    return V3PoolState(
        address=pool,
        token0=token0,
        token1=token1,
        fee_pips=fee,
        tick_spacing=spacing,
        sqrt_price_x96=sqrt_price_x96,
        tick=tick,
        liquidity=liquidity,
        ticks=ticks,
        block_number=block_number,
    )
