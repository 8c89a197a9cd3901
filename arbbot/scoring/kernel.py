"""The learned scorer's serving kernel: a batch's columns (``features.Columns``) to its
feature matrix, P(success) and expected value, in one compiled pass (numba, one thread):
per row, the feature function (``features.feature_row``, the one training's rows came
from), the classifier's trees and its calibration, the realised-profit regressor's trees,
and the EV, with no Python between them and nothing allocated per row.

``Scorer`` holds a ``LearnedModel``'s trees as complete trees (``trees.complete_trees``:
the classifier's first, then the regressor's) and its calibration as plain numbers, built
once when a model is loaded; ``Scorer.score`` gives what ``LearnedModel.expected_values``
over ``features.from_columns`` gives (tested against scikit-learn's ``predict_proba`` and
``predict``). A model deeper than ``trees.MAX_COMPLETE_DEPTH`` has no ``Scorer``
(``build`` returns ``None``): the stage then scores it in the separate steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from arbbot.paths._kernels import _CACHE
from arbbot.scoring.features import (
    C_GAS_NATIVE,
    C_NET_NATIVE,
    FEATURES,
    Columns,
    OutcomeHistory,
    columns,
    feature_row,
    from_columns,
)
from arbbot.scoring.model import RATIO_RANGE, LearnedModel
from arbbot.scoring import trees
from arbbot.scoring.trees import complete_trees, tree_sum

_CALIBRATION = {"none": 0, "sigmoid": 1, "isotonic": 2}


@njit(nogil=True, cache=_CACHE)
def _interp(x: float, xp: np.ndarray, fp: np.ndarray) -> float:  # pragma: no cover - compiled
    """``np.interp`` of one value (clipped to the ends, as ``IsotonicRegression``)."""
    n = xp.shape[0]
    if x <= xp[0]:
        return fp[0]
    if x >= xp[n - 1]:
        return fp[n - 1]
    lo, hi = 0, n - 1  # xp[lo] <= x < xp[hi]
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if xp[mid] <= x:
            lo = mid
        else:
            hi = mid
    slope = (fp[hi] - fp[lo]) / (xp[hi] - xp[lo])
    return slope * (x - xp[lo]) + fp[lo]


@njit(nogil=True, cache=_CACHE)
def _score(
    X: np.ndarray, p_out: np.ndarray, ev_out: np.ndarray, values: np.ndarray, pool_ids: np.ndarray,
    path_ids: np.ndarray, pool_table: np.ndarray, path_table: np.ndarray, now: float, model_cols: np.ndarray,
    feature: np.ndarray, threshold: np.ndarray, nan_right: np.ndarray, leaf: np.ndarray, depth: int,
    n_success: int, params: np.ndarray, cal_x: np.ndarray, cal_y: np.ndarray,
) -> None:  # pragma: no cover - compiled
    # params: success baseline, calibration (0 none, 1 sigmoid, 2 isotonic), a, b, profit baseline,
    # regressor (1) or not (0), the ratio's clip range
    n_trees = feature.shape[0]
    same = model_cols.shape[0] == 0  # the model's columns are FEATURES, in order
    x = np.empty(max(model_cols.shape[0], 1))
    start = 0
    for i in range(X.shape[0]):
        row = X[i]
        start = feature_row(row, i, start, values, pool_ids, path_ids, pool_table, path_table, now)
        if not same:
            for j in range(model_cols.shape[0]):
                c = model_cols[j]
                x[j] = row[c] if c >= 0 else math.nan
        m = row if same else x
        f = tree_sum(m, feature, threshold, nan_right, leaf, depth, 0, n_success, params[0])
        kind = params[1]
        if kind == 1.0:
            p = 1.0 / (1.0 + math.exp(params[2] * f + params[3]))
        elif kind == 2.0:
            p = _interp(f, cal_x, cal_y)
        else:
            p = f
        net = values[C_NET_NATIVE, i]
        profit = net
        if params[5] != 0.0:
            ratio = tree_sum(m, feature, threshold, nan_right, leaf, depth, n_success, n_trees, params[4])
            profit = net * min(max(ratio, params[6]), params[7])
        p_out[i] = p
        ev_out[i] = p * profit - (1.0 - p) * values[C_GAS_NATIVE, i]  # model.expected_value


@dataclass(frozen=True, eq=False)
class Scorer:
    """One model, ready for ``_score``."""

    model: LearnedModel
    model_cols: np.ndarray  # each model feature's FEATURES column (-1: missing, NaN); empty: FEATURES itself
    feature: np.ndarray
    threshold: np.ndarray
    nan_right: np.ndarray
    leaf: np.ndarray
    depth: int
    n_success: int
    params: np.ndarray
    cal_x: np.ndarray
    cal_y: np.ndarray

    def score(self, c: Columns, history: OutcomeHistory, now: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The batch's feature matrix (``FEATURES`` columns), P(success) and EV (native wei)."""
        n = len(c)
        X, p, ev = np.empty((n, len(FEATURES))), np.empty(n), np.empty(n)
        pool_table, path_table = history.tables(c)
        _score(X, p, ev, c.values, c.pool_ids, c.path_ids, pool_table, path_table, float(now),
               self.model_cols, self.feature, self.threshold, self.nan_right, self.leaf, self.depth, self.n_success,
               self.params, self.cal_x, self.cal_y)
        return X, p, ev


def build(model: LearnedModel) -> Scorer | None:
    """``model`` as a ``Scorer``, or ``None`` when its trees are too deep to complete."""
    parts = [model.compiled] + ([model.profit] if model.profit is not None else [])
    if max(m.depth for m in parts) > trees.MAX_COMPLETE_DEPTH:
        return None
    full = complete_trees(parts)
    success = model.compiled
    a, b = (float(success.cal_x[0]), float(success.cal_x[1])) if success.calibration == "sigmoid" else (0.0, 0.0)
    params = np.array([success.baseline, _CALIBRATION[success.calibration], a, b,
                       model.profit.baseline if model.profit is not None else 0.0,
                       1.0 if model.profit is not None else 0.0, *RATIO_RANGE], dtype=np.float64)
    index = {name: i for i, name in enumerate(FEATURES)}
    cols = (np.zeros(0, dtype=np.int64) if model.features == FEATURES
            else np.array([index.get(name, -1) for name in model.features], dtype=np.int64))
    return Scorer(model, cols, full.feature, full.threshold, full.nan_right, full.leaf, full.depth,
                  len(success.roots), params, np.ascontiguousarray(success.cal_x, dtype=np.float64),
                  np.ascontiguousarray(success.cal_y, dtype=np.float64))


def warm() -> None:
    """Compile the feature and serving kernels now (or load them from numba's disk cache):
    an ml worker calls this when it starts, so its first batch does not pay for it."""
    c, h = columns([]), OutcomeHistory()
    from_columns(c, h)
    _score(np.empty((0, len(FEATURES))), np.empty(0), np.empty(0), c.values, c.pool_ids, c.path_ids, *h.tables(c),
           0.0, np.zeros(0, dtype=np.int64), np.zeros((1, 1), dtype=np.int64), np.zeros((1, 1)),
           np.zeros((1, 1), dtype=np.uint8), np.zeros((1, 2)), 1, 1, np.zeros(8), np.zeros(0), np.zeros(0))
