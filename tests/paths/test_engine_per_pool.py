"""``max_per_pool``: opportunities through one pool exclude each other on-chain, so the
engine sizes them best float first and stops at the cap per pool, while cycles through
other pools are still found."""

from __future__ import annotations

import pytest

from arbbot.errors import ConfigError
from arbbot.paths import PathEngine
from arbbot.paths.engine import rank_key
from tests.paths._paths_helpers import BLOCK_HASH, DAI, USDC, WETH, evaluate, tok, v2


def _market() -> list:  # type: ignore[type-arg]
    """A hub WETH/USDC pool 10% off the fair price, eight fairly priced WETH -> X -> USDC
    legs (every one closes a profitable cycle through the hub), and an unrelated 5% gap
    between two WETH/DAI pools."""
    eth = 10**18
    pools = [v2(1, WETH, USDC, 1_000 * eth, 3_300_000 * 10**6)]  # hub: USDC cheap in WETH terms
    for i in range(8):
        x = tok(0x30 + i)
        depth = 200 + 50 * i
        pools.append(v2(10 + i, WETH, x, depth * eth, depth * 100 * eth))  # 1 ETH = 100 X
        pools.append(v2(30 + i, x, USDC, depth * 100 * eth, depth * 3_000 * 10**6))  # 100 X = 3000 USDC
    pools.append(v2(60, WETH, DAI, 500 * eth, 1_500_000 * eth))
    pools.append(v2(61, WETH, DAI, 500 * eth, 1_575_000 * eth))
    return pools


def _engine(cap: int | None) -> PathEngine:
    e = PathEngine(base_tokens=[WETH], weth=WETH, max_hops=3, max_per_pool=cap)
    e.upsert(_market())
    return e


def test_cap_per_pool_keeps_the_best_and_the_disjoint_ones() -> None:
    free = evaluate(_engine(None))
    hub = v2(1, WETH, USDC, 1, 1).address.lower()
    dai_pools = {v2(60, WETH, DAI, 1, 1).address.lower(), v2(61, WETH, DAI, 1, 1).address.lower()}
    assert sum(hub in o.pools for o in free) >= 6  # many profitable cycles share the hub

    engine = _engine(2)
    capped = evaluate(engine)
    assert sum(hub in o.pools for o in capped) == 2
    assert engine.stats["skipped_per_pool"] >= 4
    # No pool carries more than the cap, and the unrelated gap is still found.
    for p in {p for o in capped for p in o.pools}:
        assert sum(p in o.pools for o in capped) <= 2
    assert any(set(o.pools) == dai_pools for o in capped)
    # Best first: the best opportunity is the same with or without the cap.
    assert capped[0].path_id == free[0].path_id and capped[0].net_profit == free[0].net_profit


def test_cap_must_be_positive() -> None:
    with pytest.raises(ConfigError):
        PathEngine(base_tokens=[WETH], weth=WETH, max_per_pool=0)


def test_setting_reads_the_cap_and_refuses_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    from arbbot.config import Settings

    monkeypatch.delenv("ARBBOT_PATH_MAX_PER_POOL", raising=False)
    assert Settings.from_env().path_max_per_pool == 3
    monkeypatch.setenv("ARBBOT_PATH_MAX_PER_POOL", "0")
    assert Settings.from_env().path_max_per_pool == 0  # no cap
    for bad in ("-1", "two", "1.5"):
        monkeypatch.setenv("ARBBOT_PATH_MAX_PER_POOL", bad)
        with pytest.raises(ConfigError, match="ARBBOT_PATH_MAX_PER_POOL"):
            Settings.from_env()


@pytest.mark.parametrize("cap", [None, 2])
def test_a_block_in_two_parts_is_the_same_opportunities_the_first_part_sized_first(cap: int | None) -> None:
    """``first_part``: the opportunities of the first K screened candidates go to the
    callback as soon as they are sized, the rest are returned; together they are exactly
    what one part gives (the per-pool cap counts both parts)."""
    def run(**kw):  # type: ignore[no-untyped-def]
        return _engine(cap).evaluate(None, chain_id=1, block_number=1, block_hash=BLOCK_HASH, gas_price_wei=0, **kw)

    whole = run()
    n_candidates = len(_engine(cap).screen(None, gas_price_wei=0))
    assert n_candidates > 4 and len(whole) > 2
    for k in range(1, n_candidates):
        parts: list[list] = []  # type: ignore[type-arg]
        rest = run(first_part=k, on_first_part=parts.append)
        assert len(parts) == 1
        assert sorted((o.path_id, o.amount_in, o.amount_out) for o in parts[0] + rest) == sorted(
            (o.path_id, o.amount_in, o.amount_out) for o in whole)
        assert parts[0] == sorted(parts[0], key=rank_key) and rest == sorted(rest, key=rank_key)
    called: list[list] = []  # type: ignore[type-arg]
    assert run(first_part=n_candidates, on_first_part=called.append) == whole
    assert called == [], "no more candidates than the first part: one part"


@pytest.mark.parametrize("cap", [None, 2])
def test_a_short_first_part_grows_by_its_size_up_to_its_most(cap: int | None) -> None:
    """``first_part_enough``: a first part it finds short grows by another ``first_part``
    candidates, up to ``first_part_most`` (or the last candidate but one), asked at each
    step; the part it lets go is the one it saw last. Together the parts are still exactly
    one part's opportunities."""
    def run(**kw):  # type: ignore[no-untyped-def]
        return _engine(cap).evaluate(None, chain_id=1, block_number=1, block_hash=BLOCK_HASH, gas_price_wei=0, **kw)

    whole = sorted((o.path_id, o.amount_in, o.amount_out) for o in run())
    n = len(_engine(cap).screen(None, gas_price_wei=0))
    grew = False
    for k in range(1, n):
        steps = [j * k for j in (1, 2, 3) if j * k < n]  # where the part may go, most 3k
        for needed in (1, 3, 10**6):
            seen: list[int] = []

            def enough(opps: list, needed: int = needed) -> bool:  # type: ignore[type-arg]
                seen.append(len(opps))
                return len(opps) >= needed

            parts: list[list] = []  # type: ignore[type-arg]
            rest = run(first_part=k, on_first_part=parts.append, first_part_enough=enough, first_part_most=3 * k)
            assert sorted((o.path_id, o.amount_in, o.amount_out) for o in parts[0] + rest) == whole
            # asked at each step until enough, never at the last one (the part goes there anyway)
            asked = next((j + 1 for j, got in enumerate(seen) if got >= needed), len(steps) - 1)
            assert len(seen) == min(asked, len(steps) - 1)
            if len(seen) < len(steps) - 1 or (seen and seen[-1] >= needed):
                assert len(parts[0]) == seen[-1]  # the part it found enough
            grew |= len(seen) > 1
    assert grew, "no first part grew: the market is too small for this test"
    # without the predicate, or no room to grow: the part goes at first_part, as before
    parts = []
    run(first_part=2, on_first_part=parts.append, first_part_enough=lambda o: False, first_part_most=2)
    first_only: list[list] = []  # type: ignore[type-arg]
    run(first_part=2, on_first_part=first_only.append)
    assert parts == first_only
