#!/usr/bin/env python
"""The path stage's exact sizing on the pipeline benchmark's workload, before and after in
one run (not a timed test): prints a table and one JSON line.

    .venv/bin/python bench/paths/sizing.py [--blocks 20] [--repeat 2] [--before REF|none]

The workload is the pipeline benchmark's path stage (bench/pipeline): the 10,176-pool
synthetic market (bench/paths/synth.py, re-addressed by bench/pipeline/market.py), one
``PathEngine`` as the path stage builds it (auto start tokens, 3 hops, at most 3
opportunities per pool, gas at 1 gwei), and per block 300 pools moved as the pipeline's feed
moves them (``Feed``, seed 11, sigma 0.01), ``upsert`` then ``evaluate(changed)``.

Per side (``after``: this checkout; ``before``: ``--before REF``, default main, exported with
``git archive`` into a temporary directory) a subprocess with that tree on its path:

* per block, ``evaluate``'s time (min over ``--repeat`` rounds, the sides alternating), and
  within it the time of the exact sizing (``size_cycle``), V2-only cycles and cycles with a V3
  hop apart;
* the sized cycles replayed through ``size_cycle`` with exact chain quotes counted (one per
  distinct input the search tries), and the time per quote;
* every sized cycle's ``(amount_in, amount_out)``, keyed by its pools, tokens and block.

The parent compares the sides cycle by cycle: no cycle's profit on the after side may fall more
than ``WORST_LOSS`` (1e-4) of it below the before side's (exit status 1 otherwise).

Garbage collection: after the build, everything is frozen (``gc.freeze``) and a collection
runs before each block, untimed: what the bench itself keeps would otherwise set off a full
collection (~0.1 s with this heap) inside some block's ``evaluate``, a different block on
each side.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
CHAIN_ID = 31337
#: Most a cycle's profit may fall against the baseline. A V3 cycle through a coarse token
#: has many levels whose profits differ by rounding only; two searches may settle on two
#: of them (the level search, ``exact_search._size_by_levels``, came within 2.4e-5 where
#: it was not better), while a wrong optimum costs percents.
WORST_LOSS = 1e-4
GAS_PRICE = 10**9  # as bench/pipeline/run.py


def _step(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- worker side
# Runs with the tree under test first on sys.path: imports only what both sides have.


def _worker(out_path: str, blocks: int, warm: int) -> None:
    from arbbot.paths import engine as engine_mod
    from arbbot.paths import exact_search
    from arbbot.paths.engine import PathEngine
    from arbbot.paths.gas import GasModel
    from bench.pipeline.market import WETH, Feed, build

    market = build()
    engine = PathEngine(base_tokens=[], weth=WETH, max_hops=3, gas_model=GasModel(), max_per_pool=3)
    engine.upsert(market.pools)
    feed = Feed(market, CHAIN_ID, 300, 0.01, seed=11)

    size_cycle = engine_mod.size_cycle
    calls: list[tuple[object, ...]] = []  # (block, hops, x_float, coeffs, tab, result, seconds, has V3)
    block_now = [0]

    def timed_size_cycle(hops, x_float, coeffs=None, *, tab=None):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        result = size_cycle(hops, x_float, coeffs, tab=tab)
        dt = time.perf_counter() - t0
        v3 = not all(s.kind == "v2" for s, _ in hops)
        calls.append((block_now[0], hops, x_float, coeffs, tab, result, dt, v3))
        return result

    engine_mod.size_cycle = timed_size_cycle
    per_block = []
    gc.collect()
    gc.freeze()  # the market and the index: long-lived, out of the collector's full passes
    for b in range(1, warm + blocks + 1):
        d = feed.block(b, 0.0, GAS_PRICE)
        changed = engine.upsert(d.states)
        block_now[0] = b
        # What this bench keeps (every sized cycle's hops) would otherwise set off full
        # collections (~0.1 s with this heap) inside whichever evaluation comes next.
        gc.collect()
        n0 = len(calls)
        t0 = time.perf_counter()
        opps = engine.evaluate(changed, chain_id=CHAIN_ID, block_number=b, block_hash=d.block_hash,
                               gas_price_wei=GAS_PRICE)
        dt = time.perf_counter() - t0
        if b <= warm:
            del calls[n0:]
            continue
        mine = calls[n0:]
        per_block.append({
            "block": b, "evaluate_s": dt, "opportunities": len(opps),
            "profit_native": sum(o.profit_native or 0 for o in opps),
            "sized": len(mine), "sized_v3": sum(1 for c in mine if c[7]),
            "size_v2_s": sum(c[6] for c in mine if not c[7]), "size_v3_s": sum(c[6] for c in mine if c[7]),
        })
    engine_mod.size_cycle = size_cycle

    # Replay with quotes counted: one exact chain quote per distinct input tried (the
    # search caches its quotes), counted where the tree under test makes them.
    counter = [0]

    def counting(quote):  # type: ignore[no-untyped-def]
        def counted(*args):  # type: ignore[no-untyped-def]
            counter[0] += 1
            return quote(*args)

        return counted

    if hasattr(exact_search, "_chain"):  # a chain function built per search
        name, original = "_chain", exact_search._chain
        patched = lambda quoters: counting(original(quoters))  # noqa: E731
    else:  # main before issue 16: chain_out(hops, x) per quote
        name, original = "chain_out", exact_search.chain_out
        patched = counting(original)
    setattr(exact_search, name, patched)
    cycles = []
    for block, hops, x_float, coeffs, tab, result, seconds, v3 in calls:
        c0 = counter[0]
        again = exact_search.size_cycle(hops, x_float, coeffs, tab=tab)  # type: ignore[arg-type]
        assert again == result, "sizing not deterministic"
        key = "|".join([str(block)] + [f"{s.address.lower()}:{t.lower()}" for s, t in hops])  # type: ignore[attr-defined]
        cycles.append({"key": key, "v3": v3, "quotes": counter[0] - c0, "seconds": seconds,
                       "amount_in": result[0], "amount_out": result[1]})  # type: ignore[index]
    setattr(exact_search, name, original)
    with open(out_path, "wb") as f:
        pickle.dump({"blocks": per_block, "cycles": cycles}, f)


# ---------------------------------------------------------------------------- parent side


def export_tree(ref: str, into: Path) -> Path:
    """The repository's files at ``ref`` (``git archive``: nothing of the repository changes)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _run_side(tree: Path, out: Path, blocks: int, warm: int) -> dict:  # type: ignore[type-arg]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", str(out),
                    "--blocks", str(blocks), "--warm", str(warm)], cwd=tree, env=env, check=True)
    with open(out, "rb") as f:
        return pickle.load(f)  # type: ignore[no-any-return]


