"""Labels for the learned scoring from a backtest: per opportunity, what a paper trade of it
did, and what its cycle would have paid one and two blocks later.

Use::

    from arbbot.replay import backtest, labels
    result = backtest.run(recording, strategy, labels=True)   # labels=True keeps what is needed
    rows = labels.outcomes(result)

``outcomes(result)`` gives one dict per opportunity the scorer decided on (every block that
was traded, in block order, best first within a block), with:

- ``opportunity``: the ``arbbot.types.Opportunity`` itself (for ``arbbot.scoring.features``);
- ``key``, ``chain_id``, ``block_number``, ``path_id``: who it is;
- ``decision`` (``execute`` or ``skip``) and ``decision_reason``: the scorer's verdict;
- ``status``: the execute stage's outcome, ``simulated`` (a paper fill), ``dropped``,
  ``failed``, or ``not_executed`` when the scorer skipped it;
- ``success``: a paper fill happened; ``reverted``: re-validation found the cycle would not
  pay on the block's state (stale, or the simulation reverted); ``reason``: the execute
  stage's reason (``""`` when not executed);
- ``realised_profit``: the paper fill's profit in the profit token (``tokens[0]``), base
  units, gross of gas, 0 unless ``success``; ``realised_profit_native`` and
  ``gas_cost_native``: in native wei (0 unless ``success``);
- ``profit_next_1``, ``profit_next_2``: the cycle's gross profit (profit token, base units)
  re-sized with the execute stage's sizing under the input cap on the *recorded* pool states
  one and two blocks later (the chain as it was, without the backtest's own fills), 0 when
  it no longer pays, ``None`` when the replay ended first. What a slower decision would have
  found: the label for how fast a gap closes.

Amounts are ``int``. A result run without ``labels=True`` has no decided opportunities:
``outcomes`` then raises ``ValueError`` rather than return an empty, misleading list.
"""

from __future__ import annotations

from typing import Any

from arbbot.replay.backtest import BacktestResult, gas_native
from arbbot.replay.report import REVERT_PREFIXES


def outcomes(result: BacktestResult) -> list[dict[str, Any]]:
    """One row per decided opportunity (see the module docstring)."""
    if not result.scored and any(b.found for b in result.blocks):
        raise ValueError("the backtest ran without labels=True: it kept no opportunities to label")
    executed = {f"{r.chain_id}:{r.block_number}:{r.path_id}": r for r in result.executions}
    rows = []
    for s in result.scored:
        opp = s.opportunity
        r = executed.get(opp.key)
        success = r is not None and r.status == "simulated"
        later = result.later.get(opp.key, [None, None])
        rows.append({
            "opportunity": opp,
            "key": opp.key,
            "chain_id": opp.chain_id,
            "block_number": opp.block_number,
            "path_id": opp.path_id,
            "decision": s.decision,
            "decision_reason": s.reason,
            "status": r.status if r is not None else "not_executed",
            "success": success,
            "reverted": r is not None and r.status == "dropped" and r.reason.startswith(REVERT_PREFIXES),
            "reason": r.reason if r is not None else "",
            "realised_profit": r.realised_profit if success and r is not None else 0,
            "realised_profit_native": int(r.extra.get("profit_native") or 0) if success and r is not None else 0,
            "gas_cost_native": gas_native(r) if success and r is not None else 0,
            "profit_next_1": later[0],
            "profit_next_2": later[1],
        })
    return rows
