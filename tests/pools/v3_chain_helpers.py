"""Test helpers: the genuine Uniswap V3 stack on anvil for the QuoterV2 exactness tests.

Deploys and creates pools with ``arbbot.devnet.v3`` (the devnet's own V3 deployment); adds
what those tests need beyond it: a stack with its own WETH and bare tokens (not the
devnet's priced ones), a position mint that does not wait for its block, exact-output
quotes, and swaps with room for crossing many ticks. Raw calldata via ``encode_call`` and
unlocked-account sends only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import deploy_unlocked, encode_call, send_unlocked
from arbbot.devnet import v3 as devnet_v3
from arbbot.devnet.artifacts import load
from arbbot.devnet.v3 import DEADLINE, MAX_UINT256, sort_tokens


@dataclass
class V3Stack:
    rpc: RpcClient
    sender: str
    weth: str
    factory: str
    npm: str
    quoter: str
    router: str
    tokens: list[str] = field(default_factory=list)


def deploy_v3_stack(rpc: RpcClient, sender: str) -> V3Stack:
    weth = deploy_unlocked(rpc, sender, load("WETH9").bytecode)
    stack = devnet_v3.deploy_v3_stack(rpc, sender, weth)
    return V3Stack(rpc, sender, weth, stack["factory"], stack["position_manager"], stack["quoter"],
                   stack["swap_router"])


def deploy_token(stack: V3Stack, name: str, supply: int) -> str:
    """An ERC20PresetMinterPauser, ``supply`` minted to the sender and approved to the
    position manager and the router."""
    rpc, me = stack.rpc, stack.sender
    token = deploy_unlocked(rpc, me, load("ERC20PresetMinterPauser").bytecode, ["string", "string"], [name, name])
    send_unlocked(rpc, me, to=token, data=encode_call("mint(address,uint256)", [me, supply]))
    for spender in (stack.npm, stack.router):
        send_unlocked(rpc, me, to=token, data=encode_call("approve(address,uint256)", [spender, MAX_UINT256]))
    stack.tokens.append(token)
    return token


def create_pool(stack: V3Stack, token_a: str, token_b: str, fee: int, sqrt_price_x96: int) -> str:
    addresses = {"factory": stack.factory, "position_manager": stack.npm}
    pool = devnet_v3.create_v3_pool(stack.rpc, stack.sender, addresses, token_a, token_b, fee, sqrt_price_x96)
    return str(pool["address"])


def mint_position(
    stack: V3Stack, token_a: str, token_b: str, fee: int, tick_lower: int, tick_upper: int, amount0: int, amount1: int
) -> dict[str, Any]:
    """NonfungiblePositionManager.mint with the desired amounts and no minimums."""
    t0, t1 = sort_tokens(token_a, token_b)
    params = (t0, t1, fee, tick_lower, tick_upper, amount0, amount1, 0, 0, stack.sender, DEADLINE)
    receipt = send_unlocked(
        stack.rpc,
        stack.sender,
        to=stack.npm,
        data=encode_call("mint((address,address,uint24,int24,int24,uint256,uint256,uint256,uint256,address,uint256))", [params]),
        gas=1_500_000,
        wait=False,
    )
    assert isinstance(receipt, str)
    return {"tx": receipt, "range": (tick_lower, tick_upper)}


QUOTE_SINGLE = "quoteExactInputSingle((address,address,uint256,uint24,uint160))"
QUOTE_OUT_SINGLE = "quoteExactOutputSingle((address,address,uint256,uint24,uint160))"


def quote_calls(stack: V3Stack, quotes: list[tuple[str, str, int, int]], *, exact_output: bool = False) -> list[tuple[str, list[Any]]]:
    """eth_call requests for QuoterV2 single-pool quotes ``(token_in, token_out, amount, fee)``."""
    sig = QUOTE_OUT_SINGLE if exact_output else QUOTE_SINGLE
    return [
        ("eth_call", [{"to": stack.quoter, "data": encode_call(sig, [(ti, to, amt, fee, 0)]), "gas": hex(30_000_000)}, "latest"])
        for ti, to, amt, fee in quotes
    ]


def swap_exact_input(stack: V3Stack, token_in: str, token_out: str, fee: int, amount_in: int) -> dict[str, Any]:
    params = (token_in, token_out, fee, stack.sender, DEADLINE, amount_in, 0, 0)
    receipt = send_unlocked(
        stack.rpc,
        stack.sender,
        to=stack.router,
        data=encode_call("exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))", [params]),
        gas=5_000_000,
    )
    assert isinstance(receipt, dict)
    return receipt


def balance_of(stack: V3Stack, token: str, owner: str) -> int:
    return int(stack.rpc.eth_call(token, encode_call("balanceOf(address)", [owner])), 16)
