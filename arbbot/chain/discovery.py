"""Pool and token discovery from factory logs.

Owns: the event topics the scan stage understands (V2 ``PairCreated``/``Sync``, V3
``PoolCreated``/``Swap``/``Mint``/``Burn``) and their decoding by slicing; chunked
``eth_getLogs`` backfill that shrinks its range and retries when a node refuses a range
(the "query returned more than 10000 results" / "block range too large" family of public
provider errors), using the provider's suggested range when it sends one; and token
registration (``symbol``/``decimals`` read on-chain through Multicall3, tolerating
``bytes32`` symbols, reverting calls and non-contracts). A token's transfer behaviour
(fee-on-transfer, rebasing, reverting) is probed by ``arbbot.chain.token_checks`` once a
pool holds it, and kept in ``TokenInfo.transfer_check``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Sequence

from eth_utils import keccak

from arbbot.chain.multicall import (
    SEL_DECIMALS,
    SEL_SYMBOL,
    Multicaller,
    SubCall,
    decode_decimals,
    decode_symbol,
)
from arbbot.chain.rpc import RpcClient
from arbbot.chain.token_checks import TransferCheck
from arbbot.errors import ConfigError, RpcError


def topic(signature: str) -> str:
    return "0x" + keccak(text=signature).hex()


PAIR_CREATED = topic("PairCreated(address,address,address,uint256)")
POOL_CREATED = topic("PoolCreated(address,address,uint24,int24,address)")
V2_SYNC = topic("Sync(uint112,uint112)")
V3_SWAP = topic("Swap(address,address,int256,int256,uint160,uint128,int24)")
V3_MINT = topic("Mint(address,address,int24,int24,uint128,uint256,uint256)")
V3_BURN = topic("Burn(address,int24,int24,uint128,uint256,uint256)")

PoolKind = Literal["v2", "v3"]


@dataclass(frozen=True, slots=True)
class Factory:
    """A DEX factory to discover pools from. ``fee_pips`` applies to V2 pairs (3000 for the
    genuine Uniswap V2; forks differ); V3 pools carry their own fee."""

    address: str
    kind: PoolKind
    start_block: int = 0
    fee_pips: int = 3000

    def __post_init__(self) -> None:
        if self.kind not in ("v2", "v3"):
            raise ConfigError(f"factory kind must be v2 or v3, got {self.kind!r}")
        object.__setattr__(self, "address", self.address.lower())


@dataclass(frozen=True, slots=True)
class PoolInfo:
    """What never changes about a pool: found once, from its creation log (or config)."""

    address: str
    kind: PoolKind
    token0: str
    token1: str
    fee_pips: int = 3000
    tick_spacing: int = 0
    factory: str = ""
    created_block: int = 0


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An ERC20's metadata. ``symbol`` is ``"UNKNOWN"`` and ``decimals`` None when the
    token does not answer in a standard way; ``problems`` says why. ``transfer_check`` is
    the outcome of probing its ``transfer`` (None until a pool holding it was seen)."""

    address: str
    symbol: str
    decimals: int | None
    problems: tuple[str, ...] = ()
    transfer_check: TransferCheck | None = None

    @property
    def excluded_reason(self) -> str | None:
        """Why the path stage must not route through this token (e.g. ``"fee-on-transfer:
        received 98/100"``), or None when it may (clean, or not checked yet)."""
        return None if self.transfer_check is None else self.transfer_check.excluded_reason


# ----------------------------------------------------------------------------- decoding


def _addr_from_topic(t: str) -> str:
    return "0x" + t[-40:].lower()


def _data_words(log: dict[str, Any]) -> bytes:
    d = log.get("data", "0x")
    return bytes.fromhex(d[2:])


def _int24_topic(t: str) -> int:
    return int.from_bytes(bytes.fromhex(t[2:]), "big", signed=True)


def parse_pair_created(log: dict[str, Any], fee_pips: int = 3000) -> PoolInfo:
    data = _data_words(log)
    return PoolInfo(
        address="0x" + data[12:32].hex(),
        kind="v2",
        token0=_addr_from_topic(log["topics"][1]),
        token1=_addr_from_topic(log["topics"][2]),
        fee_pips=fee_pips,
        factory=log["address"].lower(),
        created_block=int(log["blockNumber"], 16),
    )


def parse_pool_created(log: dict[str, Any]) -> PoolInfo:
    data = _data_words(log)
    return PoolInfo(
        address="0x" + data[44:64].hex(),
        kind="v3",
        token0=_addr_from_topic(log["topics"][1]),
        token1=_addr_from_topic(log["topics"][2]),
        fee_pips=int(log["topics"][3], 16),
        tick_spacing=int.from_bytes(data[0:32], "big", signed=True),
        factory=log["address"].lower(),
        created_block=int(log["blockNumber"], 16),
    )


def parse_sync(log: dict[str, Any]) -> tuple[int, int]:
    d = bytes.fromhex(log["data"][2:])
    return int.from_bytes(d[0:32], "big"), int.from_bytes(d[32:64], "big")


def parse_v3_swap(log: dict[str, Any]) -> tuple[int, int, int]:
    """``(sqrt_price_x96, liquidity, tick)`` after the swap: exactly slot0/liquidity."""
    d = bytes.fromhex(log["data"][2:])
    return (
        int.from_bytes(d[64:96], "big"),
        int.from_bytes(d[96:128], "big"),
        int.from_bytes(d[128:160], "big", signed=True),
    )


