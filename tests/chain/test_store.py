"""``arbbot.chain.store.Store``: the hot state the workers give the scanner implements
it, with the keyword arguments the scanner passes, and round-trips what it writes."""

from __future__ import annotations

import inspect

from arbbot.chain.store import Store
from arbbot.hotstate import HotState
from arbbot.types import V2PoolState


def test_hotstate_is_a_store(hot: HotState) -> None:
    assert isinstance(hot, Store)
    for name in ("put_pools", "delete_pools", "get_pools", "load_cursor", "put_tokens"):
        wanted = inspect.signature(getattr(Store, name)).parameters
        got = inspect.signature(getattr(HotState, name)).parameters
        assert list(wanted) == list(got)[: len(wanted)], name
        assert all(got[p].kind == wanted[p].kind for p in wanted), name


def test_what_the_scanner_writes_through_the_store_comes_back(hot: HotState) -> None:
    store: Store = hot
    a = "0x" + "ab" * 20
    state = V2PoolState(a, "0x" + "01" * 20, "0x" + "02" * 20, 5, 7, 3000, 11)
    store.put_pools([state], 11, "0x" + "cc" * 32, cursor=(11, [(10, "0x" + "bb" * 32), (11, "0x" + "cc" * 32)]),
                    orphaned=["0x" + "dd" * 32])
    assert store.load_cursor() == (11, [(10, "0x" + "bb" * 32), (11, "0x" + "cc" * 32)])
    assert store.get_pools() == {a: state}
    assert hot.is_orphaned("0x" + "dd" * 32)
    store.delete_pools([a])
    assert store.get_pools() == {}
