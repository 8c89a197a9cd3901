"""Cycle enumeration: counts on small graphs, both directions, no duplicates, and the
incremental index equals a fresh build."""

from __future__ import annotations

import random

import pytest

from tests.paths._paths_helpers import DAI, USDC, WETH, addr, tok, v2
from arbbot.errors import ConfigError
from arbbot.paths import PathEngine


def _engine(max_hops: int = 3, bases=(USDC,)) -> PathEngine:  # type: ignore[no-untyped-def]
    return PathEngine(base_tokens=bases, weth=WETH, max_hops=max_hops)


def _cycles(engine: PathEngine) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    return sorted(engine.iter_cycles())


def test_two_pool_cross_dex_both_directions() -> None:
    e = _engine()
    e.upsert([v2(1, WETH, USDC, 10**21, 2 * 10**24), v2(2, WETH, USDC, 10**21, 2 * 10**24)])
    cycles = _cycles(e)
    assert e.cycle_counts() == {2: 2, 3: 0}
    assert {c[1] for c in cycles} == {(addr(1), addr(2)), (addr(2), addr(1))}
    assert all(c[2] == (WETH, USDC, WETH) for c in cycles)  # rotated to start at WETH
    assert len({c[0] for c in cycles}) == 2


def test_three_pool_triangular_both_directions() -> None:
    x = tok(0x11)
    e = _engine()
    e.upsert([v2(1, WETH, USDC, 1, 1), v2(2, USDC, x, 1, 1), v2(3, x, WETH, 1, 1)])
    cycles = _cycles(e)
    assert e.cycle_counts() == {2: 0, 3: 2}
    assert {c[2] for c in cycles} == {(WETH, USDC, x, WETH), (WETH, x, USDC, WETH)}
    assert {c[1] for c in cycles} == {(addr(1), addr(2), addr(3)), (addr(3), addr(2), addr(1))}


def test_cycles_through_no_base_token_are_skipped() -> None:
    a, b, c = tok(0x21), tok(0x22), tok(0x23)
    e = _engine(max_hops=4)
    e.upsert([v2(1, a, b, 1, 1), v2(2, b, c, 1, 1), v2(3, c, a, 1, 1), v2(4, a, b, 1, 1)])
    assert e.cycle_count == 0


def test_start_is_highest_priority_base() -> None:
    # WETH-USDC-DAI triangle: stored once per direction, starting at WETH.
    e = _engine(bases=(USDC, DAI))
    e.upsert([v2(1, WETH, USDC, 1, 1), v2(2, USDC, DAI, 1, 1), v2(3, DAI, WETH, 1, 1)])
    assert e.cycle_counts()[3] == 2
    assert all(c[2][0] == WETH for c in e.iter_cycles())
    e2 = PathEngine(base_tokens=[DAI], weth=WETH)
    e2.upsert([v2(2, USDC, DAI, 1, 1), v2(4, USDC, DAI, 1, 1)])
    assert all(c[2][0] == DAI for c in e2.iter_cycles()) and e2.cycle_count == 2


def test_max_hops_is_validated() -> None:
    with pytest.raises(ConfigError):
        PathEngine(base_tokens=[], weth=WETH, max_hops=5)


# --------------------------------------------------------------------------- reference


def _reference(pools: list, bases: list[str], max_hops: int) -> set[tuple[tuple[str, ...], tuple[str, ...]]]:  # type: ignore[type-arg]
    """Plain DFS: every simple cycle of 2..max_hops through a base token, started at its
    highest-priority base token, both directions."""
    adj: dict[str, list[tuple[str, str]]] = {}
    for p in pools:
        adj.setdefault(p.token0, []).append((p.address, p.token1))
        adj.setdefault(p.token1, []).append((p.address, p.token0))
    out = set()
    for rank, s in enumerate(bases):
        banned = set(bases[: rank + 1])

        def dfs(node: str, used_pools: list[str], used_tokens: list[str]) -> None:
            for pool, nxt in adj.get(node, []):
                if pool in used_pools:
                    continue
                if nxt == s and len(used_pools) >= 1:
                    out.add((tuple(used_pools + [pool]), tuple(used_tokens + [s])))
                    continue
                if nxt in banned or nxt in used_tokens or len(used_pools) + 1 >= max_hops:
                    continue
                dfs(nxt, used_pools + [pool], used_tokens + [nxt])

        dfs(s, [], [s])
    return out


