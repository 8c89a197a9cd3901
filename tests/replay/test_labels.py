"""Labels for the learned scoring from a backtest (``arbbot.replay.labels.outcomes``): each
decided opportunity's paper outcome and its cycle's profit one and two blocks later."""

from __future__ import annotations

import pytest

from arbbot.paths.resize import resize
from arbbot.replay.backtest import BacktestStrategy, run
from arbbot.replay.labels import outcomes
from arbbot.replay.recording import Recording, RecordingWriter
from arbbot.types import Opportunity
from tests.replay.market import CHAIN_ID, meta
from tests.replay.test_fills import _blocks


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    writer = RecordingWriter(tmp_path_factory.mktemp("labels"), CHAIN_ID)
    paths = {writer.append(b, lambda block, p: meta()) for b in _blocks()}
    return Recording.open(paths.pop())


def test_each_decided_opportunity_has_its_outcome_and_later_profits(recording: Recording) -> None:
    result = run(recording, BacktestStrategy(), labels=True)
    rows = outcomes(result)
    assert [r["key"] for r in rows] == [s.opportunity.key for s in result.scored] and rows
    first = [r for r in rows if r["block_number"] == 101]
    traded = [r for r in first if r["success"]]
    assert len(traded) == 1
    (t,) = traded
    assert isinstance(t["opportunity"], Opportunity)
    assert (t["decision"], t["status"], t["reverted"]) == ("execute", "simulated", False)
    assert t["realised_profit"] == next(r.realised_profit for r in result.executions if r.path_id == t["path_id"])
    assert t["realised_profit_native"] > t["gas_cost_native"] > 0
    # 102: the recording leaves A and B as they were (the gap is still there for a slower
    # bot, whatever the backtest's own fill did); 103: B back at par, nothing left
    (a, _, _), b_skewed = _blocks()[0].delta.states, _blocks()[1].delta.states[0]
    opp = t["opportunity"]
    states = {s.address: s for s in (a, b_skewed)}
    again = resize([states[p] for p in opp.pools], opp.tokens)
    assert again is not None and t["profit_next_1"] == again.profit == t["realised_profit"]
    assert t["profit_next_2"] == 0
    # the other pool's cycle overlapped the traded one: skipped, not executed, labelled too
    others = [r for r in first if not r["success"]]
    assert others and all(r["status"] in ("not_executed", "dropped") for r in others)
    assert all(r["profit_next_1"] is not None for r in first)
    last = [r for r in rows if r["block_number"] == 103]
    assert all(r["profit_next_1"] is None and r["profit_next_2"] is None for r in last)


def test_a_backtest_without_labels_is_refused(recording: Recording) -> None:
    with pytest.raises(ValueError, match="labels=True"):
        outcomes(run(recording, BacktestStrategy()))
