"""The learned scorer as plain arrays: a trained, calibrated HistGradientBoosting classifier
flattened into its trees' nodes and its calibrator's parameters (``CompiledModel``),
scored by one compiled loop (numba), and stored as an ``.npz`` read with
``allow_pickle=False``: an artefact is data, never code, so loading one cannot run anything.

Mirrors scikit-learn 1.9's prediction exactly (tested against ``predict_proba``): the raw
score is the baseline plus each tree's leaf value, where a node sends a row left when its
feature is ``<=`` the node's threshold, or is NaN and the node's missing values go left
(``sklearn/ensemble/_hist_gradient_boosting/_predictor.pyx``); the calibrator maps the raw
score: sigmoid ``1 / (1 + exp(a x + b))`` (``_SigmoidCalibration``) or isotonic, a clipped
linear interpolation (``IsotonicRegression``). Numerical categories are not used.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from numba import njit

from arbbot.errors import ArbbotError
from arbbot.paths._kernels import _CACHE

FORMAT = "arbbot-trees-v1"
_ARRAYS = ("feature", "threshold", "missing_left", "left", "right", "is_leaf", "value", "roots", "cal_x", "cal_y")


@njit(nogil=True, cache=_CACHE)
def _raw_scores(
    X: np.ndarray, feature: np.ndarray, threshold: np.ndarray, missing_left: np.ndarray, left: np.ndarray,
    right: np.ndarray, is_leaf: np.ndarray, value: np.ndarray, roots: np.ndarray, baseline: float,
) -> np.ndarray:  # pragma: no cover - compiled
    n = X.shape[0]
    out = np.empty(n)
    for i in range(n):
        total = baseline
        for t in range(roots.shape[0]):
            node = roots[t]
            while not is_leaf[node]:
                x = X[i, feature[node]]
                if math.isnan(x):
                    go_left = missing_left[node] != 0
                else:
                    go_left = x <= threshold[node]
                node = left[node] if go_left else right[node]
            total += value[node]
        out[i] = total
    return out


@dataclass(frozen=True, eq=False)
class CompiledModel:
    """A classifier of success as arrays: flat nodes (children are absolute indices),
    ``roots`` the first node of each tree, and the calibration (``sigmoid``: ``cal_x`` is
    ``[a, b]``; ``isotonic``: the thresholds ``cal_x`` and values ``cal_y``)."""

    features: tuple[str, ...]
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    is_leaf: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    baseline: float
    calibration: str
    cal_x: np.ndarray
    cal_y: np.ndarray

    def raw(self, X: np.ndarray) -> np.ndarray:
        return _raw_scores(
            np.ascontiguousarray(X, dtype=np.float64), self.feature, self.threshold, self.missing_left, self.left,
            self.right, self.is_leaf, self.value, self.roots, self.baseline,
        )

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Calibrated P(success) of each row (columns in ``features`` order)."""
        f = self.raw(X)
        if self.calibration == "sigmoid":
            a, b = self.cal_x
            return 1.0 / (1.0 + np.exp(a * f + b))
        return np.interp(f, self.cal_x, self.cal_y)  # clips outside the thresholds, as IsotonicRegression

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        meta = {"format": FORMAT, "features": list(self.features), "baseline": self.baseline,
                "calibration": self.calibration}
        np.savez(buf, meta=np.array(json.dumps(meta)), **{k: getattr(self, k) for k in _ARRAYS})
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> CompiledModel:
        """Read an artefact without unpickling; ``ArbbotError`` if it is not one, or if its
        nodes would send a row out of its arrays."""
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                arrays = {k: z[k] for k in _ARRAYS}
        except Exception as exc:
            raise ArbbotError(f"not a model artefact: {type(exc).__name__}: {exc}") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ArbbotError(f"not an {FORMAT} artefact")
        model = cls(
            features=tuple(str(f) for f in meta["features"]),
            feature=arrays["feature"].astype(np.int64), threshold=arrays["threshold"].astype(np.float64),
            missing_left=arrays["missing_left"].astype(np.uint8), left=arrays["left"].astype(np.int64),
            right=arrays["right"].astype(np.int64), is_leaf=arrays["is_leaf"].astype(np.uint8),
            value=arrays["value"].astype(np.float64), roots=arrays["roots"].astype(np.int64),
            baseline=float(meta["baseline"]), calibration=str(meta["calibration"]),
            cal_x=arrays["cal_x"].astype(np.float64), cal_y=arrays["cal_y"].astype(np.float64),
        )
        model.check()
        return model

    def check(self) -> None:
        """Every index in range and every path going down (no cycles): the compiled loop
        trusts the arrays."""
        n = len(self.feature)
        if not all(len(a) == n for a in (self.threshold, self.missing_left, self.left, self.right, self.is_leaf,
                                          self.value)):
            raise ArbbotError("model arrays of different lengths")
        inner = self.is_leaf == 0
        for child in (self.left, self.right):
            if inner.any() and ((child[inner] <= np.arange(n)[inner]) | (child[inner] >= n)).any():
                raise ArbbotError("a node's child is out of range or not below it")
        if ((self.roots < 0) | (self.roots >= n)).any():
            raise ArbbotError("a tree root out of range")
        if inner.any() and ((self.feature[inner] < 0) | (self.feature[inner] >= len(self.features))).any():
            raise ArbbotError("a node's feature out of range")
        if self.calibration not in ("sigmoid", "isotonic") or (self.calibration == "sigmoid" and len(self.cal_x) != 2):
            raise ArbbotError(f"unknown calibration {self.calibration!r}")


def compile_model(classifier: Any, features: Sequence[str]) -> CompiledModel:
    """Flatten a fitted ``CalibratedClassifierCV`` over one (frozen) binary
    ``HistGradientBoostingClassifier`` into a ``CompiledModel``."""
    (calibrated,) = classifier.calibrated_classifiers_
    booster = calibrated.estimator
    booster = getattr(booster, "estimator", booster)  # FrozenEstimator
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("feature", "threshold", "missing_left", "left", "right", "is_leaf", "value")}
    roots, offset = [], 0
    for (tree,) in booster._predictors:
        nodes = tree.nodes
        if nodes["is_categorical"].any():
            raise ArbbotError("categorical splits are not supported")
        roots.append(offset)
        parts["feature"].append(nodes["feature_idx"])
        parts["threshold"].append(nodes["num_threshold"])
        parts["missing_left"].append(nodes["missing_go_to_left"])
        parts["left"].append(nodes["left"].astype(np.int64) + offset)
        parts["right"].append(nodes["right"].astype(np.int64) + offset)
        parts["is_leaf"].append(nodes["is_leaf"])
        parts["value"].append(nodes["value"])
        offset += len(nodes)
    (cal,) = calibrated.calibrators
    if calibrated.method == "sigmoid":
        kind, cal_x, cal_y = "sigmoid", np.array([cal.a_, cal.b_], dtype=np.float64), np.zeros(0)
    elif calibrated.method == "isotonic":
        kind, cal_x, cal_y = "isotonic", np.asarray(cal.X_thresholds_, float), np.asarray(cal.y_thresholds_, float)
    else:
        raise ArbbotError(f"calibration {calibrated.method!r} is not supported")
    model = CompiledModel(
        features=tuple(features),
        **{k: np.concatenate(v) for k, v in parts.items()},  # type: ignore[arg-type]
        roots=np.array(roots, dtype=np.int64), baseline=float(np.ravel(booster._baseline_prediction)[0]),
        calibration=kind, cal_x=cal_x, cal_y=cal_y,
    )
    return CompiledModel.from_bytes(model.to_bytes())  # the dtypes and checks of a loaded one
