"""The market simulator: random swaps through the genuine routers, every block, so that
prices on the two V2 DEXes (and the V3 pools) drift apart by a few percent.

Owns the simulated order flow only. Traders are anvil's unlocked dev accounts 1..9, funded
with minted tokens and wrapped ETH and approved once. Each pool's price does a random walk
that is pulled back toward the deployment's reference price (so it stays "realistic"),
independently per pool, which is what opens cross-DEX dislocations for the bot to close.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any, Callable

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import check_receipt, encode_call, send_unlocked, wait_receipt
from arbbot.devnet.record import Deployment, load_deployment
from arbbot.devnet.scenarios import MAX_UINT256
from arbbot.errors import ArbbotError

TRADER_USD_BUDGET = 50_000_000.0  # per token per trader: plenty for hours of flow
REVERSION_SCALE = 0.04  # a 4% deviation from the reference makes the next move 100% reverting


def prepare_traders(
    rpc: RpcClient, dep: Deployment, traders: list[str], *, progress: Callable[[str], None] | None = None
) -> None:
    """Fund each trader with every token and approve every router once.

    All transactions are sent without waiting and then awaited together: under interval
    mining a wait per transaction would cost a block each (minutes for ~200 transactions).
    """
    spenders = [d["router"] for d in dep.dexes if d.get("router")] + [
        d["swap_router"] for d in dep.dexes if d.get("swap_router")
    ]
    if progress:
        progress(f"funding {len(traders)} traders with {len(dep.tokens)} tokens, approving {len(spenders)} routers")
    hashes: list[str] = []
    for trader in traders:
        for t in dep.tokens:
            amount = int(TRADER_USD_BUDGET / float(t["price_usd"]) * 10 ** int(t["decimals"]))
            if t["address"] == dep.weth:
                # traders hold 1e6 dev ETH each: they wrap their own
                hashes.append(str(send_unlocked(rpc, trader, to=dep.weth, data=encode_call("deposit()"),
                                                value=amount, gas=100_000, wait=False)))
            else:
                hashes.append(str(send_unlocked(
                    rpc, dep.deployer, to=t["address"], gas=100_000, wait=False,
                    data=encode_call("mint(address,uint256)", [trader, amount]),
                )))
            for s in spenders:
                hashes.append(str(send_unlocked(
                    rpc, trader, to=t["address"], gas=100_000, wait=False,
                    data=encode_call("approve(address,uint256)", [s, MAX_UINT256]),
                )))
    for h in hashes:
        check_receipt(wait_receipt(rpc, h, timeout_s=120), "trader funding")


def read_prices(
    rpc: RpcClient, pools: list[dict[str, Any]], reserves_out: dict[str, tuple[int, int]] | None = None
) -> dict[str, float]:
    """Spot price (token1 base units per token0 base unit) of V2 and V3 pools, one batch;
    V2 reserves are also put in ``reserves_out`` when given."""
    calls = [
        ("eth_call", [{"to": p["address"], "data": encode_call("getReserves()" if p["kind"] == "v2" else "slot0()")},
                      "latest"])
        for p in pools
    ]
    out: dict[str, float] = {}
    for p, raw in zip(pools, rpc.batch(calls)):
        w0, w1 = int(raw[2:66], 16), int(raw[66:130], 16)
        if p["kind"] == "v2":
            out[p["address"]] = w1 / w0 if w0 and w1 else 0.0
            if reserves_out is not None:
                reserves_out[p["address"]] = (w0, w1)
        else:
            out[p["address"]] = (w0 / 2**96) ** 2
    return out


def _deviation(dep: Deployment, pool: dict[str, Any], price: float) -> float:
    """ln(pool price / reference price) of token0 in token1 (0 = on reference)."""
    p = {t["address"]: float(t["price_usd"]) for t in dep.tokens}
    ref = p[pool["token0"]] / p[pool["token1"]]
    return math.log(price / ref) if price > 0 else 0.0


def simulate(
    rpc_url: str | None = None,
    *,
    seconds: float | None = None,
    rounds: int | None = None,
    seed: int | None = None,
    directory: str | None = None,
    deployment: Deployment | None = None,
    swaps_per_block: int = 4,
    report_every: int = 40,
    max_trade_frac: float = 0.012,
    v3_trade_usd: tuple[float, float] = (5_000.0, 80_000.0),
    progress: Callable[[str], None] | None = print,
    after_round: Callable[[], None] | None = None,
) -> dict[str, int]:
    """Send random swaps until ``seconds`` pass or ``rounds`` rounds are done (both ``None``
    = forever; Ctrl-C stops it). With a ``seed`` and ``rounds`` the flow is reproducible.
    ``after_round`` is called after each round's swaps are sent (a caller that mines the
    blocks itself, ``bench/backtest``, mines one there).

    One round per block: ``swaps_per_block`` swaps, each on a random pool, in the direction
    a reference-reverting random walk picks. V2 trades are 0.1-``max_trade_frac`` of the
    input reserve (a 1% trade moves the price ~2%) through Router02; V3 trades are
    ``v3_trade_usd`` worth through SwapRouter (concentrated liquidity: similar moves).
    Returns counters.
    """
    dep = deployment or load_deployment(directory)
    rpc = RpcClient(rpc_url or dep.rpc_url)
    if rpc.chain_id() != dep.chain_id:
        raise ArbbotError(f"{rpc.url} is not the deployment's chain {dep.chain_id}")
    rng = random.Random(seed)
    say = progress or (lambda _m: None)
    traders = [a.lower() for a in rpc.call("eth_accounts")][1:10]
    if not traders:
        raise ArbbotError("the node has no unlocked dev accounts to trade from")
    prepare_traders(rpc, dep, traders, progress=say)
    pools = [p for p in dep.pools if p["kind"] in ("v2", "v3")]
    routers = {d["name"]: d.get("router") or d.get("swap_router") for d in dep.dexes}
    usd = {t["address"]: float(t["price_usd"]) for t in dep.tokens}
    n_v3 = sum(p["kind"] == "v3" for p in pools)
    say(f"simulating: {len(pools) - n_v3} V2 + {n_v3} V3 pools, {len(traders)} traders, {swaps_per_block} swaps per block")

    started = time.monotonic()
    counters = {"swaps": 0, "rounds": 0, "failed": 0}
    last_block = rpc.block_number()
    while (seconds is None or time.monotonic() - started < seconds) and (
        rounds is None or counters["rounds"] < rounds
    ):
        reserves: dict[str, tuple[int, int]] = {}
        prices = read_prices(rpc, pools, reserves)
        for k in range(swaps_per_block):
            pool = rng.choice(pools)
            dev = _deviation(dep, pool, prices[pool["address"]])
            # probability of pushing token0's price up (selling token1 into the pool)
            p_up = min(0.9, max(0.1, 0.5 - dev / REVERSION_SCALE))
            up = rng.random() < p_up
            token_in, token_out = (pool["token1"], pool["token0"]) if up else (pool["token0"], pool["token1"])
            trader = traders[(counters["swaps"] + k) % len(traders)]
            if pool["kind"] == "v2":
                r0, r1 = reserves[pool["address"]]
                r_in = r1 if up else r0
                amount = int(r_in * rng.uniform(0.001, max_trade_frac))
                data = encode_call(
                    "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
                    [amount, 0, [token_in, token_out], trader, MAX_UINT256],
                )
            else:
                amount = int(rng.uniform(*v3_trade_usd) / usd[token_in] * 10**18)
                data = encode_call(
                    "exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))",
                    [(token_in, token_out, pool["fee_pips"], trader, 2**64, amount, 0, 0)],
                )
            if amount <= 0:
                continue
            try:
                send_unlocked(rpc, trader, to=routers[pool["dex"]], gas=600_000, wait=False, data=data)
                counters["swaps"] += 1
            except ArbbotError:
                counters["failed"] += 1
            if counters["swaps"] and counters["swaps"] % report_every == 0:
                say(_report(rpc, dep, pools, counters))
        counters["rounds"] += 1
        if after_round is not None:
            after_round()
        last_block = _wait_next_block(rpc, last_block, 1.0)
    return counters


def _wait_next_block(rpc: RpcClient, last: int, cap_s: float) -> int:
    # Interval mining: wait for the next block. Automine: our own swaps made blocks already,
    # and none come otherwise, so the cap paces the rounds.
    deadline = time.monotonic() + cap_s
    while time.monotonic() < deadline:
        bn = rpc.block_number()
        if bn > last:
            return bn
        time.sleep(0.05)
    return rpc.block_number()


def max_cross_dex_gap(dep: Deployment, prices: dict[str, float] | dict[str, tuple[int, int]]) -> tuple[float, str]:
    """The largest relative price difference of one token pair between two pools (any DEX).
    ``prices`` maps pool address to a spot price or to V2 reserves ``(r0, r1)``."""
    by_pair: dict[tuple[str, str], list[float]] = {}
    for p in dep.pools:
        v = prices.get(p["address"])
        if v is None:
            continue
        if isinstance(v, tuple):
            price = v[1] / v[0] if v[0] and v[1] else 0.0
        else:
            price = float(v)
        if price > 0:
            by_pair.setdefault((p["token0"], p["token1"]), []).append(price)
    best, label = 0.0, "-"
    for (t0, t1), ps in by_pair.items():
        if len(ps) > 1:
            gap = max(ps) / min(ps) - 1
            if gap > best:
                best, label = gap, f"{dep.symbol(t0)}/{dep.symbol(t1)}"
    return best, label


def _report(rpc: RpcClient, dep: Deployment, pools: list[dict[str, Any]], counters: dict[str, int]) -> str:
    gap, label = max_cross_dex_gap(dep, read_prices(rpc, pools))
    return (
        f"block {rpc.block_number()}: {counters['swaps']} swaps sent ({counters['failed']} failed), "
        f"largest cross-pool gap {gap * 100:.2f}% on {label}"
    )
