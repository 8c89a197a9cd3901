"""Multicall3 ``aggregate3`` by hand, and the batched full refresh of pool state.

Owns: the ABI layout of ``aggregate3((address,bool,bytes)[])`` (encoded from pre-encoded
per-call tuples cached per pool, decoded by slicing), chunking a list of sub-calls into
several ``aggregate3`` ``eth_call``s, packing those into JSON-RPC batches and sending the
batches on a small thread pool; and the readers built on it: V2 ``getReserves``, V3
``slot0`` + ``liquidity`` (+ initialized ticks by a ``tickBitmap`` walk), ERC20
``symbol``/``decimals``. No web3 contract layer anywhere: at ~250 calls/s it is the
bottleneck this module exists to avoid.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Sequence

from eth_utils import keccak

from arbbot.chain.rpc import RpcClient
from arbbot.errors import RpcError

AGGREGATE3 = keccak(text="aggregate3((address,bool,bytes)[])")[:4]
SEL_GET_RESERVES = keccak(text="getReserves()")[:4]
SEL_SLOT0 = keccak(text="slot0()")[:4]
SEL_LIQUIDITY = keccak(text="liquidity()")[:4]
SEL_TICK_BITMAP = keccak(text="tickBitmap(int16)")[:4]
SEL_TICKS = keccak(text="ticks(int24)")[:4]
SEL_SYMBOL = keccak(text="symbol()")[:4]
SEL_DECIMALS = keccak(text="decimals()")[:4]
SEL_NAME = keccak(text="name()")[:4]

MIN_TICK, MAX_TICK = -887272, 887272
_WORD = 32


@dataclass(frozen=True, slots=True)
class SubCall:
    """One ``aggregate3`` element. ``encoded`` is its ABI tuple body, built once."""

    target: str
    calldata: bytes
    encoded: bytes

    @classmethod
    def make(cls, target: str, calldata: bytes, allow_failure: bool = True) -> SubCall:
        return cls(target.lower(), calldata, _encode_tuple(target, allow_failure, calldata))


def _encode_tuple(target: str, allow_failure: bool, calldata: bytes) -> bytes:
    pad = (-len(calldata)) % _WORD
    return (
        bytes(12) + bytes.fromhex(target[2:])
        + (b"\x00" * 31 + (b"\x01" if allow_failure else b"\x00"))
        + (0x60).to_bytes(_WORD, "big")
        + len(calldata).to_bytes(_WORD, "big")
        + calldata + bytes(pad)
    )


@lru_cache(maxsize=65536)
def cached_subcall(target: str, calldata: bytes) -> SubCall:
    """The pre-encoded sub-call for ``(target, calldata)``, computed once per process."""
    return SubCall.make(target, calldata)


def encode_aggregate3(calls: Sequence[SubCall]) -> str:
    """Calldata of ``aggregate3(calls)`` as 0x hex; offsets computed from cached tuple sizes."""
    n = len(calls)
    head = bytearray(AGGREGATE3)
    head += (0x20).to_bytes(_WORD, "big") + n.to_bytes(_WORD, "big")
    offset = n * _WORD
    for c in calls:
        head += offset.to_bytes(_WORD, "big")
        offset += len(c.encoded)
    return "0x" + (bytes(head) + b"".join(c.encoded for c in calls)).hex()


def decode_aggregate3(result_hex: str, n: int) -> list[tuple[bool, bytes]]:
    """Decode ``(bool success, bytes returnData)[]`` by slicing."""
    raw = bytes.fromhex(result_hex[2:] if result_hex.startswith("0x") else result_hex)
    base = int.from_bytes(raw[0:32], "big") + 32  # start of element offsets (after length)
    count = int.from_bytes(raw[base - 32 : base], "big")
    if count != n:
        raise RpcError(f"aggregate3 returned {count} results for {n} calls")
    out: list[tuple[bool, bytes]] = []
    for i in range(n):
        p = base + int.from_bytes(raw[base + 32 * i : base + 32 * i + 32], "big")
        ok = raw[p + 31] == 1
        dp = p + int.from_bytes(raw[p + 32 : p + 64], "big")
        ln = int.from_bytes(raw[dp : dp + 32], "big")
        out.append((ok, raw[dp + 32 : dp + 32 + ln]))
    return out


def block_tag(block: int | str) -> str | dict[str, str]:
    """An ``eth_call`` block parameter: a number, a tag, or a 32-byte hash (EIP-1898, so a
    read is pinned to exactly the block the scanner saw, even across a reorg)."""
    if isinstance(block, int):
        return hex(block)
    if isinstance(block, str) and block.startswith("0x") and len(block) == 66:
        return {"blockHash": block}
    return block


class Multicaller:
    """Runs many sub-calls through a deployed Multicall3.

    ``chunk_size`` sub-calls per ``aggregate3``; ``calls_per_request`` aggregate3
    ``eth_call``s per JSON-RPC batch; ``concurrency`` batches in flight (a thread pool).
    """

    def __init__(
        self,
        rpc: RpcClient,
        address: str,
        *,
        chunk_size: int = 500,
        calls_per_request: int = 2,
        concurrency: int = 4,
        gas: int | None = None,
    ) -> None:
        self.rpc = rpc
        self.address = address.lower()
        self.chunk_size = max(1, chunk_size)
        self.calls_per_request = max(1, calls_per_request)
        self.concurrency = max(1, concurrency)
        self.gas = gas
        self._pool: ThreadPoolExecutor | None = None

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="multicall")
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    def run(self, calls: Sequence[SubCall], block: int | str = "latest") -> list[tuple[bool, bytes]]:
        """All ``calls`` at ``block``; results in order as ``(success, return_data)``."""
        if not calls:
            return []
        tag = block_tag(block)
        chunks = [calls[i : i + self.chunk_size] for i in range(0, len(calls), self.chunk_size)]
        groups = [chunks[i : i + self.calls_per_request] for i in range(0, len(chunks), self.calls_per_request)]

        def send(group: list[Sequence[SubCall]]) -> list[list[tuple[bool, bytes]]]:
            reqs = []
            for ch in group:
                tx: dict[str, Any] = {"to": self.address, "data": encode_aggregate3(ch)}
                if self.gas is not None:
                    tx["gas"] = hex(self.gas)
                reqs.append(("eth_call", [tx, tag]))
            replies = self.rpc.batch(reqs)
            return [decode_aggregate3(r, len(ch)) for r, ch in zip(replies, group)]

        if len(groups) == 1 or self.concurrency == 1:
            parts = [send(g) for g in groups]
        else:
            parts = list(self._executor().map(send, groups))
        out: list[tuple[bool, bytes]] = []
        for part in parts:
            for decoded in part:
                out.extend(decoded)
        return out


# ---------------------------------------------------------------------------- decoders


def _word(b: bytes, i: int) -> int:
    return int.from_bytes(b[32 * i : 32 * i + 32], "big")


def _sword(b: bytes, i: int) -> int:
    return int.from_bytes(b[32 * i : 32 * i + 32], "big", signed=True)


def v2_reserve_calls(pools: Iterable[str]) -> list[SubCall]:
    return [cached_subcall(p, SEL_GET_RESERVES) for p in pools]


def decode_reserves(ok: bool, data: bytes) -> tuple[int, int] | None:
    if not ok or len(data) < 64:
        return None
    return _word(data, 0), _word(data, 1)


def v3_core_calls(pools: Iterable[str]) -> list[SubCall]:
    """Two sub-calls per pool: ``slot0()`` then ``liquidity()``."""
    out: list[SubCall] = []
    for p in pools:
        out.append(cached_subcall(p, SEL_SLOT0))
        out.append(cached_subcall(p, SEL_LIQUIDITY))
    return out


def decode_slot0(ok: bool, data: bytes) -> tuple[int, int] | None:
    """``(sqrt_price_x96, tick)`` from ``slot0()``."""
    if not ok or len(data) < 64:
        return None
    return _word(data, 0), _sword(data, 1)


def decode_uint(ok: bool, data: bytes) -> int | None:
    if not ok or len(data) < 32:
        return None
    return _word(data, 0)


def read_v3_ticks(
    mc: Multicaller, pool: str, tick_spacing: int, block: int | str
) -> tuple[tuple[int, int], ...]:
    """Initialized ticks ``((tick, liquidity_net), ...)`` of a V3 pool by walking its whole
    ``tickBitmap`` then reading ``ticks(t)`` for each set bit (full refresh fallback when
    ``arbbot.chain.v3_state`` is absent)."""
    lo = (MIN_TICK // tick_spacing) >> 8
    hi = (MAX_TICK // tick_spacing) >> 8
    words = list(range(lo, hi + 1))
    calls = [
        SubCall.make(pool, SEL_TICK_BITMAP + (w % (1 << 256)).to_bytes(32, "big")) for w in words
    ]
    res = mc.run(calls, block)
    ticks: list[int] = []
    for w, (ok, data) in zip(words, res):
        bitmap = decode_uint(ok, data)
        if not bitmap:
            continue
        for bit in range(256):
            if bitmap >> bit & 1:
                ticks.append(((w << 8) + bit) * tick_spacing)
    if not ticks:
        return ()
    tcalls = [SubCall.make(pool, SEL_TICKS + (t % (1 << 256)).to_bytes(32, "big")) for t in ticks]
    out: list[tuple[int, int]] = []
    for t, (ok, data) in zip(ticks, mc.run(tcalls, block)):
        if ok and len(data) >= 64:
            out.append((t, _sword(data, 1)))
    return tuple(out)


def decode_symbol(ok: bool, data: bytes) -> str | None:
    """``symbol()``/``name()`` as ABI ``string`` or as ``bytes32`` (MKR, SAI style)."""
    if not ok or not data:
        return None
    if len(data) == 32:
        return data.rstrip(b"\x00").decode("utf-8", "replace") or None
    if len(data) >= 64 and _word(data, 0) == 32:
        ln = _word(data, 1)
        if ln <= len(data) - 64:
            return data[64 : 64 + ln].decode("utf-8", "replace")
    return None


def decode_decimals(ok: bool, data: bytes) -> int | None:
    v = decode_uint(ok, data)
    return v if v is not None and v <= 255 and len(data) == 32 else None
