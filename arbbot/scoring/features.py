"""The learned scorer's features: one function, ``matrix``, turns a batch of opportunities
into a float matrix (one row each, columns named by ``FEATURES``), from what is known when
the ml stage decides: the opportunity itself, the time, and the recent outcomes of its
path and pools (``OutcomeHistory``, counted exactly: the ml stage keeps them block by
block, ``arbbot.scoring.history``, equal to a fresh count). It runs in two steps:
``columns`` gathers the batch's records into arrays (the one pass over Python objects),
then ``feature_row``, one compiled function (numba), computes a row's features from those
arrays: ``from_columns`` runs it over a batch, and the serving kernel
(``arbbot.scoring.kernel``) runs the same function inside its one pass with the models.
The ml stage computes it for every batch, under the rule too, and the features are
recorded with each opportunity (``as_rows``: each verdict's row by name, read from the
batch's matrix only when recorded); training reads those recorded rows, so a model is
trained on exactly what serving computed (tests/scoring).

Also owns what an execution's final status teaches (``outcome_kind``): success, a revert
(gas paid) or a stale drop (the cycle no longer paid at re-validation: someone was first).
Floats here are features and estimates only; money math stays in integers elsewhere.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from itertools import chain, repeat
from operator import attrgetter, is_not, mul, sub
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence

import numpy as np
from numba import njit

from arbbot.paths._kernels import _CACHE
from arbbot.types import FeatureRow, FeatureTable, Opportunity

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


#: a success's share is counted exactly, as an integer in units of 2**-SHARE_BITS (the
#: smallest float: every float is a whole number of them), and made a float once, in ``tables``
SHARE_BITS = 1074
SHARE_ONE = 1 << SHARE_BITS

PoolStats = tuple[int, int, int, int, int, int]  # attempts, reverted, stale, last failed block, successes, share sum
PathStats = tuple[int, int]  # attempts, failures


def exact_share(share: float) -> int:
    """``share`` as a whole number of ``2**-SHARE_BITS`` (exact: a float's denominator is a
    power of two no greater than ``SHARE_ONE``)."""
    num, den = share.as_integer_ratio()
    return num << (SHARE_BITS + 1 - den.bit_length())


class OutcomeHistory:
    """Recent outcomes, counted per pool and per path, as of one block: those of blocks
    ``[block - WINDOW_BLOCKS, block - LAG_BLOCKS]`` (``as_of``). ``pool`` maps a pool (lower
    case) to ``PoolStats``, ``path`` a cycle to ``PathStats``; ``tables`` gives them for one
    batch as arrays indexed by its ``Columns``' ids (row 0: no history), each with one more
    column, ``log1p`` of its attempts (numpy's: the features are numpy's to the last bit).
    Its size is the window's outcomes', whatever the process has seen before.

    Every count is exact and none depends on the outcomes' order: the success shares are
    summed as exact integers (``exact_share``) and the sum rounded to a float once, so the
    history kept block by block (``arbbot.scoring.history.OutcomeWindow``, adding and
    subtracting whole blocks) equals this one built afresh from the same outcomes, bit for
    bit. Before, the shares were added as floats in the order read, and the sum carried
    their rounding errors: ``pool_profit_share`` may differ from what an earlier build
    served by those, a few 1e-16 (bench/ml/history.py: at most 4.4e-16 over 10,000 pools'
    sums of shares in [-1, 2]; in ulps of the feature up to ~170 where the shares nearly
    cancel to -1 and it is near 0), never for whole shares (paper successes' 1.0)."""

    def __init__(self, outcomes: Iterable[Outcome] = (), *, as_of: int | None = None) -> None:
        pool: dict[str, list[int]] = {}
        path: dict[str, list[int]] = {}
        for o in outcomes:
            if as_of is not None and not as_of - WINDOW_BLOCKS <= o.block_number <= as_of - LAG_BLOCKS:
                continue
            failed = o.kind != "success"
            share = 0 if failed else exact_share(o.share)
            for p in o.pools:
                s = pool.setdefault(p.lower(), [0, 0, 0, -1, 0, 0])
                s[0] += 1
                s[1] += o.kind == "reverted"
                s[2] += o.kind == "stale"
                if failed:
                    s[3] = max(s[3], o.block_number)
                else:
                    s[4] += 1
                    s[5] += share
            t = path.setdefault(o.path_id, [0, 0])
            t[0] += 1
            t[1] += failed
        self.pool: dict[str, PoolStats] = {k: tuple(v) for k, v in pool.items()}  # type: ignore[misc]
        self.path: dict[str, PathStats] = {k: tuple(v) for k, v in path.items()}  # type: ignore[misc]

    @classmethod
    def of(cls, pool: dict[str, PoolStats], path: dict[str, PathStats]) -> OutcomeHistory:
        """A history of these counts (taken, not copied: never changed afterwards)."""
        h = cls.__new__(cls)
        h.pool, h.path = pool, path
        return h

    def tables(self, c: Columns) -> tuple[np.ndarray, np.ndarray]:
        """The pool and path tables of the batch ``c``: row ``i`` the history of its id
        ``i`` (``c.pool_keys[i - 1]``, ``c.path_keys[i - 1]``); a pool's share sum
        correctly rounded (``int / int`` is)."""
        return (_table(self.pool, c.pool_keys, _POOL_EMPTY, _pool_row),
                _table(self.path, c.path_keys, _PATH_EMPTY))


def _pool_row(s: PoolStats) -> tuple[float, ...]:
    return (*s[:5], s[5] / SHARE_ONE)


_POOL_EMPTY, _PATH_EMPTY = (0, 0, 0, -1, 0, 0.0), (0, 0)
_NONE = {len(e): np.array([[*e, 0.0]]) for e in (_POOL_EMPTY, _PATH_EMPTY)}  # no history at all: row 0 only


def _table(stats: Mapping[str, Sequence[int]], keys: Sequence[str], empty: Sequence[float],
           row: Callable[[Any], Sequence[float]] = tuple) -> np.ndarray:
    """One row per key of a batch (after row 0, no history): its counts (as ``row`` makes
    them floats), then ``log1p`` of its attempts. A batch none of whose keys has history: row
    0 alone (the features read any id past the end as 0)."""
    found = list(map(stats.get, keys)) if stats else []
    hits = [i for i, s in enumerate(found, 1) if s is not None]
    if not hits:
        return _NONE[len(empty)]
    table = np.tile(np.array([*empty, 0.0], dtype=np.float64), (hits[-1] + 1, 1))
    table[hits, :-1] = np.array([row(found[i - 1]) for i in hits], dtype=np.float64)
    table[:, -1] = np.log1p(table[:, 0])
    return table


_EMPTY = OutcomeHistory()


#: rows of ``Columns.values``, in this order
COLUMNS = ("priced", "profit_native", "gas_native", "profit", "amount_in", "hops", "v3_hops", "observed_at",
           "gas_price_wei", "chain_id", "block_number", "net_native")
(_C_PRICED, _C_PROFIT_NATIVE, _C_GAS_NATIVE, _C_PROFIT, _C_AMOUNT_IN, _C_HOPS, _C_V3, _C_OBSERVED, _C_GAS_PRICE,
 _C_CHAIN, _C_BLOCK, C_NET_NATIVE) = range(len(COLUMNS))
C_GAS_NATIVE, C_PRICED, C_HOPS = _C_GAS_NATIVE, _C_PRICED, _C_HOPS


@dataclass(frozen=True)
class Columns:
    """A batch of opportunities as arrays, in batch order: what the features are computed
    from. ``values`` is ``(len(COLUMNS), n)`` float64, one contiguous row per field:
    ``priced`` (1: the start token has a native price), ``profit_native`` (0 when
    unpriced), ``gas_native``, ``profit`` (gross, in the start token), ``amount_in``,
    ``hops``, ``v3_hops``, ``observed_at``, ``gas_price_wei``, ``chain_id``,
    ``block_number``, ``net_native`` (``Opportunity.net_profit_native``, 0 when unpriced);
    ``pool_ids`` every hop's pool, the batch's cycles one after another, and ``path_ids``
    each cycle, as ids of this batch: id ``i`` is ``pool_keys[i - 1]`` (a pool's address in
    lower case, whatever its spelling) or ``path_keys[i - 1]`` (0: none). Ids are the
    batch's own, so nothing is kept from one batch to the next."""

    values: np.ndarray
    pool_ids: np.ndarray  # int64
    path_ids: np.ndarray  # int64
    pool_keys: tuple[str, ...] = ()
    path_keys: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.path_ids)

    def __getattr__(self, name: str) -> np.ndarray:
        """A field by name (``c.gas_native``)."""
        if name in COLUMNS:
            return self.values[COLUMNS.index(name)]
        raise AttributeError(name)


