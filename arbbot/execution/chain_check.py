"""What a configured chain must have, checked on the chain itself (``arbbot config apply``).

Owns the on-chain preflight of one chain's configuration: the node answers and serves the
configured chain id; Multicall3 has code and answers (the scanner reads every pool through
it: without it nothing is published); each DEX's factory has code and answers its kind's
view (V2 ``allPairsLength()``, V3 ``owner()`` and ``feeAmountTickSpacing(500)``); the
init-code hash reproduces a pool the factory made (V2: ``allPairs(0)``; V3: ``getPool`` of
the configured tokens), so CREATE2 checks (the executor's registry, the off-chain pool
guard) accept its pools; the executor, when set, runs exactly the compiled ``ArbExecutor``
code, with the chain's WETH, owned by the configured owner.

A cross-chain pair (``check_pair``): on each of its chains the DEX's router has code, each
token of the mapping and the bridge's contract (when given) have code, and the factory has
the quote/base pair and the WETH/quote pair (the strategy trades the one and prices gas
with the other).

Inputs are plain records (the caller turns its configuration into them), the answer a list
of problems, each naming the entry (``chains[0] (base).dexes[1] (sushiswap): factory 0x..
has no code``); ``Unreachable`` when no RPC URL answers. Nothing is written anywhere.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Sequence

from arbbot.chain.create2 import GENUINE_INIT_CODE_HASH, parse_init_code_hash, pool_address
from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import encode_call
from arbbot.errors import ArbbotError, RpcError
from arbbot.execution import executor_admin as admin

V3_FEE_TIERS = (500, 3000, 10000, 100)
MAX_SAMPLE_TOKENS = 8  # V3 pools are looked for among the first tokens configured (28 pairs x 4 tiers)


class Unreachable(ArbbotError):
    """No RPC URL of the chain answered."""


@dataclass(frozen=True)
class DexToCheck:
    where: str  # e.g. "chains[0] (base).dexes[1] (sushiswap)"
    kind: str
    factory: str
    init_code_hash: str  # "" = the genuine Uniswap one of its kind


@dataclass(frozen=True)
class ChainToCheck:
    where: str  # e.g. "chains[0] (base)"
    chain_id: int
    rpc_urls: Sequence[str]
    multicall3: str
    weth: str = ""
    executor: str = ""
    executor_owner: str = ""  # "" = any owner
    dexes: Sequence[DexToCheck] = ()
    tokens: Sequence[str] = field(default_factory=tuple)  # where V3 pools are looked for


@dataclass(frozen=True)
class PairSideToCheck:
    """One chain of a cross-chain pair: the entries to name and the addresses to look at."""

    chain: ChainToCheck  # where, id, nodes (its multicall3 and dexes are not looked at here)
    router: str
    factory: str
    weth: str
    tokens: Sequence[tuple[str, str]]  # (where, address) per token of the mapping on this chain
    quote: str
    base: str
    bridge: str = ""  # the bridge's contract on this chain ("" = none configured)


def check_pair(where: str, sides: Sequence[PairSideToCheck]) -> list[str]:
    """Every problem found on the pair's chains (empty: all there). ``Unreachable`` if a
    chain's node is not."""
    problems: list[str] = []
    for side in sides:
        rpc = connect(side.chain)
        on = f"on chain {side.chain.chain_id}"
        served = rpc.chain_id()
        if served != side.chain.chain_id:
            problems.append(f"{where}: chains: the node of chain {side.chain.chain_id} serves chain {served}")
            continue
        if not _has_code(rpc, side.router):
            problems.append(f"{where}: dex: its router {side.router} has no code {on}")
        for token_where, address in side.tokens:
            if not _has_code(rpc, address):
                problems.append(f"{token_where}: {address} has no code {on}")
        if side.bridge and not _has_code(rpc, side.bridge):
            problems.append(f"{where}.bridge: contracts: {side.bridge} has no code {on}")
        for label, x, y in (("quote/base", side.quote, side.base), ("WETH/quote", side.weth, side.quote)):
            try:
                pair = admin.view_address(rpc, side.factory, "getPair(address,address)", [x, y])
            except (RpcError, ValueError):
                pair = ""
            if int(pair or "0x0", 16) == 0:
                problems.append(f"{where}: dex: the factory {side.factory} has no {label} pair ({x}, {y}) {on}")
    return problems


def connect(chain: ChainToCheck, timeout_s: float = 10.0) -> RpcClient:
    """A client of the chain's endpoints; ``Unreachable`` if none answers."""
    if not chain.rpc_urls:
        raise Unreachable(f"{chain.where}: rpc_urls: none configured")
    rpc = RpcClient(list(chain.rpc_urls), timeout_s=timeout_s)
    try:
        rpc.chain_id()
    except (RpcError, OSError) as exc:
        raise Unreachable(f"{chain.where}: the chain's RPC cannot be reached ({exc})") from None
    return rpc


def check_chain(chain: ChainToCheck, rpc: RpcClient | None = None) -> list[str]:
    """Every problem found on-chain (empty: all there). ``Unreachable`` if the node is not."""
    rpc = rpc or connect(chain)
    try:
        served = rpc.chain_id()
    except (RpcError, OSError) as exc:
        raise Unreachable(f"{chain.where}: the chain's RPC cannot be reached ({exc})") from None
    if served != chain.chain_id:
        return [f"{chain.where}: chain_id: the node at {rpc.url} serves chain {served}, not {chain.chain_id}"]
    problems = _multicall3(rpc, chain)
    for d in chain.dexes:
        problems += _dex(rpc, d, chain.tokens)
    if chain.executor:
        problems += _executor(rpc, chain)
    return problems


