"""The feature function: values from what is known at decision time, one batch the same
as its rows one by one, and the recent outcomes of a cycle's pools and path counted only
inside their window, the success shares exactly."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import numpy as np

from arbbot.scoring.features import (
    COLUMNS,
    FEATURES,
    INDEX,
    LAG_BLOCKS,
    WINDOW_BLOCKS,
    Outcome,
    OutcomeHistory,
    as_mapping,
    as_rows,
    columns,
    from_mappings,
    matrix,
    outcome_kind,
    profit_share,
)
from arbbot.scoring.synthetic import GAS, GAS_PRICE, make_opp, pool


def f(X: np.ndarray, row: int, name: str) -> float:
    return float(X[row, INDEX[name]])


def test_values_from_the_opportunity_and_the_time() -> None:
    o = make_opp(500, 1, 2, 3 * GAS * GAS_PRICE, observed_at=1000.0)
    X = matrix([o], now=1000.25)
    assert X.shape == (1, len(FEATURES))
    assert f(X, 0, "priced") == 1 and f(X, 0, "margin_over_gas") == 3.0
    assert f(X, 0, "log_gas_native") == np.log10(GAS * GAS_PRICE)
    assert f(X, 0, "hops") == 2 and f(X, 0, "v3_hops") == 0
    assert abs(f(X, 0, "state_age_s") - 0.25) < 1e-9
    assert f(X, 0, "gas_price_gwei") == 1.0 and f(X, 0, "chain_id") == 31337
    assert f(X, 0, "pool_attempts") == 0 and f(X, 0, "blocks_since_pool_fail") == WINDOW_BLOCKS
    unpriced = make_opp(500, 1, 2, 0)
    object.__setattr__(unpriced, "profit_native", None)
    U = matrix([unpriced])
    assert f(U, 0, "priced") == 0 and f(U, 0, "log_profit_native") == 0 and f(U, 0, "margin_over_gas") == 0


def test_pool_and_path_history_inside_the_window_only() -> None:
    outcomes = [
        Outcome(490, "p1-2", (pool(1), pool(2)), "reverted"),
        Outcome(491, "p1-3", (pool(1), pool(3)), "stale"),
        Outcome(492, "p1-3", (pool(1), pool(3)), "success"),
        Outcome(499, "p1-2", (pool(1), pool(2)), "reverted"),  # too recent at 500: not final yet
        Outcome(500 - WINDOW_BLOCKS - 1, "p1-2", (pool(1), pool(2)), "reverted"),  # too old
    ]
    h = OutcomeHistory(outcomes, as_of=500)
    X = matrix([make_opp(500, 1, 2, 3 * GAS * GAS_PRICE), make_opp(500, 4, 5, 3 * GAS * GAS_PRICE)], h)
    assert f(X, 0, "pool_attempts") == np.log1p(3)  # pool 1: blocks 490, 491, 492
    # the worst pool: pool 2 reverted once in one attempt (1/2); pool 1, 1 stale in 3 (1/4)
    assert f(X, 0, "pool_revert_rate") == 1 / 2 and f(X, 0, "pool_stale_rate") == 1 / 4
    assert f(X, 0, "path_attempts") == np.log1p(1) and f(X, 0, "path_fail_rate") == 1 / 2
    assert f(X, 0, "blocks_since_pool_fail") == 500 - 491
    assert f(X, 1, "pool_attempts") == 0 and f(X, 1, "path_fail_rate") == 0  # untouched pools
    assert f(X, 0, "pool_profit_share") == 1.0 and f(X, 1, "pool_profit_share") == 1.0


def test_the_share_of_the_predicted_profit_that_successes_realised() -> None:
    outcomes = [Outcome(480 + i, "p1-2", (pool(1), pool(2)), "success", 0.25) for i in range(3)]
    outcomes.append(Outcome(490, "p2-3", (pool(2), pool(3)), "success", 1.0))
    X = matrix([make_opp(500, 1, 2, 3 * GAS * GAS_PRICE), make_opp(500, 3, 4, 3 * GAS * GAS_PRICE)],
               OutcomeHistory(outcomes, as_of=500))
    # the worst pool: pool 1 realised a quarter three times (and one prior success at 1)
    assert f(X, 0, "pool_profit_share") == (3 * 0.25 + 1) / 4
    assert f(X, 1, "pool_profit_share") == 1.0
    assert profit_share(5, 10) == 0.5 and profit_share(-50, 10) == -1 and profit_share(7, 0) == 1.0
    assert 500 - LAG_BLOCKS == 498


def test_the_share_sum_is_exact_and_independent_of_the_order() -> None:
    """Ten successes of 0.1 realise 1.0, not the 0.9999999999999999 of adding them as floats
    in turn; any order gives the same sum."""
    tenths = [Outcome(500, f"p{i}", (pool(1),), "success", 0.1) for i in range(10)]
    assert sum(o.share for o in tenths) != 1.0
    h = OutcomeHistory(tenths, as_of=600)
    c = columns([make_opp(600, 1, 2, 10**16)])
    assert h.tables(c)[0][1, 5] == 1.0
    rng = np.random.default_rng(1)
    shares = rng.uniform(-1, 2, 500).tolist()
    outs = [Outcome(500, f"p{i}", (pool(1),), "success", s) for i, s in enumerate(shares)]
    want = float(sum(map(Fraction, shares)))
    for _ in range(3):
        outs = [outs[i] for i in rng.permutation(len(outs))]
        assert OutcomeHistory(outs, as_of=600).tables(c)[0][1, 5] == want


def test_a_batch_equals_its_rows_one_by_one_and_survives_recording() -> None:
    rng = np.random.default_rng(5)
    outcomes = [Outcome(int(b), f"p{a}-{a + 1}", (pool(int(a)), pool(int(a) + 1)), k)
                for b, a, k in zip(rng.integers(300, 600, 200), rng.integers(0, 9, 200),
                                   rng.choice(["success", "reverted", "stale"], 200))]
    h = OutcomeHistory(outcomes, as_of=600)
    opps = [make_opp(600, int(a), int(a) + 3, int(p), observed_at=99.0)
            for a, p in zip(rng.integers(0, 9, 50), rng.integers(1, 10**16, 50))]
    X = matrix(opps, h, now=100.0)
    for i, o in enumerate(opps):
        assert np.array_equal(matrix([o], h, now=100.0)[0], X[i])
    back = from_mappings([as_mapping(x) for x in X])
    assert np.array_equal(back, X)  # recorded as JSON-able floats and read back: bit for bit


def test_columns_hold_each_records_own_values_in_a_mixed_batch() -> None:
    base = make_opp(500, 1, 2, 3 * GAS * GAS_PRICE, observed_at=1000.0)
    opps = [
        base,
        replace(base, block_number=501, gas_price_wei=3 * 10**9 + 1, observed_at=1001.5, chain_id=10,
                hop_kinds=("v3", "v2"), pools=(pool(2).upper().replace("0X", "0x"), pool(3))),
        replace(base, profit_native=None, amount_in=2**200, amount_out=2**200 + 7),  # unpriced, a huge amount
        replace(base, profit_native=-5),
    ]
    c = columns(opps)
    want = {
        "priced": [o.profit_native is not None for o in opps], "profit_native": [o.profit_native or 0 for o in opps],
        "gas_native": [o.gas_cost_native for o in opps], "profit": [o.profit for o in opps],
        "amount_in": [o.amount_in for o in opps], "hops": [len(o.pools) for o in opps],
        "v3_hops": [o.hop_kinds.count("v3") for o in opps], "observed_at": [o.observed_at for o in opps],
        "gas_price_wei": [o.gas_price_wei for o in opps], "chain_id": [o.chain_id for o in opps],
        "block_number": [o.block_number for o in opps], "net_native": [o.net_profit_native or 0 for o in opps],
    }
    assert list(want) == list(COLUMNS)
    for name, values in want.items():
        assert getattr(c, name).tolist() == [float(v) for v in values], name  # float(int): exact ints rounded once
    assert c.pool_ids[2] == c.pool_ids[1] and c.pool_keys[c.pool_ids[2] - 1] == pool(2).lower()  # any case
    assert c.path_ids.tolist() == [1] * 4 and c.path_keys == (base.path_id,) and len(columns([])) == 0
    again = columns([replace(base, pools=(pool(3), pool(2)))])  # ids are each batch's own
    assert again.pool_ids.tolist() == [1, 2] and again.pool_keys == (pool(3).lower(), pool(2).lower())


def test_a_batch_reads_the_history_of_its_own_pools_and_paths_only() -> None:
    """The tables a batch's features read hold a row per pool and path of the batch, however
    many the history counts or earlier batches named: a long-running ml worker neither
    grows nor slows with what it has seen (a 10-minute soak did both, with tables indexed by
    ids interned for the life of the process)."""
    many = [Outcome(590, f"path-{i}", (pool(i % 997), pool(1 + i % 991)), "stale") for i in range(20_000)]
    h = OutcomeHistory(many, as_of=600)
    for k in range(50):  # earlier batches, other paths
        columns([replace(make_opp(600, 1, 2, 10**16), path_id=f"other-{k}-{j}") for j in range(100)])
    opp = replace(make_opp(600, 5, 6, 10**16), path_id="path-7", pools=(pool(7), pool(8)))
    c = columns([opp])
    pools, paths = h.tables(c)
    assert pools.shape[0] <= 3 and paths.shape[0] == 2
    assert paths[1, 0] == 1 and pools[c.pool_ids[0], 2] == h.pool[pool(7).lower()][2]
    alone = OutcomeHistory([o for o in many if o.path_id == "path-7" or {pool(7), pool(8)} & set(o.pools)], as_of=600)
    assert np.array_equal(matrix([opp], h, now=1.0), matrix([opp], alone, now=1.0))


def test_the_recorded_rows_are_the_matrix_by_name() -> None:
    X = matrix([make_opp(500, 1, 2, 3 * GAS * GAS_PRICE), make_opp(500, 2, 3, GAS * GAS_PRICE)])
    X[1, INDEX["edge"]] = np.inf  # recorded as 0, as as_mapping does
    rows = as_rows(X)
    assert [dict(r) for r in rows] == [as_mapping(x) for x in X]
    assert rows[1] == as_mapping(X[1]) and rows[1]["edge"] == 0.0 and list(rows[0]) == list(FEATURES)
    assert all(type(v) is float for v in rows[0].values())


def test_what_an_outcome_teaches() -> None:
    assert outcome_kind("success") == "success"
    assert outcome_kind("simulated", mode="paper") == "success"
    assert outcome_kind("simulated", mode="dry-run") is None
    assert outcome_kind("reverted") == "reverted"
    assert outcome_kind("dropped", "stale: the cycle no longer pays on re-validation (ProfitTooLow)") == "stale"
    assert outcome_kind("dropped", "re-validation reverted: K") == "stale"
    assert outcome_kind("dropped", "kill switch engaged") is None
    assert outcome_kind("failed", "send failed") is None
