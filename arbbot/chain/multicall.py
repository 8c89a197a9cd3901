"""Multicall3 ``aggregate3`` by hand, and the pool/token reads built on it.

Owns: the ABI layout of ``aggregate3((address,bool,bytes)[])`` (encoded from pre-encoded
per-call tuples cached per pool, decoded by slicing), chunking a list of sub-calls into
several ``aggregate3`` ``eth_call``s, packing those into JSON-RPC batches and sending the
batches on a small thread pool; the decoders of what the readers ask (V2 ``getReserves``,
V3 ``slot0`` + ``liquidity``, ERC20 ``symbol``/``decimals``); and the one ``tickBitmap``
walker (``read_v3_ticks``: every initialized tick of a V3 pool, pinned to one block, by
hash when the scanner asks). ``DirectCaller`` runs the same sub-calls as plain
``eth_call``s, for a node without a Multicall3. No web3 contract layer anywhere: at ~250
calls/s it is the bottleneck this module exists to avoid.

V2 reserves, the bulk of a full refresh, have a leaner path (``read_v2_reserves``): the
project's ``PairReserves`` runtime code (``arbbot/contracts/PairReserves.sol``) run by an
``eth_call`` with a state override, 20 bytes of calldata and 64 of reply per pair instead
of aggregate3's 160 and 224 (``bench/scale``: the full refresh of 20,000 pairs). A node that
refuses state overrides is asked through Multicall3 from then on.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol, Sequence

from arbbot.chain.abi import WORD as _WORD
from arbbot.chain.abi import hex_bytes, int_arg, int_word, selector, uint_at, uint_word
from eth_utils import keccak

from arbbot.chain.rpc import RpcClient, RpcUnavailable
from arbbot.errors import RpcError
from arbbot.math.tick_math import MAX_TICK, MIN_TICK

log = logging.getLogger(__name__)

AGGREGATE3 = selector("aggregate3((address,bool,bytes)[])")
SEL_GET_RESERVES = selector("getReserves()")
SEL_SLOT0 = selector("slot0()")
SEL_LIQUIDITY = selector("liquidity()")
SEL_TICK_BITMAP = selector("tickBitmap(int16)")
SEL_TICKS = selector("ticks(int24)")
SEL_SYMBOL = selector("symbol()")
SEL_DECIMALS = selector("decimals()")

# where the PairReserves code is put by the state override: no contract lives there on any
# chain (a keccak-derived address nobody holds a key or a CREATE path for)
PAIR_READER = "0x" + keccak(text="arbbot.PairReserves")[12:].hex()
PAIRS_PER_CALL = 1000  # ~6M gas at the node: under every node's eth_call gas cap
_FAILED = (1 << 256) - 1  # what PairReserves answers for a pair whose call failed


@lru_cache(maxsize=1)
def pair_reader_code() -> str:
    """``PairReserves``'s runtime bytecode from the committed artifact."""
    from arbbot.contracts.build import load_artifact

    return str(load_artifact("PairReserves")["deployedBytecode"])


def decode_pair_reserves(result_hex: str, n: int) -> list[tuple[int, int] | None]:
    """``PairReserves``'s reply: two words per pair; None for a pair whose call failed."""
    raw = hex_bytes(result_hex)
    if len(raw) != 64 * n:
        raise RpcError(f"PairReserves returned {len(raw)} bytes for {n} pairs")
    out: list[tuple[int, int] | None] = []
    frm = int.from_bytes
    for i in range(0, 64 * n, 64):
        r0 = frm(raw[i : i + 32], "big")
        out.append(None if r0 == _FAILED else (r0, frm(raw[i + 32 : i + 64], "big")))
    return out


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
    raw = hex_bytes(result_hex)
    base = uint_at(raw, 0) + 32  # start of element offsets (after length)
    count = uint_at(raw, base - 32)
    if count != n:
        raise RpcError(f"aggregate3 returned {count} results for {n} calls")
    out: list[tuple[bool, bytes]] = []
    for i in range(n):
        p = base + uint_at(raw, base + 32 * i)
        ok = raw[p + 31] == 1
        dp = p + uint_at(raw, p + 32)
        ln = uint_at(raw, dp)
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


class SubCallRunner(Protocol):
    """Anything that runs sub-calls at a block: ``Multicaller`` or ``DirectCaller``."""

    def run(self, calls: Sequence[SubCall], block: int | str = "latest") -> list[tuple[bool, bytes]]: ...


