"""The ABI at the byte level, for code that reads the chain by slicing.

Owns the two hashes every call and log starts from (a function's 4-byte selector, an
event's 32-byte topic, both computed from the signature) and the one set of 32-byte word
helpers: an unsigned word, a signed (two's-complement) word such as an ``int24`` tick, an
address word, and the reverse for a signed argument. Return data, log data and log topics
are decoded with these; calldata with arguments is encoded with ``eth_abi``
(``arbbot.chain.tx.encode_call``).

A word past the end of the data reads as 0 (slicing), so callers that need a full reply
check its length first.
"""

from __future__ import annotations

from eth_utils import keccak

WORD = 32
_MOD = 1 << 256


def selector(signature: str) -> bytes:
    """4-byte function (or custom error) selector, e.g. ``"transfer(address,uint256)"``."""
    return keccak(text=signature)[:4]


def event_topic(signature: str) -> str:
    """An event's topic 0 as 0x hex, e.g. ``"Sync(uint112,uint112)"``."""
    return "0x" + keccak(text=signature).hex()


def hex_bytes(data: str) -> bytes:
    """0x hex (return data, log data, a topic) as bytes."""
    return bytes.fromhex(data[2:] if data.startswith("0x") else data)


def uint_at(data: bytes, offset: int) -> int:
    """The unsigned word starting at byte ``offset`` (dynamic data: heads hold offsets)."""
    return int.from_bytes(data[offset : offset + WORD], "big")


def uint_word(data: bytes, index: int) -> int:
    """The ``index``-th 32-byte word of ``data``, unsigned (``uint*``, ``bool``)."""
    return int.from_bytes(data[WORD * index : WORD * index + WORD], "big")


def int_word(data: bytes, index: int) -> int:
    """The ``index``-th word, signed: the ABI sign-extends every ``int*`` (an ``int24``
    tick, an ``int128`` liquidityNet) to 256 bits, so two's complement over the word."""
    return int.from_bytes(data[WORD * index : WORD * index + WORD], "big", signed=True)


def address_word(data: bytes, index: int) -> str:
    """The ``index``-th word as a lower-case 0x address (its low 20 bytes)."""
    return "0x" + data[WORD * index + 12 : WORD * index + WORD].hex()


def int_arg(value: int) -> bytes:
    """A signed (or unsigned) int as one ABI word, e.g. the ``int16`` of ``tickBitmap``."""
    return (value % _MOD).to_bytes(WORD, "big")


__all__ = ["WORD", "address_word", "event_topic", "hex_bytes", "int_arg", "int_word", "selector", "uint_at", "uint_word"]
