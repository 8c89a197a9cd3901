"""Backtests on a synthetic recording: the path, ml and execute code in paper mode, the
hindsight optimum, and what a strategy's settings change."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import pytest

from arbbot.errors import ConfigError
from arbbot.paths.resize import resize
from arbbot.replay.backtest import BacktestStrategy, run, unknown_tokens
from arbbot.replay.recording import Recording
from arbbot.replay.report import executed_cycles, side_by_side, summarize
from tests.replay.market import GAS_PRICE, LINK, POOL_A, POOL_B, USDC, WETH, market_blocks, write_market


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    return Recording.open(write_market(tmp_path_factory.mktemp("rec"), first=100, count=30))


def test_each_gap_is_traded_once_at_the_exact_pool_math_profit(recording: Recording) -> None:
    """On the recorded states (paper fills not moving the pools: each block's gap is the
    recorded one)."""
    result = run(recording, BacktestStrategy(), move_pools=False)
    cycles = executed_cycles(result)
    gaps = [b for b in market_blocks(100, 30)[1:] if b.delta.states[0].reserve0 != 4_000_000 * 10**6]
    assert sorted(block for block, _ in cycles) == [b.number for b in gaps]
    states = {b.number: b.delta.states[0] for b in gaps}
    a = market_blocks(100, 1)[0].delta.states[0]
    for (block, _), profit in cycles.items():
        # independently: the best WETH -> A -> USDC -> B -> WETH (or reverse) on that block's states
        best = max(
            (s.profit for s in (resize([a, states[block]], [WETH, USDC, WETH]), resize([states[block], a], [WETH, USDC, WETH]))
             if s is not None),
        )
        assert profit == best
    summary = summarize(result)
    assert summary["opportunities"]["executed"] == len(gaps)
    assert int(summary["pnl"]["per_token"][WETH]) == sum(cycles.values())
    assert int(summary["gas"]["native_wei"]) == len(gaps) * GAS_PRICE * result.executions[0].extra["gas_limit"] * 4 // 5
    assert summary["optimum"]["share"] == 1.0
    assert summary["reverts"]["rate"] == 0.0
    assert [row[0] for row in summary["per_block"]] == [b.number for b in gaps]
    assert all(row[3] == row[4] for row in summary["per_block"])  # each block's optimum, captured


def test_from_and_to_trade_only_those_blocks_on_the_states_before(recording: Recording) -> None:
    whole = executed_cycles(run(recording, BacktestStrategy(), move_pools=False))
    part = run(recording, BacktestStrategy(), from_block=110, to_block=120, move_pools=False)
    assert [b.number for b in part.blocks] == list(range(110, 121))
    assert part.replayed_blocks == 21
    assert executed_cycles(part) == {k: v for k, v in whole.items() if 110 <= k[0] <= 120}
    with pytest.raises(ConfigError, match="--from 90 is outside the recording's blocks 100..129"):
        run(recording, BacktestStrategy(), from_block=90)


def test_a_cap_on_the_input_drops_what_the_path_stage_sized_above_it(recording: Recording) -> None:
    """As live: the execute stage refuses a cycle the path stage sized above the token's cap
    (it re-sizes under the cap only when the newest state asks for more)."""
    free = summarize(run(recording, BacktestStrategy(), move_pools=False))
    capped = summarize(run(recording, BacktestStrategy(max_amount_in={WETH: 10**18}, name="capped")))
    assert capped["opportunities"]["executed"] == 0
    assert capped["opportunities"]["dropped"] == {"amount_in above the risk cap": free["opportunities"]["executed"]}
    assert capped["optimum"]["native_wei"] == free["optimum"]["native_wei"]
    assert capped["optimum"]["share"] == 0
    table = side_by_side(["free", "capped"], [free, capped])
    assert "share captured" in table and "100.0%" in table and "0.0%" in table


def test_margin_and_fee_cap_decide_as_live(recording: Recording) -> None:
    picky = summarize(run(recording, BacktestStrategy(margin=Fraction(10**9))))
    assert picky["opportunities"]["executed"] == 0
    assert sum(picky["opportunities"]["skipped"].values()) == picky["opportunities"]["found"] > 0
    assert any(reason.startswith("profit below gas x") for reason in picky["opportunities"]["skipped"])
    # the recorded fee (1 gwei base fee) exceeds a cap of 1 wei per gas: refused before "sending"
    capped = summarize(run(recording, BacktestStrategy(max_fee_per_gas_wei=1)))
    assert capped["opportunities"]["executed"] == 0
    assert list(capped["opportunities"]["dropped"]) == ["fees"]


def test_unknown_tokens_are_named(recording: Recording) -> None:
    stranger = "0x" + "99" * 20
    strategy = dataclasses.replace(BacktestStrategy(), start_tokens=(WETH, LINK), max_amount_in={stranger: 1})
    assert unknown_tokens(recording, strategy) == {stranger}
    assert unknown_tokens(recording, BacktestStrategy(start_tokens=(USDC,))) == set()
    assert POOL_A != POOL_B


def test_the_strategy_round_trips_its_wire_form() -> None:
    s = BacktestStrategy(start_tokens=(WETH,), max_hops=4, margin=Fraction(7, 4), min_profit_wei=5,
                         max_amount_in={USDC: 10**9}, default_max_amount_in=3, max_fee_per_gas_wei=10**10,
                         max_per_pool=None, name="x")
    assert BacktestStrategy.from_wire(s.to_wire()) == s


def test_the_recording_dir_setting_is_off_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from arbbot.config import Settings

    monkeypatch.delenv("ARBBOT_RECORD_DIR", raising=False)
    assert Settings.from_env().record_dir is None
    monkeypatch.setenv("ARBBOT_RECORD_DIR", str(tmp_path))
    assert Settings.from_env().record_dir == tmp_path
