"""The ml stage's recent-outcome history, per block: the fresh read (main's code before this
change) against the window kept block by block (``arbbot.scoring.history``), in one run, on
one database. Not a timed test: prints a table and one JSON line.

    .venv/bin/python -m bench.ml.history [--per-block 240] [--moves 60] [--step 2]

A scratch database (created, migrated, dropped) is filled like the pipeline benchmark's
window (``bench/pipeline``: ~4.5 blocks/s, ~240 executions a block): ``--per-block``
executions in each of ``WINDOW_BLOCKS`` + the blocks the moves cover, each with its executed
opportunity (recorded by ``services.opportunities_record``, as analytics does, beside
``--others`` a block that were not executed), its cycle 2 or 3 pools of a market of 10,176 (random 20-byte addresses), its path id as the path stage
makes it, and a final status: success (a realised share of the predicted profit),
reverted, dropped stale, or failed (which teaches nothing). Then, for ``--moves`` blocks
``--step`` apart (the ml stage's history fits two blocks, so at ~4.5 blocks/s it is read
every other block), each way builds the history for the block:

* before: main's ``selectors.ml_outcomes`` and ``OutcomeHistory`` as they were (copied
  here: every outcome of the window read and counted in Python, shares summed as floats);
* fresh now: this code's ``selectors.ml_outcomes`` + ``OutcomeHistory`` (the same
  reading, its loop leaner, the shares exact);
* window: ``OutcomeWindow.at`` (the blocks it lacks, the margin, the sweep's few), its clock
  advanced ``--step / --blocks-per-s`` seconds a move, as the pipeline's would be;

times them, wall and CPU (this process: the database's own work is the wall's difference),
and checks at every move that the window's tables equal the fresh ones, bit for bit; the
largest difference in ``pool_profit_share`` between main's float share sums and the exact
ones is reported in ulps of the feature.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import time
from typing import Any, Callable

import numpy as np

from bench.scratch_db import ScratchDb


def _main_outcomes(chain_id: int, as_of_block: int) -> list[Any]:
    """``selectors.ml_outcomes`` as on main before this change (2ea20ce), verbatim but for
    the imports."""
    from arbbot.scoring.features import LAG_BLOCKS, WINDOW_BLOCKS, Outcome, outcome_kind, profit_share
    from webapp.core.models import Execution, Opportunity
    from webapp.core.selectors import _ml_worth, _rows

    fields_ = ("chain_id", "block_number", "path_id", "status", "reason", "mode", "gas_used", "gas_price_wei",
               "realised_profit_native")
    e, o = Execution._meta.db_table, Opportunity._meta.db_table
    fields = ", ".join(f"e.{f}" for f in fields_)
    rows = _rows(
        f"SELECT {fields}, o.pools, o.profit_native, o.net_profit_native FROM {e} e JOIN {o} o"
        " ON o.chain_id = e.chain_id AND o.block_number = e.block_number AND o.path_id = e.path_id"
        " AND o.decision = 'execute'"
        " WHERE e.chain_id = %s AND e.block_number BETWEEN %s AND %s AND e.status = ANY(%s)",
        [chain_id, as_of_block - WINDOW_BLOCKS, as_of_block - LAG_BLOCKS, ["success", "reverted", "dropped", "simulated"]],
    )
    out, seen = [], set()
    for row in rows:
        ex = dict(zip(fields_, row))
        kind = outcome_kind(ex["status"], ex["reason"], ex["mode"])
        key = (ex["block_number"], ex["path_id"])
        if kind is None or key in seen:
            continue
        seen.add(key)
        pools, profit, net = row[len(fields_):]
        share = 1.0
        if kind == "success" and profit is not None and net is not None:
            share = profit_share(_ml_worth(kind, ex, int(profit) - int(net), int(net)), int(net))
        out.append(Outcome(ex["block_number"], ex["path_id"],
                           tuple(json.loads(pools) if isinstance(pools, str) else pools), kind, share))
    return out


class _MainHistory:
    """``OutcomeHistory.__init__`` as on main before this change (shares summed as floats)."""

    def __init__(self, outcomes: Any) -> None:
        self.pool: dict[str, list[float]] = {}
        self.path: dict[str, list[int]] = {}
        for o in outcomes:
            failed = o.kind != "success"
            for p in o.pools:
                s = self.pool.setdefault(p.lower(), [0, 0, 0, -1, 0, 0.0])
                s[0] += 1
                s[1] += o.kind == "reverted"
                s[2] += o.kind == "stale"
                if failed:
                    s[3] = max(s[3], o.block_number)
                else:
                    s[4] += 1
                    s[5] += o.share
            t = self.path.setdefault(o.path_id, [0, 0])
            t[0] += 1
            t[1] += failed




CHAIN = 31337
WETH = "0x" + "c0" * 20
MARKET_POOLS = 10_176
GAS, GAS_PRICE = 180_000, 2 * 10**9


def _fill(first: int, last: int, per_block: int, others: int, seed: int) -> int:
    """Executions and their executed opportunities for blocks ``first..last``, and
    ``others`` opportunities a block that were not executed; how many executions. Then
    ANALYZE, as autovacuum would have by then (without statistics the join is planned
    blind: 7x slower here)."""
    from arbbot.paths.engine import path_id_for
    from arbbot.types import Opportunity, ScoredOpportunity
    from webapp.core import services
    from webapp.core.models import Chain, Execution
    from django.utils import timezone

    rng = random.Random(seed)
    Chain.objects.create(chain_id=CHAIN, name="bench", rpc_urls="http://127.0.0.1:8545", weth=WETH)
    pools = ["0x" + rng.randbytes(20).hex() for _ in range(MARKET_POOLS)]
    tokens = [WETH] + ["0x" + rng.randbytes(20).hex() for _ in range(400)]
    cycles = []
    for _ in range(40_000):
        hops = rng.choice((2, 3, 3))
        ps, ts = tuple(rng.sample(pools, hops)), (WETH, *rng.sample(tokens[1:], hops - 1), WETH)
        cycles.append((path_id_for(ps, ts[:-1]), ps, ts))
    n = 0
    now = timezone.now()
    for block in range(first, last + 1):
        scored, execs = [], []
        for i, (path_id, ps, ts) in enumerate(rng.sample(cycles, per_block + others)):
            gas = GAS * GAS_PRICE
            profit = gas + rng.randint(1, 50) * 10**14
            opp = Opportunity(chain_id=CHAIN, block_number=block, block_hash="0x" + f"{block:064x}", path_id=path_id,
                              pools=ps, tokens=ts, amount_in=10**19, amount_out=10**19 + profit, gas_estimate=GAS,
                              gas_price_wei=GAS_PRICE, gas_cost=gas, hop_kinds=("v2",) * len(ps),
                              profit_native=profit)
            if i >= per_block:
                scored.append(ScoredOpportunity(opp, 0.1, "skip", "one cycle per pool"))
                continue
            scored.append(ScoredOpportunity(opp, 0.9, "execute"))
            status, reason = rng.choices(
                [("success", ""), ("reverted", "ProfitTooLow"),
                 ("dropped", "stale: the cycle no longer pays on re-validation (ProfitTooLow)"),
                 ("dropped", "re-validation reverted: ProfitTooLow"), ("failed", "send failed")],
                weights=[30, 10, 35, 15, 10])[0]
            realised = int((profit - gas) * rng.uniform(-0.5, 1.5)) + gas if status == "success" else None
            execs.append(Execution(
                created_at=now, mode="live", chain_id=CHAIN, block_number=block, path_id=path_id, status=status,
                reason=reason, gas_used=GAS if status in ("success", "reverted") else 0, gas_price_wei=GAS_PRICE,
                profit_token=WETH, amount_in=10**19, predicted_profit=profit, profit_native=profit,
                realised_profit_native=realised))
        services.opportunities_record(scored)
        Execution.objects.bulk_create(execs)
        n += len(execs)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return n


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def _p(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-block", type=int, default=240, help="executions recorded a block")
    ap.add_argument("--others", type=int, default=300, help="opportunities a block not executed (recorded too)")
    ap.add_argument("--moves", type=int, default=60, help="blocks the history is built for, each way")
    ap.add_argument("--step", type=int, default=2, help="blocks between two moves")
    ap.add_argument("--blocks-per-s", type=float, default=4.5, help="the block rate the window's clock follows")
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    for flag, least in (("per_block", 1), ("others", 0), ("moves", 1), ("step", 1)):
        if getattr(args, flag) < least:
            ap.error(f"--{flag.replace('_', '-')} must be at least {least}, got {getattr(args, flag)}")
    if not args.blocks_per_s > 0:
        ap.error(f"--blocks-per-s must be above 0, got {args.blocks_per_s}")
    load_start = os.getloadavg()

    from arbbot.scoring.features import LAG_BLOCKS, SHARE_ONE, WINDOW_BLOCKS, OutcomeHistory, columns
    from arbbot.scoring.history import MARGIN_BLOCKS, SWEEP_S, OutcomeWindow
    from arbbot.types import Opportunity

    first = 1_000
    start = first + WINDOW_BLOCKS  # the first move's window is full
    blocks = [start + i * args.step for i in range(args.moves)]
    with ScratchDb("arbbot_bench_history"):
        from webapp.core import selectors

        _, fill_s, _ = _timed(lambda: _fill(first, blocks[-1] - LAG_BLOCKS, args.per_block, args.others, args.seed))
        read_s: list[float] = []
        rows_read: list[int] = []

        def reader(ranges: Any) -> list[Any]:
            out, w, _ = _timed(lambda: selectors.ml_outcomes_in(CHAIN, ranges))
            read_s.append(w)
            rows_read.append(len(out))
            return out

        clock = [0.0]
        window = OutcomeWindow(reader, clock=lambda: clock[0])
        window.at(blocks[0] - args.step)  # the window's first (whole) read, before the moves
        read_s.clear(), rows_read.clear()
        times: dict[str, list[tuple[float, float]]] = {"before": [], "fresh": [], "window": []}
        worst_ulps, worst_abs, outcomes_n, equal = 0.0, 0.0, [], True
        for block in blocks:
            clock[0] += args.step / args.blocks_per_s
            main_h, w, c = _timed(lambda: _MainHistory(_main_outcomes(CHAIN, block)))
            times["before"].append((w, c))
            fresh, w, c = _timed(lambda: OutcomeHistory(selectors.ml_outcomes(CHAIN, block)))
            times["fresh"].append((w, c))
            kept, w, c = _timed(lambda: window.at(block))
            times["window"].append((w, c))
            outcomes_n.append(sum(v[0] for v in fresh.path.values()))
            # the same counts; the tables of a batch naming every pool and path, bit for bit
            probe = columns([Opportunity(chain_id=CHAIN, block_number=block, block_hash="0x", path_id=p, pools=ps,
                                         tokens=(WETH,) * (len(ps) + 1), amount_in=1, amount_out=2, gas_estimate=1,
                                         gas_price_wei=1, gas_cost=1) for p, ps in _probe(fresh)])
            equal &= kept.pool == fresh.pool and kept.path == fresh.path and all(
                np.array_equal(a, b) for a, b in zip(kept.tables(probe), fresh.tables(probe)))
            for key, s in main_h.pool.items():  # the feature: (share sum + 1) / (successes + 1)
                exact = (fresh.pool[key][5] / SHARE_ONE + 1) / (s[4] + 1)
                off = abs((s[5] + 1) / (s[4] + 1) - exact)
                worst_ulps, worst_abs = max(worst_ulps, off / math.ulp(exact)), max(worst_abs, off)
        load_end = os.getloadavg()

    def row(name: str) -> dict[str, float]:
        ws, cs = [t[0] for t in times[name]], [t[1] for t in times[name]]
        return {"wall_p50_ms": _p(ws, 50), "wall_p95_ms": _p(ws, 95), "cpu_p50_ms": _p(cs, 50),
                "wall_mean_ms": statistics.fmean(ws) * 1e3}

    res = {name: row(name) for name in times}
    print(f"python {platform.python_version()}, {os.cpu_count()} cpus, load {load_start[0]:.2f} -> {load_end[0]:.2f}; "
          f"filled {blocks[-1] - LAG_BLOCKS - first + 1} blocks x {args.per_block} executions in {fill_s:.0f} s")
    print(f"window: {WINDOW_BLOCKS} blocks, ~{statistics.fmean(outcomes_n):,.0f} outcomes; {args.moves} moves "
          f"{args.step} blocks apart at {args.blocks_per_s} blocks/s; margin {MARGIN_BLOCKS} blocks, sweep {SWEEP_S:.0f} s")
    print(f"{'per move':<44}{'wall p50':>10}{'wall p95':>10}{'cpu p50':>10}")
    labels = {"before": "before: main's read + OutcomeHistory", "fresh": "fresh now: ml_outcomes + OutcomeHistory",
              "window": "window: OutcomeWindow.at"}
    for name, r in res.items():
        print(f"{labels[name]:<44}{r['wall_p50_ms']:>8.1f}ms{r['wall_p95_ms']:>8.1f}ms{r['cpu_p50_ms']:>8.1f}ms")
    speedup = res["before"]["wall_p50_ms"] / res["window"]["wall_p50_ms"]
    print(f"window's reads: {statistics.fmean(rows_read):,.0f} outcomes a move (p50 {_p(read_s, 50):.1f} ms of its "
          f"wall); before / window, wall p50: {speedup:.1f}x; window == fresh at every move: {equal}; "
          f"pool_profit_share from main's float sums vs the exact: worst {worst_ulps:.0f} ulps, {worst_abs:.1e}")
    print(json.dumps({"bench": "ml.history", "python": platform.python_version(), "cpus": os.cpu_count(),
                      "load": [round(load_start[0], 2), round(load_end[0], 2)], "per_block": args.per_block,
                      "moves": args.moves, "step": args.step, "blocks_per_s": args.blocks_per_s,
                      "outcomes": round(statistics.fmean(outcomes_n)), "margin_blocks": MARGIN_BLOCKS,
                      "sweep_s": SWEEP_S, **{k: {m: round(v, 2) for m, v in r.items()} for k, r in res.items()},
                      "window_read_outcomes": round(statistics.fmean(rows_read)), "window_read_p50_ms": round(_p(read_s, 50), 2),
                      "speedup_p50": round(speedup, 1), "equal": equal, "share_feature_worst_ulps": worst_ulps,
                      "share_feature_worst_abs": worst_abs}))
    return 0 if equal else 1


def _probe(h: Any) -> list[tuple[str, tuple[str, ...]]]:
    """One made-up cycle per path of ``h``, over its pools taken two at a time (every pool
    named once at least)."""
    pools = sorted(h.pool)
    pairs = [tuple(pools[i:i + 2]) for i in range(0, len(pools) - 1, 2)] or [tuple(pools)]
    paths = sorted(h.path)
    return [(paths[i % len(paths)] if paths else "none", pairs[i % len(pairs)])
            for i in range(max(len(paths), len(pairs)))]


if __name__ == "__main__":
    raise SystemExit(main())
