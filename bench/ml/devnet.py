"""The learned scorer against the rule on a devnet recording with competitors (not a timed
test): prints a table and one JSON line, writes the EV-against-threshold PNG.

    ARBBOT_RECORD_DIR=/tmp/rec scripts/demo.py --seconds 600 --competitors 0.05:3,0.5:4 --seed 11
    .venv/bin/python -m bench.ml.devnet /tmp/rec/chain-31337-*.arbrec [--png docs/img/ml-devnet.png]

The recording is replayed by the backtest (``arbbot.replay``: the same path, rule and
paper execute code, fills by the exact pool math) keeping every decided opportunity and
its cycle re-sized one and two blocks later (``arbbot.replay.labels.outcomes``); those rows
are labelled (``arbbot.scoring.labels.paper_dataset``: what a transaction sent at the
opportunity's block found when it landed, rivals' trades included), split by block (the
last ``--holdout`` share held out), a model trained on the earlier blocks, and the model and
the rule judged on the same holdout, for a fleet whose transactions land one block later
and for one that lands two blocks later.

``--gas-x K`` also judges them on the same rows with every gas price K times the devnet's
(a what-if, not a run: the devnet's base fee makes a revert cost ~1/150 of a success, so
executing all the rule allows loses almost nothing and a model has little to win; on a
chain where gas costs more, avoiding a revert is worth more).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("recording")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--holdout", type=float, default=0.3)
    ap.add_argument("--png", default=None, help="write the EV against the threshold (one block later) here")
    ap.add_argument("--gas-x", type=float, default=None, help="also with every gas price this many times higher")
    args = ap.parse_args()
    os.environ.setdefault("ARBBOT_DEVNET", "1")

    from arbbot.replay import backtest, labels
    from arbbot.replay.recording import Recording
    from arbbot.scoring.labels import paper_dataset
    from arbbot.scoring.model import ev_curve, evaluate, train
    from arbbot.scoring.rule import RuleScorer

    logging.getLogger("arbbot").setLevel(logging.WARNING)
    load = os.getloadavg()[0]
    recording = Recording.open(args.recording)
    strategy = backtest.BacktestStrategy.from_wire(recording.meta.get("strategy") or {})
    t = time.perf_counter()
    result = backtest.run(recording, strategy, labels=True)
    rows = labels.outcomes(result)
    replay_s = time.perf_counter() - t
    rule = RuleScorer(margin=strategy.margin, min_net_profit=strategy.min_profit_wei)
    blocks = [b.number for b in result.blocks]
    print(f"devnet recording {recording.path.name}: blocks {min(blocks)}-{max(blocks)}, {len(rows)} decided "
          f"opportunities ({sum(r['decision'] == 'execute' for r in rows)} executed by the rule), replayed in "
          f"{replay_s:.0f} s; load average {load:.1f} on {os.cpu_count()} cores")
    report = {"bench": "ml-devnet", "recording": recording.path.name, "rows": len(rows), "seed": args.seed}
    gas_gwei = np.median([r["opportunity"].gas_price_wei for r in rows]) / 1e9
    print(f"median gas price {gas_gwei:.3g} gwei")
    runs = [(1.0, 1), (1.0, 2)] + ([(args.gas_x, 1)] if args.gas_x else [])
    for gas_x, land_after in runs:
        scaled = rows if gas_x == 1.0 else [{**r, "opportunity": _gas_times(r["opportunity"], gas_x)} for r in rows]
        data = paper_dataset(scaled, rule=rule, land_after=land_after)
        tr, ho = data.split(args.holdout)
        model = train(tr, seed=args.seed)
        m = evaluate(model, ho)
        print(f"\n{'' if gas_x == 1.0 else f'what-if, gas price x {gas_x:g}: '}"
              f"landing {land_after} block(s) later: {len(data)} labelled ({int(data.y.sum())} pay), "
              f"train {len(tr)} (blocks {tr.block.min()}-{tr.block.max()}), holdout {len(ho)} "
              f"(blocks {ho.block.min()}-{ho.block.max()}), regressor {'on' if model.profit is not None else 'off'}")
        print(f"{'measure':<34}{'model':>16}{'rule':>16}")
        for key, name in (("roc_auc", "ROC AUC"), ("calibration_error", "calibration error"),
                          ("precision_at_k", f"precision at {m['k']}"), ("executed", "executed")):
            mv, rv = m["model"][key], m["rule"][key]
            print(f"{name:<34}{'-' if mv is None else f'{mv:.3f}':>16}{'-' if rv is None else f'{rv:.3f}':>16}")
        print(f"{'EV captured (oracle ' + format(m['oracle_ev_wei'] / 1e18, '.4f') + ')':<34}"
              f"{m['model']['ev_captured_wei'] / 1e18:>12.4f} ETH{m['rule']['ev_captured_wei'] / 1e18:>12.4f} ETH")
        report[f"land_{land_after}" + ("" if gas_x == 1.0 else f"_gas_x{gas_x:g}")] = {"n": len(data), "n_train": len(tr), "n_holdout": len(ho),
                                         "model": m["model"], "rule": m["rule"], "oracle_ev_wei": m["oracle_ev_wei"]}
        if land_after == 1 and gas_x == 1.0 and args.png:
            from arbbot.scoring.plot import ev_curve_png

            thresholds = [round(i / 20, 2) for i in range(21)]
            curve = {"thresholds": thresholds, "model": ev_curve(model, ho, thresholds),
                     "rule": m["rule"]["ev_captured_wei"]}
            ev_curve_png(curve, args.png, oracle=m["oracle_ev_wei"],
                         title="devnet with competitors: EV captured on the holdout (landing next block)")
            print(f"wrote {args.png}")
    report["load_avg"] = round(load, 1)
    print(json.dumps(report, default=lambda v: float(v) if isinstance(v, np.floating) else str(v)))
    return 0


def _gas_times(opp, k: float):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    return replace(opp, gas_price_wei=int(opp.gas_price_wei * k), gas_cost=int(opp.gas_cost * k))


if __name__ == "__main__":
    raise SystemExit(main())