def _random_pools(rng: random.Random, n_tokens: int, n_pools: int, first: int = 0) -> list:  # type: ignore[type-arg]
    toks = [WETH, USDC, DAI] + [tok(0x30 + i) for i in range(n_tokens - 3)]
    pools = []
    for i in range(n_pools):
        a, b = rng.sample(toks, 2)
        pools.append(v2(first + i, a, b, rng.randint(10**3, 10**6), rng.randint(10**3, 10**6)))
    return pools


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("max_hops", [2, 3, 4])
def test_matches_reference_dfs(seed: int, max_hops: int) -> None:
    rng = random.Random(seed)
    pools = _random_pools(rng, n_tokens=9, n_pools=22)
    e = PathEngine(base_tokens=[USDC, DAI], weth=WETH, max_hops=max_hops)
    e.upsert(pools)
    got = [(c[1], c[2]) for c in e.iter_cycles()]
    assert len(got) == len(set(got)), "duplicate cycles"
    assert set(got) == _reference(pools, [WETH, USDC, DAI], max_hops)
    assert len({c[0] for c in e.iter_cycles()}) == len(got)  # path ids unique


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("max_hops", [3, 4])
def test_every_token_a_start_matches_reference_dfs(seed: int, max_hops: int) -> None:
    """Most tokens start cycles (the auto start tokens of a real chain): each start's
    tables are built on local token ids, and what one start bans is carried to the next."""
    rng = random.Random(200 + seed)
    pools = _random_pools(rng, n_tokens=12, n_pools=30)
    tokens = sorted({t for p in pools for t in (p.token0, p.token1)} - {WETH})
    rng.shuffle(tokens)
    e = PathEngine(base_tokens=tokens[:-2], weth=WETH, max_hops=max_hops)
    half = len(pools) // 2
    e.upsert(pools[:half])
    e.upsert(pools[half:])  # new pools: only cycles through them, over every start
    got = [(c[1], c[2]) for c in e.iter_cycles()]
    assert len(got) == len(set(got)), "duplicate cycles"
    assert set(got) == _reference(pools, [WETH, *tokens[:-2]], max_hops)


@pytest.mark.parametrize("seed", range(4))
def test_incremental_discovery_equals_fresh_build(seed: int) -> None:
    rng = random.Random(100 + seed)
    pools = _random_pools(rng, n_tokens=10, n_pools=30)
    fresh = PathEngine(base_tokens=[USDC, DAI], weth=WETH, max_hops=4)
    fresh.upsert(pools)
    inc = PathEngine(base_tokens=[USDC, DAI], weth=WETH, max_hops=4)
    i = 0
    while i < len(pools):  # batches of 1..5 pools, as discovery would deliver them
        n = rng.randint(1, 5)
        inc.upsert(pools[i : i + n])
        i += n
    assert sorted(inc.iter_cycles()) == sorted(fresh.iter_cycles())


def test_remove_and_readd() -> None:
    rng = random.Random(7)
    pools = _random_pools(rng, n_tokens=8, n_pools=20)
    e = PathEngine(base_tokens=[USDC, DAI], weth=WETH, max_hops=3)
    e.upsert(pools)
    before = sorted(e.iter_cycles())
    victim = pools[3].address
    e.remove([victim])
    assert all(victim not in c[1] for c in e.iter_cycles())
    assert sorted(e.iter_cycles()) == sorted(
        (pid, p, t) for pid, p, t in before if victim not in p
    )
    e.upsert([pools[3]])
    assert sorted(e.iter_cycles()) == before


def test_the_index_stops_at_its_cycle_budget(caplog: pytest.LogCaptureFixture) -> None:
    """Bounded memory: at most ``max_cycles`` cycles, the higher-priority start tokens
    first, said once in the log; pools added later get no cycles past the budget."""
    rng = random.Random(7)
    pools = _random_pools(rng, n_tokens=10, n_pools=40)
    full = PathEngine(base_tokens=[USDC, DAI], weth=WETH, max_hops=4, max_cycles=None)
    full.upsert(pools[:30])
    everything = set(full.iter_cycles())
    budget = len(everything) // 3
    capped = PathEngine(base_tokens=[USDC, DAI], weth=WETH, max_hops=4, max_cycles=budget)
    with caplog.at_level("WARNING", logger="arbbot.paths.engine"):
        capped.upsert(pools[:30])
        capped.upsert(pools[30:])
    kept = set(capped.iter_cycles())
    assert capped.cycle_count == len(kept) == budget and kept < everything
    order = [WETH, USDC, DAI]  # the start tokens by priority
    kept_by = [sum(c[2][0] == t for c in kept) for t in order]
    all_by = [sum(c[2][0] == t for c in everything) for t in order]
    cut = next(i for i, (k, a) in enumerate(zip(kept_by, all_by)) if k < a)
    assert kept_by[:cut] == all_by[:cut] and not any(kept_by[cut + 1 :])
    assert sum("cycle index full" in r.message for r in caplog.records) == 1
    assert capped.stats["index_full"] == 2
    with pytest.raises(ConfigError):
        PathEngine(base_tokens=[], weth=WETH, max_cycles=0)
