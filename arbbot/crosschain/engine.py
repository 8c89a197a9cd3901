"""One pass of the cross-chain strategy over a configured pair of chains: read the
inventory and the pair's pools on both chains, size the best trade, plan the rebalances.

Owns the wiring between the configuration and ``strategy`` (the decisions) and ``saga``
(their execution): ``Pair`` (the two chains, the DEX, the token mapping, the bridge and
the strategy's ``Config``, as ``config apply`` recorded them: ``selectors.xchain_pairs``
builds it), ``chains_for`` (the saga driver's ``saga.Chains``: nodes, wallet key, the
bridge adapter of the pair's kind), ``read_inventory`` and the planners (a trade saga and
rebalance sagas to record, with their idempotency keys). The two-chain devnet is one such
pair (``arbbot.devnet.twochain.xchain_config``). Pools are found with the factory's
``getPair``; gas is priced in the quote token from each chain's own WETH/quote pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

from eth_abi import decode

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import encode_call
from arbbot.crosschain.bridge import Bridge, DevnetBridge, production_bridge
from arbbot.crosschain.saga import SWAP_GAS, Chains, Saga, rebalance_saga, trade_saga
from arbbot.crosschain.strategy import Band, Costs, Rebalance, Side, Trade, best_trade, rebalance_plan
from arbbot.errors import ArbbotError
from arbbot.types import V2PoolState

ZERO_ADDRESS = "0x" + "00" * 20


@dataclass(frozen=True)
class PairChain:
    """One chain of a pair: its nodes, WETH, and the pair's V2 DEX there."""

    chain_id: int
    rpc_urls: tuple[str, ...]
    weth: str
    router: str
    factory: str
    fee_pips: int = 3000


@dataclass(frozen=True)
class BridgeConfig:
    kind: str = "devnet"  # devnet | across | stargate | cctp
    contracts: Mapping[int, str] = field(default_factory=dict)  # chain id -> the bridge's contract
    endpoint: str = ""
    fee_bps: int = 10
    fixed_fee: Mapping[str, int] = field(default_factory=dict)  # symbol -> base units per transfer
    delay_blocks: int = 2
    delay_s: int = 0


@dataclass(frozen=True)
class Config:
    """The strategy's settings of a pair. ``bands``: symbol -> the first chain's band (a
    token not named has the default band); ``costs``' bridge fee and delay come from the
    pair's bridge (``Pair.costs``)."""

    quote: str = "USDC"
    base: str = "LINK"
    costs: Costs = field(default_factory=Costs)
    bands: Mapping[str, Band] = field(default_factory=dict)
    slippage_bps: int = 0
    stall_blocks: int = 20

    def band(self, symbol: str) -> Band:
        return self.bands.get(symbol, Band())


@dataclass(frozen=True)
class Pair:
    name: str
    a: PairChain
    b: PairChain
    tokens: Mapping[str, Mapping[int, str]]  # symbol -> chain id -> token address
    bridge: BridgeConfig = field(default_factory=BridgeConfig)
    config: Config = field(default_factory=Config)

    @property
    def chains(self) -> tuple[PairChain, PairChain]:
        return self.a, self.b

    def token(self, symbol: str, chain_id: int) -> str:
        try:
            return self.tokens[symbol][chain_id]
        except KeyError:
            raise ArbbotError(f"pair {self.name}: token {symbol} has no address on chain {chain_id}") from None

    def costs(self, gas: int) -> Costs:
        return replace(self.config.costs, gas=gas, bridge_fee_bps=self.bridge.fee_bps,
                       bridge_fixed_fee=int(self.bridge.fixed_fee.get(self.config.quote, 0)),
                       delay_blocks=self.bridge.delay_blocks)


def bridge_for(pair: Pair, rpcs: Mapping[int, RpcClient]) -> Bridge:
    """The adapter of the pair's bridge kind: the devnet's ``DevBridge`` pair, or a
    production kind priced from the configuration (quotes only)."""
    b = pair.bridge
    if b.kind == "devnet":
        return DevnetBridge(rpcs, dict(b.contracts), pair.tokens, delay_blocks=b.delay_blocks)
    return production_bridge(b.kind, {"fee_bps": b.fee_bps, "fixed_fee": dict(b.fixed_fee), "delay_s": b.delay_s,
                                      "endpoint": b.endpoint})


def chains_for(pair: Pair, key: str) -> Chains:
    rpcs = {c.chain_id: RpcClient(list(c.rpc_urls)) for c in pair.chains}
    return Chains(rpcs, key, bridge_for(pair, rpcs), pair.tokens, stall_blocks=pair.config.stall_blocks)


def send_refusal(modes: Mapping[int, str], kill_switch: bool) -> str | None:
    """Why no new saga may start now (``None``: it may). Cross-chain legs are real
    transactions on both chains, so only ``live`` on both (``modes``: chain id -> its
    effective mode) starts them; the kill switch stops even the sagas in flight, which wait
    in their recorded state until it is released."""
    if kill_switch:
        return "the kill switch is on"
    for chain_id, mode in sorted(modes.items()):
        if mode != "live":
            return f"chain {chain_id} is in mode {mode}: cross-chain sagas start only in live"
    return None


