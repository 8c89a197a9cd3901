"""The learned scorer's earlier serving paths, kept as the benchmark's baselines (run in the
same process as the current one). Not used by the fleet.

* ``score_batch`` (the first, "before"): the records gathered one generator pass per field,
  the features computed in numpy over the batch (``from_columns`` as it was), each model
  scored by the generic node-walking loop (``arbbot.scoring.trees._raw_scores``) with its
  calibration in numpy, the features turned into dictionaries, and the decision built in
  Python; ``tests/scoring`` checks the current kernel against these features.
* ``previous_score_batch`` (the second, "previous"): the serving kernel as now, but the
  records gathered by one Python pass reading each record's fields, every verdict's
  features made a dictionary while deciding, and each verdict's reason formatted in the
  loop."""

from __future__ import annotations

from array import array
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from arbbot.scoring import features
from arbbot.scoring.features import (
    COLUMNS,
    FEATURES,
    INDEX,
    MAX_STATE_AGE_S,
    WINDOW_BLOCKS,
    Columns,
    OutcomeHistory,
)
from arbbot.scoring.model import RATIO_RANGE, LearnedModel, ModelScorer, expected_value
from arbbot.scoring.rule import RuleScorer, one_per_pool
from arbbot.scoring.trees import CompiledModel, _raw_scores
from arbbot.types import Opportunity, ScoredOpportunity


def columns(opps: Sequence[Opportunity]) -> Columns:
    """One generator pass per field."""
    n = len(opps)

    def col(values: Iterable[float], dtype: type = np.float64) -> np.ndarray:
        return np.fromiter(values, dtype, n)

    hops = col((len(o.pools) for o in opps), np.int64)
    pool_id, pool_keys = _interner()
    path_id, path_keys = _interner()
    fields = (
        col((o.profit_native is not None for o in opps)),
        col((o.profit_native or 0 for o in opps)),
        col((o.gas_estimate * o.gas_price_wei for o in opps)),
        col((o.amount_out - o.amount_in for o in opps)),
        col((o.amount_in for o in opps)),
        hops.astype(np.float64),
        col((o.hop_kinds.count("v3") for o in opps)),
        col((o.observed_at for o in opps)),
        col((o.gas_price_wei for o in opps)),
        col((o.chain_id for o in opps)),
        col((o.block_number for o in opps)),
        col((o.net_profit_native or 0 for o in opps)),
    )
    return Columns(
        values=np.stack(fields),
        pool_ids=np.fromiter((pool_id(p.lower()) for o in opps for p in o.pools), np.int64, int(hops.sum())),
        path_ids=col((path_id(o.path_id) for o in opps), np.int64),
        pool_keys=tuple(pool_keys), path_keys=tuple(path_keys),
    )


def _interner() -> tuple[Callable[[str], int], dict[str, int]]:
    """Ids of one batch's keys, from 1 in order of first sight (as ``features.batch_ids``),
    one Python call per key."""
    ids: dict[str, int] = {}

    def get(key: str) -> int:
        return ids.setdefault(key, len(ids) + 1)

    return get, ids


def _log10(values: np.ndarray) -> np.ndarray:
    return np.log10(np.maximum(values, 1.0))