#: an opportunity's fields ``columns`` reads, in one call per record (C, no Python per field)
_FIELDS = attrgetter("profit_native", "gas_estimate", "gas_price_wei", "amount_out", "amount_in", "observed_at",
                     "chain_id", "block_number", "pools", "hop_kinds", "path_id")


def columns(opps: Sequence[Opportunity]) -> Columns:
    """Gather a batch's records into arrays: the records' fields read and transposed in C
    (``attrgetter``, ``zip``), each column derived by a C-level ``map`` over exact ints,
    and every column into one buffer of doubles (``array`` converts the ints, big ones
    too, as ``float(int)`` does), already in ``values``' row order."""
    n = len(opps)
    if n == 0:
        return Columns(np.zeros((len(COLUMNS), 0)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    (profit_native, gas_estimate, gas_price, amount_out, amount_in, observed_at, chain_id, block_number, pools,
     hop_kinds, path_id) = zip(*map(_FIELDS, opps))
    gas = list(map(mul, gas_estimate, gas_price))  # Opportunity.gas_cost_native
    hops = list(map(len, pools))
    values = np.empty((len(COLUMNS), n))
    head = array("d", [  # a list: ``array`` takes one in a single step, an iterator item by item
        *map(is_not, profit_native, repeat(None)), *[x or 0 for x in profit_native], *gas,
        *map(sub, amount_out, amount_in), *amount_in, *hops, *[k.count("v3") for k in hop_kinds],
    ])
    values[:_C_OBSERVED] = np.frombuffer(head, np.float64).reshape(_C_OBSERVED, n)
    for row, col in ((_C_OBSERVED, observed_at), (_C_GAS_PRICE, gas_price), (_C_CHAIN, chain_id),
                     (_C_BLOCK, block_number)):
        # the block's fields: one value for a block's batch (the decoder shares one object)
        values[row] = float(col[0]) if col.count(col[0]) == n else array("d", col)
    values[C_NET_NATIVE] = array("d", [0 if x is None else x - g for x, g in zip(profit_native, gas)])
    pool_ids, pool_keys = batch_ids(tuple(chain.from_iterable(pools)), str.lower)
    path_ids, path_keys = batch_ids(path_id)
    return Columns(values=values, pool_ids=pool_ids, path_ids=path_ids, pool_keys=pool_keys, path_keys=path_keys)


def batch_ids(
    spellings: Sequence[str], key: Callable[[str], str] | None = None,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Each of ``spellings`` as an id of its batch (from 1) and the batch's keys by id:
    spellings with the same ``key`` (e.g. an address in any case) share an id. In C (dict
    and ``map``), the key computed once per distinct spelling."""
    distinct = tuple(dict.fromkeys(spellings))
    keyed = distinct if key is None else tuple(map(key, distinct))
    keys = tuple(dict.fromkeys(keyed))
    index = dict(zip(keys, range(1, len(keys) + 1)))
    if key is not None:
        index = dict(zip(distinct, map(index.__getitem__, keyed)))
    return np.fromiter(map(index.__getitem__, spellings), np.int64, len(spellings)), keys


def matrix(opps: Sequence[Opportunity], history: OutcomeHistory | None = None, now: float = 0.0) -> np.ndarray:
    """The features of a batch, ``(len(opps), len(FEATURES))`` float64, in batch order.
    ``now`` is the decision's unix time (the state age is 0 when either time is unknown)."""
    return from_columns(columns(opps), history, now)


def from_columns(c: Columns, history: OutcomeHistory | None = None, now: float = 0.0) -> np.ndarray:
    """``matrix`` from a batch already in columns: ``feature_row`` over every row."""
    pool_table, path_table = (history or _EMPTY).tables(c)
    out = np.empty((len(c), len(FEATURES)))
    _fill(out, c.values, c.pool_ids, c.path_ids, pool_table, path_table, float(now))
    return out


# Column positions, compile-time constants in the kernel.
_PRICED, _LOG_PROFIT, _LOG_GAS, _MARGIN = (INDEX["priced"], INDEX["log_profit_native"], INDEX["log_gas_native"],
                                           INDEX["margin_over_gas"])
_NET, _EDGE, _HOPS, _V3 = INDEX["signed_log_net_native"], INDEX["edge"], INDEX["hops"], INDEX["v3_hops"]
_AGE, _GWEI, _CHAIN = INDEX["state_age_s"], INDEX["gas_price_gwei"], INDEX["chain_id"]
_P_ATTEMPTS, _P_REVERT, _P_STALE = INDEX["pool_attempts"], INDEX["pool_revert_rate"], INDEX["pool_stale_rate"]
_PATH_ATTEMPTS, _PATH_FAIL = INDEX["path_attempts"], INDEX["path_fail_rate"]
_SINCE, _SHARE = INDEX["blocks_since_pool_fail"], INDEX["pool_profit_share"]
_WINDOW = float(WINDOW_BLOCKS)


@njit(nogil=True, cache=_CACHE)
def feature_row(
    out: np.ndarray, i: int, start: int, values: np.ndarray, pool_ids: np.ndarray, path_ids: np.ndarray,
    pool_table: np.ndarray, path_table: np.ndarray, now: float,
) -> int:  # pragma: no cover - compiled
    """THE feature function: row ``i`` of a batch (``Columns``) into ``out`` (``FEATURES``
    order), its pools at ``pool_ids[start:]``; returns where the next row's pools start.
    Training (``matrix``: the recorded rows, the synthetic and paper datasets) and serving
    (``arbbot.scoring.kernel``) both run this one function."""
    pr = 1.0 if values[_C_PRICED, i] != 0 else 0.0
    profit = values[_C_PROFIT_NATIVE, i] * pr
    gas = values[_C_GAS_NATIVE, i]
    net = profit - gas * pr
    out[_PRICED] = pr
    out[_LOG_PROFIT] = math.log10(max(profit, 1.0))
    out[_LOG_GAS] = math.log10(max(gas, 1.0))
    out[_MARGIN] = min(profit / max(gas, 1.0), 1e6)
    sign = 1.0 if net > 0 else (-1.0 if net < 0 else 0.0)
    out[_NET] = sign * math.log10(1.0 + abs(net))
    out[_EDGE] = values[_C_PROFIT, i] / max(values[_C_AMOUNT_IN, i], 1.0)
    hops = values[_C_HOPS, i]
    out[_HOPS] = hops
    out[_V3] = values[_C_V3, i]
    observed = values[_C_OBSERVED, i]
    age = now - observed if observed > 0 and now > 0 else 0.0
    out[_AGE] = min(max(age, 0.0), MAX_STATE_AGE_S)
    out[_GWEI] = values[_C_GAS_PRICE, i] / 1e9
    out[_CHAIN] = values[_C_CHAIN, i]
    # the worst of its pools (no history: attempts 0, last failure -1)
    log_attempts, revert, stale, last_fail, share = 0.0, 0.0, 0.0, -1.0, math.inf
    n_pools = pool_table.shape[0]
    stop = start + int(hops)
    for k in range(start, stop):
        p = pool_ids[k]
        if p >= n_pools:
            p = 0
        den = pool_table[p, 0] + 1.0
        log_attempts = max(log_attempts, pool_table[p, 6])  # log1p(attempts) grows with them
        revert = max(revert, pool_table[p, 1] / den)
        stale = max(stale, pool_table[p, 2] / den)
        last_fail = max(last_fail, pool_table[p, 3])
        share = min(share, (pool_table[p, 5] + 1.0) / (pool_table[p, 4] + 1.0))  # one prior success at 1
    out[_P_ATTEMPTS] = log_attempts
    out[_P_REVERT] = revert
    out[_P_STALE] = stale
    since = values[_C_BLOCK, i] - last_fail if last_fail >= 0 else _WINDOW
    out[_SINCE] = min(max(since, 0.0), _WINDOW)
    out[_SHARE] = share
    t = path_ids[i]
    if t >= path_table.shape[0]:
        t = 0
    out[_PATH_ATTEMPTS] = path_table[t, 2]  # log1p(attempts)
    out[_PATH_FAIL] = path_table[t, 1] / (path_table[t, 0] + 1.0)
    return stop


@njit(nogil=True, cache=_CACHE)
def _fill(
    out: np.ndarray, values: np.ndarray, pool_ids: np.ndarray, path_ids: np.ndarray, pool_table: np.ndarray,
    path_table: np.ndarray, now: float,
) -> None:  # pragma: no cover - compiled
    start = 0
    for i in range(out.shape[0]):
        start = feature_row(out[i], i, start, values, pool_ids, path_ids, pool_table, path_table, now)


def as_mapping(row: np.ndarray) -> dict[str, float]:
    """One row by name, as recorded with its opportunity (finite floats only)."""
    return {name: float(v) if math.isfinite(v) else 0.0 for name, v in zip(FEATURES, row.tolist())}


def as_rows(X: np.ndarray) -> list[FeatureRow]:
    """Every row of a batch by name, as recorded with its verdict (``as_mapping`` of each):
    views of one ``FeatureTable``, the matrix made Python floats only when first read."""
    table = FeatureTable(FEATURES, lambda: np.where(np.isfinite(X), X, 0.0).tolist())
    return list(map(FeatureRow, repeat(table), range(len(X))))


def from_mappings(rows: Sequence[dict[str, float]], names: Sequence[str] = FEATURES) -> np.ndarray:
    """Recorded features back into a matrix with the columns ``names`` (a model's own
    feature list); a name a row lacks is NaN (the trees treat it as missing)."""
    return np.array([[r.get(name, math.nan) for name in names] for r in rows], dtype=np.float64).reshape(
        len(rows), len(names)
    )
