"""PostgreSQL's floor under the pipeline: the CPU one recorded opportunity costs the database.

    .venv/bin/python -m bench.pipeline.floor [--rows 100000] [--batch 1000] [--repeat 3]
    make bench-floor

The pipeline's target counts an opportunity once it is recorded: a row of
``core_opportunity`` (its features, its money as ``NUMERIC``, its indexes and the unique
constraint that makes a redelivered batch count once). Whatever the stages before cost,
the database pays for every row, so this bench measures that part alone, on the machine's
PostgreSQL, in a database of its own (migrated, dropped at the end; ``--keep`` keeps it):

| way | what it writes |
|---|---|
| fleet | ``webapp.core.services.opportunities_record``, as the analytics stage calls it: one COPY a batch, Django's connection |
| COPY, the table's indexes | the rows the fleet wrote, as PostgreSQL's own text (``COPY ... TO``), copied into a table ``LIKE core_opportunity INCLUDING ALL``: no client work at all |
| COPY, no index | the same into a table with the columns only (the baseline: what the rows cost with nothing kept in order) |

The rows: the opportunities the path engine sizes on the pipeline bench's market
(``run.sample_opportunities``), decided by the rule scorer with their features as the ml
stage attaches them, each batch one block (a new block number, so the unique constraint
takes every row). The ways run interleaved, ``--repeat`` rounds, each into emptied tables.
CPU is read from ``/proc``: the connection's backend, and every ``postgres`` process on the
machine (the WAL writer, the checkpointer; another session's use counts too). It prints a
table and one JSON line: µs of PostgreSQL CPU a row, the rows a core of it takes a second,
and the cores PostgreSQL alone would need for 100,000 rows a second."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

from arbbot.devnet.args import positive_int
from bench.pipeline import run as pipeline

RUN_ID = uuid.uuid4().hex[:8]
DB_NAME = f"arbbot_bench_floor_{RUN_ID}"
os.environ["ARBBOT_DATABASE_NAME"] = DB_NAME  # not the pipeline run's (its import named one)
TARGET = 100_000  # opportunities a second (issue 16)
WAYS = ("fleet", "COPY, the table's indexes", "COPY, no index")
BLOCK0 = 1_000_000  # the batches' block numbers start here


def _postgres_cpu_s() -> float:
    return sum(pipeline._cpu_s(p) for p in pipeline._service_pids()["postgres"])


def _batches(rows: int, batch: int) -> list[list[Any]]:
    """``rows`` scored opportunities in batches of ``batch``, each batch a block of its own."""
    from arbbot.scoring import features
    from arbbot.scoring.rule import RuleScorer
    from bench.pipeline.market import REVERT, build

    opps = pipeline.sample_opportunities(build().settled(0.01, REVERT), 8, 300, 0.01, REVERT)
    if len(opps) < batch:
        raise SystemExit(f"--batch {batch}: the sample has only {len(opps)} distinct cycles")
    rule = RuleScorer(max_sends=8)
    out = []
    for k in range(-(-rows // batch)):
        start = (k * batch) % (len(opps) - batch + 1)
        block = [dataclasses.replace(o, block_number=BLOCK0 + k) for o in opps[start:start + batch]]
        out.append(rule.decide(block, features.as_rows(features.matrix(block))))
    return out


class Meter:
    """CPU of one connection's backend, of every postgres process, of this process; wall."""

    def __init__(self, backend: int) -> None:
        self.backend = backend

    def __enter__(self) -> Meter:
        self.t = (time.perf_counter(), pipeline._cpu_s(self.backend), _postgres_cpu_s(), time.process_time())
        return self

    def __exit__(self, *exc: object) -> None:
        now = (time.perf_counter(), pipeline._cpu_s(self.backend), _postgres_cpu_s(), time.process_time())
        self.wall_s, self.backend_s, self.postgres_s, self.client_s = (b - a for a, b in zip(self.t, now))


def _fleet(batches: list[list[Any]]) -> Meter:
    from django.db import connection

    from webapp.core import services

    with connection.cursor() as cur:
        cur.execute("TRUNCATE core_opportunity")
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    now = time.time()
    with Meter(pid) as m:
        for b in batches:
            services.opportunities_record(b, now=now)
    return m


def _copy(conn: Any, table: str, columns: str, data: list[bytes]) -> Meter:
    conn.execute(f"TRUNCATE {table}")
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    with Meter(pid) as m:
        for chunk in data:
            with conn.transaction(), conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as cp:
                cp.write(chunk)
    return m