def _summary(rounds: list[dict]) -> dict:  # type: ignore[type-arg]
    """Per-block times: min over rounds; counts and results from the first round."""
    first = rounds[0]
    blocks = []
    for i, blk in enumerate(first["blocks"]):
        blk = dict(blk)
        for key in ("evaluate_s", "size_v2_s", "size_v3_s"):
            blk[key] = min(r["blocks"][i][key] for r in rounds)
        blocks.append(blk)
    cyc = first["cycles"]
    v3 = [c for c in cyc if c["v3"]]
    v2 = [c for c in cyc if not c["v3"]]
    v3_seconds = sum(min(r["cycles"][i]["seconds"] for r in rounds) for i, c in enumerate(cyc) if c["v3"])
    v3_quotes = sum(c["quotes"] for c in v3)
    med = statistics.median
    return {
        "blocks": len(blocks),
        "evaluate_ms_median": 1e3 * med(b["evaluate_s"] for b in blocks),
        "evaluate_ms_mean": 1e3 * statistics.fmean(b["evaluate_s"] for b in blocks),
        "evaluate_ms_max": 1e3 * max(b["evaluate_s"] for b in blocks),
        "size_v3_ms_per_block": 1e3 * statistics.fmean(b["size_v3_s"] for b in blocks),
        "size_v2_ms_per_block": 1e3 * statistics.fmean(b["size_v2_s"] for b in blocks),
        "opportunities_per_block": statistics.fmean(b["opportunities"] for b in blocks),
        "profit_native_total": sum(b["profit_native"] for b in blocks),
        "cycles_v3": len(v3), "cycles_v2": len(v2),
        "v3_quotes_per_cycle": v3_quotes / max(1, len(v3)),
        "v3_quotes_per_cycle_median": med(c["quotes"] for c in v3) if v3 else 0,
        "v3_us_per_cycle": 1e6 * v3_seconds / max(1, len(v3)),
        "v3_us_per_quote": 1e6 * v3_seconds / max(1, v3_quotes),
        "v2_us_per_cycle": 1e6 * sum(c["seconds"] for c in v2) / max(1, len(v2)),
    }


