"""Devnet scenarios for tests and demos: fund accounts, read pool states, swap, and plant
cross-DEX price gaps on purpose.

Owns nothing persistent; every helper takes the ``RpcClient`` and the ``Deployment`` it acts
on. Only devnet powers are used (anvil's unlocked dev accounts, ``anvil_setBalance``, the
deployer's minter role), never the bot's signer.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from eth_abi import decode

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import encode_call, send_unlocked
from arbbot.devnet import v3 as devnet_v3
from arbbot.devnet.anvil import Anvil, start_anvil
from arbbot.devnet.deploy import deploy_contracts
from arbbot.devnet.record import DEPLOYMENT_FILE, SIGNER_FILE, Deployment, ensure_signer_key
from arbbot.errors import ArbbotError
from arbbot.types import V2PoolState

MAX_UINT256 = 2**256 - 1


@contextlib.contextmanager
def deployed_devnet(directory: Path, *, v3: bool = False, progress: Any = None) -> Iterator[tuple[Anvil, Deployment]]:
    """A throw-away devnet for tests: anvil on a free port (automine), everything deployed,
    ``deployment.json`` and ``signer.key`` written to ``directory``. Stops anvil on exit."""
    directory.mkdir(parents=True, exist_ok=True)
    signer = ensure_signer_key(directory)
    anvil = start_anvil(log_path=directory / "anvil.log")
    try:
        dep = deploy_contracts(anvil.rpc(), signer=signer, progress=progress, v3=v3)
        dep.save(directory / DEPLOYMENT_FILE)
        yield anvil, dep
    finally:
        anvil.stop()


def read_signer_key(directory: Path) -> str:
    """The devnet signer key of ``directory`` (for building a ``LocalSigner``; never print it)."""
    return (directory / SIGNER_FILE).read_text().strip()


# --------------------------------------------------------------------------- node controls


def snapshot(rpc: RpcClient) -> str:
    return str(rpc.call("evm_snapshot"))


def revert_to(rpc: RpcClient, snap: str) -> None:
    if not rpc.call("evm_revert", [snap]):
        raise ArbbotError(f"evm_revert({snap}) failed")


def mine(rpc: RpcClient, blocks: int = 1) -> None:
    rpc.call("anvil_mine", [hex(blocks)])


# --------------------------------------------------------------------------- balances


def balance_of(rpc: RpcClient, token: str, who: str, block: str | int = "latest") -> int:
    return int(rpc.eth_call(token, encode_call("balanceOf(address)", [who]), block), 16)


def fund_token(rpc: RpcClient, dep: Deployment, token: str, to: str, amount: int) -> None:
    """Give ``to`` ``amount`` of ``token`` (symbol or address): minted for the preset
    tokens (the deployer holds the minter role), wrapped from fresh ETH for WETH."""
    addr = dep._addr(token)
    if addr == dep.weth:
        rpc.call("anvil_setBalance", [dep.deployer, hex(10**30)])
        send_unlocked(rpc, dep.deployer, to=dep.weth, data=encode_call("deposit()"), value=amount)
        send_unlocked(rpc, dep.deployer, to=dep.weth, data=encode_call("transfer(address,uint256)", [to, amount]))
    else:
        send_unlocked(rpc, dep.deployer, to=addr, data=encode_call("mint(address,uint256)", [to, amount]))


def approve(rpc: RpcClient, owner: str, token: str, spender: str, amount: int = MAX_UINT256) -> None:
    send_unlocked(rpc, owner, to=token, data=encode_call("approve(address,uint256)", [spender, amount]))


# --------------------------------------------------------------------------- pools


def v2_state(rpc: RpcClient, pool: Mapping[str, Any], block: str | int = "latest") -> V2PoolState:
    """The pair's current ``V2PoolState`` (reserves via ``getReserves``)."""
    raw = rpc.eth_call(pool["address"], encode_call("getReserves()"), block)
    r0, r1, _ = decode(["uint112", "uint112", "uint32"], bytes.fromhex(raw[2:]))
    return V2PoolState(
        address=pool["address"], token0=pool["token0"], token1=pool["token1"],
        reserve0=int(r0), reserve1=int(r1), fee_pips=int(pool.get("fee_pips", 3000)),
        block_number=rpc.block_number() if block == "latest" else int(block),
    )