def read_v2_reserves(mc: SubCallRunner, pairs: Sequence[str], block: int | str) -> list[tuple[int, int] | None]:
    """``getReserves()`` of each of ``pairs`` at ``block``: ``(reserve0, reserve1)``, or None
    where the call failed or answered too little. Through ``PairReserves`` when the runner
    has it (``Multicaller.v2_reserves``), else as aggregate3 sub-calls."""
    fast = getattr(mc, "v2_reserves", None)
    if fast is not None:
        return list(fast(pairs, block))
    return [decode_reserves(*r) for r in mc.run([cached_subcall(a, SEL_GET_RESERVES) for a in pairs], block)]


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
        pair_reader: bool = True,
    ) -> None:
        self.rpc = rpc
        self.address = address.lower()
        self.chunk_size = max(1, chunk_size)
        self.calls_per_request = max(1, calls_per_request)
        self.concurrency = max(1, concurrency)
        self.pair_reader = pair_reader  # V2 reserves through PairReserves (off: aggregate3)
        self._pool: ThreadPoolExecutor | None = None  # lives as long as the process

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="multicall")
        return self._pool

    def run(self, calls: Sequence[SubCall], block: int | str = "latest") -> list[tuple[bool, bytes]]:
        """All ``calls`` at ``block``; results in order as ``(success, return_data)``."""
        if not calls:
            return []
        tag = block_tag(block)
        chunks = [calls[i : i + self.chunk_size] for i in range(0, len(calls), self.chunk_size)]
        groups = [chunks[i : i + self.calls_per_request] for i in range(0, len(chunks), self.calls_per_request)]

        def send(group: list[Sequence[SubCall]]) -> list[list[tuple[bool, bytes]]]:
            reqs = [("eth_call", [{"to": self.address, "data": encode_aggregate3(ch)}, tag]) for ch in group]
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

    def v2_reserves(self, pairs: Sequence[str], block: int | str = "latest") -> list[tuple[int, int] | None]:
        """``read_v2_reserves`` through ``PairReserves`` (``PAIRS_PER_CALL`` pairs an
        ``eth_call``, ``calls_per_request`` of them a JSON-RPC batch, ``concurrency`` batches
        in flight); through aggregate3 when ``pair_reader`` is off or the node refused the
        state override (then off for good: node trouble is raised, not a refusal)."""
        if not pairs:
            return []
        if not self.pair_reader:
            return self._aggregate3_reserves(pairs, block)
        tag = block_tag(block)
        override = {PAIR_READER: {"code": pair_reader_code()}}
        chunks = [pairs[i : i + PAIRS_PER_CALL] for i in range(0, len(pairs), PAIRS_PER_CALL)]
        groups = [chunks[i : i + self.calls_per_request] for i in range(0, len(chunks), self.calls_per_request)]

        def send(group: list[Sequence[str]]) -> list[list[tuple[int, int] | None]]:
            reqs = [("eth_call", [{"to": PAIR_READER, "data": "0x" + "".join(a[2:] for a in ch)}, tag, override])
                    for ch in group]
            return [decode_pair_reserves(r, len(ch)) for r, ch in zip(self.rpc.batch(reqs), group)]

        try:
            if len(groups) == 1 or self.concurrency == 1:
                parts = [send(g) for g in groups]
            else:
                parts = list(self._executor().map(send, groups))
        except RpcUnavailable:
            raise
        except RpcError as exc:
            # the same read through Multicall3: when that fails too the node is the
            # trouble (raised); when it answers, the override was refused: off for good
            got = self._aggregate3_reserves(pairs, block)
            log.warning("the node refused the PairReserves state override (%s): V2 reserves through Multicall3", exc)
            self.pair_reader = False
            return got
        return [r for part in parts for decoded in part for r in decoded]

    def _aggregate3_reserves(self, pairs: Sequence[str], block: int | str) -> list[tuple[int, int] | None]:
        return [decode_reserves(*r) for r in self.run([cached_subcall(a, SEL_GET_RESERVES) for a in pairs], block)]


