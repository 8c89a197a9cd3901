"""The learned scorer's features: one function, ``matrix``, turns a batch of opportunities
into a float matrix (one row each, columns named by ``FEATURES``), from what is known when
the ml stage decides: the opportunity itself, the time, and the recent outcomes of its
path and pools (``OutcomeHistory``). It runs in two steps: ``columns`` gathers the batch's
records into arrays (the one pass over Python objects), ``from_columns`` computes every
feature from those in numpy. The ml stage computes it for every batch, under the
rule too, and the features are recorded with each opportunity; training reads those
recorded rows, so a model is trained on exactly what serving computed (tests/scoring).

Also owns what an execution's final status teaches (``outcome_kind``): success, a revert
(gas paid) or a stale drop (the cycle no longer paid at re-validation: someone was first).
Floats here are features and estimates only; money math stays in integers elsewhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Literal, Mapping, Sequence

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
    "pool_profit_share",  # worst pool: mean realised / predicted net profit of its recent successes
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
    """One execution's lesson: the cycle, its pools, its opportunity's block, and for a
    success the share of the predicted net profit it realised."""

    block_number: int
    path_id: str
    pools: tuple[str, ...]
    kind: OutcomeKind
    share: float = 1.0


def profit_share(realised_net: int | float, predicted_net: int | float) -> float:
    """Realised over predicted net profit, clipped to [-1, 2] (a success worth what was
    predicted: 1)."""
    if predicted_net <= 0:
        return 1.0
    return min(2.0, max(-1.0, float(realised_net) / float(predicted_net)))


class _Interned:
    """Stable small integers for pool addresses and path ids, per process: a batch's
    columns carry those, so the features are gathered from the history's tables by numpy
    indexing, no per-pool dictionary lookup. Bounded by the pools and cycles the process
    ever sees (thousands, tens of thousands)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def get(self, key: str) -> int:
        i = self.ids.get(key)
        if i is None:
            i = self.ids[key] = len(self.ids) + 1  # 0: none
        return i


_POOLS, _PATHS = _Interned(), _Interned()


class OutcomeHistory:
    """Recent outcomes, counted per pool and per path, as of one block: those of blocks
    ``[block - WINDOW_BLOCKS, block - LAG_BLOCKS]`` (``as_of``). ``pool_table`` and
    ``path_table`` are the same counts as arrays indexed by the interned ids of
    ``Columns`` (row 0 and any id past the end: no history)."""

    def __init__(self, outcomes: Iterable[Outcome] = (), *, as_of: int | None = None) -> None:
        # pool -> [attempts, reverted, stale, last failed block, successes, sum of their shares]
        self.pool: dict[str, list[float]] = {}
        self.path: dict[str, list[int]] = {}  # path -> [attempts, failures]
        for o in outcomes:
            if as_of is not None and not as_of - WINDOW_BLOCKS <= o.block_number <= as_of - LAG_BLOCKS:
                continue
            failed = o.kind != "success"
            for p in o.pools:
                s = self.pool.setdefault(p.lower(), [0, 0, 0, -1, 0, 0.0])
                s[0] += 1
                s[1] += o.kind == "reverted"
                s[2] += o.kind == "stale"
                if failed:
                    s[3] = max(s[3], o.block_number)
                else:
                    s[4] += 1
                    s[5] += o.share
            t = self.path.setdefault(o.path_id, [0, 0])
            t[0] += 1
            t[1] += failed
        self.pool_table = self._table({_POOLS.get(p): s for p, s in self.pool.items()}, [0, 0, 0, -1, 0, 0.0])
        self.path_table = self._table({_PATHS.get(p): s for p, s in self.path.items()}, [0, 0])

    @staticmethod
    def _table(rows: Mapping[int, Sequence[float]], empty: Sequence[float]) -> np.ndarray:
        table = np.tile(np.array(empty, dtype=np.float64), (max(rows, default=0) + 1, 1))
        if rows:
            table[np.fromiter(rows, np.int64, len(rows))] = np.array(list(rows.values()), dtype=np.float64)
        return table


def _log10(values: np.ndarray) -> np.ndarray:
    return np.log10(np.maximum(values, 1.0))


@dataclass(frozen=True)
class Columns:
    """A batch of opportunities as arrays (float64 unless said), in batch order: what the
    features are computed from."""

    priced: np.ndarray  # bool: the start token has a native price
    profit_native: np.ndarray  # 0 when unpriced
    gas_native: np.ndarray
    profit: np.ndarray  # gross, in the start token
    amount_in: np.ndarray
    hops: np.ndarray  # int64
    v3_hops: np.ndarray
    observed_at: np.ndarray
    gas_price_wei: np.ndarray
    chain_id: np.ndarray
    block_number: np.ndarray
    pool_ids: np.ndarray  # int64, every hop's pool (interned), the batch's cycles one after another
    path_ids: np.ndarray  # int64, interned

    def __len__(self) -> int:
        return len(self.path_ids)


