"""The market simulator: random swaps through the genuine routers, every block, so that
prices on the two V2 DEXes (and the V3 pools) drift apart by a few percent.

Owns the simulated order flow only. Traders are anvil's unlocked dev accounts 1..9, funded
with minted tokens and wrapped ETH and approved once. Each pool's price does a random walk
that is pulled back toward the deployment's reference price (so it stays "realistic"),
independently per pool, which is what opens cross-DEX dislocations for the bot to close.

Competition (off unless ``competitors`` are given; the exact-profit tests run without):
a ``Competitor`` is a rival bot watching some V2 pools. After each block it waits its
latency and then, with a probability that falls with that latency (``take_probability``),
closes the dislocation of every watched pool it finds: one swap that brings the pool back to
its sibling's price (the same pair on the other V2 DEX), sent with a priority fee above ours
so it lands first in the next block. A cycle through a watched pool then reverts on chain
(our minProfit guard) or is dropped by re-validation: outcomes differ from predictions in a
learnable way. Stale state is the other effect: the round's random swaps are sent right after
each block too, so they land before a trade decided on that block's state.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Any, Callable

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import check_receipt, encode_call, send_unlocked, wait_receipt
from arbbot.devnet.record import Deployment, load_deployment
from arbbot.devnet.scenarios import MAX_UINT256
from arbbot.errors import ArbbotError

TRADER_USD_BUDGET = 50_000_000.0  # per token per trader: plenty for hours of flow
REVERSION_SCALE = 0.04  # a 4% deviation from the reference makes the next move 100% reverting
COMPETITOR_TIP_WEI = 50 * 10**9  # the rivals' priority fee: above any the devnet bot offers


@dataclass(frozen=True)
class Competitor:
    """A rival arbitrage bot (see the module docstring). ``pools`` are the V2 pools it
    watches (lower-case addresses). ``latency_s`` is how long after a block it acts;
    ``aggression`` is its probability of taking a gap at zero latency; ``min_gap`` the
    smallest relative price gap to its sibling pool it bothers to close."""

    pools: tuple[str, ...]
    latency_s: float = 0.05
    aggression: float = 1.0
    min_gap: float = 0.001

    def take_probability(self, block_time_s: float = 1.0) -> float:
        """Falls linearly with latency: a rival as slow as a block never gets in first."""
        return max(0.0, min(1.0, self.aggression * (1.0 - self.latency_s / block_time_s)))


def parse_competitors(spec: str, dep: Deployment, seed: int | None = None) -> list[Competitor]:
    """``LATENCY_S:N[,LATENCY_S:N...]``: one rival per item, watching ``N`` V2 pools chosen
    with ``seed`` among those that have a sibling (``N`` may also be ``all``)."""
    rng = random.Random(seed)
    candidates = sorted(p["address"] for p in dep.pools if p["kind"] == "v2" and _siblings(dep, p))
    out = []
    for item in filter(None, (x.strip() for x in spec.split(","))):
        latency, _, count = item.partition(":")
        try:
            latency_s = float(latency)
            n = len(candidates) if count in ("", "all") else int(count)
        except ValueError:
            raise ArbbotError(f"competitor {item!r}: expected LATENCY_S:N_POOLS") from None
        if latency_s < 0 or n < 0:
            raise ArbbotError(f"competitor {item!r}: latency and pool count must not be negative")
        out.append(Competitor(pools=tuple(rng.sample(candidates, min(n, len(candidates)))), latency_s=latency_s))
    return out


def _siblings(dep: Deployment, pool: dict[str, Any]) -> list[dict[str, Any]]:
    """The other V2 pools of the same token pair."""
    return [
        q for q in dep.pools
        if q["kind"] == "v2" and q["address"] != pool["address"]
        and {q["token0"], q["token1"]} == {pool["token0"], pool["token1"]}
    ]


def closing_trade(reserves: tuple[int, int], target_price: float, fee_pips: int = 3000) -> tuple[int, int]:
    """``(direction, amount_in)`` of one V2 swap that moves a pair's price (token1 per
    token0) to ``target_price``: direction 0 sells token0, 1 sells token1; (0, 0) if none
    is needed. Float sizing: the rival need not be exact, only close the gap."""
    r0, r1 = reserves
    if not r0 or not r1 or target_price <= 0:
        return 0, 0
    k = r0 * r1
    new_r0 = math.sqrt(k / target_price)
    gross = 1_000_000 / (1_000_000 - fee_pips)
    if new_r0 > r0:  # price falls: sell token0 into the pool
        return 0, int((new_r0 - r0) * gross)
    new_r1 = math.sqrt(k * target_price)
    return 1, int(max(new_r1 - r1, 0) * gross)


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
    competitors: list[Competitor] | tuple[Competitor, ...] = (),
    block_time_s: float = 1.0,
) -> dict[str, int]:
    """Send random swaps until ``seconds`` pass or ``rounds`` rounds are done (both ``None``
    = forever; Ctrl-C stops it). With a ``seed`` and ``rounds`` the flow is reproducible.
    ``after_round`` is called after each round's swaps are sent (a caller that mines the
    blocks itself, ``bench/backtest``, mines one there).

    One round per block: ``swaps_per_block`` swaps, each on a random pool, in the direction
    a reference-reverting random walk picks. V2 trades are 0.1-``max_trade_frac`` of the
    input reserve (a 1% trade moves the price ~2%) through Router02; V3 trades are
    ``v3_trade_usd`` worth through SwapRouter (concentrated liquidity: similar moves).
    ``competitors`` act first in each round (after their latency), from the last trader
    account (order flow uses the others). Returns counters (``taken``: the rivals' swaps).
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
    rival = traders.pop() if competitors and len(traders) > 1 else traders[-1]
    pools = [p for p in dep.pools if p["kind"] in ("v2", "v3")]
    routers = {d["name"]: d.get("router") or d.get("swap_router") for d in dep.dexes}
    usd = {t["address"]: float(t["price_usd"]) for t in dep.tokens}
    n_v3 = sum(p["kind"] == "v3" for p in pools)
    say(f"simulating: {len(pools) - n_v3} V2 + {n_v3} V3 pools, {len(traders)} traders, {swaps_per_block} swaps per block")

    started = time.monotonic()
    counters = {"swaps": 0, "rounds": 0, "failed": 0, "taken": 0}
    last_block = rpc.block_number()
    while (seconds is None or time.monotonic() - started < seconds) and (
        rounds is None or counters["rounds"] < rounds
    ):
        for rival_bot in sorted(competitors, key=lambda c: c.latency_s):
            counters["taken"] += _compete(rpc, dep, rival_bot, rival, routers, rng, block_time_s)
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


def _compete(
    rpc: RpcClient, dep: Deployment, bot: Competitor, sender: str, routers: dict[str, Any],
    rng: random.Random, block_time_s: float,
) -> int:
    """One rival's turn after a block: wait out its latency, then (with its probability,
    drawn from the simulator's seeded stream) close each watched pool's gap. Returns the
    number of swaps sent."""
    take = rng.random() < bot.take_probability(block_time_s)
    if not take or not bot.pools:
        return 0
    time.sleep(bot.latency_s)
    watched = [p for p in dep.pools if p["address"] in bot.pools]
    siblings = {p["address"]: _siblings(dep, p) for p in watched}
    involved = {q["address"]: q for p in watched for q in [p, *siblings[p["address"]]]}
    reserves: dict[str, tuple[int, int]] = {}
    read_prices(rpc, list(involved.values()), reserves)
    sent = 0
    for pool in watched:
        r0, r1 = reserves[pool["address"]]
        ref = []
        for q in siblings[pool["address"]]:
            q0, q1 = reserves[q["address"]]
            if q0 and q1:  # sibling's price in this pool's token order
                ref.append(q1 / q0 if q["token0"] == pool["token0"] else q0 / q1)
        if not ref or not r0 or not r1:
            continue
        target = sum(ref) / len(ref)
        if abs(r1 / r0 / target - 1) < bot.min_gap:
            continue
        direction, amount = closing_trade((r0, r1), target, int(pool.get("fee_pips", 3000)))
        if amount <= 0:
            continue
        path = [pool["token0"], pool["token1"]] if direction == 0 else [pool["token1"], pool["token0"]]
        data = encode_call(
            "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
            [amount, 0, path, sender, MAX_UINT256],
        )
        try:
            send_unlocked(rpc, sender, to=routers[pool["dex"]], gas=300_000, wait=False, data=data,
                          priority_fee_wei=COMPETITOR_TIP_WEI)
            sent += 1
        except ArbbotError:
            continue
    return sent


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
