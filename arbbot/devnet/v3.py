"""Uniswap V3 on the devnet: the genuine npm stack (UniswapV3Factory,
NonfungiblePositionManager, SwapRouter, QuoterV2), pools initialised at the devnet's
reference prices, and several positions per pool over different tick ranges so that swaps
cross initialized ticks.

Owns the V3 part of the deployment and the helpers tests reuse (QuoterV2 exactness tests,
mixed V2/V3 executor tests). Signatures here are a contract with those tests: extend with
keyword arguments only.

All transactions come from an unlocked dev account (``sender``), which must hold the
tokens it puts into positions; ``mint_positions`` approves the position manager itself.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Mapping, Sequence

from eth_abi import decode
from eth_utils import keccak

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import check_receipt, deploy_unlocked, encode_call, send_unlocked, wait_receipt
from arbbot.devnet.artifacts import load

ZERO_ADDRESS = "0x" + "00" * 20
MAX_UINT256 = 2**256 - 1
DEADLINE = 2**64  # far future; the router only checks block.timestamp <= deadline
V3_DEX_NAME = "uniswap-v3"
POOL_INIT_CODE_HASH = bytes.fromhex("e34f199b19b2b4f47f68442619d555527d244f78a3297ea89325f843f87b8b54")
FEE_TICK_SPACING: dict[int, int] = {100: 1, 500: 10, 3000: 60, 10000: 200}  # UniswapV3Factory defaults
MIN_TICK, MAX_TICK = -887272, 887272
MIN_SQRT_RATIO, MAX_SQRT_RATIO = 4295128739, 1461446703485210103287273052203988822378723970342

# Default devnet V3 pools: (symbol_a, symbol_b, fee_pips). Two fee tiers on the main pairs,
# so the same pair exists on V2 (two DEXes) and on V3 (two tiers).
DEFAULT_POOLS: tuple[tuple[str, str, int], ...] = (
    ("WETH", "USDC", 500),
    ("WETH", "USDC", 3000),
    ("WETH", "DAI", 3000),
    ("WETH", "WBTC", 500),
    ("WETH", "WBTC", 3000),
    ("WETH", "LINK", 3000),
    ("USDC", "DAI", 500),
    ("USDC", "USDT", 500),
)
# (lower offset, upper offset, USD per side) in ticks from the current tick: a wide base,
# nested narrower ranges, and one-sided ranges above and below the price. Every boundary is
# an initialized tick, so medium swaps cross several of them.
DEFAULT_LADDER: tuple[tuple[int, int, float], ...] = (
    (-24000, 24000, 300_000.0),
    (-3000, 3000, 150_000.0),
    (-600, 600, 100_000.0),
    (-240, 120, 60_000.0),
    (60, 1500, 80_000.0),
    (-1500, -60, 80_000.0),
)


# --------------------------------------------------------------------------- pure helpers


def sort_tokens(a: str, b: str) -> tuple[str, str]:
    a, b = a.lower(), b.lower()
    return (a, b) if int(a, 16) < int(b, 16) else (b, a)


def compute_pool_address(factory: str, token_a: str, token_b: str, fee: int) -> str:
    """v3-periphery ``PoolAddress.computeAddress``: CREATE2 from the factory, the sorted
    tokens and the fee, with the genuine pool's init-code hash."""
    t0, t1 = sort_tokens(token_a, token_b)
    salt = keccak(bytes(12) + bytes.fromhex(t0[2:]) + bytes(12) + bytes.fromhex(t1[2:]) + fee.to_bytes(32, "big"))
    return "0x" + keccak(b"\xff" + bytes.fromhex(factory[2:]) + salt + POOL_INIT_CODE_HASH)[-20:].hex()


