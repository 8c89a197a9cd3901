"""``arbbot ml train|evaluate|promote|list``: the learned scorer's registry from the
command line. ``train`` fits a challenger on the labelled outcomes (seeded, time-ordered
holdout) and records it, promoting it with ``--promote`` only if it beats the champion
(the rule when none); ``--labels live|paper|all`` chooses the labels (default
``ARBBOT_ML_LABELS``, itself ``live``): the fleet's recorded executions, backtests of the
recordings (``--recording FILE``, default every one under ``ARBBOT_RECORD_DIR``), or both
(``webapp.core.services.ml_training_data``); ``evaluate`` prints the holdout metrics of a model and of the rule in
one table and plots the EV captured against the threshold (``--png``, ``--svg``);
``promote`` makes a recorded version the champion under the same test (``--force`` skips
it; ``--rule`` demotes every model so the rule decides)."""

from __future__ import annotations

from typing import Any, Callable

from webapp.core.cli import CliError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("ml", help="train, evaluate and promote the learned scorer")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    t = actions.add_parser("train", help="train a challenger on the recorded outcomes and record it")
    t.add_argument("--seed", type=int, default=0, help="the model's random seed (default 0)")
    t.add_argument("--holdout", type=float, default=0.3, help="the latest share of blocks held out (default 0.3)")
    t.add_argument("--chain", type=int, default=None, help="only this chain's outcomes")
    t.add_argument("--promote", action="store_true", help="promote it if it beats the champion (or the rule)")
    _label_args(t)
    t.set_defaults(handler=train)
    e = actions.add_parser("evaluate", help="holdout metrics of a model and of the rule")
    e.add_argument("--version", type=int, default=None, help="a recorded version (default: the champion)")
    e.add_argument("--holdout", type=float, default=0.3)
    e.add_argument("--chain", type=int, default=None)
    e.add_argument("--k", type=int, default=None, help="precision at k (default: a tenth of the holdout)")
    e.add_argument("--png", default=None, help="also write the EV captured against the threshold to this PNG file")
    e.add_argument("--svg", default=None, help="also write the EV captured against the threshold to this SVG file")
    _label_args(e)
    e.set_defaults(handler=evaluate)
    r = actions.add_parser("promote", help="make a recorded version the champion if it beats the current one")
    r.add_argument("version", type=int, nargs="?", help="the version id (see `arbbot ml list`)")
    r.add_argument("--force", action="store_true", help="promote without the champion/challenger test")
    r.add_argument("--rule", action="store_true", help="demote every model: the rule decides")
    r.add_argument("--holdout", type=float, default=0.3)
    r.add_argument("--chain", type=int, default=None)
    _label_args(r)
    r.set_defaults(handler=promote)
    ls = actions.add_parser("list", help="the recorded versions, newest first")
    ls.set_defaults(handler=show)


def _label_args(p: Any) -> None:
    p.add_argument("--labels", choices=("live", "paper", "all"), default=None,
                   help="live: the fleet's recorded executions; paper: backtests of the recordings (every "
                        "opportunity the rule saw, labelled by what it found a block later); all: both "
                        "(default: ARBBOT_ML_LABELS, itself live)")
    p.add_argument("--recording", action="append", default=None, metavar="FILE",
                   help="a recording to back-test for paper labels (repeatable; default: every one under "
                        "ARBBOT_RECORD_DIR)")


def _model_error() -> type[Exception]:
    from arbbot.scoring.model import ModelError

    return ModelError


def train(opts: dict[str, Any], out: Callable[[str], None]) -> int:
    from webapp.core import services

    if not 0 < opts["holdout"] < 1:
        raise CliError("--holdout must be between 0 and 1", code=2)
    try:
        result = services.model_train(seed=opts["seed"], holdout_frac=opts["holdout"], chain_id=opts["chain"],
                                      promote=opts["promote"], progress=out, labels=opts.get("labels"),
                                      recordings=opts.get("recording"))
    except _model_error() as exc:
        raise CliError(f"cannot train: {exc}") from exc
    out(table(result.metrics))
    return 0


def _holdout(opts: dict[str, Any]) -> Any:
    from webapp.core import services

    try:
        data, _ = services.ml_training_data(opts.get("labels"), chain_id=opts["chain"], recordings=opts.get("recording"))
        return data.split(opts["holdout"])[1]
    except _model_error() as exc:
        raise CliError(f"no holdout: {exc}") from exc