def main() -> None:  # noqa: PLR0915  (one run)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=positive_int, default=100_000, help="rows a way writes in a round")
    ap.add_argument("--batch", type=positive_int, default=1000, help="rows a COPY (the replay phase's batch)")
    ap.add_argument("--repeat", type=positive_int, default=3, help="rounds of the three ways, interleaved")
    ap.add_argument("--keep", action="store_true", help="keep the database")
    args = ap.parse_args()

    import psycopg

    res: dict[str, Any] = {"bench": "pipeline-floor", "python": platform.python_version(), "cpus": os.cpu_count(),
                           "run": RUN_ID, "rows": args.rows, "batch": args.batch, "repeat": args.repeat}
    pipeline._step(f"database {DB_NAME}")
    pipeline._psql(f'CREATE DATABASE "{DB_NAME}"')
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=pipeline.ROOT, check=True)
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
        django.setup()
        from webapp.core import services

        columns = ", ".join(services._OPPORTUNITY_COLUMNS)  # the fleet's, in its order
        pipeline._step(f"{args.rows:,} scored opportunities in batches of {args.batch:,} (path engine and rule, here)")
        batches = _batches(args.rows, args.batch)
        rows = sum(len(b) for b in batches)
        conn = psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{DB_NAME}", autocommit=True)
        conn.execute("CREATE TABLE floor_indexed (LIKE core_opportunity INCLUDING ALL)")
        conn.execute("CREATE TABLE floor_bare (LIKE core_opportunity INCLUDING DEFAULTS INCLUDING IDENTITY)")
        runs: dict[str, list[Meter]] = {w: [] for w in WAYS}
        data: list[bytes] = []
        for r in range(args.repeat):
            order = WAYS if r % 2 == 0 else WAYS[::-1]
            for way in order:
                pipeline._step(f"round {r + 1} of {args.repeat}: {way}")
                if way == "fleet":
                    runs[way].append(_fleet(batches))
                    continue
                if not data:  # PostgreSQL's own text of the rows the fleet wrote (its first round), a batch a chunk
                    for b in batches:
                        buf = io.BytesIO()
                        block = b[0].opportunity.block_number
                        with conn.cursor().copy(f"COPY (SELECT {columns} FROM core_opportunity WHERE block_number = "
                                                f"{block}) TO STDOUT") as cp:
                            for chunk in cp:
                                buf.write(chunk)
                        data.append(buf.getvalue())
                    res["bytes_per_row"] = round(sum(map(len, data)) / rows)
                runs[way].append(_copy(conn, "floor_indexed" if way.endswith("indexes") else "floor_bare", columns, data))
        conn.close()
        res["ways"] = {}
        for way, ms in runs.items():
            per = {k: [getattr(m, k) / rows * 1e6 for m in ms] for k in ("wall_s", "backend_s", "postgres_s", "client_s")}
            med = {k: round(statistics.median(v), 2) for k, v in per.items()}
            best = round(min(per["postgres_s"]), 2)
            res["ways"][way] = {"us_per_row_median": med, "postgres_us_per_row_best": best,
                                "rows_per_s_a_postgres_core": round(1e6 / med["postgres_s"]),
                                "postgres_cores_for_target": round(TARGET * med["postgres_s"] / 1e6, 2)}
        _print(res, rows)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            pipeline._psql(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        else:
            pipeline._step(f"kept: database {DB_NAME}")


def _print(res: dict[str, Any], rows: int) -> None:
    print()
    print(f"PostgreSQL's CPU a recorded opportunity: {rows:,} rows a round ({res.get('bytes_per_row', '?')} bytes "
          f"each as text), batches of {res['batch']:,}, median of {res['repeat']} rounds, µs a row")
    head = f"{'way':<28}{'wall':>8}{'backend':>9}{'postgres':>10}{'client':>8}{'rows/s a core':>15}{'cores for 100k/s':>18}"
    print(head)
    print("-" * len(head))
    for way, w in res["ways"].items():
        m = w["us_per_row_median"]
        print(f"{way:<28}{m['wall_s']:>8.1f}{m['backend_s']:>9.1f}{m['postgres_s']:>10.1f}{m['client_s']:>8.1f}"
              f"{w['rows_per_s_a_postgres_core']:>15,}{w['postgres_cores_for_target']:>18.2f}")
    print(f"({res['cpus']} cores here: {TARGET:,} opportunities/s leaves 1e6 x {res['cpus']} / {TARGET:,} = "
          f"{1e6 * (res['cpus'] or 1) / TARGET:.0f} µs of CPU an opportunity for every process together)")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
