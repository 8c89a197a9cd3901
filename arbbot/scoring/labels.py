"""Labels from paper outcomes: what each opportunity of a replay would have been worth had
the fleet sent it, for every opportunity the scorer saw, the ones it skipped too.

The execute stage's own rows label only what the deciding scorer executed: a model trained
on them can only learn to drop some of the rule's choices, never to take what the rule
left (on the devnet that was the whole difference: a revert there costs ~0.0002 ETH of gas
against ~0.03 ETH for a success, so dropping saves almost nothing). A backtest
(``arbbot.replay.labels.outcomes``) re-sizes each cycle on the recorded pool states one and
two blocks later (``profit_next_1``/``profit_next_2``): the state a transaction sent at the
opportunity's block lands on, rivals' trades included. ``paper_dataset`` turns those rows
into a ``Dataset``:

* landed (``land_after`` blocks later) and still paying more than its gas: a success, worth
  the re-sized profit in native (converted at the opportunity's own price) net of the gas;
* no longer paying by then: a revert (the executor's on-chain profit guard), worth minus
  the gas;
* dropped at the paper re-validation on its own block: stale, worth 0 (never sent);
* dropped by a limit or failed, the replay ended first, or the start token has no native
  price: left out.

Features are computed with ``features.matrix`` block by block, the outcome history made of
the labels of the opportunities the scorer executed, counted from ``LAG_BLOCKS`` on: what the
fleet would have seen when deciding. The state age is 0 (a replay has no arrival times).
"""

from __future__ import annotations

from bisect import bisect_left
from itertools import groupby
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from arbbot.scoring.features import FEATURES, WINDOW_BLOCKS, Outcome, OutcomeHistory, matrix, profit_share
from arbbot.scoring.model import Dataset, ModelError
from arbbot.scoring.rule import RuleScorer
from arbbot.types import Opportunity


def label(row: Mapping[str, Any], land_after: int = 1) -> tuple[str, int] | None:
    """``(kind, worth in native wei)`` of one backtest row, or ``None`` (see the module)."""
    opp: Opportunity = row["opportunity"]
    later = row.get(f"profit_next_{land_after}")
    if opp.profit_native is None or later is None:
        return None
    gas = opp.gas_cost_native
    if row.get("status") in ("dropped", "failed"):  # the paper execute stage did not send it
        # refused by the re-validation on its own block (stale): worth 0; by a limit: no lesson
        return ("stale", 0) if row.get("reverted") else None
    later_native = opp.profit_native * int(later) // opp.profit if opp.profit > 0 else 0
    if later_native > gas:
        return "success", later_native - gas
    return "reverted", -gas


def paper_dataset(
    rows: Iterable[Mapping[str, Any]], *, rule: RuleScorer | None = None, land_after: int = 1,
) -> Dataset:
    """The labelled opportunities of a backtest's rows, in block order (``ModelError`` when
    none can be labelled). ``rule``: the baseline's verdicts (the default rule if omitted)."""
    rule = rule or RuleScorer()
    ordered = sorted(rows, key=lambda r: r["opportunity"].block_number)
    outcomes: list[Outcome] = []
    outcome_blocks: list[int] = []  # their blocks, ascending
    X_parts: list[np.ndarray] = []
    y: list[bool] = []
    value: list[float] = []
    net: list[float] = []
    gas: list[float] = []
    rule_exec: list[bool] = []
    block: list[int] = []
    for number, group in groupby(ordered, key=lambda r: r["opportunity"].block_number):
        labelled = [(r, lab) for r in group if (lab := label(r, land_after)) is not None]
        if not labelled:
            continue
        opps: Sequence[Opportunity] = [r["opportunity"] for r, _ in labelled]
        recent = outcomes[bisect_left(outcome_blocks, number - WINDOW_BLOCKS):]  # the window's, not all
        X_parts.append(matrix(opps, OutcomeHistory(recent, as_of=number)))
        for (r, (kind, worth)), o in zip(labelled, opps):
            n = o.net_profit_native or 0
            y.append(kind == "success")
            value.append(float(worth))
            net.append(float(n))
            gas.append(float(o.gas_cost_native))
            rule_exec.append(rule.refusal(o.profit_native or 0, o.gas_cost_native) is None)
            block.append(number)
            if r.get("decision") == "execute":  # what the fleet attempted is what it learns from
                share = profit_share(worth, n) if kind == "success" else 1.0
                outcomes.append(Outcome(number, o.path_id, o.pools, kind, share))  # type: ignore[arg-type]
                outcome_blocks.append(number)
    if not y:
        raise ModelError("no backtest row could be labelled")
    return Dataset(
        X=np.concatenate(X_parts), y=np.array(y, dtype=bool), value=np.array(value), net_native=np.array(net),
        gas_native=np.array(gas), rule_execute=np.array(rule_exec, dtype=bool), block=np.array(block, dtype=np.int64),
        features=FEATURES,
    )
