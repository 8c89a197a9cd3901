"""Feature drift: how far the features the ml stage sees now have moved from those its
model was trained on, per feature, as a population stability index (PSI).

``reference`` summarises the training window (decile edges and each bin's share; recorded
with the model version); ``psi`` compares a recent window against it. By the usual reading,
under 0.1 is no shift, 0.1-0.25 some, above 0.25 a shift the model has not seen (the alert
``ModelFeatureDrift`` fires past it).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

DRIFT_ALERT = 0.25
_EPS = 1e-4  # a share of 0 would make the index infinite


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    # bins (-inf, e1], (e1, e2], ..., (e_k, inf): the edges are the inner quantiles
    idx = np.searchsorted(edges, values, side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(np.float64)
    return counts / max(len(values), 1)


def reference(X: np.ndarray, names: Sequence[str], bins: int = 10) -> dict[str, Any]:
    """Per feature: the distinct inner quantile edges of ``X`` and the share in each bin
    (NaNs left out)."""
    out: dict[str, Any] = {}
    for j, name in enumerate(names):
        col = X[:, j][~np.isnan(X[:, j])]
        if len(col) == 0:
            continue
        edges = np.unique(np.quantile(col, np.linspace(0, 1, bins + 1)[1:-1]))
        out[name] = {"edges": edges.tolist(), "shares": _shares(col, edges).tolist()}
    return out


def psi(ref: dict[str, Any], X: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """The population stability index of each referenced feature of ``X`` (columns
    ``names``); a feature without reference or without values is left out."""
    out: dict[str, float] = {}
    for j, name in enumerate(names):
        r = ref.get(name)
        col = X[:, j][~np.isnan(X[:, j])] if len(X) else np.zeros(0)
        if r is None or len(col) == 0:
            continue
        expected = np.maximum(np.asarray(r["shares"], dtype=np.float64), _EPS)
        actual = np.maximum(_shares(col, np.asarray(r["edges"], dtype=np.float64)), _EPS)
        out[name] = float(np.sum((actual - expected) * np.log(actual / expected)))
    return out
