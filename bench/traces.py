"""The trace a block carries through the stages (``workers.stage.Trace``), as the execute
worker logs it, read back into a table of where the time went: the ``arbbot.trace`` lines of
a worker's log, and each stage's share of arrival -> execute decision. ``bench.latency.run``
(the live fleet on a devnet) and ``bench.pipeline.run`` (the fleet fed blocks) print it."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def traces(log: Path) -> list[dict[str, Any]]:
    """The ``arbbot.trace`` lines of a worker's log: JSON log lines (``arbbot.obs.logs``, the
    default off a terminal) whose event is the trace, or plain ``... arbbot.trace: {...}``."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if "arbbot.trace" not in line:
            continue
        try:
            record = json.loads(line)
            event = record.get("event") if isinstance(record, dict) else None
            if isinstance(event, str) and event.startswith("{"):
                out.append(json.loads(event))
                continue
        except ValueError:
            pass
        i = line.find("arbbot.trace: ")
        if i >= 0:
            out.append(json.loads(line[i + len("arbbot.trace: "):]))
    return out


STAGES = [  # (row, from mark, to mark); "block" is the bench's own arrival stamp
    ("arrival -> scan start", "block", "scan.start"),
    ("  scan", "scan.start", "scan.sent"),
    ("  hop scan -> path", "scan.sent", "path.start"),
    ("arrival -> path start", "block", "path.start"),
    ("  path", "path.start", "path.sent"),
    ("  hop path -> ml", "path.sent", "ml.start"),
    ("  ml", "ml.start", "ml.sent"),
    ("  hop ml -> execute", "ml.sent", "execute.start"),
    ("  execute start -> 1st decision", "execute.start", "first"),
    ("  execute start -> decision", "execute.start", "decided"),
    ("arrival -> execute decision", "block", "decided"),
]


def figures(batches: list[dict[str, Any]], arrivals: dict[int, float]) -> dict[str, dict[str, float]]:
    """Each ``STAGES`` row's p50 / p95 / p99 / max (ms) over ``batches`` (``traces``) of the
    blocks in ``arrivals`` (block -> the bench's own arrival stamp); a row no batch has
    marks for is left out."""
    rows: dict[str, list[float]] = {name: [] for name, _, _ in STAGES}
    for b in batches:
        if b["block"] not in arrivals:
            continue
        marks = {name: at for name, at in b["marks"]}
        # the block's first sighting: the bench's own newHeads stamp, or the follower's when a
        # loaded machine let the follower see it first (the trace's "arrived" mark; under
        # beat's tick that mark is the scan's own, later, time)
        marks["block"] = min(arrivals[b["block"]], marks.get("arrived") or arrivals[b["block"]])
        for name, a, z in STAGES:
            if z == "decided":
                rows[name] += [(d - marks[a]) * 1000 for d in b["decided_at"] if a in marks]
            elif z == "first":
                if a in marks and b["decided_at"]:
                    rows[name].append((min(b["decided_at"]) - marks[a]) * 1000)
            elif a in marks and z in marks:
                rows[name].append((marks[z] - marks[a]) * 1000)
    return {name: {"n": len(xs), "p50": round(statistics.median(xs), 1), "p95": round(pct(xs, 95), 1),
                   "p99": round(pct(xs, 99), 1), "max": round(max(xs), 1)}
            for name, xs in rows.items() if xs}
