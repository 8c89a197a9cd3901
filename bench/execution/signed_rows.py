#!/usr/bin/env python
"""The journal write each live send waits for (``DbJournal.tx_signed``: the signed transaction
persisted before it leaves), three ways in the same run on the same table:

- **orm**: in one transaction, the ORM's update of the execution's final sizing and its
  create of the row (``services.transaction_signed`` at first);
- **before**: in one transaction, the execution's ``UPDATE`` written out and the ORM's
  insert of the row (``services.transaction_signed`` until session 31): BEGIN, two
  statements and COMMIT, four round trips;
- **now**: the ``UPDATE`` and the ``INSERT`` in one query string, one implicit transaction
  of PostgreSQL's, one round trip (``services.transaction_signed``).

A scratch database of its own (``bench.scratch_db``) holding ``--executions`` claimed
executions (the table a busy day leaves); each timed write is one signed transaction of a
claimed execution, the variants interleaved in rounds. Each write is checked afterwards: the
sizing on the execution, one transaction row.

Run: ``PYTHONPATH=. .venv/bin/python bench/execution/signed_rows.py [--executions 100000]
[--writes 200]``
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
from typing import Any, Callable

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


def record(i: int) -> Any:
    """A signed transaction of the execution ``p<i>``."""
    from arbbot.execution.follow import TxRecord
    from arbbot.execution.runner import Attempt

    attempt = Attempt(chain_id=CHAIN, block_number=i // 4, path_id=f"p{i}", predicted_profit=10**15,
                      profit_token=WETH, amount_in=10**18)
    return TxRecord(
        attempt=attempt, tx_hash=f"0x{i:064x}", sender="0x" + "5a" * 20, nonce=i, raw_tx="0x02" + "ab" * 300,
        kind="trade", state="signed", route="public", gas_limit=300_000, max_fee_per_gas=3 * 10**9,
        max_priority_fee_per_gas=10**9, worst_gas_wei=9 * 10**14, sent_block=7, simulated_profit=10**15 + i,
        pools=("0x" + "01" * 20, "0x" + "02" * 20), created_at=time.time(), final_amount_in=2 * 10**18 + i,
        final_predicted_profit=2 * 10**15 + i,
    )


def orm(rec: Any) -> None:
    """``services.transaction_signed`` at first: in one transaction, the ORM's update of the
    execution's final sizing and its create of the transaction row."""
    from django.db import transaction

    from webapp.core.models import Execution
    from webapp.core.services import _signed_row

    with transaction.atomic():
        a = rec.attempt
        Execution.objects.filter(
            chain_id=a["chain_id"], block_number=a["block_number"], path_id=a["path_id"]
        ).update(final_amount_in=Decimal(rec.final_amount_in),
                 final_predicted_profit=Decimal(rec.final_predicted_profit))
        _signed_row(rec).save(force_insert=True)


def before(rec: Any) -> None:
    """``services.transaction_signed`` until session 31: the update written out and the ORM's
    insert, in an atomic block."""
    from django.db import connection, transaction

    from webapp.core.models import Execution, Transaction
    from webapp.core.services import _signed_row

    a = rec.attempt
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute(
                f"UPDATE {Execution._meta.db_table} SET final_amount_in = %s, final_predicted_profit = %s "
                "WHERE chain_id = %s AND block_number = %s AND path_id = %s",
                [Decimal(rec.final_amount_in), Decimal(rec.final_predicted_profit), a["chain_id"],
                 a["block_number"], a["path_id"]],
            )
        Transaction.objects.bulk_create([_signed_row(rec)])


def now(rec: Any) -> None:
    from webapp.core.services import transactions_signed

    transactions_signed([rec])


VARIANTS: dict[str, Callable[[Any], None]] = {
    "orm: the ORM's update and create": orm, "before: update written out, ORM insert": before,
    "now: both in one query string": now,
}


def check(i: int) -> None:
    from webapp.core.models import Execution, Transaction

    sized = int(Execution.objects.get(chain_id=CHAIN, path_id=f"p{i}").final_amount_in)
    if sized != 2 * 10**18 + i:
        raise SystemExit(f"the execution's sizing is wrong for p{i}: {sized}")
    if Transaction.objects.filter(path_id=f"p{i}").count() != 1:
        raise SystemExit(f"not one transaction row for p{i}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--executions", type=int, default=100_000, help="claimed executions in the table")
    ap.add_argument("--writes", type=int, default=200, help="writes timed per variant (interleaved in rounds)")
    args = ap.parse_args()
    for name in ("executions", "writes"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} {getattr(args, name)}: must be positive")
    if args.executions < (args.writes + 5) * len(VARIANTS):
        ap.error(f"--executions {args.executions}: too few for {args.writes} writes per variant")
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with ScratchDb("arbbot_bench_signed_rows"):
        t0 = time.perf_counter()
        fill(args.executions)
        print(f"{args.executions:,} claimed executions written in {time.perf_counter() - t0:.1f} s")
        nxt = itertools.count()
        for fn in VARIANTS.values():  # warm each
            fn(record(next(nxt)))
        rounds = 10
        for _ in range(rounds):
            for name, fn in VARIANTS.items():
                for _ in range(max(1, args.writes // rounds)):
                    i = next(nxt)
                    rec = record(i)
                    t = time.perf_counter()
                    fn(rec)
                    times[name].append((time.perf_counter() - t) * 1000)
                    check(i)
    figs = {}
    print(f"\n{'one signed transaction written, ms':<44}{'p50':>8}{'p95':>8}{'max':>8}")
    for name, xs in times.items():
        s = sorted(xs)
        f = {"n": len(s), "p50": round(statistics.median(s), 3), "p95": round(s[int(0.95 * (len(s) - 1))], 3),
             "max": round(s[-1], 3)}
        figs[name] = f
        print(f"{name:<44}{f['p50']:>8.3f}{f['p95']:>8.3f}{f['max']:>8.3f}")
    _, b, n = (figs[name]["p50"] for name in VARIANTS)
    print(f"p50: now {b / n:.2f}x as fast as before")
    print(json.dumps({"bench": "signed-rows", "unit": "ms", "executions": args.executions,
                      **{k.split(":")[0]: v for k, v in figs.items()}, "speedup_p50": round(b / n, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