def swap_v2(
    rpc: RpcClient, dep: Deployment, sender: str, pool: Mapping[str, Any], token_in: str, amount_in: int
) -> dict[str, Any]:
    """Swap exactly ``amount_in`` through one pair via its DEX's genuine Router02 (the
    sender must hold and have approved the router; see ``fund_token``/``approve``)."""
    router = dep.dex(pool["dex"])["router"]
    token_in = dep._addr(token_in)
    token_out = pool["token1"] if token_in == pool["token0"] else pool["token0"]
    receipt = send_unlocked(
        rpc, sender, to=router, gas=300_000,
        data=encode_call(
            "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
            [amount_in, 0, [token_in, token_out], sender, MAX_UINT256],
        ),
    )
    assert isinstance(receipt, dict)
    return receipt


def plant_price_gap(
    rpc: RpcClient,
    dep: Deployment,
    token_a: str,
    token_b: str,
    pct: float,
    *,
    dex: str = "sushiswap",
    sender: str | None = None,
) -> dict[str, Any]:
    """Make ``token_a`` about ``pct`` % cheaper (in ``token_b``) on ``dex``'s pair than it
    was, by one big swap of ``token_a`` into that pair; the other DEX is untouched, so a
    cross-DEX gap of about ``pct`` % exists afterwards. Returns the pool, the amount sold
    and the reserves before/after."""
    if not 0 < pct < 90:
        raise ArbbotError("pct must be in (0, 90)")
    pool = dep.pool(dex, token_a, token_b)
    a = dep._addr(token_a)
    before = v2_state(rpc, pool)
    r_a = before.reserve0 if a == before.token0 else before.reserve1
    # x*y=k: the price of a falls by pct when its reserve grows by 1/sqrt(1 - pct);
    # the 0.3% fee makes the real move slightly smaller, which is fine for a scenario.
    amount = int(r_a * (1 / math.sqrt(1 - pct / 100) - 1))
    sender = sender or dep.deployer
    fund_token(rpc, dep, a, sender, amount)
    approve(rpc, sender, a, dep.dex(dex)["router"], amount)
    swap_v2(rpc, dep, sender, pool, a, amount)
    after = v2_state(rpc, pool)
    return {"pool": pool, "amount_in": amount, "before": before, "after": after}


def read_v2_reserves(rpc: RpcClient, pools: Iterable[str]) -> dict[str, tuple[int, int]]:
    """``getReserves`` of many pairs in one JSON-RPC batch."""
    pools = list(pools)
    data = encode_call("getReserves()")
    res = rpc.batch([("eth_call", [{"to": p, "data": data}, "latest"]) for p in pools])
    out = {}
    for p, r in zip(pools, res):
        r0, r1, _ = decode(["uint112", "uint112", "uint32"], bytes.fromhex(r[2:]))
        out[p] = (int(r0), int(r1))
    return out


def plant_v3_price_gap(
    rpc: RpcClient,
    dep: Deployment,
    token_a: str,
    token_b: str,
    fee: int,
    pct: float,
    *,
    sender: str | None = None,
) -> dict[str, Any]:
    """Make ``token_a`` ``pct`` % cheaper (in ``token_b``) on the V3 pool of tier ``fee`` by
    selling ``token_a`` into it up to an exact price limit (the pool stops there, so the
    move is exact up to tick rounding). Returns the pool and sqrtPriceX96 before/after."""
    if not 0 < pct < 90:
        raise ArbbotError("pct must be in (0, 90)")
    pool = dep.pool(devnet_v3.V3_DEX_NAME, token_a, token_b, fee)
    router = dep.dex(devnet_v3.V3_DEX_NAME)["swap_router"]
    a, b = dep._addr(token_a), dep._addr(token_b)
    before, _ = devnet_v3.slot0(rpc, pool["address"])
    # price = token1 per token0; selling token0 lowers it, selling token1 raises it
    factor = math.sqrt(1 - pct / 100) if a == pool["token0"] else 1 / math.sqrt(1 - pct / 100)
    limit = int(before * factor)
    sender = (sender or rpc.call("eth_accounts")[8]).lower()
    price_usd = next(float(t["price_usd"]) for t in dep.tokens if t["address"] == a)
    amount = int(20_000_000 / price_usd) * 10**18  # more than any devnet range holds
    fund_token(rpc, dep, a, sender, amount)
    approve(rpc, sender, a, router, amount)
    devnet_v3.swap_exact_input_single(rpc, sender, router, a, b, fee, amount, sqrt_price_limit_x96=limit)
    after, _ = devnet_v3.slot0(rpc, pool["address"])
    return {"pool": pool, "sqrt_price_before": before, "sqrt_price_after": after}