def _has_code(rpc: RpcClient, address: str) -> bool:
    return bool(admin.code_at(rpc, address))


def _multicall3(rpc: RpcClient, chain: ChainToCheck) -> list[str]:
    where = f"{chain.where}: multicall3"
    if not chain.multicall3:
        return [f"{where}: not set; the scanner reads every pool through Multicall3 (on most chains it is at "
                f"0xcA11bde05977b3631167028862bE2a173976CA11)"]
    if not _has_code(rpc, chain.multicall3):
        return [f"{where}: {chain.multicall3} has no code; the scanner reads every pool through it and would "
                f"publish nothing"]
    try:
        admin.view_int(rpc, chain.multicall3, "getBlockNumber()")
    except (RpcError, ValueError):
        return [f"{where}: {chain.multicall3} has code but does not answer getBlockNumber(): not Multicall3"]
    return []


def _dex(rpc: RpcClient, d: DexToCheck, tokens: Sequence[str]) -> list[str]:
    if not _has_code(rpc, d.factory):
        return [f"{d.where}: factory {d.factory} has no code"]
    try:
        if d.kind == "v2":
            admin.view_int(rpc, d.factory, "allPairsLength()")
        else:
            admin.view_address(rpc, d.factory, "owner()")
            admin.view_int(rpc, d.factory, "feeAmountTickSpacing(uint24)", [500])
    except (RpcError, ValueError):
        views = "allPairsLength()" if d.kind == "v2" else "owner() and feeAmountTickSpacing(500)"
        return [f"{d.where}: factory {d.factory} does not answer {views}: not a Uniswap {d.kind.upper()} factory"]
    init_hash = parse_init_code_hash(d.init_code_hash) if d.init_code_hash else GENUINE_INIT_CODE_HASH[d.kind]
    sample = _v2_sample(rpc, d.factory) if d.kind == "v2" else _v3_sample(rpc, d.factory, tokens)
    if sample is None:
        return []  # no pool yet: nothing to check the hash against
    address, t0, t1, fee = sample
    expected = pool_address(d.kind, d.factory, init_hash, t0, t1, fee)
    if expected != address:
        said = "init_code_hash" if d.init_code_hash else "init_code_hash: not set, and the genuine Uniswap one"
        return [f"{d.where}: {said} 0x{init_hash.hex()} gives {expected} for the factory's pool of {t0}/{t1}"
                f"{f' fee {fee}' if d.kind == 'v3' else ''}, but the factory made {address}: wrong init-code hash"]
    return []


def _v2_sample(rpc: RpcClient, factory: str) -> tuple[str, str, str, int] | None:
    """The factory's first pair and its tokens (``allPairs(0)``), if it has one."""
    s = admin.onchain_v2_sample(rpc, factory)
    return None if s is None else (s.address.lower(), s.token0.lower(), s.token1.lower(), 3000)


def _v3_sample(rpc: RpcClient, factory: str, tokens: Sequence[str]) -> tuple[str, str, str, int] | None:
    """A pool the factory made between two of ``tokens`` (``getPool``), if any."""
    unique = list(dict.fromkeys(t.lower() for t in tokens if t))[:MAX_SAMPLE_TOKENS]
    asks: list[tuple[str, str, int]] = [(a, b, fee) for a, b in itertools.combinations(unique, 2) for fee in V3_FEE_TIERS]
    if not asks:
        return None
    calls: list[tuple[str, Sequence[Any]]] = [
        ("eth_call", [{"to": factory, "data": encode_call("getPool(address,address,uint24)", [a, b, fee])}, "latest"])
        for a, b, fee in asks
    ]
    for (a, b, fee), reply in zip(asks, rpc.batch(calls, raise_errors=False)):
        if isinstance(reply, str) and len(reply) == 66 and int(reply, 16) and int(reply, 16) >> 160 == 0:
            t0, t1 = sorted((a, b), key=lambda t: int(t, 16))
            return "0x" + reply[-40:].lower(), t0, t1, fee
    return None


def _executor(rpc: RpcClient, chain: ChainToCheck) -> list[str]:
    where = f"{chain.where}: executor"
    check = admin.check_code(rpc, chain.executor)
    if not check.has_code:
        return [f"{where}: {chain.executor} has no code"]
    if not check.matches:
        return [f"{where}: {chain.executor} does not run arbbot's ArbExecutor (code hash {check.code_hash}); "
                f"deploy one with `arbbot executor deploy`"]
    problems = []
    if chain.weth and check.weth != chain.weth.lower():
        problems.append(f"{where}: {chain.executor} was deployed for WETH {check.weth}, the chain's weth is "
                        f"{chain.weth}")
    if chain.executor_owner:
        try:
            owner = admin.view_address(rpc, chain.executor, "owner()")
        except (RpcError, ValueError) as exc:
            return [*problems, f"{where}: {chain.executor}: owner() cannot be read ({exc})"]
        if owner != chain.executor_owner.lower():
            problems.append(f"{where}: {chain.executor} is owned by {owner}, not by the configured executor_owner "
                            f"{chain.executor_owner}")
    return problems
