"""Cross-chain strategy: the same pair priced on two chains, both legs at once from the
inventory held on each chain, and when the inventory needs the bridge.

Owns the decision only (no I/O): ``best_trade`` sizes the buy on the cheap chain and the
sell of the same base amount on the dear one, exactly as the genuine V2 pairs compute them
(``arbbot.math.v2``), capped by the inventory on each side; its net profit counts the gas
of both legs, the amortised cost of bridging the moved inventory back (bridge fee on the
flows plus a share of the fixed per-transfer fee) and the price risk of the base token over
the bridge delay. ``rebalance_plan`` says which token to bridge where once a chain's share
of a token leaves its band. Amounts are base units, costs in the quote token.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import isqrt
from typing import Mapping

from arbbot.errors import ArbbotError
from arbbot.math.v2 import get_amount_in, get_amount_out
from arbbot.types import V2PoolState

BPS = 10_000


@dataclass(frozen=True)
class Costs:
    """What an opportunity must pay besides the pools' fees, in quote-token base units."""

    gas: int = 0  # both legs
    bridge_fee_bps: int = 10
    bridge_fixed_fee: int = 0  # per transfer
    trades_per_rebalance: int = 4  # one rebalance (two transfers) serves about this many trades
    risk_bps_per_sqrt_block: int = 2  # the base token's volatility per sqrt(source block)
    delay_blocks: int = 2
    min_profit: int = 1

    def rebalance(self, quote_moved: int, base_value: int) -> int:
        fee = (quote_moved + base_value) * self.bridge_fee_bps // BPS
        return fee + 2 * self.bridge_fixed_fee // max(self.trades_per_rebalance, 1)

    def price_risk(self, base_value: int) -> int:
        return base_value * self.risk_bps_per_sqrt_block * isqrt(self.delay_blocks) // BPS


@dataclass(frozen=True)
class Side:
    """One chain's pool of the pair and the inventory wallet's holdings there."""

    chain_id: int
    pool: V2PoolState
    quote: str  # token addresses on this chain
    base: str
    quote_held: int
    base_held: int

    def reserves(self, token_in: str) -> tuple[int, int]:
        p = self.pool
        return (p.reserve0, p.reserve1) if token_in == p.token0 else (p.reserve1, p.reserve0)


@dataclass(frozen=True)
class Trade:
    buy_chain: int  # spends quote, receives base
    sell_chain: int  # spends the same base amount, receives quote
    buy_pool: str
    sell_pool: str
    quote_in: int
    base_out: int  # predicted by the buy leg; the sell leg's input
    quote_out: int  # predicted by the sell leg
    gas: int
    rebalance_cost: int
    price_risk: int

    @property
    def gross_profit(self) -> int:
        return self.quote_out - self.quote_in

    @property
    def net_profit(self) -> int:
        return self.gross_profit - self.gas - self.rebalance_cost - self.price_risk


def _evaluate(buy: Side, sell: Side, quote_in: int, costs: Costs) -> Trade | None:
    if quote_in <= 0:
        return None
    r_in, r_out = buy.reserves(buy.quote)
    base_out = get_amount_out(quote_in, r_in, r_out, buy.pool.fee_pips)
    if base_out <= 0 or base_out > sell.base_held:
        return None
    s_in, s_out = sell.reserves(sell.base)
    quote_out = get_amount_out(base_out, s_in, s_out, sell.pool.fee_pips)
    return Trade(buy.chain_id, sell.chain_id, buy.pool.address, sell.pool.address, quote_in, base_out, quote_out,
                 costs.gas, costs.rebalance(quote_in, quote_out), costs.price_risk(quote_out))


def _cap(buy: Side, sell: Side) -> int:
    """The largest quote input both inventories allow."""
    cap = buy.quote_held
    r_in, r_out = buy.reserves(buy.quote)
    if sell.base_held < r_out:
        cap = min(cap, get_amount_in(sell.base_held, r_in, r_out, buy.pool.fee_pips) - 1) if sell.base_held else 0
    return max(cap, 0)


def size(buy: Side, sell: Side, costs: Costs) -> Trade | None:
    """The net-profit-maximising trade buying on ``buy`` and selling on ``sell``: net
    profit is concave in the input, so an integer ternary search finds its top."""
    lo, hi = 1, _cap(buy, sell)
    if hi < lo:
        return None

    def net(a: int) -> int:
        t = _evaluate(buy, sell, a, costs)
        return t.net_profit if t else -(2**255)

    while hi - lo > 2:
        m1, m2 = lo + (hi - lo) // 3, hi - (hi - lo) // 3
        if net(m1) < net(m2):
            lo = m1 + 1
        else:
            hi = m2
    best = max(range(lo, hi + 1), key=net)
    return _evaluate(buy, sell, best, costs)


def best_trade(a: Side, b: Side, costs: Costs) -> Trade | None:
    """The better direction's trade if its net profit reaches ``costs.min_profit``."""
    if a.pool.fee_pips <= 0 or b.pool.fee_pips <= 0:
        raise ArbbotError("cross-chain pools need a V2 fee")
    options = [t for t in (size(a, b, costs), size(b, a, costs)) if t is not None]
    if not options:
        return None
    top = max(options, key=lambda t: t.net_profit)
    return top if top.net_profit >= costs.min_profit else None


@dataclass(frozen=True)
class Band:
    """A chain's share of a token's total, in bps, may drift ``tolerance_bps`` from
    ``target_bps`` before a rebalance moves it back to the target."""

    target_bps: int = 5_000
    tolerance_bps: int = 1_500
    min_transfer: int = 1


@dataclass(frozen=True)
class Rebalance:
    symbol: str
    src_chain: int
    dst_chain: int
    amount: int


def shares_bps(held: Mapping[int, int]) -> dict[int, int]:
    total = sum(held.values())
    return {c: (v * BPS // total if total else 0) for c, v in held.items()}


def within_band(held: Mapping[int, int], band: Band) -> bool:
    return all(abs(s - band.target_bps) <= band.tolerance_bps for s in shares_bps(held).values())


def rebalance_plan(inventory: Mapping[str, Mapping[int, int]], band: Band, two_chains: tuple[int, int]) -> list[Rebalance]:
    """For each token whose share on chain ``two_chains[0]`` left the band: move the
    excess from the richer chain so both sides return to the target."""
    out = []
    a, b = two_chains
    for symbol, held in sorted(inventory.items()):
        if within_band(held, band):
            continue
        total = held.get(a, 0) + held.get(b, 0)
        target_a = total * band.target_bps // BPS
        if held.get(a, 0) > target_a:
            amount, src, dst = held[a] - target_a, a, b
        else:
            amount, src, dst = held.get(b, 0) - (total - target_a), b, a
        if amount >= band.min_transfer:
            out.append(Rebalance(symbol, src, dst, amount))
    return out