class DirectCaller:
    """Runs sub-calls as plain ``eth_call``s, ``batch_size`` per JSON-RPC batch: for a node
    without a deployed Multicall3 (test chains). Unlike ``aggregate3`` with
    ``allowFailure``, a reverting call raises ``RpcError``: every result is a success."""

    def __init__(self, rpc: RpcClient, *, batch_size: int = 1000) -> None:
        self.rpc = rpc
        self.batch_size = max(1, batch_size)

    def run(self, calls: Sequence[SubCall], block: int | str = "latest") -> list[tuple[bool, bytes]]:
        tag = block_tag(block)
        out: list[tuple[bool, bytes]] = []
        for i in range(0, len(calls), self.batch_size):
            chunk = calls[i : i + self.batch_size]
            replies = self.rpc.batch([("eth_call", [{"to": c.target, "data": "0x" + c.calldata.hex()}, tag])
                                      for c in chunk])
            out.extend((True, hex_bytes(str(r))) for r in replies)
        return out


# ---------------------------------------------------------------------------- decoders


def decode_reserves(ok: bool, data: bytes) -> tuple[int, int] | None:
    if not ok or len(data) < 64:
        return None
    return uint_word(data, 0), uint_word(data, 1)


def decode_slot0(ok: bool, data: bytes) -> tuple[int, int] | None:
    """``(sqrt_price_x96, tick)`` from ``slot0()``."""
    if not ok or len(data) < 64:
        return None
    return uint_word(data, 0), int_word(data, 1)


def decode_uint(ok: bool, data: bytes) -> int | None:
    if not ok or len(data) < 32:
        return None
    return uint_word(data, 0)


def decode_symbol(ok: bool, data: bytes) -> str | None:
    """``symbol()``/``name()`` as ABI ``string`` or as ``bytes32`` (MKR, SAI style)."""
    if not ok or not data:
        return None
    if len(data) == 32:
        return data.rstrip(b"\x00").decode("utf-8", "replace") or None
    if len(data) >= 64 and uint_word(data, 0) == 32:
        ln = uint_word(data, 1)
        if ln <= len(data) - 64:
            return data[64 : 64 + ln].decode("utf-8", "replace")
    return None


def decode_decimals(ok: bool, data: bytes) -> int | None:
    v = decode_uint(ok, data)
    return v if v is not None and v <= 255 and len(data) == 32 else None


# ---------------------------------------------------------------------------- V3 ticks


def bitmap_words(tick_spacing: int, tick: int | None = None, word_radius: int | None = None) -> range:
    """The ``tickBitmap`` word positions (int16, over compressed ticks) of the pool's whole
    tick range, or only those within ``word_radius`` words of ``tick``."""
    lo = (MIN_TICK // tick_spacing) >> 8
    hi = (MAX_TICK // tick_spacing) >> 8
    if word_radius is not None and tick is not None:
        here = (tick // tick_spacing) >> 8
        lo, hi = max(lo, here - word_radius), min(hi, here + word_radius)
    return range(lo, hi + 1)


def initialized_ticks(words: dict[int, int], tick_spacing: int) -> list[int]:
    """Ticks whose bit is set in the bitmap ``{word_pos: word}`` (bit b of word w is the
    compressed tick ``w * 256 + b``), in ascending order."""
    out = []
    for pos in sorted(words):
        word = words[pos]
        while word:
            low = word & -word
            out.append((pos * 256 + low.bit_length() - 1) * tick_spacing)
            word ^= low
    return out


def read_v3_ticks(
    mc: SubCallRunner, pool: str, tick_spacing: int, block: int | str, *, words: range | None = None
) -> tuple[tuple[int, int], ...]:
    """Initialized ticks ``((tick, liquidity_net), ...)`` of a V3 pool at ``block`` (a
    number, or a hash so the read is pinned to exactly the block the scanner saw): walks
    the ``tickBitmap`` (all ``words``, default the whole tick range), then reads
    ``ticks(t)`` for each set bit. A tick whose ``liquidityNet`` is 0 is still listed: an
    initialized tick ends a swap step."""
    positions = list(words if words is not None else bitmap_words(tick_spacing))
    res = mc.run([SubCall.make(pool, SEL_TICK_BITMAP + int_arg(w)) for w in positions], block)
    bitmap = {w: v for w, (ok, data) in zip(positions, res) if (v := decode_uint(ok, data))}
    ticks = initialized_ticks(bitmap, tick_spacing)
    if not ticks:
        return ()
    # ticks(int24) -> (liquidityGross, liquidityNet, feeGrowthOutside0, feeGrowthOutside1,
    #                  tickCumulativeOutside, secondsPerLiquidityOutside, secondsOutside, initialized)
    tcalls = [SubCall.make(pool, SEL_TICKS + int_arg(t)) for t in ticks]
    return tuple((t, int_word(data, 1)) for t, (ok, data) in zip(ticks, mc.run(tcalls, block))
                 if ok and len(data) >= 64)