def _version(version_id: int | None) -> tuple[int, Any]:
    from arbbot.scoring.model import load
    from webapp.core import selectors
    from webapp.core.models import ModelVersion

    if version_id is None:
        ref = selectors.model_champion_ref()
        if ref is None:
            raise CliError("no model is promoted: name a version (see `arbbot ml list`)")
        version_id = ref.version_id
    row = ModelVersion.objects.filter(id=version_id).values_list("artefact", "artefact_sha256").first()
    if row is None:
        raise CliError(f"no model version {version_id}", code=2)
    try:
        return version_id, load(bytes(row[0]), row[1])
    except _model_error() as exc:
        raise CliError(f"model version {version_id}: {exc}") from exc


def evaluate(opts: dict[str, Any], out: Callable[[str], None]) -> int:
    from arbbot.scoring.model import evaluate as judge

    version_id, model = _version(opts["version"])
    holdout = _holdout(opts)
    out(f"model version {version_id} and the rule on the holdout: {len(holdout)} opportunities, "
        f"blocks {int(holdout.block.min())}-{int(holdout.block.max())}")
    metrics = judge(model, holdout, k=opts["k"])
    out(table(metrics))
    if opts["svg"] or opts["png"]:
        from webapp.core.services import ev_curve

        curve = ev_curve(model, holdout, metrics["rule"]["ev_captured_wei"])
        try:
            if opts["png"]:
                from arbbot.scoring.plot import ev_curve_png

                ev_curve_png(curve, opts["png"], oracle=metrics["oracle_ev_wei"],
                             title=f"model version {version_id} and the rule: EV captured on the holdout")
                out(f"wrote {opts['png']}")
            if opts["svg"]:
                from webapp.core.plots import ev_curve_svg

                with open(opts["svg"], "w") as f:
                    f.write(ev_curve_svg(curve))
                out(f"wrote {opts['svg']}")
        except OSError as exc:
            raise CliError(f"cannot write the plot: {exc}") from exc
    return 0


def promote(opts: dict[str, Any], out: Callable[[str], None]) -> int:
    from arbbot.scoring.model import beats, evaluate as judge
    from webapp.core import selectors, services

    if opts["rule"]:
        n = services.model_version_demote_all()
        out(f"{'the champion was demoted' if n else 'no model was promoted'}: the rule decides")
        return 0
    if opts["version"] is None:
        raise CliError("name a version, or --rule", code=2)
    version_id, model = _version(opts["version"])
    if opts["force"]:
        decision = "promoted by hand (--force)"
    else:
        holdout = _holdout(opts)
        metrics = judge(model, holdout)
        ref = selectors.model_champion_ref()
        incumbent, against = metrics["rule"], "the rule"
        if ref is not None and ref.version_id != version_id:
            incumbent, against = judge(_version(ref.version_id)[1], holdout)["model"], f"champion {ref.name}"
        wins, why = beats(metrics["model"], incumbent)
        decision = f"{'beats' if wins else 'does not beat'} {against}: {why}"
        if not wins:
            raise CliError(f"version {version_id} not promoted: {decision}")
    services.model_version_promote(version_id, decision)
    out(f"version {version_id} is the champion ({decision}); the ml workers use it from their next batch")
    return 0


def show(opts: dict[str, Any], out: Callable[[str], None]) -> int:
    from webapp.core import selectors

    rows = selectors.model_versions()
    if not rows:
        out("no model versions recorded")
    for r in rows:
        ev = r.metrics.get("model", {}).get("ev_captured_wei")
        rule = r.metrics.get("rule", {}).get("ev_captured_wei")
        out(f"{r.id:>4} {r.name:<24} {'champion' if r.is_champion else '':<8} train {r.n_train} holdout {r.n_holdout} "
            f"EV model {_fmt(ev)} rule {_fmt(rule)}  {r.decision}")
    return 0


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and abs(v) >= 1e6:
        return f"{v / 1e18:.6f} ETH" if abs(v) >= 1e12 else f"{v:.4g}"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def table(metrics: dict[str, Any]) -> str:
    """Model(s) and rule side by side: ROC AUC, calibration error, precision at k, EV."""
    cols = [c for c in ("model", "champion", "rule") if c in metrics]
    lines = [f"{'metric':<22}" + "".join(f"{c:>18}" for c in cols)]
    for key, label in (("roc_auc", "ROC AUC"), ("calibration_error", "calibration error"),
                       ("precision_at_k", f"precision at {metrics.get('k')}"), ("ev_captured_wei", "EV captured"),
                       ("executed", "executed")):
        lines.append(f"{label:<22}" + "".join(f"{_fmt(metrics[c].get(key)):>18}" for c in cols))
    lines.append(f"{'oracle EV':<22}{_fmt(metrics.get('oracle_ev_wei')):>18}   "
                 f"(holdout {metrics.get('n')} opportunities, {metrics.get('successes')} successes)")
    return "\n".join(lines)
