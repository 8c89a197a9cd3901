"""Where the execute stage's time goes, step by step, in the fleet (``run.py --steps``).

Owns the bench's step timing of the execute worker: ``install()`` wraps, in that worker's
process only (``steps/sitecustomize.py``, put first on its ``PYTHONPATH``), the functions a
batch passes through; ``read`` and ``table`` turn what it logged into a table. No line of
the project's code changes: the wrappers time whole calls, so a step is a function.

Per batch (``arbbot.execution.stage.execute``), on its thread: the re-validation ahead's
preparation (``_revalidate_ahead``), the claim (``Journal.claim_all``), the nonce lock turn
and its reads (``Turn.prime``), the wait for the ahead's round trip, the batch's hot state
reads (``TurnSends.read_ahead``), each opportunity's checks (``ExecutionRunner._submit``),
then the turn's sends (``TurnSends.flush``) and within them the kill switch read again
(``ExecutionRunner._reads_refusal``), the signing (``LocalSigner.sign``), the signed rows'
write (``Journal.tx_signed``), the pools' traded notes (``HotState.note_trades``) and each
send (``eth_sendRawTransaction``); on the background thread, the round trip
(``ExecutionRunner._round_trip``). One log line a batch on ``arbbot.steps``: ``STEPS`` and a
JSON object (``at``: the batch's start, unix time; ``steps``: ``[name, start ms, end ms]``
from it, in the order they ended).

The wrappers cost ~1 µs a call (``time.perf_counter`` twice and a list append).
"""

from __future__ import annotations

import functools
import json
import logging
import statistics
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

log = logging.getLogger("arbbot.steps")

_local = threading.local()
_shared: dict[str, Any] = {}  # the batch's origin, for the background thread's steps


def _record(name: str, start: float, end: float) -> None:
    steps = getattr(_local, "steps", None)
    if steps is None:  # the background thread: the batch under way on the stage's thread
        steps = _shared.get("steps")
    if steps is not None:
        steps.append((name, start, end))