def columns(opps: Sequence[Opportunity]) -> Columns:
    """Gather a batch's records into arrays: one generator pass per field (numpy reads
    them straight into its buffer, no intermediate tuples)."""
    n = len(opps)

    def col(values: Iterable[float], dtype: type = np.float64) -> np.ndarray:
        return np.fromiter(values, dtype, n)

    hops = col((len(o.pools) for o in opps), np.int64)
    pool_id, path_id = _POOLS.get, _PATHS.get

    return Columns(
        priced=col((o.profit_native is not None for o in opps), np.bool_),
        profit_native=col((o.profit_native or 0 for o in opps)),
        gas_native=col((o.gas_estimate * o.gas_price_wei for o in opps)),
        profit=col((o.amount_out - o.amount_in for o in opps)),
        amount_in=col((o.amount_in for o in opps)),
        hops=hops,
        v3_hops=col((o.hop_kinds.count("v3") for o in opps)),
        observed_at=col((o.observed_at for o in opps)),
        gas_price_wei=col((o.gas_price_wei for o in opps)),
        chain_id=col((o.chain_id for o in opps)),
        block_number=col((o.block_number for o in opps)),
        pool_ids=np.fromiter((pool_id(p.lower()) for o in opps for p in o.pools), np.int64, int(hops.sum())),
        path_ids=col((path_id(o.path_id) for o in opps), np.int64),
    )


def matrix(opps: Sequence[Opportunity], history: OutcomeHistory | None = None, now: float = 0.0) -> np.ndarray:
    """The features of a batch, ``(len(opps), len(FEATURES))`` float64, in batch order.
    ``now`` is the decision's unix time (the state age is 0 when either time is unknown)."""
    return from_columns(columns(opps), history, now)


def from_columns(c: Columns, history: OutcomeHistory | None = None, now: float = 0.0) -> np.ndarray:
    """``matrix`` from a batch already in columns."""
    history = history or OutcomeHistory()
    n = len(c)
    out = np.empty((n, len(FEATURES)))
    if n == 0:
        return out
    priced = c.priced.astype(np.float64)
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

    # pool statistics: gather each opportunity's pools from one table, reduce per row
    table = history.pool_table
    hops = c.hops
    width = int(hops.max())
    starts = np.cumsum(hops) - hops
    rows = np.repeat(np.arange(n), hops)
    cols = np.arange(len(c.pool_ids)) - starts[rows]
    ids = np.zeros((n, width), dtype=np.int64)  # 0: no pool there (a shorter cycle) or no history
    mask = np.zeros((n, width), dtype=bool)
    ids[rows, cols] = np.where(c.pool_ids < len(table), c.pool_ids, 0)
    mask[rows, cols] = True
    stats = table[ids]  # (n, width, 6)
    attempts = stats[..., 0]
    rate_den = attempts + 1.0
    out[:, INDEX["pool_attempts"]] = np.log1p(attempts.max(axis=1))
    out[:, INDEX["pool_revert_rate"]] = (stats[..., 1] / rate_den).max(axis=1)
    out[:, INDEX["pool_stale_rate"]] = (stats[..., 2] / rate_den).max(axis=1)
    last_fail = stats[..., 3].max(axis=1)
    since = np.where(last_fail >= 0, c.block_number - last_fail, WINDOW_BLOCKS)
    out[:, INDEX["blocks_since_pool_fail"]] = np.clip(since, 0, WINDOW_BLOCKS)
    share = (stats[..., 5] + 1.0) / (stats[..., 4] + 1.0)  # one prior success worth what was predicted
    out[:, INDEX["pool_profit_share"]] = np.where(mask, share, np.inf).min(axis=1)
    paths = history.path_table
    path = paths[np.where(c.path_ids < len(paths), c.path_ids, 0)]
    out[:, INDEX["path_attempts"]] = np.log1p(path[:, 0])
    out[:, INDEX["path_fail_rate"]] = path[:, 1] / (path[:, 0] + 1.0)
    return out


def as_mapping(row: np.ndarray) -> dict[str, float]:
    """One row by name, as recorded with its opportunity (finite floats only)."""
    return {name: float(v) if math.isfinite(v) else 0.0 for name, v in zip(FEATURES, row.tolist())}


def as_mappings(X: np.ndarray) -> list[dict[str, float]]:
    """Every row of a batch by name (``as_mapping`` of each, in one pass)."""
    clean = np.where(np.isfinite(X), X, 0.0)
    return [dict(zip(FEATURES, r)) for r in clean.tolist()]


def from_mappings(rows: Sequence[dict[str, float]], names: Sequence[str] = FEATURES) -> np.ndarray:
    """Recorded features back into a matrix with the columns ``names`` (a model's own
    feature list); a name a row lacks is NaN (the trees treat it as missing)."""
    return np.array([[r.get(name, math.nan) for name in names] for r in rows], dtype=np.float64).reshape(
        len(rows), len(names)
    )