def sqrt_price_x96_from_price(price_token1_per_token0: Fraction | float) -> int:
    """sqrtPriceX96 for a price in base units of token1 per base unit of token0 (floor)."""
    p = Fraction(price_token1_per_token0)
    return math.isqrt(p.numerator * 2**192 // p.denominator)


def align_tick(tick: int, spacing: int) -> int:
    """Round toward negative infinity to a multiple of ``spacing`` (Python ``//`` floors,
    which is what we want for negative ticks too), clamped to the usable range."""
    lo, hi = -(-MIN_TICK // spacing) * spacing, (MAX_TICK // spacing) * spacing
    return max(lo, min(hi, (tick // spacing) * spacing))


# --------------------------------------------------------------------------- deployment


def deploy_v3_stack(rpc: RpcClient, sender: str, weth: str) -> dict[str, str]:
    """Deploy the genuine V3 contracts; returns ``{factory, position_manager, swap_router,
    quoter}`` (lower-case). The position manager's token descriptor is the zero address."""
    factory = deploy_unlocked(rpc, sender, load("UniswapV3Factory").bytecode)
    npm = deploy_unlocked(
        rpc, sender, load("NonfungiblePositionManager").bytecode,
        ["address", "address", "address"], [factory, weth, ZERO_ADDRESS],
    )
    router = deploy_unlocked(rpc, sender, load("SwapRouter").bytecode, ["address", "address"], [factory, weth])
    quoter = deploy_unlocked(rpc, sender, load("QuoterV2").bytecode, ["address", "address"], [factory, weth])
    return {"factory": factory, "position_manager": npm, "swap_router": router, "quoter": quoter}


def create_v3_pool(
    rpc: RpcClient,
    sender: str,
    stack: Mapping[str, str],
    token_a: str,
    token_b: str,
    fee: int,
    sqrt_price_x96: int,
) -> dict[str, Any]:
    """Create and initialise a pool via the position manager; returns the deployment.json
    pool entry ``{address, dex, kind, token0, token1, fee_pips, tick_spacing}``."""
    t0, t1 = sort_tokens(token_a, token_b)
    send_unlocked(
        rpc, sender, to=stack["position_manager"], gas=6_000_000,
        data=encode_call(
            "createAndInitializePoolIfNecessary(address,address,uint24,uint160)", [t0, t1, fee, sqrt_price_x96]
        ),
    )
    out = rpc.eth_call(stack["factory"], encode_call("getPool(address,address,uint24)", [t0, t1, fee]))
    address = "0x" + out[-40:].lower()
    return {
        "address": address, "dex": V3_DEX_NAME, "kind": "v3", "token0": t0, "token1": t1,
        "fee_pips": fee, "tick_spacing": FEE_TICK_SPACING[fee],
    }


def slot0(rpc: RpcClient, pool: str, block: str | int = "latest") -> tuple[int, int]:
    """``(sqrtPriceX96, tick)`` of a pool."""
    raw = rpc.eth_call(pool, encode_call("slot0()"), block)
    out = decode(["uint160", "int24", "uint16", "uint16", "uint16", "uint8", "bool"], bytes.fromhex(raw[2:]))
    return int(out[0]), int(out[1])


def mint_positions(
    rpc: RpcClient,
    sender: str,
    stack: Mapping[str, str],
    pool: Mapping[str, Any],
    positions: Sequence[tuple[int, int, int, int]],
    *,
    recipient: str | None = None,
) -> list[dict[str, Any]]:
    """Mint ``(tick_lower, tick_upper, amount0_desired, amount1_desired)`` positions through
    the NonfungiblePositionManager (no minimums). Ticks must be multiples of the pool's
    tick spacing. Returns ``[{token_id, liquidity, amount0, amount1, tick_lower,
    tick_upper}]`` decoded from each ``mint`` (via ``eth_call`` first, then sent)."""
    npm = stack["position_manager"]
    for t in (pool["token0"], pool["token1"]):
        send_unlocked(rpc, sender, to=t, data=encode_call("approve(address,uint256)", [npm, MAX_UINT256]))
    sig = "mint((address,address,uint24,int24,int24,uint256,uint256,uint256,uint256,address,uint256))"
    out = []
    hashes = []
    for lower, upper, a0, a1 in positions:
        params = (pool["token0"], pool["token1"], int(pool["fee_pips"]), lower, upper, a0, a1, 0, 0,
                  recipient or sender, DEADLINE)
        data = encode_call(sig, [params])
        # the eth_call tells what the mint will do; automine keeps it equal to the real one
        res = rpc.call("eth_call", [{"from": sender, "to": npm, "data": data, "gas": hex(2_000_000)}, "latest"])
        token_id, liquidity, used0, used1 = decode(["uint256", "uint128", "uint256", "uint256"],
                                                   bytes.fromhex(res[2:]))
        hashes.append(send_unlocked(rpc, sender, to=npm, data=data, gas=2_000_000, wait=False))
        out.append({"token_id": int(token_id), "liquidity": int(liquidity), "amount0": int(used0),
                    "amount1": int(used1), "tick_lower": lower, "tick_upper": upper})
    for h in hashes:
        check_receipt(wait_receipt(rpc, str(h)), "V3 position mint")
    return out


def ladder(
    current_tick: int, tick_spacing: int, price0_usd: float, price1_usd: float, decimals0: int = 18,
    decimals1: int = 18, rungs: Sequence[tuple[int, int, float]] = DEFAULT_LADDER,
) -> list[tuple[int, int, int, int]]:
    """Position specs around ``current_tick``: each rung's offsets aligned to the spacing,
    with ``usd`` worth of each token offered (the manager takes what the range needs)."""
    out = []
    for lo_off, hi_off, usd in rungs:
        lower = align_tick(current_tick + lo_off, tick_spacing)
        upper = align_tick(current_tick + hi_off, tick_spacing)
        if upper <= lower:
            upper = lower + tick_spacing
        a0 = int(usd / price0_usd * 10**decimals0)
        a1 = int(usd / price1_usd * 10**decimals1)
        out.append((lower, upper, a0, a1))
    return out


def create_default_pools(
    rpc: RpcClient, sender: str, stack: Mapping[str, str], tokens: Sequence[Mapping[str, Any]],
    pools: Sequence[tuple[str, str, int]] = DEFAULT_POOLS,
) -> list[dict[str, Any]]:
    """The devnet's V3 pools: initialised at the tokens' reference prices (so they agree
    with the V2 pools) and filled with the ``DEFAULT_LADDER`` of positions. ``tokens`` are
    deployment token entries (``address``, ``symbol``, ``decimals``, ``price_usd``);
    ``sender`` must hold enough of each."""
    by_symbol = {t["symbol"]: t for t in tokens}
    by_address = {t["address"]: t for t in tokens}
    created = []
    for a, b, fee in pools:
        t0, t1 = sort_tokens(by_symbol[a]["address"], by_symbol[b]["address"])
        i0, i1 = by_address[t0], by_address[t1]
        # token1 base units per token0 base unit
        price = Fraction(str(i0["price_usd"])) / Fraction(str(i1["price_usd"])) * Fraction(
            10 ** int(i1["decimals"]), 10 ** int(i0["decimals"])
        )
        pool = create_v3_pool(rpc, sender, stack, t0, t1, fee, sqrt_price_x96_from_price(price))
        _, tick = slot0(rpc, pool["address"])
        specs = ladder(tick, pool["tick_spacing"], float(i0["price_usd"]), float(i1["price_usd"]),
                       int(i0["decimals"]), int(i1["decimals"]))
        mint_positions(rpc, sender, stack, pool, specs)
        created.append(pool)
    return created


# --------------------------------------------------------------------------- quotes and swaps

QUOTE_EXACT_INPUT_SINGLE = "quoteExactInputSingle((address,address,uint256,uint24,uint160))"


def quote_exact_input_single_call(quoter: str, token_in: str, token_out: str, fee: int, amount_in: int) -> tuple[str, list[Any]]:
    """The ``eth_call`` request (for ``RpcClient.batch``) of a QuoterV2 single-pool quote."""
    data = encode_call(QUOTE_EXACT_INPUT_SINGLE, [(token_in, token_out, amount_in, fee, 0)])
    return ("eth_call", [{"to": quoter, "data": data, "gas": hex(30_000_000)}, "latest"])


def decode_quote(raw: str) -> tuple[int, int, int, int]:
    """``(amountOut, sqrtPriceX96After, initializedTicksCrossed, gasEstimate)``."""
    out = decode(["uint256", "uint160", "uint32", "uint256"], bytes.fromhex(raw[2:]))
    return int(out[0]), int(out[1]), int(out[2]), int(out[3])


def quote_exact_input_single(
    rpc: RpcClient, quoter: str, token_in: str, token_out: str, fee: int, amount_in: int
) -> tuple[int, int, int, int]:
    """QuoterV2 ``quoteExactInputSingle`` on the latest block (no price limit)."""
    method, params = quote_exact_input_single_call(quoter, token_in, token_out, fee, amount_in)
    return decode_quote(str(rpc.call(method, params)))


def swap_exact_input_single(
    rpc: RpcClient,
    sender: str,
    swap_router: str,
    token_in: str,
    token_out: str,
    fee: int,
    amount_in: int,
    *,
    recipient: str | None = None,
    wait: bool = True,
    sqrt_price_limit_x96: int = 0,
) -> dict[str, Any] | str:
    """SwapRouter ``exactInputSingle`` from an unlocked account that holds and has approved
    ``token_in`` to the router. With a price limit the pool stops there and the router
    takes only the input actually swapped."""
    params = (token_in, token_out, fee, recipient or sender, DEADLINE, amount_in, 0, sqrt_price_limit_x96)
    return send_unlocked(
        rpc, sender, to=swap_router, gas=1_500_000, wait=wait,
        data=encode_call("exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))",
                         [params]),
    )


def pool_price(sqrt_price_x96: int) -> float:
    """token1 base units per token0 base unit."""
    return (sqrt_price_x96 / 2**96) ** 2
