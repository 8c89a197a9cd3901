"""The cross-chain strategy without a node: sizing against the exact V2 math, the costs,
the inventory caps, the bands; production bridges' quotes from configuration; the
relayer's seeded fates."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arbbot.crosschain.bridge import BridgeUnsupported, fee_of, production_bridge
from arbbot.crosschain.relayer import DELIVER, FAIL, STALL, Relayer, RelayerConfig
from arbbot.crosschain.strategy import Band, Costs, Side, _evaluate, best_trade, rebalance_plan, size, within_band
from arbbot.errors import ArbbotError
from arbbot.math.v2 import get_amount_out
from arbbot.types import V2PoolState

Q, B = "0x" + "01" * 20, "0x" + "02" * 20  # quote sorts first: token0
E18 = 10**18


def side(chain: int, quote_reserve: int, base_reserve: int, quote_held: int = 10**6 * E18,
         base_held: int = 10**6 * E18) -> Side:
    pool = V2PoolState(f"0x{chain:040x}", Q, B, quote_reserve, base_reserve)
    return Side(chain, pool, Q, B, quote_held, base_held)


def test_a_gap_is_sized_to_its_best_net_profit_and_predicted_by_the_pair_math() -> None:
    cheap, dear = side(1, 2_000_000 * E18, 133_333 * E18), side(2, 2_100_000 * E18, 133_333 * E18)
    costs = Costs(gas=5 * E18, bridge_fee_bps=10, risk_bps_per_sqrt_block=2, delay_blocks=4)
    t = best_trade(cheap, dear, costs)
    assert t is not None and (t.buy_chain, t.sell_chain) == (1, 2)
    assert t.base_out == get_amount_out(t.quote_in, 2_000_000 * E18, 133_333 * E18)
    assert t.quote_out == get_amount_out(t.base_out, 133_333 * E18, 2_100_000 * E18)
    assert t.rebalance_cost == (t.quote_in + t.quote_out) * 10 // 10_000
    assert t.price_risk == t.quote_out * 2 * 2 // 10_000  # isqrt(4) = 2
    assert t.net_profit == t.quote_out - t.quote_in - t.gas - t.rebalance_cost - t.price_risk > 0
    for other in (t.quote_in * 99 // 100, t.quote_in * 101 // 100):  # a top, not a slope
        neighbour = _evaluate(cheap, dear, other, costs)
        assert neighbour is not None and neighbour.net_profit <= t.net_profit


def test_costs_can_eat_a_gap_and_no_gap_is_no_trade() -> None:
    cheap, dear = side(1, 2_000_000 * E18, 133_333 * E18), side(2, 2_020_000 * E18, 133_333 * E18)
    assert best_trade(cheap, dear, Costs(bridge_fee_bps=0, risk_bps_per_sqrt_block=0)) is not None
    assert best_trade(cheap, dear, Costs(bridge_fee_bps=100)) is None  # 1 % fee on both flows > a 1 % gap
    same = side(2, 2_000_000 * E18, 133_333 * E18)
    assert best_trade(cheap, same, Costs(bridge_fee_bps=0, risk_bps_per_sqrt_block=0)) is None


@given(quote_held=st.integers(1, 10**24), base_held=st.integers(0, 10**23))
def test_a_trade_never_spends_more_than_either_inventory(quote_held: int, base_held: int) -> None:
    cheap = side(1, 2_000_000 * E18, 133_333 * E18, quote_held=quote_held)
    dear = side(2, 2_300_000 * E18, 133_333 * E18, base_held=base_held)
    t = size(cheap, dear, Costs(bridge_fee_bps=0, risk_bps_per_sqrt_block=0))
    if t is not None:
        assert t.quote_in <= quote_held and t.base_out <= base_held


def test_rebalance_moves_a_drifted_token_back_to_its_target() -> None:
    band = Band(target_bps=5_000, tolerance_bps=1_000)
    held = {"USDC": {1: 700, 2: 300}, "LINK": {1: 450, 2: 550}}
    plan = rebalance_plan(held, band, (1, 2))
    assert [(r.symbol, r.src_chain, r.dst_chain, r.amount) for r in plan] == [("USDC", 1, 2, 200)]
    assert within_band({1: 500, 2: 500}, band) and not within_band({1: 610, 2: 390}, band)
    assert rebalance_plan({"USDC": {1: 200, 2: 800}}, band, (1, 2))[0].src_chain == 2


def test_production_bridges_quote_from_configuration_only() -> None:
    across = production_bridge("across", {"fee_bps": 5, "fixed_fee": {"USDC": 10**6}, "delay_s": 120,
                                          "block_time_s": {"1": 12}})
    q = across.quote("USDC", 10_000 * 10**6, 1, 10)
    assert (q.fee, q.amount_out, q.delay_blocks) == (5 * 10**6 + 10**6, 10_000 * 10**6 - 6 * 10**6, 11)
    with pytest.raises(BridgeUnsupported):
        across.status(b"\0" * 32, 1, 10)
    with pytest.raises(ArbbotError, match="fee_bps and delay_s"):
        production_bridge("cctp", {}).quote("USDC", 1, 1, 10)
    with pytest.raises(ArbbotError, match="unknown bridge kind"):
        production_bridge("wormhole", {})
    assert fee_of(9_999, 1) == 0  # rounds down, as DevBridge.send


def test_the_relayer_draws_each_fate_from_its_seed_and_key_alone() -> None:
    def fates(seed: int, failure: float, stall: float) -> list[str]:
        r = Relayer({}, {}, {}, "0x" + "00" * 20, RelayerConfig(failure_rate=failure, stall_rate=stall, seed=seed))
        return [r.fate(bytes([i]) * 32) for i in range(200)]

    assert fates(7, 0.2, 0.1) == fates(7, 0.2, 0.1)
    assert fates(7, 0.2, 0.1) != fates(8, 0.2, 0.1)
    mix = fates(7, 0.2, 0.1)
    assert 20 <= mix.count(FAIL) <= 60 and 5 <= mix.count(STALL) <= 35 and mix.count(DELIVER) > 100
    assert set(fates(1, 1.0, 0.0)) == {FAIL} and set(fates(1, 0.0, 0.0)) == {DELIVER}
    with pytest.raises(ArbbotError):
        RelayerConfig(failure_rate=0.8, stall_rate=0.5)
