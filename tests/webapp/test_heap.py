"""``workers.heap``: the path worker freezes its heap once its engine has grown, after
collecting what is garbage by then, and unfreezes when a stage is replaced."""

from __future__ import annotations

import gc
import weakref
from typing import Iterator

import pytest

from workers import heap


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    heap.forget()
    yield
    heap.forget()


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_the_heap_is_frozen_once_the_engine_grew_and_garbage_is_collected_first() -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: only the collector frees it
    gone = weakref.ref(a)
    del a, b
    assert heap.after_block(1, 10_000)
    assert gone() is None  # collected before the freeze, not frozen with the rest
    assert gc.get_freeze_count() > 0
    assert not heap.after_block(1, 10_000)  # no growth
    assert not heap.after_block(1, 10_100)  # 1%: not past it
    assert heap.after_block(1, 10_101)
    assert heap.after_block(2, 5)  # another chain's engine: its own count
    assert not heap.after_block(3, 0)


def test_forget_makes_every_frozen_object_collectable_again() -> None:
    keep = Node()
    keep.other = keep
    gone = weakref.ref(keep)
    heap.after_block(1, 100)
    del keep
    gc.collect()
    assert gone() is not None  # frozen: a cycle there is not collected
    heap.forget()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert gone() is None
    assert heap.after_block(1, 100)  # counts forgotten too


def test_the_path_heap_step_counts_the_engine_that_evaluated_the_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a block's publish the path task (and the follower's lane) freezes for the engine
    that evaluated it; it never builds a stage for that (a strategy edited meanwhile would
    make ``runtime.path_stage`` build a new one), and a chain never evaluated is left alone."""
    from workers import runtime
    from workers.tasks import path

    def no_stage(chain_id: int) -> None:
        raise AssertionError("a stage was built for the heap step")

    monkeypatch.setattr(runtime, "path_stage", no_stage)
    monkeypatch.setitem(path._known, 7, 1234)
    monkeypatch.delitem(path._known, 8, raising=False)
    path.after_block(7)
    path.after_block(8)
    assert heap._frozen_at == {7: 1234}  # frozen at the evaluating engine's count; 8 untouched
    assert gc.get_freeze_count() > 0
