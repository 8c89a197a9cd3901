#!/usr/bin/env python
"""The daily PnL query a live send asks twice (``selectors.pnl_today_wei``: before the
re-validation and again under the nonce lock), against the query it replaced, in the same
run on the same rows.

The day's executions of a busy chain are mostly decisions that sent nothing (dropped,
simulated); only the sent ones carry gas or a realised profit. The query before read every
execution of the day for the chain (the ``created_at`` index) and filtered the sums; the
query now reads the sent ones alone through their partial index (``execution_sent_by_day``),
in SQL written out (the ORM's aggregate cost 0.7 ms more than the query it sent).

A scratch database of its own (``bench.scratch_db``): ``--unsent`` executions that sent
nothing and ``--sent`` that did (success and reverted, with gas), today, on the chain, and as
many again on another chain. Prints a table and a JSON line; both queries must agree.

Run: ``PYTHONPATH=. .venv/bin/python bench/execution/pnl.py [--unsent 100000] [--sent 500]``
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.scratch_db import ScratchDb  # noqa: E402

CHAIN, OTHER = 31337, 8453
WETH = "0x" + "ee" * 20


def before_query(chain_id: int, weth: str) -> int:
    """``selectors.pnl_today_wei`` as it was: every execution of the day, sums filtered."""
    from django.db.models import F, Q, Sum
    from django.utils import timezone

    from webapp.core.models import Execution

    start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    won = Q(status="success")
    sums = Execution.objects.filter(chain_id=chain_id, created_at__gte=start).aggregate(
        native=Sum("realised_profit_native", filter=won),
        legacy=Sum("realised_profit", filter=won & Q(realised_profit_native__isnull=True, profit_token=weth.lower())),
        gas=Sum(F("gas_used") * F("gas_price_wei"), filter=~Q(tx_hash="")),
    )
    return int(sums["native"] or 0) + int(sums["legacy"] or 0) - int(sums["gas"] or 0)


def fill(unsent: int, sent: int, seed: int = 1) -> None:
    from django.db import connection
    from django.utils import timezone

    from webapp.core.models import Execution

    rng = random.Random(seed)
    now = timezone.now()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = []
    for chain in (CHAIN, OTHER):
        for i in range(unsent + sent):
            at = day_start + (now - day_start) * (rng.random() * 0.999)
            common = {"created_at": at, "chain_id": chain, "block_number": i, "path_id": f"p{i}",
                      "profit_token": WETH, "mode": "live"}
            if i < unsent:
                rows.append(Execution(status=rng.choice(["dropped", "simulated", "failed"]), **common))
            else:
                ok = rng.random() < 0.8
                profit = rng.randrange(10**15, 10**17)
                rows.append(Execution(
                    status="success" if ok else "reverted", tx_hash=f"0x{chain:08x}{i:056x}",
                    gas_used=rng.randrange(150_000, 400_000), gas_price_wei=rng.randrange(10**9, 5 * 10**10),
                    realised_profit=profit if ok else 0, realised_profit_native=(profit if ok and i % 3 else None),
                    **common))
    Execution.objects.bulk_create(rows, batch_size=5000)
    with connection.cursor() as cur:
        cur.execute("ANALYZE core_execution")


def timed(fn, n: int) -> tuple[list[float], int]:  # type: ignore[no-untyped-def]
    out, value = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        value = fn(CHAIN, WETH)
        out.append((time.perf_counter() - t0) * 1000)
    return out, value


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--unsent", type=int, default=100_000, help="executions of the day that sent nothing, per chain")
    ap.add_argument("--sent", type=int, default=500, help="executions of the day that sent a transaction, per chain")
    ap.add_argument("--queries", type=int, default=200, help="queries timed per variant (interleaved in rounds)")
    args = ap.parse_args()
    for name in ("unsent", "sent", "queries"):
        if getattr(args, name) < (1 if name == "queries" else 0):
            ap.error(f"--{name} {getattr(args, name)}: must be {'positive' if name == 'queries' else 'zero or more'}")
    with ScratchDb("arbbot_bench_pnl"):
        from webapp.core.selectors import pnl_today_wei

        t0 = time.perf_counter()
        fill(args.unsent, args.sent)
        print(f"{2 * (args.unsent + args.sent):,} executions written in {time.perf_counter() - t0:.1f} s "
              f"({args.unsent:,} unsent + {args.sent:,} sent today, on each of 2 chains)")
        timed(before_query, 5), timed(pnl_today_wei, 5)  # warm both plans and caches
        before: list[float] = []
        after: list[float] = []
        rounds = 10
        for _ in range(rounds):
            b, vb = timed(before_query, max(1, args.queries // rounds))
            a, va = timed(pnl_today_wei, max(1, args.queries // rounds))
            before += b
            after += a
            if va != vb:
                raise SystemExit(f"the queries disagree: before {vb}, now {va}")
    figs = {}
    print(f"\n{'daily PnL query, ms':<44}{'p50':>8}{'p95':>8}{'max':>8}")
    for name, xs in (("before: every execution of the day", before), ("now: the sent ones (partial index)", after)):
        s = sorted(xs)
        f = {"n": len(s), "p50": round(statistics.median(s), 3), "p95": round(s[int(0.95 * (len(s) - 1))], 3),
             "max": round(s[-1], 3)}
        figs[name.split(":")[0]] = f
        print(f"{name:<44}{f['p50']:>8.3f}{f['p95']:>8.3f}{f['max']:>8.3f}")
    speedup = figs["before"]["p50"] / figs["now"]["p50"]
    print(f"p50 speed-up {speedup:.1f}x; both gave PnL {va} wei")
    print(json.dumps({"bench": "pnl-today", "unit": "ms", "unsent": args.unsent, "sent": args.sent, **figs,
                      "speedup_p50": round(speedup, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
