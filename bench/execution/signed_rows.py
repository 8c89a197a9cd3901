#!/usr/bin/env python
"""The journal write each live send waits for (``DbJournal.tx_signed``: the signed transaction
persisted before it leaves), two ways in the same run on the same table:

- **before**: per row, in a transaction of its own, the ORM's update of the execution's final
  sizing and its create of the row (``services.transaction_signed`` as it was);
- **now**: one ``UPDATE ... FROM (VALUES ...)`` of the executions' final sizing and one insert
  of every row, in one transaction (``services.transactions_signed``).

``--batch 1`` is what a send writes; more, what several sends written together would.

A scratch database of its own (``bench.scratch_db``) holding ``--executions`` claimed
executions (the table a busy day leaves); each timed write is a batch of ``--batch`` signed
transactions of claimed executions, the variants interleaved in rounds. Each variant's rows
are checked afterwards: the sizing on the executions, one transaction row each.

Run: ``PYTHONPATH=. .venv/bin/python bench/execution/signed_rows.py [--executions 100000]
[--batch 4] [--writes 200]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.scratch_db import ScratchDb  # noqa: E402

CHAIN = 31337
WETH = "0x" + "ee" * 20


def fill(executions: int) -> None:
    from django.db import connection
    from django.utils import timezone

    from webapp.core.models import Execution

    now = timezone.now()
    Execution.objects.bulk_create(
        [Execution(created_at=now, chain_id=CHAIN, block_number=i // 4, path_id=f"p{i}", status="pending",
                   profit_token=WETH, amount_in=10**18, predicted_profit=10**15) for i in range(executions)],
        batch_size=5000,
    )
    with connection.cursor() as cur:
        cur.execute("ANALYZE core_execution")


def records(first: int, n: int) -> list[Any]:
    """Signed transactions of the executions ``p<first>`` .. ``p<first + n - 1>``."""
    from arbbot.execution.follow import TxRecord
    from arbbot.execution.runner import Attempt

    out = []
    for i in range(first, first + n):
        attempt = Attempt(chain_id=CHAIN, block_number=i // 4, path_id=f"p{i}", predicted_profit=10**15,
                          profit_token=WETH, amount_in=10**18)
        out.append(TxRecord(
            attempt=attempt, tx_hash=f"0x{i:064x}", sender="0x" + "5a" * 20, nonce=i, raw_tx="0x02" + "ab" * 300,
            kind="trade", state="signed", route="public", gas_limit=300_000, max_fee_per_gas=3 * 10**9,
            max_priority_fee_per_gas=10**9, worst_gas_wei=9 * 10**14, sent_block=7, simulated_profit=10**15 + i,
            pools=("0x" + "01" * 20, "0x" + "02" * 20), created_at=time.time(), final_amount_in=2 * 10**18 + i,
            final_predicted_profit=2 * 10**15 + i,
        ))
    return out


def before(recs: Sequence[Any]) -> None:
    """``services.transaction_signed`` as it was, for each record: in one transaction, the
    ORM's update of the execution's final sizing and its create of the transaction row."""
    from django.db import transaction

    from webapp.core.models import Execution
    from webapp.core.services import _signed_row

    for rec in recs:
        with transaction.atomic():
            a = rec.attempt
            Execution.objects.filter(
                chain_id=a["chain_id"], block_number=a["block_number"], path_id=a["path_id"]
            ).update(final_amount_in=Decimal(rec.final_amount_in),
                     final_predicted_profit=Decimal(rec.final_predicted_profit))
            _signed_row(rec).save(force_insert=True)


def now(recs: Sequence[Any]) -> None:
    from webapp.core.services import transactions_signed

    transactions_signed(recs)


VARIANTS: dict[str, Callable[[Sequence[Any]], None]] = {
    "before: the ORM, a commit a row": before, "now: two statements, one commit": now,
}


def check(first: int, n: int) -> None:
    from webapp.core.models import Execution, Transaction

    paths = [f"p{i}" for i in range(first, first + n)]
    sized = {e.path_id: int(e.final_amount_in) for e in Execution.objects.filter(chain_id=CHAIN, path_id__in=paths)}
    if sized != {f"p{i}": 2 * 10**18 + i for i in range(first, first + n)}:
        raise SystemExit(f"the executions' sizing is wrong for p{first}..: {sized}")
    if Transaction.objects.filter(path_id__in=paths).count() != n:
        raise SystemExit(f"not one transaction row each for p{first}..")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--executions", type=int, default=100_000, help="claimed executions in the table")
    ap.add_argument("--batch", type=int, default=4, help="signed transactions a write (a block's sends)")
    ap.add_argument("--writes", type=int, default=200, help="writes timed per variant (interleaved in rounds)")
    args = ap.parse_args()
    for name in ("executions", "batch", "writes"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} {getattr(args, name)}: must be positive")
    if args.executions < args.batch * (args.writes + 5) * len(VARIANTS):
        ap.error(f"--executions {args.executions}: too few for {args.writes} writes of {args.batch} per variant")
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with ScratchDb("arbbot_bench_signed_rows"):
        t0 = time.perf_counter()
        fill(args.executions)
        print(f"{args.executions:,} claimed executions written in {time.perf_counter() - t0:.1f} s")
        nxt = itertools.count(0, args.batch)
        for fn in VARIANTS.values():  # warm each
            first = next(nxt)
            fn(records(first, args.batch))
        rounds = 10
        for _ in range(rounds):
            for name, fn in VARIANTS.items():
                for _ in range(max(1, args.writes // rounds)):
                    first = next(nxt)
                    recs = records(first, args.batch)
                    t = time.perf_counter()
                    fn(recs)
                    times[name].append((time.perf_counter() - t) * 1000)
                    check(first, args.batch)
    figs = {}
    print(f"\n{f'a write of {args.batch} signed transactions, ms':<44}{'p50':>8}{'p95':>8}{'max':>8}")
    for name, xs in times.items():
        s = sorted(xs)
        f = {"n": len(s), "p50": round(statistics.median(s), 3), "p95": round(s[int(0.95 * (len(s) - 1))], 3),
             "max": round(s[-1], 3)}
        figs[name] = f
        print(f"{name:<44}{f['p50']:>8.3f}{f['p95']:>8.3f}{f['max']:>8.3f}")
    b, n = (figs[name]["p50"] for name in VARIANTS)
    print(f"p50: now {b / n:.2f}x as fast")
    print(json.dumps({"bench": "signed-rows", "unit": "ms", "executions": args.executions, "batch": args.batch,
                      **{k.split(":")[0]: v for k, v in figs.items()}, "speedup_p50": round(b / n, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
