"""Deploying the devnet's contracts onto a running anvil, and checking they are there.

Owns what the devnet consists of (``TOKENS``, ``PAIRS``, ``V2_DEXES`` and their reference
prices and depths), the deployment order (``deploy_contracts``: WETH9, Multicall3 at its
canonical address, the tokens, two Uniswap V2 DEXes with their pairs, optionally the V3
stack of ``arbbot.devnet.v3``, the project's executor owned by the deployer with the
signer as its executor and every DEX registered, the signer's funding), each DEX's
init-code hash in the record (what the off-chain pool guard and the executor's registry
check pools against), the V2 pair CREATE2 address helpers and ``verify_deployment``.
Deploys only genuine npm artifacts (see ``artifacts.py``) plus
``arbbot/contracts/ArbExecutor.json``. Everything is sent from anvil's unlocked dev account
0 with automine, so a deployment takes a couple of seconds.
The result is a ``record.Deployment``; ``lifecycle`` runs the node around it.
"""

from __future__ import annotations

from typing import Any, Callable

from eth_utils import keccak

from arbbot.chain.create2 import v2_pair_address
from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import deploy_unlocked, encode_call, send_unlocked
from arbbot.contracts.build import load_artifact
from arbbot.devnet import v3 as devnet_v3
from arbbot.devnet.artifacts import load, multicall3_bytecode
from arbbot.devnet.record import Deployment
from arbbot.execution.executor import constructor_args

MULTICALL3_ADDRESS = "0xca11bde05977b3631167028862be2a173976ca11"  # canonical on every chain
V2_FEE_PIPS = 3000
SIGNER_FUNDING_WEI = 10_000 * 10**18

# (symbol, name, reference price in USD). The OpenZeppelin preset has 18 decimals fixed.
TOKENS: tuple[tuple[str, str, float], ...] = (
    ("USDC", "USD Coin (devnet)", 1.0),
    ("USDT", "Tether USD (devnet)", 1.0),
    ("DAI", "Dai Stablecoin (devnet)", 1.0),
    ("WBTC", "Wrapped BTC (devnet)", 60_000.0),
    ("LINK", "ChainLink (devnet)", 15.0),
    ("UNI", "Uniswap (devnet)", 8.0),
)
WETH_PRICE_USD = 3_000.0

# (symbol_a, symbol_b) pairs created on every V2 DEX. WETH pairs, stable pairs and
# triangles (WETH-USDC-DAI, WETH-WBTC-USDC, WETH-LINK-USDC) so 3-hop cycles exist.
PAIRS: tuple[tuple[str, str], ...] = (
    ("WETH", "USDC"),
    ("WETH", "USDT"),
    ("WETH", "DAI"),
    ("WETH", "WBTC"),
    ("WETH", "LINK"),
    ("WETH", "UNI"),
    ("USDC", "DAI"),
    ("USDC", "USDT"),
    ("WBTC", "USDC"),
    ("LINK", "USDC"),
)

# (dex name, USD depth of each side of each pool). Different depths make the DEXes react
# differently to the same flow, which is what creates cross-DEX gaps.
V2_DEXES: tuple[tuple[str, float], ...] = (("uniswap", 2_000_000.0), ("sushiswap", 800_000.0))

Progress = Callable[[str], None]


def _addr_word(hex_result: str) -> str:
    return "0x" + hex_result[-40:].lower()


def create2_pair_address(factory: str, token_a: str, token_b: str, init_code_hash: bytes) -> str:
    """UniswapV2Library.pairFor: CREATE2 address of a pair from its (sorted) tokens."""
    return v2_pair_address(factory, init_code_hash, token_a, token_b)


def v2_pair_init_code_hash() -> bytes:
    return keccak(bytes.fromhex(load("UniswapV2Pair").bytecode[2:]))


class _Steps:
    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.i, self.progress = total, 0, progress

    def __call__(self, msg: str) -> None:
        self.i += 1
        if self.progress:
            self.progress(f"[{self.i}/{self.total}] {msg}")


def _reserve_amount(usd_depth: float, price_usd: float, decimals: int = 18) -> int:
    # integer base units; round to whole tokens * 1e6 so amounts read nicely in logs
    units = usd_depth / price_usd
    return int(round(units * 1e6)) * 10 ** (decimals - 6)


