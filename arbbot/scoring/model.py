"""The learned scorer: a calibrated gradient-boosted classifier of P(success) and a
gradient-boosted regressor of the realised profit of a success, trained on the fleet's own
outcomes, and the decision that maximises expected value:

    EV = P x E[profit | success] - (1 - P) x cost of a revert   (native wei; a revert burns the gas)

``E[profit | success]`` is the predicted net profit times the regressor's estimate of the
share of it a success realises (``profit_ratio``: 1 where the prediction is exact, less
where rivals move the pools first and the re-sized trade earns less).

An opportunity is executed when its EV clears the strategy's minimum net profit (and its
predicted net profit does too: the model never executes what the path stage calls a loss).

Owns the dataset shape (``Dataset``: features, outcome, realised value, time order),
training (``train``, seeded), the holdout metrics both the model and the rule are judged
by (``evaluate``: ROC AUC, calibration error, precision at k, EV captured), the scorer the
ml stage runs (``ModelScorer``) and the artefact codec (``dump``/``load``). An artefact is
arrays, never a pickle (``arbbot.scoring.trees``), and ``load`` reads only bytes whose
SHA-256 matches the digest recorded with them in the model registry (the caller passes both
from one ``ModelVersion`` row); nothing is loaded from a file or a message. EV and
probabilities are floats: estimates, not money math.
"""

from __future__ import annotations

import hashlib
from itertools import repeat
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from arbbot.errors import ArbbotError
from arbbot.scoring.features import C_HOPS, C_NET_NATIVE, C_PRICED, FEATURES, Columns, OutcomeHistory, from_columns
from arbbot.scoring.trees import CompiledModel, compile_model, compile_regressor, pack, unpack
from arbbot.types import Decision, Opportunity, ScoredOpportunity

#: the regressor's target, realised over predicted net profit of a success, is clipped to this
RATIO_RANGE = (-1.0, 2.0)
MIN_REGRESSOR_ROWS = 20  # successes needed to fit the regressor (else E[profit] is the prediction)


class ModelError(ArbbotError):
    """A model could not be trained, loaded or used (the ml stage falls back to the rule)."""


@dataclass(frozen=True)
class Dataset:
    """Labelled opportunities in time order (the caller sorts by block).

    ``value``: what executing it was worth, native wei: success its realised net profit, a
    revert minus the gas it paid, a stale drop 0. ``net_native``/``gas_native``: the
    predicted net profit and gas cost at decision time. ``rule_execute``: the rule's
    verdict on it (the baseline every metric is also computed for)."""

    X: np.ndarray
    y: np.ndarray
    value: np.ndarray
    net_native: np.ndarray
    gas_native: np.ndarray
    rule_execute: np.ndarray
    block: np.ndarray
    features: tuple[str, ...] = FEATURES

    def __len__(self) -> int:
        return len(self.y)

    def take(self, sel: slice | np.ndarray) -> Dataset:
        return Dataset(
            self.X[sel], self.y[sel], self.value[sel], self.net_native[sel], self.gas_native[sel],
            self.rule_execute[sel], self.block[sel], self.features,
        )

    def split(self, holdout_frac: float = 0.3) -> tuple[Dataset, Dataset]:
        """Time-ordered: the last ``holdout_frac`` of blocks is the holdout (no block on
        both sides, so nothing of the future leaks into training)."""
        if len(self) < 2:
            raise ModelError(f"too few labelled opportunities to split: {len(self)}")
        cut_block = np.quantile(self.block, 1 - holdout_frac, method="higher")
        train = self.block < cut_block
        if not train.any() or train.all():
            raise ModelError("the data spans too few blocks for a time-ordered holdout")
        return self.take(train), self.take(~train)

    @staticmethod
    def concat(parts: Sequence[Dataset]) -> Dataset:
        """Several datasets (same features) as one, in block order (stable: within a block,
        each part's rows in its order, the parts in the order given)."""
        if not parts:
            raise ModelError("no labelled opportunities")
        names = parts[0].features
        if any(p.features != names for p in parts):
            raise ModelError("datasets with different features cannot be joined")
        block = np.concatenate([p.block for p in parts])
        order = np.argsort(block, kind="stable")

        def cat(get: Callable[[Dataset], np.ndarray]) -> np.ndarray:
            return np.concatenate([get(p) for p in parts])[order]

        return Dataset(cat(lambda d: d.X), cat(lambda d: d.y), cat(lambda d: d.value), cat(lambda d: d.net_native),
                       cat(lambda d: d.gas_native), cat(lambda d: d.rule_execute), block[order], names)

    def digest(self) -> str:
        """SHA-256 of the data a model was trained on (recorded with it)."""
        h = hashlib.sha256()
        for a in (self.X, self.y, self.value, self.block):
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(",".join(self.features).encode())
        return h.hexdigest()