def _timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def timed(*a: Any, **kw: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            _record(name, start, time.perf_counter())

    return timed


def install() -> None:
    """Wrap the execute stage's steps (this process). The database journal's methods are
    wrapped on the batch's journal object, since Django is not set up at start-up."""
    from arbbot.chain.create2 import PoolGuard
    from arbbot.chain.rpc import RpcClient
    from arbbot.chain.tx import LocalSigner
    from arbbot.execution import runner, stage
    from arbbot.hotstate import HotState

    batch_execute, revalidate_ahead = stage.execute, stage._revalidate_ahead

    def execute(batch: Any, runners: Any, journal: Any, *a: Any, **kw: Any) -> Any:
        steps: list[tuple[str, float, float]] = []
        _local.steps = _shared["steps"] = steps
        origin, at = time.perf_counter(), time.time()
        for method, name in (("claim_all", "claim"), ("tx_signed", "record signed")):
            setattr(journal, method, _timed(name, getattr(journal, method)))
        try:
            return batch_execute(batch, runners, journal, *a, **kw)
        finally:
            _local.steps = _shared["steps"] = None
            steps.append(("batch", origin, time.perf_counter()))
            log.warning("STEPS %s", json.dumps({"at": at, "steps": [
                (n, round((s - origin) * 1000, 3), round((e - origin) * 1000, 3)) for n, s, e in steps]}))

    def ahead(batch: Any, runners: Any) -> Callable[[], None]:
        start = time.perf_counter()
        wait = revalidate_ahead(batch, runners)
        _record("prepare", start, time.perf_counter())
        return _timed("wait ahead", wait)

    stage.execute = execute  # type: ignore[assignment]
    stage._revalidate_ahead = ahead  # type: ignore[assignment]
    runner.Turn.prime = _timed("prime", runner.Turn.prime)  # type: ignore[method-assign]
    runner.TurnSends.read_ahead = _timed("read ahead", runner.TurnSends.read_ahead)  # type: ignore[method-assign]
    runner.ExecutionRunner._submit = _timed("check", runner.ExecutionRunner._submit)  # type: ignore[method-assign]
    runner.TurnSends.flush = _timed("sends", runner.TurnSends.flush)  # type: ignore[method-assign]
    runner.ExecutionRunner._reads_refusal = _timed(  # type: ignore[method-assign]
        "kill switch again", runner.ExecutionRunner._reads_refusal)
    runner.ExecutionRunner._round_trip = _timed(  # type: ignore[method-assign]
        "round trip (background)", runner.ExecutionRunner._round_trip)
    LocalSigner.sign = _timed("sign", LocalSigner.sign)  # type: ignore[method-assign]
    # the preparation's parts (and the same calls in the checks)
    HotState.get_pools = _timed("pools read", HotState.get_pools)  # type: ignore[method-assign]
    runner.resize = _timed("re-size", runner.resize)
    runner.hops_for_cycle = _timed("hops", runner.hops_for_cycle)
    runner.encode_execute = _timed("encode", runner.encode_execute)
    runner.ExecutionRunner._recall = _timed("gas recalled", runner.ExecutionRunner._recall)  # type: ignore[method-assign]
    PoolGuard.__call__ = _timed("pool guard", PoolGuard.__call__)  # type: ignore[method-assign]
    HotState.note_trades = _timed("note traded", HotState.note_trades)  # type: ignore[method-assign]
    import gc

    collecting: dict[str, float] = {}

    def collection(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collecting["at"] = time.perf_counter()
        elif "at" in collecting:
            _record(f"gc gen {info.get('generation')}", collecting.pop("at"), time.perf_counter())

    gc.callbacks.append(collection)  # the collector's pauses inside a batch, on whichever thread
    call = RpcClient.call

    def rpc_call(self: Any, method: str, params: Any = ()) -> Any:
        if method != "eth_sendRawTransaction":
            return call(self, method, params)
        start = time.perf_counter()
        try:
            return call(self, method, params)
        finally:
            _record("send", start, time.perf_counter())

    RpcClient.call = rpc_call  # type: ignore[method-assign]


def read(log_file: Path, windows: Iterable[tuple[float, float]]) -> list[list[tuple[str, float, float]]]:
    """Each batch's steps from an execute worker's log, for the batches that started in one
    of ``windows`` (unix times, from, to)."""
    spans = list(windows)
    out = []
    for line in log_file.read_text(errors="replace").splitlines():
        i = line.find("STEPS ")
        if i < 0:
            continue
        try:  # a JSON log line (``arbbot.obs.logs``, the default off a terminal), else plain text
            event = json.loads(line)["event"]
        except (ValueError, KeyError, TypeError):
            event = line[i:]
        body = json.loads(event.split("STEPS ", 1)[1])
        if any(lo <= body["at"] <= hi for lo, hi in spans):
            out.append([(n, s, e) for n, s, e in body["steps"]])
    return out


def rows(batches: list[list[tuple[str, float, float]]]) -> list[tuple[str, list[float]]]:
    """(row, its durations in ms): each step of the way to the first decision in order (the
    gap before each, where the stage did what no wrapper times, as "before"), the checks
    (each, and a batch's all), then the turn's sends and their parts."""
    table: dict[str, list[float]] = {}

    def add(name: str, ms: float) -> None:
        table.setdefault(name, []).append(ms)

    for steps in batches:
        sends = [(s, e) for n, s, e in steps if n == "send"]
        for n, s, e in steps:
            if n == "batch":
                add("batch, start -> end", e - s)
            elif n == "round trip (background)":
                add(n, e - s)
        if sends:
            add("start -> 1st decision (its send done)", sends[0][1])
        pauses = [(n, s, e) for n, s, e in steps if n.startswith("gc gen")]
        add("gc pauses in the batch, all", sum(e - s for _, s, e in pauses))
        if sends:
            add("gc pauses before the 1st decision", sum(e - s for _, s, e in pauses if e <= sends[0][1]))
        for n, s, e in pauses:
            add(f"  {n}, each", e - s)
        for p0, p1 in [(s, e) for n, s, e in steps if n == "prepare"]:
            parts: dict[str, float] = {}
            for n, s, e in steps:
                if n in ("pools read", "gas recalled", "pool guard", "re-size", "hops", "encode") and p0 <= s and e <= p1:
                    parts[n] = parts.get(n, 0.0) + e - s
            for n, ms in parts.items():
                add(f"    prepare: {n}, all", ms)
        cursor = 0.0
        for n, s, e in sorted((x for x in steps if x[0] in ("prepare", "claim", "prime", "wait ahead", "read ahead")),
                              key=lambda x: x[1]):
            if s > cursor:
                add("  before " + n, s - cursor)
            add("  " + n, e - s)
            cursor = max(cursor, e)
        checks = [(s, e) for n, s, e in steps if n == "check"]
        if checks:
            add("  before the checks", checks[0][0] - cursor)
            add("  checks, all of the batch", checks[-1][1] - checks[0][0])
            for s, e in checks:
                add("    each", e - s)
            cursor = checks[-1][1]
        for s0, e0 in [(s, e) for n, s, e in steps if n == "sends"]:
            add("  before the sends", s0 - cursor)
            add("  sends, all of the batch", e0 - s0)
            inner: dict[str, float] = {}
            for n, s, e in steps:
                if n in ("kill switch again", "sign", "record signed", "note traded", "send") and s0 <= s and e <= e0:
                    inner[n] = inner.get(n, 0.0) + e - s
            for n, ms in inner.items():
                add(f"    {n}" + (", all" if n in ("sign", "send") else ""), ms)
            add("    the rest", e0 - s0 - sum(inner.values()))
            for s, e in (x[1:] for x in steps if x[0] == "send" and s0 <= x[1] and x[2] <= e0):
                add("    each send", e - s)
    return list(table.items())


def table(batches: list[list[tuple[str, float, float]]]) -> str:
    """The steps' table: n, p50, p90 and max of each row, ms."""
    lines = [f"{'execute stage, by step (ms)':<58}{'n':>6}{'p50':>8}{'p90':>8}{'max':>8}", "-" * 88]
    for name, ms in rows(batches):
        ms = sorted(ms)
        p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
        lines.append(f"{name:<58}{len(ms):>6}{statistics.median(ms):>8.2f}{p90:>8.2f}{ms[-1]:>8.2f}")
    return "\n".join(lines)
