"""Incremental evaluation after pool changes equals a full re-evaluation restricted to
the cycles through the changed pools."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from tests.paths._paths_helpers import DAI, USDC, WETH, evaluate, tok, v2
from arbbot.paths.engine import rank_key
from arbbot.paths import PathEngine


def _market(rng: random.Random, n_tokens: int, n_pools: int) -> list:  # type: ignore[type-arg]
    """Pools priced near a hidden fair price so only some cycles are profitable."""
    toks = [WETH, USDC, DAI] + [tok(0x30 + i) for i in range(n_tokens - 3)]
    price = {t: 10 ** rng.uniform(-3, 3) for t in toks}
    pools = []
    for i in range(n_pools):
        a, b = rng.sample(toks[:3], 1) + rng.sample(toks, 1) if rng.random() < 0.7 else rng.sample(toks, 2)
        if a == b:
            continue
        depth = 10 ** rng.uniform(19, 23)
        ra = int(depth / price[a])
        rb = int(depth / price[b] * rng.uniform(0.97, 1.03))
        pools.append(v2(i, a, b, max(ra, 1), max(rb, 1), rng.choice([3000, 500, 10000])))
    return pools


def _key(o):  # type: ignore[no-untyped-def]
    return (o.path_id, o.amount_in, o.amount_out, o.gas_cost)


@pytest.mark.parametrize("seed", range(5))
def test_incremental_equals_full_restricted(seed: int) -> None:
    rng = random.Random(seed)
    pools = _market(rng, n_tokens=14, n_pools=70)
    e = PathEngine(base_tokens=[USDC, DAI], weth=WETH, max_hops=4)
    e.upsert(pools)
    evaluate(e, gas_price_wei=10**9)
    for _ in range(3):
        moved = rng.sample(pools, 8)
        updates = [
            replace(p, reserve0=max(1, int(p.reserve0 * rng.uniform(0.9, 1.1))), reserve1=max(1, int(p.reserve1 * rng.uniform(0.9, 1.1))))
            for p in moved
        ]
        changed = e.upsert(updates)
        assert changed == {p.address for p in updates}
        inc = evaluate(e, changed, gas_price_wei=10**9)
        full = evaluate(e, None, gas_price_wei=10**9)
        restricted = [o for o in full if set(o.pools) & changed]
        assert [_key(o) for o in inc] == [_key(o) for o in restricted]
        assert all(set(o.pools) & changed for o in inc)
        assert inc == sorted(inc, key=rank_key)
        assert len({o.path_id for o in inc}) == len(inc)


def test_unchanged_upsert_reports_nothing() -> None:
    rng = random.Random(1)
    pools = _market(rng, 8, 20)
    e = PathEngine(base_tokens=[USDC], weth=WETH)
    assert e.upsert(pools) == {p.address for p in pools}
    assert e.upsert(pools) == set()
    assert evaluate(e, set()) == []


def test_compiled_subset_screen_equals_the_numpy_screen_bit_for_bit() -> None:
    """Cycles through changed pools are screened by a compiled pass over their rows
    (``_kernels.screen_rows``); it must give what ``screen_profitable`` gives on the
    gathered edges of the same rows: the same cycles, the same floats to the bit."""
    import numpy as np

    from arbbot.paths import _kernels
    from arbbot.paths.screen import screen_profitable

    rng = random.Random(9)
    e = PathEngine(base_tokens=[USDC, DAI], weth=WETH, max_hops=4)
    e.upsert(_market(rng, n_tokens=16, n_pools=90))
    compared = 0
    for k, g in e._groups.items():  # noqa: SLF001 - the test inspects the engine
        if g.n == 0:
            continue
        rows = np.asarray(sorted(rng.sample(range(g.n), min(g.n, 400))) * 2, dtype=np.int64)  # repeats, as rows_for_pools gives
        idx, x, profit = _kernels.screen_rows(g.edges, rows, e._p, e._q)  # noqa: SLF001
        edges = g.hop_edges(rows)
        ref_idx, ref_x, ref_profit = screen_profitable([edges[:, j] for j in range(k)], e._p, e._q)  # noqa: SLF001
        assert idx.tolist() == ref_idx.tolist()
        assert x.tobytes() == ref_x.tobytes() and profit.tobytes() == ref_profit.tobytes()
        compared += idx.size
    assert compared > 50