@dataclass
class LearnedModel:
    """A trained scorer as arrays (``arbbot.scoring.trees.CompiledModel``: what is stored
    and served): ``compiled`` the classifier of success, ``profit`` the regressor of the
    realised share of the predicted net profit (``None``: the prediction is taken as it
    is), and the feature columns both expect, in order. ``classifier``/``regressor`` are the
    scikit-learn estimators they were compiled from, kept only in the process that
    trained them."""

    features: tuple[str, ...]
    compiled: CompiledModel
    params: dict[str, Any] = field(default_factory=dict)
    classifier: Any = None
    profit: CompiledModel | None = None
    regressor: Any = None
    _serving: Any = field(default=None, init=False, repr=False, compare=False)

    def serving(self) -> Any:
        """The serving kernel's form of this model (``arbbot.scoring.kernel.Scorer``, built
        once), or ``None`` when its trees are too deep for it."""
        if self._serving is None:
            from arbbot.scoring import kernel

            self._serving = kernel.build(self) or False
        return self._serving or None

    def _columns(self, X: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """``X`` (columns ``names``) in the model's own feature order; a feature the model
        knows but ``X`` lacks is NaN (missing)."""
        if tuple(names) != self.features:
            pos = {n: i for i, n in enumerate(names)}
            cols = [X[:, pos[n]] if n in pos else np.full(len(X), np.nan) for n in self.features]
            X = np.column_stack(cols) if cols else X[:, :0]
        return X

    def p_success(self, X: np.ndarray, names: Sequence[str] = FEATURES) -> np.ndarray:
        """P(success) per row of ``X`` (columns ``names``)."""
        X = self._columns(X, names)
        if len(X) == 0:
            return np.zeros(0)
        return self.compiled.predict(X)

    def profit_ratio(self, X: np.ndarray, names: Sequence[str] = FEATURES) -> np.ndarray:
        """The expected realised share of the predicted net profit if it succeeds."""
        if self.profit is None or len(X) == 0:
            return np.ones(len(X))
        return np.clip(self.profit.predict(self._columns(X, names)), *RATIO_RANGE)

    def expected_values(
        self, X: np.ndarray, net_native: np.ndarray, gas_native: np.ndarray, names: Sequence[str] = FEATURES,
    ) -> tuple[np.ndarray, np.ndarray]:
        """P(success) and the EV of executing each row, native wei (both models, one pass
        over the columns)."""
        X = self._columns(X, names)
        p = self.p_success(X, self.features)
        return p, expected_value(p, net_native * self.profit_ratio(X, self.features), gas_native)


_THREADS_LIMITED = False


def _one_thread() -> None:
    """OpenMP on one thread, once per process: on a shared 2-core machine scikit-learn's
    thread pool made training ~7x slower."""
    global _THREADS_LIMITED
    if not _THREADS_LIMITED:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="openmp")
        _THREADS_LIMITED = True


def expected_value(p: np.ndarray, profit_native: np.ndarray, gas_native: np.ndarray) -> np.ndarray:
    """EV of executing, native wei: a success earns its (expected) net profit, a revert
    costs the gas."""
    return p * profit_native - (1.0 - p) * gas_native


