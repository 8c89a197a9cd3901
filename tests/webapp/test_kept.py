"""``workers.kept``: values kept ``ttl`` seconds, and the refresher that reads them again off
the tasks' way (real PostgreSQL, a real thread)."""

from __future__ import annotations

import threading
import types
from typing import Any, Iterator

import pytest

from webapp.core import services
from workers import kept, runtime

from .test_cli_config import chain_entry


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(kept, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    return now


def counting(values: list[Any]) -> tuple[list[Any], Any]:
    """A read that returns ``values`` in turn and records each argument it was asked."""
    asked: list[Any] = []

    def read(arg: Any) -> Any:
        asked.append(arg)
        value = values[len(asked) - 1]
        if isinstance(value, Exception):
            raise value
        return value

    return asked, read


def test_a_kept_value_is_read_again_by_the_caller_only_once_its_ttl_has_run_out(clock: list[float]) -> None:
    asked, read = counting(["a", "b", "c"])
    value = kept.Kept("v", read, ttl=1.0)
    assert [value.get(), value.get()] == ["a", "a"] and len(asked) == 1
    clock[0] += 0.99
    assert value.get() == "a"
    clock[0] += 0.01
    assert value.get() == "b" and len(asked) == 2


def test_the_refresher_reads_again_at_half_the_ttl_with_the_last_argument_asked(clock: list[float]) -> None:
    asked, read = counting([10, 11, 12, 13, 14])
    value = kept.Kept("history", read, ttl=1.0, fits=lambda held, arg: held <= arg < held + 2)
    assert value.get(100) == 10
    assert not value.refresh(clock[0] + 0.49), "not yet half its ttl old"
    clock[0] += 0.5
    assert value.get(101) == 10, "block 101 fits the value read for 100"
    assert value.refresh(clock[0]) and asked == [100, 101], "read again for the block asked last"
    clock[0] += 0.9
    assert value.get(101) == 11, "the refresher's read is 0.9 s old: the caller does not wait"
    assert value.get(103) == 12 and asked[-1] == 103, "a block the value does not fit: read by the caller"
    assert value.refresh(clock[0]) is False, "fresh and fitting: nothing to read"
    assert value.get(104) == 12
    assert value.get(106) == 13 and len(asked) == 4
    assert value.get(108) == 14 and len(asked) == 5, "blocks faster than the ttl: each batch's caller reads"
    assert value.refresh(clock[0] + 0.49) is False, "read by the caller within refresh_s: not again in the background"
    clock[0] += kept.IDLE_S + 1
    assert value.refresh(clock[0]) is False, "no task asked for a minute: not read in the background"


def test_a_failed_background_read_keeps_the_value_and_the_caller_fails_once_it_is_stale(
    clock: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    down = RuntimeError("database down")
    asked, read = counting(["ok", down, down, down, "back"])
    value = kept.Kept("strategy[1]", read, ttl=1.0)
    assert value.get() == "ok"
    clock[0] += 0.6
    assert kept.refresh_round(clock[0]) == 0, "the failure is logged, not raised"
    assert value.get() == "ok", "still within its ttl"
    assert kept.refresh_round(clock[0] + kept.TICK_S) == 0 and len(asked) == 2, "not tried again each tick"
    clock[0] += 0.4
    with pytest.raises(RuntimeError, match="database down"):
        value.get()  # the callers fail closed on this
    clock[0] += 0.6
    assert kept.refresh_round(clock[0]) == 0 and len(asked) == 4, "tried again at the value's pace"
    clock[0] += 0.5
    assert value.get() == "back"
    warned = [r for r in caplog.records if r.levelname == "WARNING" and "strategy[1]" in r.getMessage()]
    assert len(warned) == 1, "one warning for the run of failures, not one per try"


def test_a_slow_read_begun_earlier_never_replaces_a_newer_one(clock: list[float]) -> None:
    """The refresher's read and a task's may overlap: the one begun last stays."""
    started, release = threading.Event(), threading.Event()
    answers = iter(["old", "new"])

    def read(_: Any) -> str:
        answer = next(answers)
        if answer == "old":
            started.set()
            release.wait(10)
        return answer

    value = kept.Kept("strategy[2]", read, ttl=1.0)
    slow = threading.Thread(target=value.get)
    slow.start()
    assert started.wait(10)
    clock[0] += 0.1
    assert value.get() == "new"
    release.set()
    slow.join(10)
    assert value.get() == "new"


@pytest.fixture
def refresher() -> Iterator[None]:
    runtime.reset()
    kept.start_refresher()
    try:
        yield
    finally:
        kept.stop_refresher()
        runtime.reset()


@pytest.mark.django_db(transaction=True)
def test_the_refresher_brings_an_edited_strategy_to_the_stage_without_a_query_on_its_way(
    refresher: None, monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Any
) -> None:
    # kept an hour (the stage never reads it itself here, however slow the machine), read
    # again by the refresher in each of its rounds
    for values in (runtime.strategies, runtime.modes):
        monkeypatch.setattr(values, "ttl", 3600.0)
        monkeypatch.setattr(values, "refresh_s", 0.0)
    services.config_apply({"chains": [chain_entry()]})
    first = runtime.strategy_in_force(1)
    assert first.max_hops == 2 and runtime.chain_mode(1)() == "dry-run"
    services.config_apply({"chains": [chain_entry(strategy={"max_hops": 4}, mode="paper")]})
    with kept.round_done:
        assert kept.round_done.wait_for(
            lambda: runtime.strategies.held(1).version > first.version and runtime.modes.held(1) == "paper",
            timeout=30), "the refresher did not read the edit"
    with django_assert_num_queries(0):  # the stage's own thread does not touch the database
        assert runtime.strategy_in_force(1).max_hops == 4
        assert runtime.chain_mode(1)() == "paper"
    kept.stop_refresher()
    services.config_apply({"chains": [chain_entry(strategy={"max_hops": 3})]})
    assert runtime.strategy_in_force(1).max_hops == 4, "no refresher: kept its ttl, as before"


@pytest.mark.django_db(transaction=True)
def test_the_pool_guard_read_again_keeps_its_proofs_until_the_dexes_change(django_assert_num_queries: Any) -> None:
    from arbbot.chain.create2 import pool_address
    from arbbot.types import V2PoolState

    runtime.reset()
    services.config_apply({"chains": [chain_entry()]})
    dex = chain_entry()["dexes"][0]
    t0, t1 = "0x" + "11" * 20, "0x" + "22" * 20
    pair = V2PoolState(pool_address("v2", dex["factory"], bytes.fromhex(dex["init_code_hash"][2:]), t0, t1),
                       t0, t1, 10**18, 10**18, 3000, 1)
    with django_assert_num_queries(1):  # the DEXes alone, however many: it is read every few seconds
        first = runtime._read_guard(1, None)
    assert first([pair]) is None and len(first._proven) == 1
    assert runtime._read_guard(1, None) is first, "the same DEXes: the guard and its proofs kept"
    entry = chain_entry()
    entry["dexes"].append({"name": "another-v2", "kind": "v2", "factory": "0x" + "fa" * 20})
    services.config_apply({"chains": [entry]})
    after = runtime._read_guard(1, None)
    assert after is not first and not after._proven, "a DEX added: a new guard, nothing proven yet"
    assert after([pair]) is None and len(after.factories) == len(first.factories) + 1
    runtime.reset()