def from_columns(c: Columns, history: OutcomeHistory | None = None, now: float = 0.0) -> np.ndarray:
    """The features in numpy over the whole batch."""
    history = history or OutcomeHistory()
    n = len(c)
    out = np.empty((n, len(FEATURES)))
    if n == 0:
        return out
    priced = (c.priced != 0).astype(np.float64)
    profit = c.profit_native * priced
    gas = c.gas_native
    net = profit - gas * priced
    out[:, INDEX["priced"]] = priced
    out[:, INDEX["log_profit_native"]] = _log10(profit)
    out[:, INDEX["log_gas_native"]] = _log10(gas)
    out[:, INDEX["margin_over_gas"]] = np.minimum(profit / np.maximum(gas, 1.0), 1e6)
    out[:, INDEX["signed_log_net_native"]] = np.sign(net) * np.log10(1.0 + np.abs(net))
    out[:, INDEX["edge"]] = c.profit / np.maximum(c.amount_in, 1.0)
    out[:, INDEX["hops"]] = c.hops
    out[:, INDEX["v3_hops"]] = c.v3_hops
    age = np.where((c.observed_at > 0) & (now > 0), now - c.observed_at, 0.0)
    out[:, INDEX["state_age_s"]] = np.clip(age, 0.0, MAX_STATE_AGE_S)
    out[:, INDEX["gas_price_gwei"]] = c.gas_price_wei / 1e9
    out[:, INDEX["chain_id"]] = c.chain_id
    table, paths = history.tables(c)
    hops = c.hops.astype(np.int64)
    width = int(hops.max())
    starts = np.cumsum(hops) - hops
    rows = np.repeat(np.arange(n), hops)
    cols = np.arange(len(c.pool_ids)) - starts[rows]
    ids = np.zeros((n, width), dtype=np.int64)
    mask = np.zeros((n, width), dtype=bool)
    ids[rows, cols] = np.where(c.pool_ids < len(table), c.pool_ids, 0)
    mask[rows, cols] = True
    stats = table[ids]
    attempts = stats[..., 0]
    rate_den = attempts + 1.0
    out[:, INDEX["pool_attempts"]] = np.log1p(attempts.max(axis=1))
    out[:, INDEX["pool_revert_rate"]] = (stats[..., 1] / rate_den).max(axis=1)
    out[:, INDEX["pool_stale_rate"]] = (stats[..., 2] / rate_den).max(axis=1)
    last_fail = stats[..., 3].max(axis=1)
    since = np.where(last_fail >= 0, c.block_number - last_fail, WINDOW_BLOCKS)
    out[:, INDEX["blocks_since_pool_fail"]] = np.clip(since, 0, WINDOW_BLOCKS)
    share = (stats[..., 5] + 1.0) / (stats[..., 4] + 1.0)
    out[:, INDEX["pool_profit_share"]] = np.where(mask, share, np.inf).min(axis=1)
    path = paths[np.where(c.path_ids < len(paths), c.path_ids, 0)]
    out[:, INDEX["path_attempts"]] = np.log1p(path[:, 0])
    out[:, INDEX["path_fail_rate"]] = path[:, 1] / (path[:, 0] + 1.0)
    return out


def _predict(m: CompiledModel, X: np.ndarray) -> np.ndarray:
    f = _raw_scores(np.ascontiguousarray(X, dtype=np.float64), m.feature, m.threshold, m.missing_left, m.left,
                    m.right, m.is_leaf, m.value, m.roots, m.baseline)
    if m.calibration == "none":
        return f
    if m.calibration == "sigmoid":
        a, b = m.cal_x
        return 1.0 / (1.0 + np.exp(a * f + b))
    return np.interp(f, m.cal_x, m.cal_y)


