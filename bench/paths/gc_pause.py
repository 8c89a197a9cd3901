#!/usr/bin/env python
"""The path worker's garbage-collector pauses, with and without ``workers.heap``'s freeze,
in the same run: prints a table and one JSON line.

    PYTHONPATH=. .venv/bin/python bench/paths/gc_pause.py [--blocks 120]

Each side is a process of its own: the pipeline benchmark's 10,176-pool engine
(``bench.pipeline.market``, 3 hops, at most 3 opportunities per pool), then ``--blocks``
blocks of 300 moved pools (``Feed``, seed 11), ``upsert`` + ``evaluate`` timed per block, and
the collector's own passes timed through ``gc.callbacks``. ``auto``: Python's defaults, as
the path worker ran before; ``frozen``: ``workers.heap.after_block`` once the engine is
built, as the path task now does after its first block.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def side(frozen: bool, blocks: int) -> dict:  # type: ignore[type-arg]
    sys.path.insert(0, str(ROOT))
    from arbbot.paths.engine import PathEngine
    from arbbot.paths.gas import GasModel
    from bench.pipeline.market import WETH, Feed, build

    market = build()
    engine = PathEngine(base_tokens=[], weth=WETH, max_hops=3, gas_model=GasModel(), max_per_pool=3)
    engine.upsert(market.pools)
    if frozen:
        from workers import heap

        heap.after_block(1, engine.pools_known)
    feed = Feed(market, 1, 300, 0.01, seed=11)
    passes: list[tuple[int, float]] = []
    started: list[float] = []

    def on_gc(phase: str, info: dict) -> None:  # type: ignore[type-arg]
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            passes.append((info["generation"], (time.perf_counter() - started.pop()) * 1000))

    gc.callbacks.append(on_gc)
    per_block = []
    for b in range(1, blocks + 1):
        d = feed.block(b, 0.0, 10**9)
        t0 = time.perf_counter()
        changed = engine.upsert(d.states)
        engine.evaluate(changed, chain_id=1, block_number=b, block_hash=d.block_hash, gas_price_wei=10**9)
        per_block.append((time.perf_counter() - t0) * 1000)
    gc.callbacks.remove(on_gc)
    full = [ms for g, ms in passes if g == 2]
    return {"block_ms": per_block, "full_passes": len(full), "full_ms": full,
            "tracked": len(gc.get_objects()), "frozen": gc.get_freeze_count()}


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", type=int, default=120)
    ap.add_argument("--side", choices=("auto", "frozen"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.blocks < 1:
        ap.error(f"--blocks {args.blocks}: must be positive")
    if args.side:
        print(json.dumps(side(args.side == "frozen", args.blocks)))
        return 0
    out = {}
    for name in ("auto", "frozen"):
        r = subprocess.run([sys.executable, __file__, "--blocks", str(args.blocks), "--side", name], cwd=ROOT,
                           capture_output=True, text=True, check=True)
        out[name] = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"{args.blocks} blocks of 300 moved pools over the 10,176-pool engine, upsert + evaluate, ms")
    print(f"{'side':<8}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}  full GC passes (ms each, max)")
    figs = {}
    for name, r in out.items():
        xs = r["block_ms"]
        f = {"p50": round(statistics.median(xs), 2), "p95": round(pct(xs, 95), 2), "p99": round(pct(xs, 99), 2),
             "max": round(max(xs), 2), "full_gc_passes": r["full_passes"],
             "full_gc_max_ms": round(max(r["full_ms"]), 1) if r["full_ms"] else 0.0}
        figs[name] = f
        print(f"{name:<8}{f['p50']:>8}{f['p95']:>8}{f['p99']:>8}{f['max']:>8}  {f['full_gc_passes']} "
              f"({f['full_gc_max_ms']} max)")
    print(json.dumps({"bench": "path-gc-pause", "unit": "ms", "blocks": args.blocks, **figs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
