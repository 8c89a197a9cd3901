"""Path engine benchmark (not a timed test): prints a table and one JSON line.

    .venv/bin/python -m bench.paths.run [--quick] [--no-degenbot]

Reports, in one run on one synthetic market (bench/paths/synth.py, >= 10,000 pools,
>= 1,000,000 cycles of 2-4 hops):
* V2 cycles sized per second, vectorised (closed-form optimum of every V2-only cycle);
* the same per cycle in pure Python (a sample, extrapolated) as the baseline;
* the whole-engine screen (all cycles, V3 approximated, gas and threshold applied);
* incremental: ``upsert`` of 100 changed pools + ``evaluate(changed)`` (exact re-check of
  survivors included), median and p95 over several blocks, as the path stage runs it (at
  most ``ARBBOT_PATH_MAX_PER_POOL`` opportunities per pool) and with no cap, and its
  screen-only part;
* exact integer sizing cost per cycle;
* degenbot 0.3.0 and 0.5.0 (``UniswapLpCycle.calculate``, bounded Brent over exact integer
  quotes; 0.5.0 with its compiled core) on a sample of the same V2 cycles of the market as
  built, each run in its own venv (bench/.venv-degenbot, bench/.venv-degenbot-0.5) as a subprocess; the
  ratio and the profit difference, on a random sample and on its profitable part.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from arbbot.config import Settings
from arbbot.paths import PathEngine
from arbbot.paths.screen import IntArray, closed_form_python, screen
from arbbot.paths.v2_closed import size_v2_closed
from arbbot.types import V2PoolState
from bench.paths.synth import BASES, WETH, build_market, perturb

HERE = Path(__file__).resolve().parent
#: the peers compared against, each in its own venv (bench/paths/setup_degenbot.sh)
DEGENBOT_VENVS = {"0.3.0": HERE.parent / ".venv-degenbot", "0.5.0": HERE.parent / ".venv-degenbot-0.5"}
GAS_PRICE = 20 * 10**9
BLOCK_HASH = "0x" + "ab" * 32


def _step(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _best_of(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _hops(engine: PathEngine, k: int, row: int):  # type: ignore[no-untyped-def]
    return engine._hops(k, row)[0]  # noqa: SLF001 - the bench inspects the engine


def _size(engine: PathEngine, k: int, row: int, x_float: float) -> tuple[int, int]:
    """Exact sizing of one V2 cycle, the engine's own (``PathEngine._verify`` calls it)."""
    return engine.size_v2_row(k, row, x_float) or (0, 0)


def _by_hops(sample: list[tuple[int, int]]) -> dict[int, IntArray]:
    """``sample`` grouped as the engine holds cycles: per hop count, a row array."""
    by_k: dict[int, list[int]] = {}
    for k, row in sample:
        by_k.setdefault(k, []).append(row)
    return {k: np.asarray(rows, dtype=np.int64) for k, rows in by_k.items()}


def _sized_rows(engine: PathEngine, groups: dict[int, IntArray]) -> dict[tuple[int, int], tuple[int, int]]:
    """The engine's two stages on those rows: its vectorised screen (``screen_rows``), then
    the exact integer sizing of each cycle it keeps. Gas 0 and threshold 0, like
    degenbot's call. Returns ``(hops, row) -> (amount_in, amount_out)`` for the kept ones."""
    out: dict[tuple[int, int], tuple[int, int]] = {}
    for k, rows in groups.items():
        cyc, x, profit = engine.screen_rows(k, rows)
        for r, xf, pr in zip(cyc.tolist(), x.tolist(), profit.tolist()):
            if pr > 0:
                out[(k, r)] = _size(engine, k, r, xf)
    return out


