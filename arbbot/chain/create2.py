"""Which factory made a pool: CREATE2 addresses of Uniswap V2 pairs and V3 pools (and their
forks), and the off-chain pool guard built on them.

Owns the CREATE2 rule (``address = keccak(0xff ++ factory ++ salt ++ init_code_hash)[12:]``
with the V2 salt ``keccak(token0 ++ token1)`` and the V3 salt ``keccak(abi.encode(token0,
token1, fee))``, tokens sorted), the genuine npm init-code hashes, and ``PoolGuard``: the
execute stage's defence in depth, which drops a cycle unless every pool is the CREATE2 child
of one of the chain's configured DEXes. The executor contract's callback binding and balance
rule are the real guards (a malicious fork's factory passes its own CREATE2 check once
someone configured it); this one keeps a pool injected into the hot state, or one of a
factory nobody configured, from ever reaching a signed transaction. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from eth_abi import encode
from eth_utils import keccak

from arbbot.types import PoolState

#: keccak of the genuine npm ``@uniswap/v2-core`` UniswapV2Pair creation code: the hash that
#: Router02 hard-codes (mainnet Uniswap V2; forks such as SushiSwap have their own).
GENUINE_V2_INIT_CODE_HASH = bytes.fromhex("96e8ac4277198ff8b6f785478aa9a39f403cb768dd02cbee326c3e7da348845f")
#: keccak of the genuine ``@uniswap/v3-core`` UniswapV3Pool creation code (POOL_INIT_CODE_HASH).
GENUINE_V3_INIT_CODE_HASH = bytes.fromhex("e34f199b19b2b4f47f68442619d555527d244f78a3297ea89325f843f87b8b54")
GENUINE_INIT_CODE_HASH = {"v2": GENUINE_V2_INIT_CODE_HASH, "v3": GENUINE_V3_INIT_CODE_HASH}

_HASH = re.compile(r"(0x)?[0-9a-fA-F]{64}")


def parse_init_code_hash(text: str) -> bytes:
    """``0x`` + 64 hex digits (the ``0x`` optional) -> 32 bytes; ``ValueError`` otherwise."""
    t = text.strip()
    if not _HASH.fullmatch(t):
        raise ValueError(f"init-code hash {text!r} is not 32 bytes of hex")
    return bytes.fromhex(t.removeprefix("0x"))


def _sorted(token_a: str, token_b: str) -> tuple[str, str]:
    a, b = token_a.lower(), token_b.lower()
    return (a, b) if int(a, 16) < int(b, 16) else (b, a)


def create2_address(factory: str, salt: bytes, init_code_hash: bytes) -> str:
    return "0x" + keccak(b"\xff" + bytes.fromhex(factory[2:]) + salt + init_code_hash)[-20:].hex()


def v2_salt(token_a: str, token_b: str) -> bytes:
    t0, t1 = _sorted(token_a, token_b)
    return keccak(bytes.fromhex(t0[2:]) + bytes.fromhex(t1[2:]))


def v3_salt(token_a: str, token_b: str, fee: int) -> bytes:
    t0, t1 = _sorted(token_a, token_b)
    return keccak(encode(["address", "address", "uint24"], [t0, t1, fee]))


def pool_salt(kind: str, token_a: str, token_b: str, fee: int = 3000) -> bytes:
    """The CREATE2 salt of ``kind``'s pool of these tokens (the fee counts for V3 only)."""
    if kind == "v2":
        return v2_salt(token_a, token_b)
    if kind == "v3":
        return v3_salt(token_a, token_b, fee)
    raise ValueError(f"unknown pool kind {kind!r} (v2 or v3)")


def v2_pair_address(factory: str, init_code_hash: bytes, token_a: str, token_b: str) -> str:
    """UniswapV2Library.pairFor (lower-case)."""
    return create2_address(factory, v2_salt(token_a, token_b), init_code_hash)


def v3_pool_address(factory: str, init_code_hash: bytes, token_a: str, token_b: str, fee: int) -> str:
    """v3-periphery PoolAddress.computeAddress (lower-case)."""
    return create2_address(factory, v3_salt(token_a, token_b, fee), init_code_hash)


def pool_address(kind: str, factory: str, init_code_hash: bytes, token_a: str, token_b: str, fee: int = 3000) -> str:
    """The CREATE2 address of ``kind``'s pool (the fee counts for V3 only)."""
    return create2_address(factory, pool_salt(kind, token_a, token_b, fee), init_code_hash)


@dataclass(frozen=True)
class Factory:
    """A configured DEX as the guard sees it: pools of ``kind`` made by ``factory``."""

    kind: str
    factory: str
    init_code_hash: bytes
    name: str = ""

    @classmethod
    def configured(cls, kind: str, factory: str, init_code_hash: str, name: str = "") -> Factory:
        """From a DEX's configuration: a blank hash means the genuine Uniswap one of ``kind``
        (what ``config apply`` and ``executor deploy`` check against the factory's pools)."""
        if kind not in GENUINE_INIT_CODE_HASH:
            raise ValueError(f"dex {name!r}: unknown kind {kind!r} (v2 or v3)")
        hash_ = parse_init_code_hash(init_code_hash) if init_code_hash.strip() else GENUINE_INIT_CODE_HASH[kind]
        return cls(kind, factory.lower(), hash_, name)


def factory_of(pool: PoolState, factories: Iterable[Factory]) -> Factory | None:
    """The configured factory ``pool`` is the CREATE2 child of, or None (the pool's salt
    made once, whatever the number of factories of its kind)."""
    address = pool.address.lower()
    salt = None
    for f in factories:
        if f.kind == pool.kind:
            if salt is None:
                salt = pool_salt(pool.kind, pool.token0, pool.token1, pool.fee_pips)
            if create2_address(f.factory, salt, f.init_code_hash) == address:
                return f
    return None


class PoolGuard:
    """``guard(pools)``: None when every pool is the CREATE2 child of one of ``factories``
    (for its kind, tokens and, for V3, fee tier), else the reason to drop the cycle. Pools
    already proven are remembered (a proof never expires: an address is its derivation)."""

    MAX_PROVEN = 1_000_000

    def __init__(self, factories: Sequence[Factory]) -> None:
        self.factories = tuple(factories)
        self._proven: set[tuple[str, str, str, str, int]] = set()

    def __call__(self, pools: Sequence[PoolState]) -> str | None:
        for p in pools:
            key = (p.address.lower(), p.kind, p.token0.lower(), p.token1.lower(), p.fee_pips)
            if key in self._proven:
                continue
            if factory_of(p, self.factories) is None:
                return (f"pool {p.address} ({p.kind}) is not the CREATE2 child of any configured "
                        f"{p.kind} DEX's factory and init-code hash: refused")
            if len(self._proven) >= self.MAX_PROVEN:
                self._proven.clear()
            self._proven.add(key)
        return None
