"""One pass of the cross-chain strategy over the live chains: read the inventory and the
pair's pools on both chains, size the best trade, plan the rebalances.

Owns the wiring between the chains and ``strategy`` (the decisions) and ``saga`` (their
execution): ``Config`` (pair, DEX, costs, band, slippage, bridge delay and stall),
``chains_for`` (a ``saga.Chains`` of the two-chain devnet), ``read_inventory`` and
``scan`` (a trade saga and rebalance sagas to record, with their idempotency keys).
Gas is priced in the quote token from each chain's own WETH/quote pool.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from eth_abi import decode

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import encode_call
from arbbot.crosschain.bridge import DevnetBridge
from arbbot.crosschain.saga import SWAP_GAS, Chains, Saga, rebalance_saga, trade_saga
from arbbot.crosschain.strategy import Band, Costs, Rebalance, Side, Trade, best_trade, rebalance_plan
from arbbot.devnet.record import devnet_dir
from arbbot.devnet.twochain import TwoChain, load_twochain, read_xchain_key
from arbbot.types import V2PoolState


@dataclass(frozen=True)
class Config:
    quote: str = "USDC"
    base: str = "LINK"
    dex: str = "uniswap"
    costs: Costs = field(default_factory=Costs)
    band: Band = field(default_factory=Band)
    slippage_bps: int = 0
    delay_blocks: int = 2
    stall_blocks: int = 20


def chains_for(two: TwoChain, key: str, config: Config) -> Chains:
    rpcs = {two.a.chain_id: RpcClient(two.a.rpc_url), two.b.chain_id: RpcClient(two.b.rpc_url)}
    bridge = DevnetBridge(rpcs, two.bridges, two.tokens, delay_blocks=config.delay_blocks)
    return Chains(rpcs, key, bridge, two.tokens, stall_blocks=config.stall_blocks)


def balance(rpc: RpcClient, token: str, who: str) -> int:
    return int(rpc.eth_call(token, encode_call("balanceOf(address)", [who])), 16)


def read_inventory(chains: Chains) -> dict[str, dict[int, int]]:
    """The wallet's holdings of every bridged token: symbol -> chain id -> base units."""
    wallet = chains.wallet
    return {s: {c: balance(chains.rpcs[c], addr, wallet) for c, addr in by_chain.items()}
            for s, by_chain in chains.symbols.items()}


def _pool_state(rpc: RpcClient, pool: Mapping[str, object]) -> V2PoolState:
    raw = rpc.eth_call(str(pool["address"]), encode_call("getReserves()"))
    r0, r1, _ = decode(["uint112", "uint112", "uint32"], bytes.fromhex(raw[2:]))
    return V2PoolState(str(pool["address"]), str(pool["token0"]), str(pool["token1"]), int(r0), int(r1),
                       int(str(pool.get("fee_pips", 3000))))


def gas_in_quote(two: TwoChain, chains: Chains, config: Config) -> int:
    """Both legs' gas at each chain's current base fee, in the quote token."""
    total = 0
    for dep in (two.a, two.b):
        rpc = chains.rpcs[dep.chain_id]
        fees = chains.fees(dep.chain_id)
        wei = SWAP_GAS * fees["max_fee_per_gas"] // 2  # about base fee + tip
        weth_pool = _pool_state(rpc, dep.pool(config.dex, "WETH", config.quote))
        r_weth, r_quote = ((weth_pool.reserve0, weth_pool.reserve1) if weth_pool.token0 == dep.weth
                           else (weth_pool.reserve1, weth_pool.reserve0))
        total += wei * r_quote // r_weth
    return total


def sides(two: TwoChain, chains: Chains, config: Config, inventory: Mapping[str, Mapping[int, int]]) -> tuple[Side, Side]:
    out = []
    for dep in (two.a, two.b):
        c = dep.chain_id
        pool = _pool_state(chains.rpcs[c], dep.pool(config.dex, config.quote, config.base))
        out.append(Side(c, pool, two.token(config.quote, c), two.token(config.base, c),
                        inventory[config.quote][c], inventory[config.base][c]))
    return out[0], out[1]


def find_trade(two: TwoChain, chains: Chains, config: Config) -> Trade | None:
    inventory = read_inventory(chains)
    a, b = sides(two, chains, config, inventory)
    costs = replace(config.costs, gas=gas_in_quote(two, chains, config), delay_blocks=config.delay_blocks)
    return best_trade(a, b, costs)


def plan_trade(two: TwoChain, chains: Chains, config: Config, key: str) -> Saga | None:
    """A trade saga for the best trade now (``None`` when nothing pays), keyed ``key``."""
    trade = find_trade(two, chains, config)
    if trade is None:
        return None
    routers = {dep.chain_id: dep.dex(config.dex)["router"] for dep in (two.a, two.b)}
    return trade_saga(trade, chains, (config.quote, config.base), key, routers, config.slippage_bps)


def plan_rebalances(two: TwoChain, chains: Chains, config: Config, key_prefix: str) -> list[Saga]:
    """A rebalance saga for each token out of its band; keys ``<prefix>:<symbol>``."""
    plans: list[Rebalance] = rebalance_plan(read_inventory(chains), config.band, (two.a.chain_id, two.b.chain_id))
    return [rebalance_saga(r, chains, f"{key_prefix}:{r.symbol}") for r in plans]


CONFIG_FILE = "xchain.json"


def config_from_json(data: Mapping[str, Any]) -> Config:
    """``{"quote", "base", "dex", "slippage_bps", "delay_blocks", "stall_blocks",
    "costs": {...Costs fields}, "band": {...Band fields}}``; absent keys keep the defaults."""
    known = {k: data[k] for k in ("quote", "base", "dex", "slippage_bps", "delay_blocks", "stall_blocks") if k in data}
    return Config(costs=Costs(**(data.get("costs") or {})), band=Band(**(data.get("band") or {})), **known)


def load(directory: Path | str | None = None) -> tuple[TwoChain, Chains, Config]:
    """The two-chain devnet of ``directory`` (default ``settings.devnet_dir``): its record,
    the saga driver's ``Chains`` (the inventory wallet's key) and the strategy's ``Config``
    (``xchain.json`` beside the record, written by the demo or a test)."""
    d = devnet_dir(directory)
    two = load_twochain(d)
    path = d / CONFIG_FILE
    config = config_from_json(json.loads(path.read_text())) if path.is_file() else Config()
    return two, chains_for(two, read_xchain_key(d), config), config


def save_config(config: Config, directory: Path | str) -> Path:
    path = Path(directory) / CONFIG_FILE
    path.write_text(json.dumps(asdict(config), indent=2) + "\n")
    return path


def send_refusal(mode: str, kill_switch: bool) -> str | None:
    """Why no new saga may start now (``None``: it may). Cross-chain legs are real
    transactions on both chains, so only ``live`` starts them; the kill switch stops even
    the sagas in flight, which wait in their recorded state until it is released."""
    if kill_switch:
        return "the kill switch is on"
    if mode != "live":
        return f"mode {mode}: cross-chain sagas start only in live"
    return None
