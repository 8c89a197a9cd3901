"""The learned scorer as plain arrays: a trained, calibrated HistGradientBoosting classifier
(or a HistGradientBoosting regressor) flattened into its trees' nodes and its calibrator's
parameters (``CompiledModel``), scored by one compiled loop (numba) over the trees padded
into complete trees of one depth (``CompleteTrees``: no leaf test, no child pointer; also
what the serving kernel ``arbbot.scoring.kernel`` walks), or for trees deeper than
``MAX_COMPLETE_DEPTH`` by walking the nodes (over row blocks on all cores for a large
batch); stored as an ``.npz`` read with ``allow_pickle=False``: an
artefact is data, never code, so loading one cannot run anything. One artefact holds
several named models (``pack``/``unpack``: the classifier of success and the regressor of
realised profit travel and are checked together).

Mirrors scikit-learn 1.9's prediction exactly (tested against ``predict_proba``): the raw
score is the baseline plus each tree's leaf value, where a node sends a row left when its
feature is ``<=`` the node's threshold, or is NaN and the node's missing values go left
(``sklearn/ensemble/_hist_gradient_boosting/_predictor.pyx``); the calibrator maps the raw
score: sigmoid ``1 / (1 + exp(a x + b))`` (``_SigmoidCalibration``) or isotonic, a clipped
linear interpolation (``IsotonicRegression``); a regressor's raw score is its prediction
(calibration ``none``). Numerical categories are not used.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Sequence

import numpy as np
from numba import njit, prange

from arbbot.errors import ArbbotError
from arbbot.paths._kernels import _CACHE

FORMAT = "arbbot-trees-v1"  # one model per artefact (still read)
BUNDLE = "arbbot-trees-v2"  # named models in one artefact
CALIBRATIONS = ("sigmoid", "isotonic", "none")
#: from this many rows a batch is scored on all cores (threads cost more than they save below)
PARALLEL_ROWS = 8192
_BLOCK = 256  # rows per block: a block's rows walk one tree while its nodes are in cache
_ARRAYS = ("feature", "threshold", "missing_left", "left", "right", "is_leaf", "value", "roots", "cal_x", "cal_y")


@njit(nogil=True, cache=_CACHE)
def _block_scores(
    X: np.ndarray, out: np.ndarray, start: int, stop: int, feature: np.ndarray, threshold: np.ndarray,
    missing_left: np.ndarray, left: np.ndarray, right: np.ndarray, is_leaf: np.ndarray, value: np.ndarray,
    roots: np.ndarray,
) -> None:  # pragma: no cover - compiled
    for t in range(roots.shape[0]):
        root = roots[t]
        for i in range(start, stop):
            node = root
            while not is_leaf[node]:
                x = X[i, feature[node]]
                if math.isnan(x):
                    go_left = missing_left[node] != 0
                else:
                    go_left = x <= threshold[node]
                node = left[node] if go_left else right[node]
            out[i] += value[node]


@njit(nogil=True, cache=_CACHE)
def _raw_scores(
    X: np.ndarray, feature: np.ndarray, threshold: np.ndarray, missing_left: np.ndarray, left: np.ndarray,
    right: np.ndarray, is_leaf: np.ndarray, value: np.ndarray, roots: np.ndarray, baseline: float,
) -> np.ndarray:  # pragma: no cover - compiled
    n = X.shape[0]
    out = np.full(n, baseline)
    for start in range(0, n, _BLOCK):
        _block_scores(X, out, start, min(n, start + _BLOCK), feature, threshold, missing_left, left, right,
                      is_leaf, value, roots)
    return out


@njit(nogil=True, parallel=True, cache=_CACHE)
def _raw_scores_parallel(
    X: np.ndarray, feature: np.ndarray, threshold: np.ndarray, missing_left: np.ndarray, left: np.ndarray,
    right: np.ndarray, is_leaf: np.ndarray, value: np.ndarray, roots: np.ndarray, baseline: float,
) -> np.ndarray:  # pragma: no cover - compiled
    n = X.shape[0]
    out = np.full(n, baseline)
    for b in prange((n + _BLOCK - 1) // _BLOCK):
        start = b * _BLOCK
        _block_scores(X, out, start, min(n, start + _BLOCK), feature, threshold, missing_left, left, right,
                      is_leaf, value, roots)
    return out


@dataclass(frozen=True, eq=False)
class CompiledModel:
    """A classifier of success (or a regressor) as arrays: flat nodes (children are
    absolute indices), ``roots`` the first node of each tree, and the calibration
    (``sigmoid``: ``cal_x`` is ``[a, b]``; ``isotonic``: the thresholds ``cal_x`` and values
    ``cal_y``; ``none``: the raw score, a regressor's prediction)."""

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
        X = np.ascontiguousarray(X, dtype=np.float64)
        full = self.complete
        if full is not None:
            out = np.empty(len(X))
            _complete_scores(X, out, full.feature, full.threshold, full.nan_right, full.leaf, full.depth,
                             self.baseline)
            return out
        kernel = _raw_scores_parallel if len(X) >= PARALLEL_ROWS else _raw_scores
        return kernel(X, self.feature, self.threshold, self.missing_left, self.left, self.right, self.is_leaf,
                      self.value, self.roots, self.baseline)

    @cached_property
    def depth(self) -> int:
        """The deepest leaf's depth (edges from its root)."""
        depth = np.zeros(len(self.feature), dtype=np.int64)
        for node in range(len(self.feature)):  # children are below their parent: one pass
            if not self.is_leaf[node]:
                depth[self.left[node]] = depth[self.right[node]] = depth[node] + 1
        return int(depth.max(initial=0))

    @cached_property
    def complete(self) -> CompleteTrees | None:
        """The trees as complete ones of one depth (``complete_trees``), or ``None`` when
        they are deeper than ``MAX_COMPLETE_DEPTH`` (the node-walking loop scores them)."""
        return complete_trees([self]) if self.depth <= MAX_COMPLETE_DEPTH else None

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Calibrated P(success) of each row (columns in ``features`` order); a regressor's
        prediction."""
        f = self.raw(X)
        if self.calibration == "none":
            return f
        if self.calibration == "sigmoid":
            a, b = self.cal_x
            return 1.0 / (1.0 + np.exp(a * f + b))
        return np.interp(f, self.cal_x, self.cal_y)  # clips outside the thresholds, as IsotonicRegression

    def meta(self) -> dict[str, Any]:
        return {"features": list(self.features), "baseline": self.baseline, "calibration": self.calibration}

    def to_bytes(self) -> bytes:
        """A single-model artefact (``FORMAT``)."""
        buf = io.BytesIO()
        meta = {"format": FORMAT, **self.meta()}
        np.savez(buf, meta=np.array(json.dumps(meta)), **{k: getattr(self, k) for k in _ARRAYS})
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> CompiledModel:
        """Read a single-model artefact without unpickling; ``ArbbotError`` if it is not
        one, or if its nodes would send a row out of its arrays."""
        models = unpack(blob)
        if set(models) != {"success"}:
            raise ArbbotError(f"not an {FORMAT} artefact")
        return models["success"]

    @classmethod
    def from_arrays(cls, meta: Any, arrays: dict[str, np.ndarray]) -> CompiledModel:
        if not isinstance(meta, dict):
            raise ArbbotError("a model without its description")
        try:
            model = cls(
                features=tuple(str(f) for f in meta["features"]),
                feature=arrays["feature"].astype(np.int64), threshold=arrays["threshold"].astype(np.float64),
                missing_left=arrays["missing_left"].astype(np.uint8), left=arrays["left"].astype(np.int64),
                right=arrays["right"].astype(np.int64), is_leaf=arrays["is_leaf"].astype(np.uint8),
                value=arrays["value"].astype(np.float64), roots=arrays["roots"].astype(np.int64),
                baseline=float(meta["baseline"]), calibration=str(meta["calibration"]),
                cal_x=arrays["cal_x"].astype(np.float64), cal_y=arrays["cal_y"].astype(np.float64),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArbbotError(f"not a model artefact: {type(exc).__name__}: {exc}") from exc
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
        if self.calibration not in CALIBRATIONS or (self.calibration == "sigmoid" and len(self.cal_x) != 2):
            raise ArbbotError(f"unknown calibration {self.calibration!r}")


#: complete trees up to this deep (2**depth leaves each); a deeper model walks its nodes
MAX_COMPLETE_DEPTH = 8


@dataclass(frozen=True, eq=False)
class CompleteTrees:
    """Trees padded into complete binary trees of one ``depth``, node ``k``'s children at
    ``2k + 1`` and ``2k + 2`` (rows: trees; ``2**depth - 1`` inner nodes, ``2**depth``
    leaves): a row walks exactly ``depth`` levels with no test for a leaf and no pointer to
    load, the walk of every tree independent of the others. A padding node sends every row
    left (threshold +inf, NaN left) and a leaf above the bottom fills all the leaves under
    it, so each row reaches the value it reaches in the original tree: the same sum, in the
    same order, to the last bit."""

    feature: np.ndarray  # (trees, 2**depth - 1) int64
    threshold: np.ndarray  # float64: right when x > threshold
    nan_right: np.ndarray  # uint8: a NaN goes right (scikit-learn's missing_go_to_left, negated)
    leaf: np.ndarray  # (trees, 2**depth) float64
    depth: int


def complete_trees(models: Sequence[CompiledModel]) -> CompleteTrees:
    """The trees of ``models``, one after the other, as complete trees of their common
    (deepest) depth."""
    depth = max((m.depth for m in models), default=0)
    inner, n_trees = 2**depth - 1, sum(len(m.roots) for m in models)
    feature = np.zeros((n_trees, inner), dtype=np.int64)
    threshold = np.full((n_trees, inner), np.inf)
    nan_right = np.zeros((n_trees, inner), dtype=np.uint8)
    leaf = np.zeros((n_trees, 2**depth))
    t = 0
    for m in models:
        for root in m.roots.tolist():
            stack = [(int(root), 0, 0)]  # (node, position, level)
            while stack:
                node, k, level = stack.pop()
                if m.is_leaf[node]:
                    first = (k - (2**level - 1)) << (depth - level)  # its leftmost bottom leaf
                    leaf[t, first:first + (1 << (depth - level))] = m.value[node]
                    continue
                feature[t, k], threshold[t, k] = m.feature[node], m.threshold[node]
                nan_right[t, k] = 0 if m.missing_left[node] else 1
                stack += [(int(m.left[node]), 2 * k + 1, level + 1), (int(m.right[node]), 2 * k + 2, level + 1)]
            t += 1
    return CompleteTrees(feature, threshold, nan_right, leaf, depth)


@njit(nogil=True, cache=_CACHE, inline="always")
def tree_sum(
    x: np.ndarray, feature: np.ndarray, threshold: np.ndarray, nan_right: np.ndarray, leaf: np.ndarray, depth: int,
    first: int, stop: int, total: float,
) -> float:  # pragma: no cover - compiled
    """``total`` plus the leaf row ``x`` reaches in each complete tree ``first..stop-1``,
    added in tree order (as scikit-learn adds them)."""
    inner = feature.shape[1]
    for t in range(first, stop):
        k = 0
        for _ in range(depth):
            v = x[feature[t, k]]
            k = 2 * k + 2 if v > threshold[t, k] or (v != v and nan_right[t, k] != 0) else 2 * k + 1
        total += leaf[t, k - inner]
    return total


@njit(nogil=True, cache=_CACHE)
def _complete_scores(
    X: np.ndarray, out: np.ndarray, feature: np.ndarray, threshold: np.ndarray, nan_right: np.ndarray,
    leaf: np.ndarray, depth: int, baseline: float,
) -> None:  # pragma: no cover - compiled
    for i in range(X.shape[0]):
        out[i] = tree_sum(X[i], feature, threshold, nan_right, leaf, depth, 0, feature.shape[0], baseline)


def pack(models: dict[str, CompiledModel]) -> bytes:
    """Named models in one artefact (``BUNDLE``): arrays only."""
    buf = io.BytesIO()
    meta = {"format": BUNDLE, "models": {name: m.meta() for name, m in models.items()}}
    arrays = {f"{name}.{k}": getattr(m, k) for name, m in models.items() for k in _ARRAYS}
    np.savez(buf, meta=np.array(json.dumps(meta)), **arrays)
    return buf.getvalue()


def unpack(blob: bytes) -> dict[str, CompiledModel]:
    """The named models of an artefact, read without unpickling and checked (a
    single-model ``FORMAT`` artefact is ``{"success": model}``); ``ArbbotError`` if it is
    not one, or if any node would send a row out of its arrays."""
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in z.files if k != "meta"}
    except Exception as exc:
        raise ArbbotError(f"not a model artefact: {type(exc).__name__}: {exc}") from exc
    if isinstance(meta, dict) and meta.get("format") == FORMAT:
        return {"success": CompiledModel.from_arrays(meta, arrays)}
    if not isinstance(meta, dict) or meta.get("format") != BUNDLE or not isinstance(meta.get("models"), dict):
        raise ArbbotError(f"not an {BUNDLE} artefact")
    return {
        name: CompiledModel.from_arrays(m, {k: arrays[f"{name}.{k}"] for k in _ARRAYS if f"{name}.{k}" in arrays})
        for name, m in meta["models"].items()
    }


def _flatten(booster: Any) -> tuple[dict[str, np.ndarray], np.ndarray, float]:
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
    flat = {k: np.concatenate(v) for k, v in parts.items()}
    return flat, np.array(roots, dtype=np.int64), float(np.ravel(booster._baseline_prediction)[0])


def _reloaded(model: CompiledModel) -> CompiledModel:
    (back,) = unpack(pack({"m": model})).values()  # the dtypes and checks of a loaded one
    return back


def compile_regressor(regressor: Any, features: Sequence[str]) -> CompiledModel:
    """Flatten a fitted ``HistGradientBoostingRegressor`` (squared error) into a
    ``CompiledModel`` whose prediction is the regressor's."""
    flat, roots, baseline = _flatten(regressor)
    return _reloaded(CompiledModel(features=tuple(features), **flat, roots=roots,  # type: ignore[arg-type]
                                   baseline=baseline, calibration="none", cal_x=np.zeros(0), cal_y=np.zeros(0)))


def compile_model(classifier: Any, features: Sequence[str]) -> CompiledModel:
    """Flatten a fitted ``CalibratedClassifierCV`` over one (frozen) binary
    ``HistGradientBoostingClassifier`` into a ``CompiledModel``."""
    (calibrated,) = classifier.calibrated_classifiers_
    booster = calibrated.estimator
    booster = getattr(booster, "estimator", booster)  # FrozenEstimator
    flat, roots, baseline = _flatten(booster)
    (cal,) = calibrated.calibrators
    if calibrated.method == "sigmoid":
        kind, cal_x, cal_y = "sigmoid", np.array([cal.a_, cal.b_], dtype=np.float64), np.zeros(0)
    elif calibrated.method == "isotonic":
        kind, cal_x, cal_y = "isotonic", np.asarray(cal.X_thresholds_, float), np.asarray(cal.y_thresholds_, float)
    else:
        raise ArbbotError(f"calibration {calibrated.method!r} is not supported")
    return _reloaded(CompiledModel(features=tuple(features), **flat, roots=roots,  # type: ignore[arg-type]
                                   baseline=baseline, calibration=kind, cal_x=cal_x, cal_y=cal_y))
