"""Learned-scorer benchmark (not a timed test): prints a table and one JSON line.

    .venv/bin/python -m bench.ml.run [--quick] [--seed N]

On the seeded synthetic market of ``arbbot.scoring.synthetic`` (rivals always take three
pools' gaps and move two more part-way first), in one run:
* decision quality on the time-ordered holdout: ROC AUC, calibration error, precision at
  k and EV captured, for the model (classifier and realised-profit regressor) and for the
  rule (the baseline), and the oracle;
* exactness: the serving kernel's P(success) and realised share against scikit-learn's
  ``predict_proba``/``predict`` on the holdout, and its verdicts against the previous path's;
* batch scoring throughput over a batch of 50,000 (one thread): the features from the
  batch's columns + both models (P(success), realised share, EV) by the serving kernel
  (``arbbot.scoring.kernel``, one compiled pass), opportunities per second (target
  >= 500,000/s), against the previous path (``bench.ml.baseline``: features in numpy, each
  model a node-walking pass, calibration in numpy) and the rule's ``score``; separately the
  gathering of the records into columns (the one pass over Python objects), current and
  previous;
* the hot path: one batch of 100 (``stage.score_batch``: columns, features + both models,
  the verdicts with their features and reasons, one cycle per pool), p50/p99 over many
  batches (target p99 < 1 ms), against the previous path (``baseline.previous_score_batch``:
  the kernel, but the records read field by field in Python and a features dictionary per
  verdict), the first path and the rule (now and previous) on the same batch, checked to
  give the previous path's verdicts, scores and recorded features exactly (the wire too);
  and what recording the verdicts (``scored_to_wire``, off the decision path: the
  features are made Python floats there now) costs, now and previous.
Wall times and CPU times both: the machine is shared, and the load average is printed
beside the figures (a wall p99 at load above the core count measures the queue for a core).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from arbbot.scoring import features
from arbbot.scoring.model import ModelScorer, evaluate, train
from arbbot.scoring.rule import RuleScorer
from arbbot.scoring.stage import score_batch
from arbbot.scoring.synthetic import market
from arbbot.types import scored_to_wire
from bench.ml import baseline


def _timed(fn, repeat: int, clock=time.perf_counter) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeat):
        t = clock()
        fn()
        out.append(clock() - t)
    return out


def _cpu(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    """The least CPU time (all of this process's threads) of ``repeat`` runs: on a machine
    loaded by others the wall time measures the queue for a core, this what the work costs."""
    return min(_timed(fn, repeat, time.process_time))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    load_before = os.getloadavg()[0]
    data, rows = market(args.seed, blocks=300 if args.quick else 1000, shaved=(3, 4))
    tr, ho = data.split(0.3)
    t = time.perf_counter()
    model = train(tr, seed=1)
    train_s = time.perf_counter() - t
    m = evaluate(model, ho)

    opps = [r[0] for r in rows]
    history = features.OutcomeHistory([r[2] for r in rows], as_of=int(data.block.max()) + 1)
    big = (opps * (1 + 50_000 // len(opps)))[:50_000]
    cols = features.columns(big)
    scorer = ModelScorer(model, "model")
    serving = model.serving()
    assert serving is not None, "the trained model is too deep for the serving kernel"
    serving.score(cols, history)  # compiled once (cached on disk) before timing
    X_old = baseline.from_columns(cols, history)
    net, gas = cols.net_native, cols.gas_native
    baseline.expected_values(model, X_old, net, gas)

    # exactness on the holdout rows: the kernel's trees and calibration against scikit-learn
    p_kernel, ratio_kernel = model.p_success(ho.X), model.profit.predict(ho.X) if model.profit else None
    err_p = float(np.abs(p_kernel - model.classifier.predict_proba(ho.X)[:, 1]).max())
    err_r = float(np.abs(ratio_kernel - model.regressor.predict(ho.X)).max()) if ratio_kernel is not None else 0.0
    X_new, p_new, ev_new = serving.score(cols, history)
    p_old, ev_old = baseline.expected_values(model, X_old, net, gas)
    err_x = float(np.abs(X_new - X_old).max())
    err_ev = float(np.abs(ev_new - ev_old).max() / np.abs(ev_old).max())

    rep = 3 if args.quick else 7
    wall = {"gather": min(_timed(lambda: features.columns(big), rep)),
            "gather_before": min(_timed(lambda: baseline.columns(big), rep)),
            "kernel": min(_timed(lambda: serving.score(cols, history), rep)),
            "features_before": min(_timed(lambda: baseline.from_columns(cols, history), rep)),
            "models_before": min(_timed(lambda: baseline.expected_values(model, X_old, net, gas), rep))}
    rule = RuleScorer()
    wall["rule"] = min(_timed(lambda: [rule.score(o) for o in big], 3))
    cpu = {"gather": _cpu(lambda: features.columns(big), rep),
           "gather_before": _cpu(lambda: baseline.columns(big), rep),
           "kernel": _cpu(lambda: serving.score(cols, history), rep),
           "features_before": _cpu(lambda: baseline.from_columns(cols, history), rep),
           "models_before": _cpu(lambda: baseline.expected_values(model, X_old, net, gas), rep),
           "rule": _cpu(lambda: [rule.score(o) for o in big], 3)}
    n_big = len(big)

    def rates(t: dict[str, float]) -> dict[str, float]:
        return {"now": n_big / t["kernel"], "before": n_big / (t["features_before"] + t["models_before"]),
                "rule": n_big / t["rule"], "records_now": n_big / (t["gather"] + t["kernel"]),
                "records_before": n_big / (t["gather_before"] + t["features_before"] + t["models_before"])}

    rate, rate_cpu = rates(wall), rates(cpu)

    batch = opps[-100:]
    n_hot = 300 if args.quick else 3000
    now_fn = lambda: score_batch(batch, rule=rule, model=scorer, history=history, now=0.0)  # noqa: E731
    previous_fn = lambda: baseline.previous_score_batch(batch, rule=rule, model=scorer, history=history,  # noqa: E731
                                                        now=0.0)
    before_fn = lambda: baseline.score_batch(batch, rule=rule, model=scorer, history=history, now=0.0)  # noqa: E731
    rule_fn = lambda: score_batch(batch, rule=rule, history=history, now=0.0)  # noqa: E731
    rule_previous_fn = lambda: baseline.previous_score_batch(batch, rule=rule, history=history, now=0.0)  # noqa: E731
    verdicts_now, verdicts_previous, verdicts_before = now_fn(), previous_fn(), before_fn()

    def verdicts(vs: list) -> list:  # type: ignore[type-arg]
        return [(s.opportunity.key, s.decision, s.reason, s.model, dict(s.features)) for s in vs]

    # the first path's verdicts: order, decision and reason (its numpy features differ in the last bits); the
    # previous path's: the same verdicts, scores and recorded features (also as recorded: the wire), exactly
    same = [v[:3] for v in verdicts(verdicts_now)] == [v[:3] for v in verdicts(verdicts_before)]
    same_previous = (verdicts(verdicts_now) == verdicts(verdicts_previous)
                     and [s.score for s in verdicts_now] == [s.score for s in verdicts_previous]
                     and scored_to_wire(verdicts_now) == scored_to_wire(verdicts_previous))
    rule_now, rule_previous = rule_fn(), rule_previous_fn()
    same_rule = (verdicts(rule_now) == verdicts(rule_previous)
                 and scored_to_wire(rule_now) == scored_to_wire(rule_previous))
    err_score = max(abs(a.score - b.score) for a, b in zip(verdicts_now, verdicts_before))
    hot: dict[str, list[float]] = {}
    keys = ("now", "previous", "before", "rule", "rule_previous")
    for key in keys:  # measured in turns below: all under the same load
        hot[key], hot[key + "_cpu"] = [], []
    for _ in range(n_hot // 50):
        for key, fn in (("now", now_fn), ("previous", previous_fn), ("before", before_fn), ("rule", rule_fn),
                        ("rule_previous", rule_previous_fn)):
            hot[key] += _timed(fn, 50)
            hot[key + "_cpu"] += _timed(fn, 50, time.thread_time)  # the batch runs on this thread only
    # recording the verdicts (the analytics message; off the decision path): the features are read here now
    record_now = _cpu(lambda: scored_to_wire(now_fn()), 200) - _cpu(now_fn, 200)
    record_previous = _cpu(lambda: scored_to_wire(previous_fn()), 200) - _cpu(previous_fn, 200)

    def q(xs: list[float], p: float) -> float:
        return float(np.quantile(xs, p)) * 1000

    load_after = os.getloadavg()[0]
    print(f"learned scorer, synthetic market seed {args.seed}: {len(data)} labelled ({len(tr)} train, {len(ho)} holdout), "
          f"trained in {train_s:.1f} s; load average {load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} cores")
    print(f"{'measure':<52}{'model':>16}{'rule':>16}")
    for key, label in (("roc_auc", "ROC AUC"), ("calibration_error", "calibration error"),
                       ("precision_at_k", f"precision at {m['k']}"), ("executed", "executed")):
        mv, rv = m["model"][key], m["rule"][key]
        print(f"{label:<52}{'-' if mv is None else f'{mv:.3f}':>16}{'-' if rv is None else f'{rv:.3f}':>16}")
    print(f"{'EV captured (oracle ' + format(m['oracle_ev_wei'] / 1e18, '.4f') + ' ETH)':<52}"
          f"{m['model']['ev_captured_wei'] / 1e18:>12.4f} ETH{m['rule']['ev_captured_wei'] / 1e18:>12.4f} ETH")
    print(f"exactness: kernel P(success) vs scikit-learn predict_proba max |diff| {err_p:.1e}, realised share vs "
          f"predict {err_r:.1e}; features vs the previous path {err_x:.1e}, EV {err_ev:.1e} (relative); "
          f"batch of 100: verdicts (order, decision, reason) the first path's: {same}, P within "
          f"{err_score:.1e}; the previous path's, scores and wire too (model: {same_previous}, rule: {same_rule})")
    print(f"\n{'throughput, one thread':<52}{'now (kernel)':>16}{'before':>16}{'rule score':>16}")
    for label, r in (("batch of 50,000: features + both models, opp/s", rate),
                     ("  the same, opp per CPU-second", rate_cpu)):
        print(f"{label:<52}{r['now']:>16,.0f}{r['before']:>16,.0f}{r['rule']:>16,.0f}")
    for label, r in (("  from records (+ gather into columns), opp/s", rate),
                     ("  the same, opp per CPU-second", rate_cpu)):
        print(f"{label:<52}{r['records_now']:>16,.0f}{r['records_before']:>16,.0f}")
    print(f"{'  CPU ms: gather / features / models (50,000)':<52}{cpu['gather'] * 1e3:>7.1f} /{cpu['kernel'] * 1e3:>5.1f} fused"
          f"{cpu['gather_before'] * 1e3:>6.1f} /{cpu['features_before'] * 1e3:>4.1f} /{cpu['models_before'] * 1e3:>5.1f}")
    print(f"\n{'batch of 100 (score_batch), ms':<40}{'now':>16}{'previous':>16}{'before':>16}{'rule now':>16}"
          f"{'rule previous':>16}")
    print(f"{'  wall p50 / p99':<40}" + "".join(f"{q(hot[k], .5):>8.2f} /{q(hot[k], .99):>6.2f}" for k in keys))
    print(f"{'  CPU (thread) p50 / p99':<40}" + "".join(f"{q(hot[k + '_cpu'], .5):>8.2f} /{q(hot[k + '_cpu'], .99):>6.2f}"
                                                       for k in keys))
    print(f"{'  recording them (scored_to_wire), CPU ms':<40}{record_now * 1e3:>16.2f}{record_previous * 1e3:>16.2f}")
    print(json.dumps({
        "bench": "ml", "seed": args.seed, "n_train": len(tr), "n_holdout": len(ho), "train_s": round(train_s, 2),
        "model": m["model"], "rule": m["rule"], "oracle_ev_wei": m["oracle_ev_wei"],
        "model_regressor": model.profit is not None, "load_avg": [round(load_before, 1), round(load_after, 1)],
        "exact": {"p_vs_sklearn": err_p, "ratio_vs_sklearn": err_r, "features_vs_before": err_x,
                  "ev_vs_before_rel": err_ev, "verdicts_same_as_before": same,
                  "verdicts_same_as_previous": same_previous, "rule_verdicts_same_as_previous": same_rule,
                  "verdict_p_vs_before": err_score},
        "batch_opps_per_s": round(rate["now"]), "before_opps_per_s": round(rate["before"]),
        "rule_opps_per_s": round(rate["rule"]),
        "cpu_batch_opps_per_s": round(rate_cpu["now"]), "cpu_before_opps_per_s": round(rate_cpu["before"]),
        "cpu_rule_opps_per_s": round(rate_cpu["rule"]),
        "from_records_opps_per_s": round(rate["records_now"]), "cpu_from_records_opps_per_s": round(rate_cpu["records_now"]),
        "cpu_ms_50k": {k: round(v * 1000, 2) for k, v in cpu.items()},
        "wall_ms_50k": {k: round(v * 1000, 2) for k, v in wall.items()},
        "hot_batches": len(hot["now"]),
        **{f"hot_{k}_p{int(p * 100)}_ms": round(q(hot[k], p), 3) for k in hot for p in (.5, .99)},
        "record_cpu_ms": round(record_now * 1e3, 3), "record_previous_cpu_ms": round(record_previous * 1e3, 3),
        "machine": platform.machine(), "python": platform.python_version(),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