def _compare(before: list[dict], after: list[dict]) -> dict:  # type: ignore[type-arg]
    """Cycle by cycle (same block, same pools and tokens): profit after vs before."""
    b = {c["key"]: c for c in before}
    a = {c["key"]: c for c in after}
    common = b.keys() & a.keys()
    worse, better, same_amounts, gain, worst = [], 0, 0, 0, 0.0
    for key in sorted(common):
        pb = b[key]["amount_out"] - b[key]["amount_in"]
        pa = a[key]["amount_out"] - a[key]["amount_in"]
        if pa < pb:
            worse.append((key, pb, pa))
            worst = max(worst, (pb - pa) / pb)
        elif pa > pb:
            better += 1
            gain += pa - pb
        if (a[key]["amount_in"], a[key]["amount_out"]) == (b[key]["amount_in"], b[key]["amount_out"]):
            same_amounts += 1
    return {"compared": len(common), "only_before": len(b.keys() - common), "only_after": len(a.keys() - common),
            "worse": len(worse), "worst_loss": worst, "better": better, "same_amounts": same_amounts,
            "gain_wei_total": gain, "worse_examples": worse[:5]}


def _count(least: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``least``. (``arbbot.devnet.args.at_least``
    is the project's; this script's worker side parses its arguments with the tree under
    test first on its path, which may be older than that module.)"""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if n < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {n}")
        return n

    return parse


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=_count(1), default=20, help="timed blocks per round")
    ap.add_argument("--warm", type=_count(0), default=2, help="untimed blocks first")
    ap.add_argument("--repeat", type=_count(1), default=2, help="rounds per side (sides alternate; min per block)")
    ap.add_argument("--before", default="main", metavar="REF", help="baseline commit, or none")
    ap.add_argument("--worker", metavar="OUT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker(args.worker, args.blocks, args.warm)
        return 0

    res: dict[str, object] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                              "head": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                                     capture_output=True, text=True).stdout.strip(),
                              "blocks": args.blocks, "repeat": args.repeat}
    with tempfile.TemporaryDirectory(prefix="arbbot-sizing-") as tmp:
        work = Path(tmp)
        sides: list[tuple[str, Path]] = []
        if args.before.lower() != "none":
            ref = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.before],
                                 capture_output=True, text=True, check=True).stdout.strip()
            res["before_ref"] = ref
            sides.append(("before", export_tree(ref, work / "before")))
        sides.append(("after", ROOT))
        rounds: dict[str, list[dict]] = {name: [] for name, _ in sides}  # type: ignore[type-arg]
        for r in range(args.repeat):
            for name, tree in sides:
                _step(f"round {r + 1}/{args.repeat}: {name} ({tree})")
                rounds[name].append(_run_side(tree, work / f"{name}-{r}.pkl", args.blocks, args.warm))
        res["load_average"] = os.getloadavg()
    summary = {name: _summary(rs) for name, rs in rounds.items()}
    res["sides"] = summary
    rows = [
        ("evaluate per block, median ms", "evaluate_ms_median", "{:.2f}"),
        ("evaluate per block, mean ms", "evaluate_ms_mean", "{:.2f}"),
        ("evaluate per block, max ms", "evaluate_ms_max", "{:.2f}"),
        ("exact sizing, V3 cycles, ms/block", "size_v3_ms_per_block", "{:.2f}"),
        ("exact sizing, V2-only cycles, ms/block", "size_v2_ms_per_block", "{:.2f}"),
        ("cycles sized with a V3 hop", "cycles_v3", "{}"),
        ("cycles sized, V2-only", "cycles_v2", "{}"),
        ("V3 cycle: exact quotes, mean", "v3_quotes_per_cycle", "{:.1f}"),
        ("V3 cycle: exact quotes, median", "v3_quotes_per_cycle_median", "{}"),
        ("V3 cycle: us per cycle", "v3_us_per_cycle", "{:.1f}"),
        ("V3 cycle: us per quote", "v3_us_per_quote", "{:.2f}"),
        ("V2-only cycle: us per cycle", "v2_us_per_cycle", "{:.1f}"),
        ("opportunities per block", "opportunities_per_block", "{:.1f}"),
        ("profit_native, all blocks (wei)", "profit_native_total", "{}"),
    ]
    names = list(summary)
    print(f"\n{'':<42}" + "".join(f"{n:>22}" for n in names))
    for label, key, fmt in rows:
        print(f"{label:<42}" + "".join(f"{fmt.format(summary[n][key]):>22}" for n in names))
    ok = True
    if "before" in rounds:
        cmp = _compare(rounds["before"][0]["cycles"], rounds["after"][0]["cycles"])
        res["compare"] = cmp
        print(f"\ncycles compared {cmp['compared']} (only before {cmp['only_before']}, only after "
              f"{cmp['only_after']}): same amounts {cmp['same_amounts']}, better {cmp['better']} "
              f"(+{cmp['gain_wei_total']} wei in all), worse {cmp['worse']} (at most "
              f"{cmp['worst_loss']:.2e} of a cycle's profit)")
        ok = cmp["worst_loss"] <= WORST_LOSS
    print(json.dumps(res, default=str))
    if not ok:
        print(f"FAIL: a cycle lost more than {WORST_LOSS:.0e} of its profit against the baseline", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
