"""Calldata for arbbot's own executor contract (``arbbot/contracts/ArbExecutor.sol``).

Owns the wire format of ``ArbExecutor``: ``execute`` (hot executor keys), the owner's calls
(``withdraw``, ``setExecutor``, ``addFactory``/``removeFactory``, ``pause``/``unpause``) and
the constructor arguments; pure functions that encode a cycle (pools, tokens, amount_in,
per-hop amounts predicted by exact math, min_profit, an optional ``block.coinbase`` share)
with eth_abi, the per-hop-kind gas estimates, and decoding of the contract's custom revert
errors. No I/O and no web3 contract layer: encoding must stay cheap enough to run for every
opportunity. eth_abi encodes a cycle's ``execute`` call once (~0.16 ms quiet, most of it
validating each value); the amounts of a cycle encoded before are written into the two
static words of its calldata that hold them (``_execute_template``: ~8 µs;
``bench/execution/encode.py``).

A hop is ``(pool, tokenOut, kind, fee, minOut)``: ``kind`` 0 = Uniswap V2 pair (or fork),
1 = Uniswap V3 pool (or fork); ``fee`` is the V2 swap fee in pips (3000 for the genuine pair)
or the V3 fee tier (part of the pool's CREATE2 salt); the contract accepts a pool only as the
CREATE2 child of a factory its owner registered for that kind. The direction is implied by
token order, so it cannot disagree with the tokens.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from eth_abi import decode, encode
from eth_utils import keccak

from arbbot.contracts.gas import GAS_BASE, GAS_COINBASE_PAYMENT, GAS_PER_HOP
from arbbot.errors import ArbbotError
from arbbot.types import PoolState, norm_address

HOP_KIND_CODES: dict[str, int] = {"v2": 0, "v3": 1}
HOP_TUPLE = "(address,address,uint8,uint24,uint256)"
EXECUTE_TYPES = ["address", "uint256", "uint256", "bool", f"{HOP_TUPLE}[]", "uint256"]
EXECUTE_SIGNATURE = f"execute({','.join(EXECUTE_TYPES)})"
WITHDRAW_SIGNATURE = "withdraw(address,address,uint256)"
EXECUTE_SELECTOR = keccak(text=EXECUTE_SIGNATURE)[:4]
WITHDRAW_SELECTOR = keccak(text=WITHDRAW_SIGNATURE)[:4]
#: the constructor: (owner, weth, executors, [(kind, factory, initCodeHash)])
CONSTRUCTOR_TYPES = ["address", "address", "address[]", "(uint8,address,bytes32)[]"]
MAX_COINBASE_BPS = 10_000
#: Where ``execute``'s static ``amountIn`` and ``minProfit`` words lie in its calldata: after
#: the selector and ``tokenIn``, the ABI's head holds each static argument in place.
AMOUNT_IN_WORD = slice(4 + 32, 4 + 64)
MIN_PROFIT_WORD = slice(4 + 64, 4 + 96)
UINT256_MAX = 2**256 - 1


class EncodingError(ArbbotError):
    """The cycle cannot be encoded (not a cycle, unknown hop kind, profit guard above prediction)."""


@dataclass(frozen=True, slots=True)
class Hop:
    pool: str
    token_out: str
    kind: str = "v2"
    fee_pips: int = 3000
    min_out: int = 0

    def as_tuple(self) -> tuple[str, str, int, int, int]:
        if self.kind not in HOP_KIND_CODES:
            raise EncodingError(f"unknown hop kind {self.kind!r}")
        return (norm_address(self.pool), norm_address(self.token_out), HOP_KIND_CODES[self.kind], self.fee_pips,
                self.min_out)


def gas_estimate(hop_kinds: Sequence[str], *, coinbase_share: bool = False) -> int:
    """Gas units for one execute() over hops of these kinds (plus the WETH unwrap and the
    transfer to ``block.coinbase`` when a coinbase share is paid)."""
    try:
        return GAS_BASE + sum(GAS_PER_HOP[k] for k in hop_kinds) + (GAS_COINBASE_PAYMENT if coinbase_share else 0)
    except KeyError as exc:
        raise EncodingError(f"unknown hop kind {exc.args[0]!r}") from None


def hops_for_cycle(
    pools: Sequence[PoolState | Mapping[str, Any]],
    tokens: Sequence[str],
    *,
    min_outs: Sequence[int] | None = None,
) -> list[Hop]:
    """Hops for ``tokens[0] -pools[0]-> tokens[1] ... -> tokens[-1] == tokens[0]``.

    ``pools`` are pool states (``V2PoolState``/``V3PoolState``) or deployment-style dicts
    with ``address``, ``kind``, ``fee_pips``, ``token0``, ``token1``.
    """
    if len(pools) < 1 or len(tokens) != len(pools) + 1:
        raise EncodingError("a cycle needs len(tokens) == len(pools) + 1")
    toks = [norm_address(t) for t in tokens]
    if toks[0] != toks[-1]:
        raise EncodingError("the cycle must end in the token it starts with")
    if min_outs is not None and len(min_outs) != len(pools):
        raise EncodingError("one min_out per hop")
    hops = []
    for i, p in enumerate(pools):
        addr, kind, fee, t0, t1 = _pool_fields(p)
        if {toks[i], toks[i + 1]} != {t0, t1}:
            raise EncodingError(f"hop {i}: pool {addr} does not trade {toks[i]} -> {toks[i + 1]}")
        hops.append(Hop(addr, toks[i + 1], kind, fee, int(min_outs[i]) if min_outs is not None else 0))
    return hops


def _pool_fields(p: PoolState | Mapping[str, Any]) -> tuple[str, str, int, str, str]:
    if isinstance(p, Mapping):
        return (norm_address(p["address"]), str(p["kind"]), int(p["fee_pips"]),
                norm_address(p["token0"]), norm_address(p["token1"]))
    return (norm_address(p.address), p.kind, p.fee_pips, norm_address(p.token0), norm_address(p.token1))


def encode_execute(
    token_in: str, amount_in: int, min_profit: int, hops: Sequence[Hop], *, flash: bool = True, coinbase_bps: int = 0
) -> str:
    """Calldata (0x hex) of ``execute(tokenIn, amountIn, minProfit, flash, hops, coinbaseBps)``.

    ``coinbase_bps`` is the share of the profit (basis points) paid to ``block.coinbase`` in
    native token when ``token_in`` is WETH (for bundles; skipped by the contract otherwise);
    ``min_profit`` guards the profit the contract keeps after that share."""
    if not 0 <= coinbase_bps <= MAX_COINBASE_BPS:
        raise EncodingError(f"coinbase_bps {coinbase_bps} outside 0..{MAX_COINBASE_BPS}")
    if not hops:
        raise EncodingError("no hops")
    if norm_address(hops[-1].token_out) != norm_address(token_in):
        raise EncodingError("the last hop must return to token_in")
    if not (0 < amount_in <= UINT256_MAX and 0 <= min_profit <= UINT256_MAX):
        raise EncodingError("amount_in must be in 1..2**256-1 and min_profit in 0..2**256-1")
    data = bytearray(_execute_template(norm_address(token_in), flash, tuple(h.as_tuple() for h in hops), coinbase_bps))
    data[AMOUNT_IN_WORD] = amount_in.to_bytes(32, "big")
    data[MIN_PROFIT_WORD] = min_profit.to_bytes(32, "big")
    return "0x" + data.hex()


@functools.lru_cache(maxsize=4096)  # ~0.5-1 kB a cycle
def _execute_template(
    token_in: str, flash: bool, hops: tuple[tuple[str, str, int, int, int], ...], coinbase_bps: int,
) -> bytes:
    """``execute``'s calldata for this cycle as eth_abi encodes it, with amountIn 1 and
    minProfit 0: a call's own amounts only change those two words (``AMOUNT_IN_WORD``,
    ``MIN_PROFIT_WORD``)."""
    return EXECUTE_SELECTOR + encode(EXECUTE_TYPES, [token_in, 1, 0, flash, list(hops), coinbase_bps])


def encode_cycle(
    pools: Sequence[PoolState | Mapping[str, Any]],
    tokens: Sequence[str],
    amount_in: int,
    amounts_out: Sequence[int],
    min_profit: int,
    *,
    flash: bool = True,
    strict_hops: bool = False,
    coinbase_bps: int = 0,
) -> str:
    """Calldata to execute a sized cycle.

    ``amounts_out[i]`` is hop i's output predicted by exact math (``amounts_out[-1]`` is what
    returns to ``tokens[0]``). ``min_profit`` above the predicted profit is refused here:
    it could only revert. ``strict_hops`` also turns each predicted output into a per-hop
    floor (fails earlier, costs nothing extra); by default only the final profit guard
    applies, so a cycle that moved in our favour still executes.
    """
    if len(amounts_out) != len(pools):
        raise EncodingError("one predicted amount per hop")
    predicted = int(amounts_out[-1]) - int(amount_in)
    if min_profit > predicted:
        raise EncodingError(f"min_profit {min_profit} exceeds the predicted profit {predicted}")
    hops = hops_for_cycle(pools, tokens, min_outs=list(amounts_out) if strict_hops else None)
    return encode_execute(tokens[0], amount_in, min_profit, hops, flash=flash, coinbase_bps=coinbase_bps)


def decode_execute(calldata: str) -> dict[str, Any]:
    """Inverse of ``encode_execute`` (for logs, the audit trail and tests)."""
    raw = bytes.fromhex(calldata[2:] if calldata.startswith("0x") else calldata)
    if raw[:4] != EXECUTE_SELECTOR:
        raise EncodingError("not an execute() call")
    token_in, amount_in, min_profit, flash, hops, coinbase_bps = decode(EXECUTE_TYPES, raw[4:])
    kinds = {v: k for k, v in HOP_KIND_CODES.items()}
    return {
        "token_in": token_in.lower(),
        "amount_in": amount_in,
        "min_profit": min_profit,
        "flash": flash,
        "hops": [Hop(h[0].lower(), h[1].lower(), kinds[h[2]], h[3], h[4]) for h in hops],
        "coinbase_bps": coinbase_bps,
    }


def _call(signature: str, types: list[str], args: list[Any]) -> str:
    return "0x" + (keccak(text=signature)[:4] + encode(types, args)).hex()


def encode_withdraw(token: str, to: str, amount: int) -> str:
    """Owner only: move ``amount`` of ``token`` (the zero address = native) to ``to``."""
    return "0x" + (WITHDRAW_SELECTOR + encode(["address", "address", "uint256"],
                                              [norm_address(token), norm_address(to), amount])).hex()


def encode_set_executor(account: str, allowed: bool) -> str:
    """Owner only: grant (or revoke) the right to run cycles."""
    return _call("setExecutor(address,bool)", ["address", "bool"], [norm_address(account), allowed])


def encode_add_factory(kind: str, factory: str, init_code_hash: bytes) -> str:
    """Owner only: accept CREATE2 children of ``factory`` (with ``init_code_hash``) as pools."""
    return _call("addFactory(uint8,address,bytes32)", ["uint8", "address", "bytes32"],
                 [HOP_KIND_CODES[kind], norm_address(factory), init_code_hash])


def encode_remove_factory(kind: str, factory: str) -> str:
    return _call("removeFactory(uint8,address)", ["uint8", "address"], [HOP_KIND_CODES[kind], norm_address(factory)])


def encode_pause() -> str:
    """The owner or any executor: stop every execute()."""
    return _call("pause()", [], [])


def encode_unpause() -> str:
    """Owner only."""
    return _call("unpause()", [], [])


def constructor_args(
    owner: str, weth: str, executors: Sequence[str], factories: Sequence[tuple[str, str, bytes]]
) -> tuple[list[str], list[Any]]:
    """(types, values) of the constructor: the cold ``owner``, WETH (the coinbase share is
    unwrapped from it), the hot ``executors`` and the accepted ``(kind, factory,
    init_code_hash)`` of every DEX whose pools may appear in a cycle."""
    return CONSTRUCTOR_TYPES, [
        norm_address(owner),
        norm_address(weth),
        [norm_address(e) for e in executors],
        [(HOP_KIND_CODES[k], norm_address(f), h) for k, f, h in factories],
    ]


# Custom errors of ArbExecutor, by selector, so a revert can be recorded with a reason.
_ERRORS: dict[bytes, tuple[str, list[str]]] = {
    keccak(text=f"{name}({','.join(types)})")[:4]: (name, types)
    for name, types in (
        ("NotOwner", []),
        ("NotExecutor", []),
        ("ContractPaused", []),
        ("Reentrancy", []),
        ("BadCallback", []),
        ("NotCycle", []),
        ("BadHop", ["uint256"]),
        ("BadKind", []),
        ("BadCoinbaseShare", []),
        ("HopOutputTooLow", ["uint256", "uint256"]),
        ("ProfitTooLow", ["uint256", "uint256"]),
        ("BalanceDecreased", ["address", "uint256", "uint256"]),
        ("TransferFailed", []),
    )
}


def executor_error(data: str | bytes | None) -> str | None:
    """The name of the ArbExecutor custom error that revert ``data`` is (``ProfitTooLow``),
    or None: another revert (a pool's ``Error(string)``), or none."""
    if data is None:
        return None
    raw = data if isinstance(data, bytes) else bytes.fromhex(data[2:] if data.startswith("0x") else data)
    known = _ERRORS.get(raw[:4]) if len(raw) >= 4 else None
    return known[0] if known else None


def decode_revert(data: str | bytes | None) -> str:
    """A readable reason from revert data: ArbExecutor's custom errors, ``Error(string)``
    (e.g. ``UniswapV2: K``) or the raw hex."""
    if data is None:
        return "reverted (no data)"
    raw = data if isinstance(data, bytes) else bytes.fromhex(data[2:] if data.startswith("0x") else data)
    if len(raw) < 4:
        return "reverted (no data)"
    sel, body = raw[:4], raw[4:]
    if sel in _ERRORS:
        name, types = _ERRORS[sel]
        try:
            values = decode(types, body) if types else ()
        except Exception:  # noqa: BLE001 - malformed body: still report the name
            values = ()
        return f"{name}({', '.join(str(v) for v in values)})"
    if sel == keccak(text="Error(string)")[:4]:
        try:
            return str(decode(["string"], body)[0])
        except Exception:  # noqa: BLE001
            pass
    return "0x" + raw.hex()
