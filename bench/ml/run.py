"""Learned-scorer benchmark (not a timed test): prints a table and one JSON line.

    .venv/bin/python -m bench.ml.run [--quick] [--seed N]

On the seeded synthetic market of ``arbbot.scoring.synthetic`` (rivals always take three
pools' gaps), in one run:
* decision quality on the time-ordered holdout: ROC AUC, calibration error, precision at
  k and EV captured, for the model and for the rule (the baseline), and the oracle;
* batch scoring throughput: ``features.matrix`` + the model's P(success) over large
  batches, opportunities per second (target >= 500,000/s), and the rule's ``decide`` over
  the same opportunities as the baseline;
* the hot path: one batch of 100 (features + model + decision), p50/p99 over many
  batches (target p99 < 1 ms), against the rule's decision of the same batch.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np

from arbbot.scoring import features
from arbbot.scoring.model import ModelScorer, evaluate, train
from arbbot.scoring.rule import RuleScorer
from arbbot.scoring.stage import score_batch
from arbbot.scoring.synthetic import market


def _timed(fn, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    data, rows = market(args.seed, blocks=300 if args.quick else 1000)
    tr, ho = data.split(0.3)
    t = time.perf_counter()
    model = train(tr, seed=1)
    train_s = time.perf_counter() - t
    m = evaluate(model, ho)

    opps = [r[0] for r in rows]
    history = features.OutcomeHistory([r[2] for r in rows], as_of=int(data.block.max()) + 1)
    big = (opps * (1 + 50_000 // len(opps)))[:50_000]
    X = features.matrix(big, history)
    feat_s = min(_timed(lambda: features.matrix(big, history), 3))
    model_s = min(_timed(lambda: model.p_success(X), 3))
    rule = RuleScorer()
    rule_s = min(_timed(lambda: [rule.score(o) for o in big], 3))
    scorer = ModelScorer(model, "model")
    batch = opps[-100:]
    hot = _timed(lambda: score_batch(batch, rule=rule, model=scorer, history=history, now=0.0), 30 if args.quick else 200)
    hot_rule = _timed(lambda: score_batch(batch, rule=rule, history=history, now=0.0), 30 if args.quick else 200)

    def q(xs: list[float], p: float) -> float:
        return float(np.quantile(xs, p)) * 1000

    rate = len(big) / (feat_s + model_s)
    print(f"learned scorer, synthetic market seed {args.seed}: {len(data)} labelled ({len(tr)} train, {len(ho)} holdout), "
          f"trained in {train_s:.1f} s")
    print(f"{'measure':<46}{'model':>16}{'rule':>16}")
    for key, label in (("roc_auc", "ROC AUC"), ("calibration_error", "calibration error"),
                       ("precision_at_k", f"precision at {m['k']}"), ("executed", "executed")):
        mv, rv = m["model"][key], m["rule"][key]
        print(f"{label:<46}{'-' if mv is None else f'{mv:.3f}':>16}{'-' if rv is None else f'{rv:.3f}':>16}")
    print(f"{'EV captured (oracle ' + format(m['oracle_ev_wei'] / 1e18, '.4f') + ' ETH)':<46}"
          f"{m['model']['ev_captured_wei'] / 1e18:>12.4f} ETH{m['rule']['ev_captured_wei'] / 1e18:>12.4f} ETH")
    print(f"{'batch of 50,000: features + P(success), opp/s':<46}{rate:>16,.0f}{len(big) / rule_s:>16,.0f}")
    print(f"{'  of which features / model, ms':<46}{feat_s * 1000:>8.1f} /{model_s * 1000:>6.1f}{'':>16}")
    print(f"{'batch of 100, decision p50 / p99, ms':<46}{q(hot, .5):>8.2f} /{q(hot, .99):>6.2f}"
          f"{q(hot_rule, .5):>8.2f} /{q(hot_rule, .99):>6.2f}")
    print(json.dumps({
        "bench": "ml", "seed": args.seed, "n_train": len(tr), "n_holdout": len(ho), "train_s": round(train_s, 2),
        "model": m["model"], "rule": m["rule"], "oracle_ev_wei": m["oracle_ev_wei"],
        "batch_opps_per_s": round(rate), "rule_opps_per_s": round(len(big) / rule_s),
        "features_ms_50k": round(feat_s * 1000, 2), "model_ms_50k": round(model_s * 1000, 2),
        "hot_p50_ms": round(q(hot, .5), 3), "hot_p99_ms": round(q(hot, .99), 3),
        "rule_hot_p50_ms": round(q(hot_rule, .5), 3), "rule_hot_p99_ms": round(q(hot_rule, .99), 3),
        "machine": platform.machine(), "python": platform.python_version(),
        "median_check": statistics.median(hot) * 1000,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