def deploy_contracts(
    rpc: RpcClient,
    *,
    signer: str,
    progress: Progress | None = print,
    v3: bool = False,
) -> Deployment:
    """Deploy the whole devnet onto a running (automine) anvil; returns the record.

    ``signer`` is the address that may run the executor's cycles (the bot's hot key; the
    deployer owns the contract). ``v3=True``
    also deploys the Uniswap V3 stack and pools (``arbbot.devnet.v3``).
    """
    accounts = [a.lower() for a in rpc.call("eth_accounts")]
    deployer = accounts[0]
    n_steps = 3 + len(TOKENS) + len(V2_DEXES) * (1 + len(PAIRS)) + 2 + (3 if v3 else 0)
    step = _Steps(n_steps, progress)
    chain_id = rpc.chain_id()

    step("WETH9")
    weth = deploy_unlocked(rpc, deployer, load("WETH9").bytecode)

    step("Multicall3 (viem bytecode, placed at the canonical address)")
    mc = deploy_unlocked(rpc, deployer, multicall3_bytecode())
    # Multicall3 has no constructor state or immutables, so its runtime code can be copied
    # to the address every real chain uses; clients need no per-chain configuration.
    rpc.call("anvil_setCode", [MULTICALL3_ADDRESS, rpc.call("eth_getCode", [mc, "latest"])])

    tokens: list[dict[str, Any]] = [
        {"address": weth, "symbol": "WETH", "name": "Wrapped Ether", "decimals": 18, "price_usd": WETH_PRICE_USD}
    ]
    erc20 = load("ERC20PresetMinterPauser")
    for symbol, name, price in TOKENS:
        step(f"ERC20 {symbol} (OpenZeppelin 4.9.6 ERC20PresetMinterPauser)")
        addr = deploy_unlocked(rpc, deployer, erc20.bytecode, ["string", "string"], [name, symbol])
        tokens.append({"address": addr, "symbol": symbol, "name": name, "decimals": 18, "price_usd": price})
    by_symbol = {t["symbol"]: t for t in tokens}

    # Enough of every token for all pools (and later top-ups): mint once per token.
    step("mint tokens and wrap ETH for liquidity")
    need: dict[str, int] = {}
    for _, depth in V2_DEXES:
        for a, b in PAIRS:
            for s in (a, b):
                need[s] = need.get(s, 0) + _reserve_amount(depth, by_symbol[s]["price_usd"])
    for s, amount in need.items():
        amount *= 4  # headroom for V3 positions and scenarios
        if s == "WETH":
            rpc.call("anvil_setBalance", [deployer, hex(10**30)])
            send_unlocked(rpc, deployer, to=weth, data=encode_call("deposit()"), value=amount)
        else:
            send_unlocked(
                rpc, deployer, to=by_symbol[s]["address"],
                data=encode_call("mint(address,uint256)", [deployer, amount]),
            )

    dexes: list[dict[str, Any]] = []
    pools: list[dict[str, Any]] = []
    factory_art, router_art = load("UniswapV2Factory"), load("UniswapV2Router02")
    for dex_name, depth in V2_DEXES:
        step(f"{dex_name}: UniswapV2Factory + UniswapV2Router02")
        factory = deploy_unlocked(rpc, deployer, factory_art.bytecode, ["address"], [deployer])
        router = deploy_unlocked(rpc, deployer, router_art.bytecode, ["address", "address"], [factory, weth])
        dexes.append({"name": dex_name, "kind": "v2", "factory": factory, "router": router, "fee_pips": V2_FEE_PIPS,
                      "init_code_hash": "0x" + v2_pair_init_code_hash().hex()})
        for a, b in PAIRS:
            step(f"{dex_name}: pool {a}/{b}")
            ta, tb = by_symbol[a], by_symbol[b]
            send_unlocked(
                rpc, deployer, to=factory,
                data=encode_call("createPair(address,address)", [ta["address"], tb["address"]]),
            )
            pair = _addr_word(
                rpc.eth_call(factory, encode_call("getPair(address,address)", [ta["address"], tb["address"]]))
            )
            for t in (ta, tb):
                amount = _reserve_amount(depth, t["price_usd"])
                send_unlocked(
                    rpc, deployer, to=t["address"], data=encode_call("transfer(address,uint256)", [pair, amount])
                )
            send_unlocked(rpc, deployer, to=pair, data=encode_call("mint(address)", [deployer]))
            t0, t1 = sorted((ta["address"], tb["address"]))
            pools.append(
                {"address": pair, "dex": dex_name, "kind": "v2", "token0": t0, "token1": t1, "fee_pips": V2_FEE_PIPS}
            )

    if v3:
        step("Uniswap V3: factory, position manager, swap router, QuoterV2")
        stack = devnet_v3.deploy_v3_stack(rpc, deployer, weth)
        dexes.append({"name": devnet_v3.V3_DEX_NAME, "kind": "v3", **stack,
                      "init_code_hash": "0x" + devnet_v3.POOL_INIT_CODE_HASH.hex()})
        step("Uniswap V3: pools in fee tiers 500 and 3000")
        step("Uniswap V3: positions over several tick ranges")
        pools.extend(devnet_v3.create_default_pools(rpc, deployer, stack, tokens))

    step("ArbExecutor (owner = the deployer, executor = the bot's signer)")
    # Roles split as on a real chain: the cold owner (withdraw, configuration) is anvil's
    # dev account 0, the bot's hot key may only run cycles; every DEX deployed here is
    # registered with its genuine init-code hash (the contract refuses any other pool).
    factories = [(d["kind"], d["factory"], bytes.fromhex(d["init_code_hash"][2:])) for d in dexes]
    types, values = constructor_args(deployer, weth, [signer], factories)
    executor = deploy_unlocked(rpc, deployer, load_artifact()["bytecode"], types, values)

    step("fund the bot's signer with ETH")
    rpc.call("anvil_setBalance", [signer, hex(SIGNER_FUNDING_WEI)])

    return Deployment(
        chain_id=chain_id,
        rpc_url=rpc.url,
        block=rpc.block_number(),
        deployer=deployer,
        weth=weth,
        multicall3=MULTICALL3_ADDRESS,
        executor=executor,
        signer=signer,
        dexes=dexes,
        tokens=tokens,
        pools=pools,
        genesis_hash=str(rpc.call("eth_getBlockByNumber", ["0x0", False])["hash"]).lower(),
    )


def verify_deployment(rpc: RpcClient, deployment: Deployment) -> list[str]:
    """Addresses in the record that have no code on the node (empty list = all present)."""
    addrs = [deployment.weth, deployment.multicall3, deployment.executor]
    for d in deployment.dexes:
        addrs += [v for k, v in d.items() if k not in ("name", "kind", "fee_pips", "init_code_hash") and isinstance(v, str)]
    addrs += [t["address"] for t in deployment.tokens] + [p["address"] for p in deployment.pools]
    codes = rpc.batch([("eth_getCode", [a, "latest"]) for a in addrs], raise_errors=False)
    return [a for a, c in zip(addrs, codes) if not isinstance(c, str) or c in ("0x", "")]