# ----------------------------------------------------------------------------- getLogs

_RANGE_PATTERNS = re.compile(
    r"more than \d+ results|block range|range too (large|wide)|too many (results|blocks|logs)"
    r"|limit exceeded|response size|exceed(s|ed)? (the )?max|query timeout|range is too large"
    r"|\d+ block range|up to a \d+ block range",
    re.IGNORECASE,
)
_SUGGEST = re.compile(r"\[(0x[0-9a-fA-F]+),\s*(0x[0-9a-fA-F]+)\]")


def range_refusal(err: RpcError) -> tuple[bool, int | None]:
    """Whether ``err`` is a node refusing an ``eth_getLogs`` range as too large, and the
    end block it suggests instead when it says (Infura ``data.to``, Alchemy ``[from, to]``)."""
    msg = str(err)
    if not (_RANGE_PATTERNS.search(msg) or err.code in (-32005,)):
        return False, None
    data = err.data
    if isinstance(data, dict) and isinstance(data.get("to"), str):
        try:
            return True, int(data["to"], 16)
        except ValueError:
            pass
    m = _SUGGEST.search(msg)
    if m:
        return True, int(m.group(2), 16)
    return True, None


def get_logs_chunked(
    rpc: RpcClient,
    *,
    address: str | Sequence[str] | None,
    topics: Sequence[Any],
    from_block: int,
    to_block: int,
    max_range: int = 10_000,
    min_range: int = 1,
    stats: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """All logs in ``[from_block, to_block]``, in chain order, asked for in windows of at
    most ``max_range`` blocks. A refused window is halved (or cut to the node's suggestion)
    and retried; after a success the window grows back (doubling) up to ``max_range``."""
    out: list[dict[str, Any]] = []
    window = max(1, max_range)
    start = from_block
    refusals = 0
    requests_made = 0
    while start <= to_block:
        end = min(to_block, start + window - 1)
        flt: dict[str, Any] = {"fromBlock": hex(start), "toBlock": hex(end), "topics": list(topics)}
        if address is not None:
            flt["address"] = address
        requests_made += 1
        try:
            logs = rpc.call("eth_getLogs", [flt])
        except RpcError as exc:
            refused, suggested_to = range_refusal(exc)
            if not refused:
                raise
            refusals += 1
            if window <= min_range and end == start:
                raise RpcError(f"eth_getLogs refused even a {window}-block range at {start}: {exc}") from exc
            if suggested_to is not None and start <= suggested_to < end:
                window = suggested_to - start + 1
            else:
                window = max(min_range, (end - start + 1) // 2)
            continue
        out.extend(logs)
        start = end + 1
        window = min(max_range, window * 2)
    if stats is not None:
        stats["refusals"] = stats.get("refusals", 0) + refusals
        stats["requests"] = stats.get("requests", 0) + requests_made
    return out


def discover_pools(
    rpc: RpcClient,
    factories: Iterable[Factory],
    from_block: int,
    to_block: int,
    *,
    max_range: int = 10_000,
    stats: dict[str, int] | None = None,
) -> list[PoolInfo]:
    """Pools created by ``factories`` in ``[from_block, to_block]`` (each factory from no
    earlier than its ``start_block``), in creation order."""
    found: list[PoolInfo] = []
    for f in factories:
        lo = max(from_block, f.start_block)
        if lo > to_block:
            continue
        t = PAIR_CREATED if f.kind == "v2" else POOL_CREATED
        logs = get_logs_chunked(
            rpc, address=f.address, topics=[t], from_block=lo, to_block=to_block, max_range=max_range, stats=stats
        )
        for log in logs:
            if log.get("removed"):
                continue
            found.append(parse_pair_created(log, f.fee_pips) if f.kind == "v2" else parse_pool_created(log))
    return found


# ----------------------------------------------------------------------------- tokens


def read_tokens(mc: Multicaller, addresses: Iterable[str], block: int | str = "latest") -> dict[str, TokenInfo]:
    """``symbol()``/``decimals()`` of each token in one batched Multicall3 pass. Never
    raises for a misbehaving token: it gets ``UNKNOWN``/None and a reason."""
    addrs = sorted({a.lower() for a in addresses})
    calls: list[SubCall] = []
    for a in addrs:
        calls.append(SubCall.make(a, SEL_SYMBOL))
        calls.append(SubCall.make(a, SEL_DECIMALS))
    res = mc.run(calls, block)
    out: dict[str, TokenInfo] = {}
    for i, a in enumerate(addrs):
        (ok_s, d_s), (ok_d, d_d) = res[2 * i], res[2 * i + 1]
        problems: list[str] = []
        symbol = decode_symbol(ok_s, d_s)
        if symbol is None:
            problems.append("symbol() reverted" if not ok_s else f"symbol() returned {len(d_s)} undecodable bytes")
            symbol = "UNKNOWN"
        elif len(d_s) == 32:
            problems.append("symbol() returns bytes32")
        decimals = decode_decimals(ok_d, d_d)
        if decimals is None:
            problems.append("decimals() reverted" if not ok_d else f"decimals() returned {len(d_d)} bad bytes")
        out[a] = TokenInfo(a, symbol, decimals, tuple(problems))
    return out
