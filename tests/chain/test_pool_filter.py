"""``arbbot.chain.pool_filter`` and the registry's admission (no node): deny and allow
lists, the minimum liquidity of a quote-token pool (V2 reserve, V3 virtual reserve), and a
pool without the quote token admitted once both its tokens are liquid."""

from __future__ import annotations

import pytest

from arbbot.chain.discovery import PoolInfo
from arbbot.chain.pool_filter import Q96, PoolFilter
from arbbot.chain.pool_registry import PoolRegistry
from arbbot.errors import ConfigError
from arbbot.types import V2PoolState, V3PoolState


def addr(i: int) -> str:
    return "0x" + f"{i:040x}"


Q, A, B, C, D = (addr(i) for i in (1, 2, 3, 4, 5))


class NoReads:
    """A ``SubCallRunner`` that must not be called: admission needs no node."""

    def run(self, calls: object, block: object) -> list[object]:
        raise AssertionError("no read expected")


def v2(pool: int, t0: str, t1: str, r0: int, r1: int) -> V2PoolState:
    return V2PoolState(addr(pool), t0, t1, r0, r1)


def test_token_rules() -> None:
    f = PoolFilter(allow_tokens=frozenset({Q, A, B}), deny_tokens=frozenset({B.upper().replace("0X", "0x")}))
    assert f.admits_tokens(PoolInfo(addr(100), "v2", Q, A))
    assert not f.admits_tokens(PoolInfo(addr(101), "v2", Q, B)), "denied wins"
    assert not f.admits_tokens(PoolInfo(addr(102), "v2", Q, C)), "C is not allowed"
    assert PoolFilter().admits_tokens(PoolInfo(addr(103), "v2", C, D))
    assert not PoolFilter().needs_state


def test_quote_reserve_v2_and_v3() -> None:
    f = PoolFilter(min_liquidity_token=Q, min_liquidity=1000)
    assert f.quote_reserve(v2(1, Q, A, 1000, 5)) == 1000 and f.deep_enough(v2(1, Q, A, 1000, 5))
    assert f.quote_reserve(v2(1, A, Q, 1000, 999)) == 999 and not f.deep_enough(v2(1, A, Q, 1000, 999))
    assert f.quote_reserve(v2(1, A, B, 10**30, 10**30)) == 0
    # V3: x = L / sqrtP (token0), y = L * sqrtP (token1); price 4 -> sqrtP 2
    s = V3PoolState(addr(2), Q, A, 3000, 60, 2 * Q96, 13863, 10**6, (), 0)
    assert f.quote_reserve(s) == 10**6 // 2
    s1 = V3PoolState(addr(2), A, Q, 3000, 60, 2 * Q96, 13863, 10**6, (), 0)
    assert f.quote_reserve(s1) == 2 * 10**6


def test_bad_filters_are_refused() -> None:
    with pytest.raises(ConfigError, match="quote token"):
        PoolFilter(min_liquidity=5)
    with pytest.raises(ConfigError, match=">= 0"):
        PoolFilter(min_liquidity_token=Q, min_liquidity=-1)
    with pytest.raises(ConfigError, match="not an address"):
        PoolFilter(deny_tokens=frozenset({"0x12"}))
    assert PoolFilter.from_dict(None) == PoolFilter()
    got = PoolFilter.from_dict({"allow_tokens": [], "deny_tokens": [A], "min_liquidity": {"token": Q, "amount": "7"}})
    assert got == PoolFilter(deny_tokens=frozenset({A}), min_liquidity_token=Q, min_liquidity=7)


def test_registry_admits_by_liquidity_then_unlocks_tail_pools() -> None:
    f = PoolFilter(deny_tokens=frozenset({D}), min_liquidity_token=Q, min_liquidity=1000)
    infos = [
        PoolInfo(addr(10), "v2", Q, A),  # deep below
        PoolInfo(addr(11), "v2", Q, B),  # shallow first, deep later
        PoolInfo(addr(12), "v2", A, B),  # tail: waits for A and B
        PoolInfo(addr(13), "v2", A, C),  # tail: C never liquid
        PoolInfo(addr(14), "v2", Q, D),  # denied
    ]
    reg = PoolRegistry(NoReads(), infos=infos, pool_filter=f)  # type: ignore[arg-type]
    assert reg.watched == set() and len(reg.infos) == 5
    assert reg.pending == {addr(i) for i in (10, 11, 12, 13)}
    assert reg.quote_pending() == [addr(10), addr(11)]

    admitted, unlocked = reg.admit([v2(10, Q, A, 5000, 1), v2(11, Q, B, 999, 1), v2(14, Q, D, 10**9, 1)])
    assert [s.address for s in admitted] == [addr(10)] and unlocked == set()
    assert reg.watched == {addr(10)} and reg.states.keys() == {addr(10)}
    admitted, unlocked = reg.admit([v2(11, Q, B, 1000, 1)])
    assert [s.address for s in admitted] == [addr(11)]
    assert unlocked == {addr(12)}, "A and B are liquid now; A/C still waits for C"
    assert reg.watched == {addr(10), addr(11), addr(12)} and reg.pending == {addr(13)}
    # a tail pool discovered later between liquid tokens is watched at once
    assert reg.register([PoolInfo(addr(15), "v2", B, A)]) == [PoolInfo(addr(15), "v2", B, A)]
    assert reg.register([PoolInfo(addr(16), "v2", B, C)]) == []

    snap = reg.snapshot()
    reg.forget_after(-1)
    assert not reg.infos and not reg.watched
    reg.restore(snap)
    assert addr(15) in reg.watched and len(reg.infos) == 7


def test_without_a_minimum_the_token_rules_alone_decide() -> None:
    reg = PoolRegistry(NoReads(), pool_filter=PoolFilter(deny_tokens=frozenset({C})))  # type: ignore[arg-type]
    got = reg.register([PoolInfo(addr(20), "v2", A, B), PoolInfo(addr(21), "v2", A, C)])
    assert [i.address for i in got] == [addr(20)] and reg.watched == {addr(20)} and not reg.pending
    assert reg.register([PoolInfo(addr(20), "v2", A, B)]) == [], "known pools are not registered twice"