def expected_values(model: LearnedModel, X: np.ndarray, net: np.ndarray, gas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(success) and EV: each model a pass of its own over the matrix, calibration in numpy."""
    p = _predict(model.compiled, X)
    ratio = np.ones(len(X)) if model.profit is None else np.clip(_predict(model.profit, X), *RATIO_RANGE)
    return p, expected_value(p, net * ratio, gas)


def _decide(scorer: ModelScorer, opps: Sequence[Opportunity], X: np.ndarray,
            rows: Sequence[Mapping[str, float]]) -> list[ScoredOpportunity]:
    n = len(opps)
    net = np.fromiter((o.net_profit_native or 0 for o in opps), np.float64, n)
    gas = np.fromiter((o.gas_estimate * o.gas_price_wei for o in opps), np.float64, n)
    p_arr, ev_arr = expected_values(scorer.model, X, net, gas)
    priced = (X[:, INDEX["priced"]] > 0).tolist() if n else []
    p, ev, net_l = p_arr.tolist(), ev_arr.tolist(), net.tolist()
    floor, name = scorer.min_net_profit, scorer.name
    scored = []
    for i, o in enumerate(opps):
        feats = rows[i]
        if not priced[i]:
            s = ScoredOpportunity(o, 0.0, "skip", f"no price in the native token for {o.tokens[0]}: worth unknown",
                                  name, feats)
        elif net_l[i] <= floor:
            s = ScoredOpportunity(o, p[i], "skip", "net profit below minimum", name, feats)
        elif ev[i] <= floor:
            s = ScoredOpportunity(o, p[i], "skip", f"P(success) {p[i]:.2f}: EV {ev[i]:.3g} wei too low", name, feats)
        else:
            s = ScoredOpportunity(o, p[i], "execute", f"P(success) {p[i]:.2f}, EV {ev[i]:.3g} wei", name, feats)
        scored.append(s)
    order = sorted(range(n), key=lambda i: (not priced[i], -ev[i], opps[i].path_id, i))
    return one_per_pool(scored[i] for i in order)


def score_batch(opps: Sequence[Opportunity], *, rule: RuleScorer, model: ModelScorer | None = None,
                history: OutcomeHistory | None = None, now: float = 0.0) -> list[ScoredOpportunity]:
    """The ml stage's batch as it was: features, their dictionaries, then the decision."""
    X = from_columns(columns(opps), history, now)
    rows = as_mappings(X)
    if model is not None:
        return _decide(model, opps, X, rows)
    return rule.decide(opps, rows)


# --------------------------------------------------------------------------- the previous path


def previous_columns(opps: Sequence[Opportunity]) -> Columns:
    """One Python pass over the records into one buffer of doubles, one over their pools."""
    n = len(opps)
    path_id, path_keys = _interner()
    pool_id, pool_keys = _interner()
    flat = array("d", [x for o in opps for x in (
        o.profit_native is not None, o.profit_native or 0, o.gas_estimate * o.gas_price_wei, o.amount_out - o.amount_in,
        o.amount_in, len(o.pools), o.hop_kinds.count("v3"), o.observed_at, o.gas_price_wei, o.chain_id,
        o.block_number, o.net_profit_native or 0, path_id(o.path_id))])
    rows = np.frombuffer(flat, np.float64).reshape(n, len(COLUMNS) + 1)
    return Columns(
        values=np.ascontiguousarray(rows[:, :-1].T),
        pool_ids=np.fromiter((pool_id(p.lower()) for o in opps for p in o.pools), np.int64, int(rows[:, 5].sum())),
        path_ids=rows[:, -1].astype(np.int64), pool_keys=tuple(pool_keys), path_keys=tuple(path_keys),
    )


def as_mappings(X: np.ndarray) -> list[dict[str, float]]:
    """Every row of a batch as a dictionary by name, non-finite values 0."""
    clean = np.where(np.isfinite(X), X, 0.0)
    return [dict(zip(FEATURES, r)) for r in clean.tolist()]


def _previous_decide(
    scorer: ModelScorer, opps: Sequence[Opportunity], c: Columns, history: OutcomeHistory, now: float,
    rows: Callable[[np.ndarray], Sequence[Mapping[str, float]]],
) -> list[ScoredOpportunity]:
    X, p_arr, ev_arr = scorer.score(c, history, now)
    n = len(opps)
    feats = rows(X)
    unpriced = c.priced == 0
    order = np.lexsort((-ev_arr, unpriced)).tolist()
    key_u, key_ev = unpriced[order], ev_arr[order]
    if n > 1 and ((key_u[1:] == key_u[:-1]) & (key_ev[1:] == key_ev[:-1])).any():
        order = sorted(range(n), key=lambda i: (bool(unpriced[i]), -ev_arr[i], opps[i].path_id, i))
    p, ev, net, priced = p_arr.tolist(), ev_arr.tolist(), c.net_native.tolist(), (~unpriced).tolist()
    hops = c.hops.astype(np.int64)
    first, pool_ids = (np.cumsum(hops) - hops).tolist(), c.pool_ids.tolist()
    floor, name = scorer.min_net_profit, scorer.name
    claimed: dict[int, int] = {}
    scored: list[ScoredOpportunity] = []
    add = scored.append
    for i in order:
        o = opps[i]
        if not priced[i]:
            add(ScoredOpportunity(o, 0.0, "skip", f"no price in the native token for {o.tokens[0]}: worth unknown",
                                  name, feats[i]))
        elif net[i] <= floor:
            add(ScoredOpportunity(o, p[i], "skip", "net profit below minimum", name, feats[i]))
        elif ev[i] <= floor:
            add(ScoredOpportunity(o, p[i], "skip", f"P(success) {p[i]:.2f}: EV {ev[i]:.3g} wei too low", name,
                                  feats[i]))
        else:
            pools = pool_ids[first[i]:first[i] + len(o.pools)]
            for j, q in enumerate(pools):
                if q in claimed:
                    reason = (f"overlaps a better cycle through pool {o.pools[j].lower()} "
                              f"(path {opps[claimed[q]].path_id})")
                    add(ScoredOpportunity(o, p[i], "skip", reason, name, feats[i]))
                    break
            else:
                for q in pools:
                    claimed[q] = i
                add(ScoredOpportunity(o, p[i], "execute", f"P(success) {p[i]:.2f}, EV {ev[i]:.3g} wei", name,
                                      feats[i]))
    return scored


def previous_score_batch(opps: Sequence[Opportunity], *, rule: RuleScorer, model: ModelScorer | None = None,
                         history: OutcomeHistory | None = None, now: float = 0.0) -> list[ScoredOpportunity]:
    """The ml stage's batch as the previous change left it (the kernel, eager features)."""
    history = history or OutcomeHistory()
    c = previous_columns(opps)
    if model is not None:
        return _previous_decide(model, opps, c, history, now, as_mappings)
    return rule.decide(opps, as_mappings(features.from_columns(c, history, now)))
