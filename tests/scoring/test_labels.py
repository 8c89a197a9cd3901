"""Labels from paper outcomes one and two blocks later (``arbbot.scoring.labels``): every
opportunity the scorer saw is labelled, the skipped ones too, so a model can learn to take
what the rule leaves; on a seeded market where the rule must lose (rivals always take a few
pools' gaps before the next block, and thin margins the rule refuses mostly still pay) the
model trained on them captures more EV than the rule on the time-ordered holdout."""

from __future__ import annotations

import random

import numpy as np
import pytest

from arbbot.scoring.features import INDEX
from arbbot.scoring.labels import label, paper_dataset
from arbbot.scoring.model import ModelError, evaluate, train
from arbbot.scoring.rule import RuleScorer
from arbbot.scoring.synthetic import GAS, GAS_PRICE, make_opp

TAKEN = (0, 1, 2)
GAS_WEI = GAS * GAS_PRICE


def rows(seed: int, blocks: int = 240, per_block: int = 5) -> list[dict]:
    """A backtest's rows: the rule decided, the paper execute stage filled what it
    executed, and each cycle re-sized one and two blocks later."""
    rng = random.Random(seed)
    rule = RuleScorer(margin=1.5)
    out = []
    for block in range(2000, 2000 + blocks):
        for _ in range(per_block):
            a, b = rng.sample(range(20), 2)
            margin = rng.uniform(1.1, 4.0)
            o = make_opp(block, a, b, int(margin * GAS_WEI))
            decided = rule.score(o)
            if any(p in TAKEN for p in (a, b)):
                later = [0 if rng.random() < 0.95 else o.profit for _ in range(2)]  # rivals closed it first
            else:
                survives = rng.random() < 0.9
                later = [o.profit if survives else 0, o.profit if survives and rng.random() < 0.8 else 0]
            out.append({
                "opportunity": o, "decision": decided.decision,
                "status": "simulated" if decided.decision == "execute" else "not_executed",
                "success": decided.decision == "execute", "reverted": False, "reason": "",
                "profit_next_1": later[0], "profit_next_2": later[1],
            })
    return out


def test_what_a_paper_outcome_is_worth() -> None:
    o = make_opp(10, 5, 6, 3 * GAS_WEI)
    base = {"opportunity": o, "decision": "execute", "status": "simulated", "reverted": False}
    assert label({**base, "profit_next_1": o.profit}) == ("success", 2 * GAS_WEI)
    assert label({**base, "profit_next_1": o.profit // 2}) == ("success", GAS_WEI // 2)  # half left, net of gas
    assert label({**base, "profit_next_1": 0}) == ("reverted", -GAS_WEI)  # landed on a closed gap
    assert label({**base, "profit_next_1": 0, "profit_next_2": o.profit}, land_after=2) == ("success", 2 * GAS_WEI)
    assert label({**base, "profit_next_1": None}) is None  # the replay ended first
    assert label({**base, "status": "dropped", "reverted": True, "profit_next_1": o.profit}) == ("stale", 0)
    assert label({**base, "status": "dropped", "reverted": False, "profit_next_1": o.profit}) is None  # a limit
    with pytest.raises(ModelError, match="no backtest row"):
        paper_dataset([{**base, "profit_next_1": None}])


def test_skipped_opportunities_are_labelled_and_the_model_takes_what_the_rule_left() -> None:
    data = paper_dataset(rows(seed=3))
    assert len(data) == 240 * 5 and not data.rule_execute.all()  # the rule's skips are in the data
    thin = data.X[:, INDEX["margin_over_gas"]] <= 1.5
    assert data.y[thin].mean() > 0.5  # and most of them would have paid
    assert data.X[:, INDEX["pool_revert_rate"]].max() > 0.5  # the history: the executed ones' outcomes
    tr, ho = data.split(0.3)
    m = evaluate(train(tr, seed=1), ho)
    assert m["model"]["ev_captured_wei"] > m["rule"]["ev_captured_wei"] * 1.2, m
    assert m["model"]["roc_auc"] > 0.8 > m["rule"]["roc_auc"]
    two = paper_dataset(rows(seed=3), land_after=2)  # a slower fleet: fewer gaps still open
    assert two.y.mean() < data.y.mean() and np.array_equal(two.block, data.block)