def transfer_refusal(pair: Pair) -> str | None:
    """Why the pair's bridge cannot carry a rebalance (``None``: it can)."""
    if pair.bridge.kind != "devnet":
        return (f"pair {pair.name}: bridge kind {pair.bridge.kind} is quote-only in this version "
                f"(its transfers are not wired): no rebalance starts")
    return None


def balance(rpc: RpcClient, token: str, who: str) -> int:
    return int(rpc.eth_call(token, encode_call("balanceOf(address)", [who])), 16)


def read_inventory(chains: Chains) -> dict[str, dict[int, int]]:
    """The wallet's holdings of every token of the pair: symbol -> chain id -> base units."""
    wallet = chains.wallet
    return {s: {c: balance(chains.rpcs[c], addr, wallet) for c, addr in by_chain.items()}
            for s, by_chain in chains.symbols.items()}


_POOLS: dict[tuple[int, str, str, str], str] = {}


def pool_address(rpc: RpcClient, chain: PairChain, token_x: str, token_y: str) -> str:
    """The V2 pair of two tokens from the factory's ``getPair`` (a pair's address never
    changes, so each is asked once per process)."""
    t0, t1 = sorted((token_x.lower(), token_y.lower()), key=lambda a: int(a, 16))
    cache_key = (chain.chain_id, chain.factory.lower(), t0, t1)
    if cache_key not in _POOLS:
        raw = rpc.eth_call(chain.factory, encode_call("getPair(address,address)", [t0, t1]))
        address = "0x" + raw[-40:].lower()
        if address == ZERO_ADDRESS:
            raise ArbbotError(f"chain {chain.chain_id}: the factory {chain.factory} has no pair of {t0} and {t1}")
        _POOLS[cache_key] = address
    return _POOLS[cache_key]


def pool_state(rpc: RpcClient, chain: PairChain, token_x: str, token_y: str) -> V2PoolState:
    address = pool_address(rpc, chain, token_x, token_y)
    raw = rpc.eth_call(address, encode_call("getReserves()"))
    r0, r1, _ = decode(["uint112", "uint112", "uint32"], bytes.fromhex(raw[2:]))
    t0, t1 = sorted((token_x.lower(), token_y.lower()), key=lambda a: int(a, 16))
    return V2PoolState(address, t0, t1, int(r0), int(r1), chain.fee_pips)


def gas_in_quote(pair: Pair, chains: Chains) -> int:
    """Both legs' gas at each chain's current base fee, in the quote token."""
    total = 0
    for chain in pair.chains:
        rpc = chains.rpcs[chain.chain_id]
        wei = SWAP_GAS * chains.fees(chain.chain_id)["max_fee_per_gas"] // 2  # about base fee + tip
        weth = chain.weth.lower()
        pool = pool_state(rpc, chain, weth, pair.token(pair.config.quote, chain.chain_id))
        r_weth, r_quote = (pool.reserve0, pool.reserve1) if pool.token0 == weth else (pool.reserve1, pool.reserve0)
        total += wei * r_quote // r_weth
    return total


def sides(pair: Pair, chains: Chains, inventory: Mapping[str, Mapping[int, int]]) -> tuple[Side, Side]:
    quote, base = pair.config.quote, pair.config.base
    out = []
    for chain in pair.chains:
        c = chain.chain_id
        q, b = pair.token(quote, c).lower(), pair.token(base, c).lower()
        out.append(Side(c, pool_state(chains.rpcs[c], chain, q, b), q, b, inventory[quote][c], inventory[base][c]))
    return out[0], out[1]


def find_trade(pair: Pair, chains: Chains) -> Trade | None:
    a, b = sides(pair, chains, read_inventory(chains))
    return best_trade(a, b, pair.costs(gas_in_quote(pair, chains)))


def plan_trade(pair: Pair, chains: Chains, key: str) -> Saga | None:
    """A trade saga for the best trade now (``None`` when nothing pays), keyed ``key``."""
    trade = find_trade(pair, chains)
    if trade is None:
        return None
    routers = {c.chain_id: c.router for c in pair.chains}
    saga = trade_saga(trade, chains, (pair.config.quote, pair.config.base), key, routers, pair.config.slippage_bps)
    saga.plan["pair"] = pair.name
    return saga


def plan_rebalances(pair: Pair, chains: Chains, key_prefix: str) -> list[Saga]:
    """A rebalance saga for each token out of its band; keys ``<prefix>:<symbol>``."""
    inventory = read_inventory(chains)
    plans: list[Rebalance] = []
    for symbol, held in sorted(inventory.items()):
        plans += rebalance_plan({symbol: held}, pair.config.band(symbol), (pair.a.chain_id, pair.b.chain_id))
    out = [rebalance_saga(r, chains, f"{key_prefix}:{r.symbol}") for r in plans]
    for saga in out:
        saga.plan["pair"] = pair.name
    return out