def train(
    data: Dataset, *, seed: int = 0, max_iter: int = 40, max_depth: int | None = 4, calibration_frac: float = 0.25,
    progress: Callable[[str], None] | None = None,
) -> LearnedModel:
    """A HistGradientBoosting classifier of success fitted on the earlier blocks of
    ``data``, its probabilities calibrated on the later ``calibration_frac`` of them
    (isotonic with 1000 rows or more, else sigmoid): calibrated forward in time, as it will
    be used; and a HistGradientBoosting regressor of the share of its predicted net profit
    a success realised (``value / net_native``), fitted on the successes of all of
    ``data`` (with ``MIN_REGRESSOR_ROWS`` of them or more). Same data and seed: the same
    models. Few trees (``max_iter``), at most ``max_depth`` deep, keep serving fast: on the
    synthetic market 40 trees rank and capture as well as 100."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.frozen import FrozenEstimator

    y = data.y.astype(int)
    if len(np.unique(y)) < 2:
        raise ModelError(f"training needs both successes and failures: {int(y.sum())} of {len(y)} succeeded")
    fit, cal = data.split(calibration_frac)
    for part, name in ((fit, "fitting"), (cal, "calibration")):
        if part.y.all() or not part.y.any():
            raise ModelError(f"training needs both successes and failures in its {name} blocks")
    params = {"max_iter": max_iter, "learning_rate": 0.1, "max_leaf_nodes": 15, "max_depth": max_depth,
              "l2_regularization": 1.0, "random_state": seed, "early_stopping": False}
    method = "isotonic" if len(cal) >= 1000 else "sigmoid"
    if progress:
        progress(f"training on {len(fit)} opportunities ({int(fit.y.sum())} successes), {len(data.features)} "
                 f"features, seed {seed}; calibrating ({method}) on the next {len(cal)}")
    _one_thread()
    booster = HistGradientBoostingClassifier(**params).fit(fit.X, fit.y.astype(int))
    clf = CalibratedClassifierCV(FrozenEstimator(booster), method=method).fit(cal.X, cal.y.astype(int))
    won = data.y.astype(bool) & (data.net_native > 0)
    reg, profit = None, None
    if won.sum() >= MIN_REGRESSOR_ROWS:
        if progress:
            progress(f"fitting the realised-profit regressor on {int(won.sum())} successes")
        ratio = np.clip(data.value[won] / data.net_native[won], *RATIO_RANGE)
        reg = HistGradientBoostingRegressor(**params).fit(data.X[won], ratio)
        profit = compile_regressor(reg, data.features)
    return LearnedModel(features=data.features, compiled=compile_model(clf, data.features),
                        params={**params, "calibration": method, "regressor": profit is not None},
                        classifier=clf, profit=profit, regressor=reg)


# --------------------------------------------------------------------------- metrics


def roc_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count half); ``None`` with one class only."""
    y = y.astype(bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if not pos or not neg:
        return None
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    s = score[order]
    # average ranks over ties
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the mean |observed rate - predicted P| over equal-width
    bins of P, weighted by the bin's share."""
    if len(p) == 0:
        return 0.0
    idx = np.minimum((p * bins).astype(int), bins - 1)
    err = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            err += sel.mean() * abs(float(y[sel].mean()) - float(p[sel].mean()))
    return err


def precision_at_k(y: np.ndarray, score: np.ndarray, k: int) -> float:
    """Share of successes among the ``k`` best-scored (ties: the earlier first)."""
    if len(y) == 0 or k <= 0:
        return 0.0
    top = np.argsort(-score, kind="mergesort")[: min(k, len(y))]
    return float(y[top].mean())


def model_executes(model: LearnedModel, data: Dataset, min_net_profit: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The model's verdicts on a dataset (no pool conflicts: each row was its own batch's
    choice) and its EV per row."""
    _, ev = model.expected_values(data.X, data.net_native, data.gas_native, data.features)
    priced = data.X[:, data.features.index("priced")] > 0 if "priced" in data.features else np.ones(len(ev), bool)
    return priced & (ev > min_net_profit) & (data.net_native > min_net_profit), ev


def evaluate(model: LearnedModel | None, data: Dataset, *, k: int | None = None) -> dict[str, Any]:
    """Holdout metrics for the model (when given) and the rule, in one dictionary:
    ``roc_auc`` (the rule scores by margin over gas), ``calibration_error`` (the model's
    P; the rule gives none), ``precision_at_k`` (the model ranks by EV, the rule by net
    profit), ``ev_captured_wei`` (sum of the realised value of what each would execute)
    and ``executed``; ``oracle_ev_wei`` is the best any policy could capture."""
    k = k or max(1, len(data) // 10)
    y = data.y.astype(bool)
    margin = data.X[:, data.features.index("margin_over_gas")] if "margin_over_gas" in data.features else data.net_native
    out: dict[str, Any] = {
        "n": len(data), "successes": int(y.sum()), "k": k,
        "oracle_ev_wei": float(np.maximum(data.value, 0).sum()),
        "rule": {
            "roc_auc": roc_auc(y, margin),
            "calibration_error": None,
            "precision_at_k": precision_at_k(y, np.where(data.rule_execute, data.net_native, -np.inf), k),
            "ev_captured_wei": float(data.value[data.rule_execute].sum()),
            "executed": int(data.rule_execute.sum()),
        },
    }
    if model is not None:
        execute, ev = model_executes(model, data)
        p = model.p_success(data.X, data.features)
        out["model_regressor"] = model.profit is not None
        out["model"] = {
            "roc_auc": roc_auc(y, p),
            "calibration_error": calibration_error(y, p),
            "precision_at_k": precision_at_k(y, ev, k),
            "ev_captured_wei": float(data.value[execute].sum()),
            "executed": int(execute.sum()),
        }
    return out


def ev_curve(model: LearnedModel, data: Dataset, thresholds: Sequence[float]) -> list[float]:
    """EV captured on ``data`` when executing at P(success) >= each threshold (the plot)."""
    p = model.p_success(data.X, data.features)
    return [float(data.value[p >= t].sum()) for t in thresholds]


def beats(challenger: dict[str, Any], incumbent: dict[str, Any]) -> tuple[bool, str]:
    """Champion/challenger on one holdout: the challenger's metrics must capture more EV
    than the incumbent's (the champion's on the same holdout, or the rule's when there is
    none) and not rank clearly worse (ROC AUC)."""
    ev_new, ev_old = challenger["ev_captured_wei"], incumbent["ev_captured_wei"]
    if ev_new <= ev_old:
        return False, f"EV captured {ev_new:.4g} wei, not above {ev_old:.4g}"
    auc_new, auc_old = challenger.get("roc_auc"), incumbent.get("roc_auc")
    if auc_new is not None and auc_old is not None and auc_new < auc_old - 0.02:
        return False, f"ROC AUC {auc_new:.3f} below {auc_old:.3f}"
    return True, f"EV captured {ev_new:.4g} wei > {ev_old:.4g}"


# --------------------------------------------------------------------------- serving


@dataclass(frozen=True)
class ModelScorer:
    """The ml stage's learned decision for a batch."""

    model: LearnedModel
    name: str = "model"
    min_net_profit: int = 0  # native wei (the strategy's)

    def score(self, c: Columns, history: OutcomeHistory, now: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The batch's features (``features.FEATURES`` columns), P(success) and EV: one pass
        of the serving kernel (``arbbot.scoring.kernel``), or for a model too deep for it
        the features and each model in turn."""
        serving = self.model.serving()
        if serving is not None:
            return serving.score(c, history, now)  # type: ignore[no-any-return]
        X = from_columns(c, history, now)
        p, ev = self.model.expected_values(X, c.net_native, c.gas_native, FEATURES)
        return X, p, ev

    def decide(
        self, opps: Sequence[Opportunity], c: Columns, history: OutcomeHistory, now: float = 0.0,
        rows: Callable[[np.ndarray], Sequence[Mapping[str, float]]] | None = None,
    ) -> list[ScoredOpportunity]:
        """Every opportunity of the batch (``c``: its columns) with its final decision, best EV
        first, unpriced last (ties: the lower ``path_id``, then the earlier); as the rule's
        ``decide``, no pool is used twice among the ``execute`` ones. ``rows``: the
        features to attach to each verdict, from the batch's matrix (none when omitted).
        The hot path of the ml stage: the decisions and reasons are made first (a reason
        formatted only where it carries numbers, an overlap's once per claimed pool), then
        the records in one ``map``."""
        X, p_arr, ev_arr = self.score(c, history, now)
        n = len(opps)
        values = c.values
        unpriced = values[C_PRICED] == 0
        ranked = np.lexsort((-ev_arr, unpriced))  # stable: ties stay in batch order
        key_u, key_ev = unpriced[ranked], ev_arr[ranked]
        if n > 1 and ((key_u[1:] == key_u[:-1]) & (key_ev[1:] == key_ev[:-1])).any():  # ties: by path_id
            order = sorted(range(n), key=lambda i: (bool(unpriced[i]), -ev_arr[i], opps[i].path_id, i))
        else:
            order = ranked.tolist()
        p, ev, net, priced = p_arr.tolist(), ev_arr.tolist(), values[C_NET_NATIVE].tolist(), (~unpriced).tolist()
        end = np.cumsum(values[C_HOPS].astype(np.int64))
        first, stop, pool_ids = (end - values[C_HOPS].astype(np.int64)).tolist(), end.tolist(), c.pool_ids.tolist()
        floor = self.min_net_profit
        claimed: dict[int, int] = {}  # pool -> the row executing through it (as rule.one_per_pool)
        overlap: dict[int, str] = {}  # pool -> the reason of a skip through it (one claimer, one reason)
        decisions: list[Decision] = []
        reasons: list[str] = []
        decide, say = decisions.append, reasons.append
        for i in order:  # the decisions and reasons, best first; the records are made in one go below
            if not priced[i]:
                decide("skip")
                say(f"no price in the native token for {opps[i].tokens[0]}: worth unknown")
            elif net[i] <= floor:
                decide("skip")
                say("net profit below minimum")
            elif ev[i] <= floor:
                decide("skip")
                say(f"P(success) {p[i]:.2f}: EV {ev[i]:.3g} wei too low")
            else:
                pools = pool_ids[first[i]:stop[i]]  # its pools, as ids of the batch
                for q in pools:
                    if q in claimed:
                        reason = overlap.get(q)
                        if reason is None:  # the pool as its first overlapping cycle spells it (ids: lower case)
                            reason = overlap[q] = (f"overlaps a better cycle through pool "
                                                   f"{opps[i].pools[pools.index(q)].lower()} "
                                                   f"(path {opps[claimed[q]].path_id})")
                        decide("skip")
                        say(reason)
                        break
                else:
                    for q in pools:
                        claimed[q] = i
                    decide("execute")
                    say(f"P(success) {p[i]:.2f}, EV {ev[i]:.3g} wei")
        feats: Sequence[Mapping[str, float] | None] = [None] * n if rows is None else rows(X)
        scores = [p[i] if priced[i] else 0.0 for i in order]
        return list(map(ScoredOpportunity, map(opps.__getitem__, order), scores, decisions, reasons,
                        repeat(self.name, n), map(feats.__getitem__, order)))


def dump(model: LearnedModel) -> bytes:
    """The artefact bytes stored in the registry row: both models' arrays (``.npz``, no
    pickle)."""
    models = {"success": model.compiled}
    if model.profit is not None:
        models["profit"] = model.profit
    return pack(models)


def digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def load(blob: bytes | None, sha256: str) -> LearnedModel:
    """The model in ``blob``, only if its SHA-256 is ``sha256`` (both from the same registry
    row: bytes altered anywhere else are refused before they are read). Reading never
    unpickles: the artefact is arrays, checked before use."""
    if not blob:
        raise ModelError("the artefact is missing")
    if not sha256 or digest(bytes(blob)) != sha256:
        raise ModelError("the artefact does not match its recorded SHA-256: refused, not read")
    try:
        models = unpack(bytes(blob))
    except ArbbotError as exc:
        raise ModelError(f"the artefact does not load: {exc}") from exc
    success, profit = models.get("success"), models.get("profit")
    if success is None or set(models) - {"success", "profit"}:
        raise ModelError(f"the artefact holds {sorted(models)}, not a classifier of success (and a regressor)")
    if profit is not None and profit.features != success.features:
        raise ModelError("the artefact's regressor expects other features than its classifier")
    return LearnedModel(features=success.features, compiled=success, profit=profit)