def _ours(engine: PathEngine, sample: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Our sizing of ``sample`` (``(hops, row)`` pairs), ``(0, 0)`` where nothing pays."""
    sized = _sized_rows(engine, _by_hops(sample))
    return [sized.get(s, (0, 0)) for s in sample]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--blocks", type=int, default=30, help="incremental rounds")
    ap.add_argument("--degenbot-random", type=int, default=20_000,
                    help="random V2 cycles both sizers size (what an engine faces)")
    ap.add_argument("--degenbot-profitable", type=int, default=600,
                    help="V2 cycles with a positive float gross profit (where the sizing work is)")
    ap.add_argument("--no-degenbot", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    res: dict[str, object] = {"python": platform.python_version(), "numpy": np.__version__, "cpus": os.cpu_count()}

    # ------------------------------------------------------------ build
    _step("building market + index")
    t0 = time.perf_counter()
    pools = build_market(seed=args.seed)
    engine = PathEngine(base_tokens=BASES, weth=WETH, max_hops=4, min_net_profit=0)
    t1 = time.perf_counter()
    engine.upsert(pools)
    t2 = time.perf_counter()
    counts = engine.cycle_counts()
    n_v3_pools = sum(p.kind == "v3" for p in pools)
    res.update(pools=len(pools), v3_pools=n_v3_pools, cycles=sum(counts.values()),
               cycles_by_hops={str(k): v for k, v in counts.items()}, index_build_s=round(t2 - t1, 3))

    # ------------------------------------------------------------ vectorised V2 sizing
    _step("vectorised sizing")
    v2_edges = {}
    for k, g in engine._groups.items():  # noqa: SLF001
        rows = np.flatnonzero(g.alive[: g.n] & (g.n_v3[: g.n] == 0))
        v2_edges[k] = (rows, np.ascontiguousarray(g.hop_edges(rows).T))
    n_v2 = sum(r.size for r, _ in v2_edges.values())

    def size_all_v2() -> None:
        for _, edges in v2_edges.values():
            screen(edges, engine._p, engine._q)  # noqa: SLF001

    t_vec = _best_of(size_all_v2, 5)
    res.update(v2_cycles=n_v2, v2_sized_per_s=round(n_v2 / t_vec), v2_size_all_s=round(t_vec, 4))

    t_full = _best_of(lambda: engine.screen(None, gas_price_wei=GAS_PRICE), 3)
    n_all = sum(counts.values())
    res.update(full_screen_s=round(t_full, 4), all_cycles_screened_per_s=round(n_all / t_full))

    # ------------------------------------------------------------ pure Python baseline
    _step("pure Python baseline")
    sample_n = 100_000
    py_sample = []
    for k, (rows, _) in v2_edges.items():
        take = rows[rng.choice(rows.size, size=min(rows.size, sample_n * rows.size // n_v2 + 1), replace=False)]
        py_sample += [(k, int(r)) for r in take]
    p_list, q_list = engine._p.tolist(), engine._q.tolist()  # noqa: SLF001
    edge_lists = [engine._groups[k].row_edges(r) for k, r in py_sample]  # noqa: SLF001
    t0 = time.perf_counter()
    for edges in edge_lists:
        closed_form_python([(p_list[e], q_list[e]) for e in edges])
    t_py = time.perf_counter() - t0
    py_rate = len(edge_lists) / t_py
    res.update(python_sample=len(edge_lists), python_sized_per_s=round(py_rate),
               python_all_v2_extrapolated_s=round(n_v2 / py_rate, 2), vectorised_speedup=round((n_v2 / t_vec) / py_rate, 1))

    # ------------------------------------------------------------ exact sizing cost
    _step("exact sizing cost")
    cands = []
    for k, (rows, edges) in v2_edges.items():
        x, prof = screen(edges, engine._p, engine._q)  # noqa: SLF001
        good = np.flatnonzero(prof > 0)
        cands += [(k, int(rows[i]), float(x[i])) for i in good]
    res["v2_cycles_gross_profitable_float"] = len(cands)
    pick = [cands[i] for i in rng.choice(len(cands), size=min(2000, len(cands)), replace=False)]
    t0 = time.perf_counter()
    for k, r, x in pick:
        _size(engine, k, r, x)
    t_exact = (time.perf_counter() - t0) / max(1, len(pick))
    res["exact_v2_sizing_us_per_cycle"] = round(t_exact * 1e6, 1)
    # Split: cycles the exact closed form certifies alone vs the rest (nested coarse
    # tokens: the level window, and the level search where that cannot certify).
    split: dict[bool, list[float]] = {True: [], False: []}
    for k, r, x in pick:
        edges = engine._groups[k].row_edges(r)  # noqa: SLF001
        tab = [engine._tab[e] for e in edges]  # noqa: SLF001
        if any(t is None for t in tab):
            continue
        cert = size_v2_closed(tab)[2]  # type: ignore[arg-type]
        t0 = time.perf_counter()
        _size(engine, k, r, x)
        split[cert].append(time.perf_counter() - t0)
    n_split = len(split[True]) + len(split[False])
    res["exact_v2_certified_share"] = round(len(split[True]) / max(1, n_split), 3)
    for key, vals in (("certified", split[True]), ("fallback", split[False])):
        res[f"exact_v2_{key}_us_per_cycle"] = round(statistics.mean(vals) * 1e6, 1) if vals else None

    # ------------------------------------------------------------ degenbot
    # On the market as built, the same V2 cycles the vectorised figure sized (the
    # incremental rounds below perturb 3,000 pools and leave their gaps open).
    _step("degenbot")
    if not args.no_degenbot:
        res.update(_degenbot(engine, v2_edges, rng, args.degenbot_random, args.degenbot_profitable))

    # ------------------------------------------------------------ incremental
    _step("incremental")
    # Own generator: the same 30 blocks whether or not the degenbot section ran.
    rng = np.random.default_rng(args.seed + 1)
    # As the path stage runs it (Settings.path_max_per_pool): at most that many
    # opportunities per pool per block, best float first; then the same evaluation with no
    # cap on the same states (after the capped one: its V3 quote caches are warm).
    cap = Settings.from_env().path_max_per_pool or None
    ev_times, free_times, scr_times, affected, verified, found, found_free = [], [], [], [], [], [], []
    states = list(pools)
    for b in range(args.blocks):
        idx = rng.choice(len(states), size=100, replace=False)
        updates = [perturb(states[i], rng, b + 1) for i in idx]
        for i, u in zip(idx, updates):
            states[i] = u
        before = engine.stats["verified_v2"] + engine.stats["verified_search"]
        t0 = time.perf_counter()
        changed = engine.upsert(updates)
        t_up = time.perf_counter() - t0
        engine.max_per_pool = cap
        t0 = time.perf_counter()
        opps = engine.evaluate(changed, chain_id=1, block_number=b + 1, block_hash=BLOCK_HASH, gas_price_wei=GAS_PRICE)
        ev_times.append(t_up + time.perf_counter() - t0)
        verified.append(engine.stats["verified_v2"] + engine.stats["verified_search"] - before)
        found.append(len(opps))
        engine.max_per_pool = None
        t0 = time.perf_counter()
        found_free.append(len(engine.evaluate(changed, chain_id=1, block_number=b + 1, block_hash=BLOCK_HASH,
                                              gas_price_wei=GAS_PRICE)))
        free_times.append(t_up + time.perf_counter() - t0)
        t0 = time.perf_counter()
        engine.screen(changed, gas_price_wei=GAS_PRICE)
        scr_times.append(time.perf_counter() - t0)
        pids = np.asarray([engine._pid[a] for a in changed])  # noqa: SLF001
        affected.append(sum(int(g.alive[g.rows_for_pools(pids)].sum()) for g in engine._groups.values()))  # noqa: SLF001

    def p95(xs: list[float]) -> float:
        return sorted(xs)[int(0.95 * (len(xs) - 1))]

    res.update(
        incremental_changed_pools=100,
        incremental_blocks=args.blocks,
        incremental_max_per_pool=cap,
        incremental_median_ms=round(statistics.median(ev_times) * 1e3, 2),
        incremental_p95_ms=round(p95(ev_times) * 1e3, 2),
        incremental_max_ms=round(max(ev_times) * 1e3, 2),
        incremental_uncapped_median_ms=round(statistics.median(free_times) * 1e3, 2),
        incremental_uncapped_p95_ms=round(p95(free_times) * 1e3, 2),
        incremental_screen_only_median_ms=round(statistics.median(scr_times) * 1e3, 2),
        incremental_affected_cycles_median=int(statistics.median(affected)),
        incremental_exact_checks_median=int(statistics.median(verified)),
        incremental_opportunities_median=int(statistics.median(found)),
        incremental_opportunities_max=max(found),
        incremental_uncapped_opportunities_max=max(found_free),
    )

    _print(res)
    print(json.dumps(res, sort_keys=True))


def _degenbot(engine: PathEngine, v2_edges, rng: np.random.Generator, n_random: int, n_prof: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Same cycles, two sizers: ours (vectorised screen + exact re-check of survivors)
    and degenbot's UniswapLpCycle.calculate(). ``n_random`` random V2 cycles (what an
    engine faces: about 1% have a positive float gross profit) and ``n_prof`` cycles
    with positive float gross profit (where the sizing work is)."""
    venvs = {v: d for v, d in DEGENBOT_VENVS.items() if (d / "bin" / "python").exists()}
    if not venvs:
        return {"degenbot_skipped": "run bench/paths/setup_degenbot.sh"}
    allrows = [(k, int(r)) for k, (rows, _) in v2_edges.items() for r in rows.tolist()]
    sample: list[tuple[int, int]] = [allrows[i] for i in rng.choice(len(allrows), size=min(n_random, len(allrows)), replace=False)]
    n_rand = len(sample)
    prof = []
    for k, (rows, edges) in v2_edges.items():
        _, p = screen(edges, engine._p, engine._q)  # noqa: SLF001
        prof += [(k, int(rows[i])) for i in np.flatnonzero(p > 0)]
    for i in rng.choice(len(prof), size=min(n_prof, len(prof)), replace=False):
        sample.append(prof[i])
    is_prof = [False] * n_rand + [True] * (len(sample) - n_rand)

    cycles = []
    for k, r in sample:
        hops = _hops(engine, k, r)
        first, tok_in = hops[0]
        assert isinstance(first, V2PoolState)
        max_input = first.reserve0 if tok_in == first.token0 else first.reserve1
        cycles.append({
            "input": tok_in,
            "max_input": str(max_input),  # an honest bound: all of the first pool's reserve
            "pools": [{"address": s.address, "token0": s.token0, "token1": s.token1,
                       "reserve0": str(s.reserve0), "reserve1": str(s.reserve1), "fee_pips": s.fee_pips}
                      for s, _ in hops],
        })
    ours = _ours(engine, sample)
    # ours timed on each subset by itself (best of 3)
    t_prof = _time_ours(engine, [s for s, m in zip(sample, is_prof) if m])
    t_rand = _time_ours(engine, [s for s, m in zip(sample, is_prof) if not m])
    out: dict[str, object] = {"degenbot_sample": len(sample), "degenbot_versions": list(venvs)}
    for version, venv in venvs.items():
        _step(f"degenbot {version}")
        # each venv has a home of its own: 0.5.0 keeps a config and a database under $HOME
        proc = subprocess.run([str(venv / "bin" / "python"), str(HERE / "degenbot_worker.py")],
                              input=json.dumps({"cycles": cycles}), capture_output=True, text=True, timeout=1800,
                              env={**os.environ, "HOME": str(venv / "home")})
        if proc.returncode != 0:
            out[f"degenbot_{version}"] = "failed: " + proc.stderr[-500:]
            continue
        reply = json.loads(proc.stdout)
        if reply.get("version", version) != version:
            out[f"degenbot_{version}"] = f"failed: the venv holds degenbot {reply['version']}"
            continue
        theirs = reply["results"]
        for name, mask, t in (("random", [not m for m in is_prof], t_rand), ("profitable", is_prof, t_prof)):
            summ = _versus(sample, ours, theirs, mask, version)
            if summ:
                pre = f"degenbot_{version}_{name}"
                out[f"{pre}_n"] = summ["n"]
                out[f"{pre}_us_per_cycle"] = round(summ["degenbot_s"] / summ["n"] * 1e6, 1)  # type: ignore[operator]
                out[f"ours_{name}_us_per_cycle"] = round(t / summ["n"] * 1e6, 2)  # type: ignore[operator]
                out[f"{pre}_speedup"] = round(summ["degenbot_s"] / t, 1)  # type: ignore[operator]
                for key in ("ours_worse", "ours_better", "profit_diff_min", "profit_diff_max", "profit_diff_sum"):
                    out[f"{pre}_{key}"] = summ[key]
    return out


def _versus(sample: list[tuple[int, int]], ours: list[tuple[int, int]], theirs: list[dict[str, object]],
            mask: list[bool], version: str) -> dict[str, object]:
    """Over the cycles of ``mask``: degenbot's time, and ours minus its profit (exact integers)."""
    idx = [i for i, m in enumerate(mask) if m]
    if not idx:
        return {}
    t_theirs = sum(float(theirs[i]["seconds"]) for i in idx)  # type: ignore[arg-type]
    diffs = [(ours[i][1] - ours[i][0]) - int(theirs[i]["profit"]) for i in idx]  # type: ignore[call-overload]
    for i, d in zip(idx, diffs):
        if d < 0:  # name it, so it can be looked at
            print(f"ours worse than degenbot {version} by {-d} wei: hops={sample[i][0]} row={sample[i][1]} "
                  f"ours={ours[i]} degenbot={theirs[i]}", file=sys.stderr)
    return {"n": len(idx), "degenbot_s": t_theirs,
            "ours_worse": sum(d < 0 for d in diffs), "ours_better": sum(d > 0 for d in diffs),
            "profit_diff_min": min(diffs), "profit_diff_max": max(diffs), "profit_diff_sum": sum(diffs)}


def _time_ours(engine: PathEngine, sample: list[tuple[int, int]]) -> float:
    """Best of 3 of ``_sized_rows`` on ``sample`` (grouped beforehand, as the engine's
    index already is)."""
    if not sample:
        return 0.0
    groups = _by_hops(sample)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        _sized_rows(engine, groups)
        best = min(best, time.perf_counter() - t0)
    return best


def _print(res: dict[str, object]) -> None:
    rows = [
        ("pools (V3)", f"{res['pools']:,} ({res['v3_pools']:,})"),
        ("cycles 2/3/4 hops", " / ".join(f"{v:,}" for v in res["cycles_by_hops"].values()) + f"  = {res['cycles']:,}"),  # type: ignore[attr-defined]
        ("index build (enumeration)", f"{res['index_build_s']} s"),
        ("V2-only cycles", f"{res['v2_cycles']:,}"),
        ("V2 cycles sized/s, vectorised", f"{res['v2_sized_per_s']:,}  (target >= 5,000,000)"),
        ("same, pure Python (sample, extrap.)", f"{res['python_sized_per_s']:,}/s -> {res['python_all_v2_extrapolated_s']} s for all; numpy x{res['vectorised_speedup']}"),
        ("all cycles screened/s (gas+threshold)", f"{res['all_cycles_screened_per_s']:,}"),
        ("exact V2 sizing per cycle", f"{res['exact_v2_sizing_us_per_cycle']} us"),
        ("  closed form certifies / fallback", f"{res['exact_v2_certified_share']:.1%}: {res['exact_v2_certified_us_per_cycle']} us; "
                                               f"rest (window, level search if needed): {res['exact_v2_fallback_us_per_cycle']} us"),
        (f"incremental, 100 changed pools, cap {res['incremental_max_per_pool']}/pool",
         f"median {res['incremental_median_ms']} ms, p95 {res['incremental_p95_ms']} ms, max {res['incremental_max_ms']} ms  (target <= 10 ms)"),
        ("  same blocks, no cap per pool", f"median {res['incremental_uncapped_median_ms']} ms, p95 {res['incremental_uncapped_p95_ms']} ms"),
        ("  opportunities per block, max (no cap)", f"{res['incremental_opportunities_max']} ({res['incremental_uncapped_opportunities_max']})"),
        ("  of which screen only", f"median {res['incremental_screen_only_median_ms']} ms"),
        ("  affected cycles / exact checks / opps", f"{res['incremental_affected_cycles_median']:,} / {res['incremental_exact_checks_median']} / {res['incremental_opportunities_median']}"),
    ]
    for version in res.get("degenbot_versions", []):  # type: ignore[attr-defined]
        if isinstance(res.get(f"degenbot_{version}"), str):
            rows.append((f"degenbot {version}", str(res[f"degenbot_{version}"])))
        for name in ("random", "profitable"):
            pre = f"degenbot_{version}_{name}"
            if f"{pre}_speedup" in res:
                rows.append((f"degenbot {version}, {name} V2 cycles (n={res[f'{pre}_n']})",
                             f"{res[f'{pre}_us_per_cycle']} us vs ours {res[f'ours_{name}_us_per_cycle']} us: "
                             f"x{res[f'{pre}_speedup']}  (target >= 100x)"))
                rows.append(("  profit ours - degenbot (wei)",
                             f"worse {res[f'{pre}_ours_worse']}, better {res[f'{pre}_ours_better']}, "
                             f"min {res[f'{pre}_profit_diff_min']}, max {res[f'{pre}_profit_diff_max']}"))
    if "degenbot_skipped" in res:
        rows.append(("degenbot", f"skipped: {res['degenbot_skipped']}"))
    width = max(len(r[0]) for r in rows)
    print("\nPath engine benchmark")
    print("-" * (width + 50))
    for a, b in rows:
        print(f"{a:<{width}}  {b}")
    print("-" * (width + 50))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
