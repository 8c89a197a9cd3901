"""The learned scorer's features: one function, ``matrix``, turns a batch of opportunities
into a float matrix (one row each, columns named by ``FEATURES``), from what is known when
the ml stage decides: the opportunity itself, the time, and the recent outcomes of its
path and pools (``OutcomeHistory``). The ml stage computes it for every batch, under the
rule too, and the features are recorded with each opportunity; training reads those
recorded rows, so a model is trained on exactly what serving computed (tests/scoring).

Also owns what an execution's final status teaches (``outcome_kind``): success, a revert
(gas paid) or a stale drop (the cycle no longer paid at re-validation: someone was first).
Floats here are features and estimates only; money math stays in integers elsewhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

import numpy as np

from arbbot.types import Opportunity

FEATURES: tuple[str, ...] = (
    "priced",  # 1: the start token has a native price (else the value features are 0)
    "log_profit_native",  # log10 of the gross profit in native wei
    "log_gas_native",  # log10 of the gas cost at the offered price, native wei
    "margin_over_gas",  # gross profit / gas cost
    "signed_log_net_native",  # sign(net) x log10(1 + |net|)
    "edge",  # gross profit / amount in: the price gap the cycle closes
    "hops",
    "v3_hops",
    "state_age_s",  # from the block's arrival to the decision
    "gas_price_gwei",
    "chain_id",
    "pool_attempts",  # log1p of the busiest pool's recent attempts
    "pool_revert_rate",  # worst pool: reverts / (attempts + 1), recent window
    "pool_stale_rate",  # worst pool: stale drops / (attempts + 1)
    "path_attempts",  # log1p
    "path_fail_rate",  # (reverts + stale drops) / (attempts + 1) of this very cycle
    "blocks_since_pool_fail",  # since the last revert or stale drop on any of its pools (capped)
)
INDEX = {name: i for i, name in enumerate(FEATURES)}

OutcomeKind = Literal["success", "reverted", "stale"]
#: outcomes of the last this many blocks inform the rates; an outcome counts from ``LAG``
#: blocks after its opportunity's block (about when it is final and recorded)
WINDOW_BLOCKS = 300
LAG_BLOCKS = 2
MAX_STATE_AGE_S = 3600.0


def outcome_kind(status: str, reason: str = "", mode: str = "") -> OutcomeKind | None:
    """What one final execution teaches, or ``None`` when it says nothing about the
    opportunity (refused by a limit, the kill switch, a failed send, dry-run, a
    cancellation). Paper mode's ``simulated`` passed re-validation: a paper success."""
    if status == "success" or (status == "simulated" and mode == "paper"):
        return "success"
    if status == "reverted":
        return "reverted"
    if status == "dropped" and (reason.startswith("stale") or reason.startswith("re-validation reverted")):
        return "stale"
    return None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One execution's lesson: the cycle, its pools, its opportunity's block."""

    block_number: int
    path_id: str
    pools: tuple[str, ...]
    kind: OutcomeKind


class OutcomeHistory:
    """Recent outcomes, counted per pool and per path, as of one block: those of blocks
    ``[block - WINDOW_BLOCKS, block - LAG_BLOCKS]`` (``as_of``)."""

    def __init__(self, outcomes: Iterable[Outcome] = (), *, as_of: int | None = None) -> None:
        self.pool: dict[str, list[int]] = {}  # pool -> [attempts, reverted, stale, last failed block]
        self.path: dict[str, list[int]] = {}  # path -> [attempts, failures]
        for o in outcomes:
            if as_of is not None and not as_of - WINDOW_BLOCKS <= o.block_number <= as_of - LAG_BLOCKS:
                continue
            failed = o.kind != "success"
            for p in o.pools:
                s = self.pool.setdefault(p.lower(), [0, 0, 0, -1])
                s[0] += 1
                s[1] += o.kind == "reverted"
                s[2] += o.kind == "stale"
                if failed:
                    s[3] = max(s[3], o.block_number)
            t = self.path.setdefault(o.path_id, [0, 0])
            t[0] += 1
            t[1] += failed


def _log10(values: np.ndarray) -> np.ndarray:
    return np.log10(np.maximum(values, 1.0))


def matrix(opps: Sequence[Opportunity], history: OutcomeHistory | None = None, now: float = 0.0) -> np.ndarray:
    """The features of a batch, ``(len(opps), len(FEATURES))`` float64, in batch order.
    ``now`` is the decision's unix time (the state age is 0 when either time is unknown)."""
    history = history or OutcomeHistory()
    n = len(opps)
    out = np.zeros((n, len(FEATURES)))
    if n == 0:
        return out
    # per-opportunity scalars: one pass over the records, the rest in numpy
    raw = np.array(
        [
            (
                o.profit_native is not None,
                float(o.profit_native or 0),
                float(o.gas_cost_native),
                float(o.profit),
                float(o.amount_in),
                len(o.pools),
                sum(k == "v3" for k in o.hop_kinds),
                o.observed_at,
                float(o.gas_price_wei),
                o.chain_id,
                o.block_number,
            )
            for o in opps
        ],
        dtype=np.float64,
    )
    priced, profit, gas, profit_tok, amount_in, hops, v3, observed, gas_price, chain, block = raw.T
    profit = profit * priced
    net = profit - gas * priced
    out[:, INDEX["priced"]] = priced
    out[:, INDEX["log_profit_native"]] = _log10(profit)
    out[:, INDEX["log_gas_native"]] = _log10(gas)
    out[:, INDEX["margin_over_gas"]] = np.minimum(profit / np.maximum(gas, 1.0), 1e6)
    out[:, INDEX["signed_log_net_native"]] = np.sign(net) * np.log10(1.0 + np.abs(net))
    out[:, INDEX["edge"]] = profit_tok / np.maximum(amount_in, 1.0)
    out[:, INDEX["hops"]] = hops
    out[:, INDEX["v3_hops"]] = v3
    age = np.where((observed > 0) & (now > 0), now - observed, 0.0)
    out[:, INDEX["state_age_s"]] = np.clip(age, 0.0, MAX_STATE_AGE_S)
    out[:, INDEX["gas_price_gwei"]] = gas_price / 1e9
    out[:, INDEX["chain_id"]] = chain

    # pool statistics: gather each opportunity's pools from one table, reduce per row
    width = int(hops.max())
    table = np.zeros((len(history.pool) + 1, 4))  # row 0: a pool with no history
    table[0, 3] = -1
    index: dict[str, int] = {}
    for i, (pool, s) in enumerate(history.pool.items(), start=1):
        index[pool] = i
        table[i] = s
    ids = np.zeros((n, width), dtype=np.int64)
    mask = np.zeros((n, width), dtype=bool)
    for r, o in enumerate(opps):
        for c, p in enumerate(o.pools):
            ids[r, c] = index.get(p.lower(), 0)
            mask[r, c] = True
    stats = table[ids]  # (n, width, 4)
    attempts = np.where(mask, stats[..., 0], 0.0)
    rate_den = attempts + 1.0
    out[:, INDEX["pool_attempts"]] = np.log1p(attempts.max(axis=1))
    out[:, INDEX["pool_revert_rate"]] = np.where(mask, stats[..., 1] / rate_den, 0.0).max(axis=1)
    out[:, INDEX["pool_stale_rate"]] = np.where(mask, stats[..., 2] / rate_den, 0.0).max(axis=1)
    last_fail = np.where(mask, stats[..., 3], -1.0).max(axis=1)
    since = np.where(last_fail >= 0, block - last_fail, WINDOW_BLOCKS)
    out[:, INDEX["blocks_since_pool_fail"]] = np.clip(since, 0, WINDOW_BLOCKS)
    path = np.array([history.path.get(o.path_id, (0, 0)) for o in opps], dtype=np.float64)
    out[:, INDEX["path_attempts"]] = np.log1p(path[:, 0])
    out[:, INDEX["path_fail_rate"]] = path[:, 1] / (path[:, 0] + 1.0)
    return out


def as_mapping(row: np.ndarray) -> dict[str, float]:
    """One row by name, as recorded with its opportunity (finite floats only)."""
    return {name: float(v) if math.isfinite(v) else 0.0 for name, v in zip(FEATURES, row.tolist())}


def from_mappings(rows: Sequence[dict[str, float]], names: Sequence[str] = FEATURES) -> np.ndarray:
    """Recorded features back into a matrix with the columns ``names`` (a model's own
    feature list); a name a row lacks is NaN (the trees treat it as missing)."""
    return np.array([[r.get(name, math.nan) for name in names] for r in rows], dtype=np.float64).reshape(
        len(rows), len(names)
    )
