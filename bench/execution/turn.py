#!/usr/bin/env python
"""The execute stage's live decisions for a block, in-process, by how a batch's sends go:

- **sent one by one**: each opportunity's hot state read, its checks, then its send signed,
  recorded (its own commit), noted and sent before the next one is looked at (the stage
  until session 37: ``TurnSends`` called for each);
- **sent together** (what the stage runs): the batch's hot state read in one round trip
  (``TurnSends.read_ahead``), every opportunity checked, then the turn's sends signed at
  consecutive nonces, recorded in one commit, their pools noted in one round trip, and sent
  in nonce order (``TurnSends.defer`` and ``flush``).

(Until session 37 the variants compared how the batch took the nonce lock: a turn per send,
one turn a batch not primed, primed, and primed with the hot state read apart; their figures
are in bench/latency/README.md, sessions 30-36.)

Both read the hot state as the fleet's runner does (``reads=HotState.send_reads``).

The real parts of the fleet's execute stage: ``arbbot.execution.stage.execute`` with the
database journal (a scratch PostgreSQL database, ``bench.scratch_db``), the day's PnL read
from it as the fleet's runner reads it (``selectors.pnl_today_wei``, under a daily loss
limit), the hot state and the
nonce manager on the machine's Redis (a prefix of its own), a live runner signing with a
funded key on an anvil of its own whose executor is the tests' stand-in (it answers every
call with a profit and logs ``Executed``, so re-validation passes: see
tests/execution/executor_helpers.py). Each batch is ``--batch`` opportunities over disjoint
pools of a new block, whose sends are mined after it (``evm_mine``; no automine); the variants
alternate batch by batch. Reported per variant: from the
stage's start to each decision (all of them pooled, p50 / p95), to the first and to the
batch's last. Prints a table and a JSON line.

Run: ``PYTHONPATH=. .venv/bin/python bench/execution/turn.py [--batch 4] [--batches 60]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.scratch_db import ScratchDb  # noqa: E402


def variants() -> dict[str, Callable[..., Any]]:
    """name -> the runner class."""
    from arbbot.execution.runner import ExecutionRunner

    class OneByOne(ExecutionRunner):
        """Each send leaves before the next opportunity is checked."""

        @contextlib.contextmanager
        def turn(self, journal: Any = None, *, prime: bool = False) -> Iterator[Any]:
            with super().turn(journal, prime=prime) as sends:
                yield SimpleNamespace(read_ahead=lambda batch: None, defer=sends, flush=lambda: [])

    return {"sent one by one": OneByOne, "sent together": ExecutionRunner}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=4, help="opportunities a batch (a block's chosen ones)")
    ap.add_argument("--batches", type=int, default=60, help="batches per variant (alternating)")
    args = ap.parse_args()
    for name in ("batch", "batches"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} {getattr(args, name)}: must be positive")
    if args.batch > 40:
        ap.error(f"--batch {args.batch}: at most 40 (disjoint cycles of the stand-in market)")
    import redis
    from eth_account import Account

    from arbbot.chain.tx import LocalSigner
    from arbbot.devnet.anvil import start_anvil
    from arbbot.execution import stage
    from arbbot.execution.nonces import NonceManager
    from arbbot.execution.runner import RiskLimits
    from arbbot.hotstate import HotState
    from tests.execution.executor_helpers import (
        STAND_IN_EXECUTOR,
        STAND_IN_PROFIT,
        STAND_IN_USDC,
        STAND_IN_WETH,
        stand_in_executor,
        stand_in_scored,
        two_price_pools,
    )

    pools = ["0x" + f"{i:040x}" for i in range(1, 2 * args.batch + 1)]
    cycles = [(pools[2 * k], pools[2 * k + 1]) for k in range(args.batch)]
    prefix = f"bench-turn-{os.getpid()}"
    hot = HotState(redis.Redis.from_url(os.environ.get("ARBBOT_REDIS_URL", "redis://127.0.0.1:6379/0")), prefix,
                   31337)
    times: dict[str, list[float]] = {}
    first: dict[str, list[float]] = {}
    last: dict[str, list[float]] = {}
    statuses: dict[str, dict[str, int]] = {}
    with ScratchDb("arbbot_bench_turn"), start_anvil() as anvil:
        from webapp.core import selectors
        from webapp.core.services import DbJournal

        rpc = anvil.rpc()
        rpc.call("anvil_setCode", [STAND_IN_EXECUTOR, stand_in_executor(STAND_IN_PROFIT)])
        key = "0x" + secrets.token_hex(32)
        address = Account.from_key(key).address
        rpc.call("anvil_setBalance", [address, hex(10**24)])
        rpc.call("evm_setAutomine", [False])  # a block is mined after each batch, as a chain's would be
        hot.put_pools(two_price_pools(pools, STAND_IN_USDC, STAND_IN_WETH), 7, "0x" + "07" * 32)
        runners = {}
        for name, cls in variants().items():
            runners[name] = cls(
                rpc=rpc, executor=STAND_IN_EXECUTOR, mode="live", pools=hot.get_pools, signer=LocalSigner(rpc, key),
                kill_switch=hot.fleet.kill_switch_engaged, is_orphaned=hot.is_orphaned, hot=hot,
                reads=hot.send_reads,
                nonces=NonceManager(hot, rpc, address.lower()), chain_id=31337,
                limits=RiskLimits(daily_loss_limit_wei=10**24),
                daily_pnl_wei=lambda: selectors.pnl_today_wei(31337, STAND_IN_WETH),
            )
            times[name], first[name], last[name], statuses[name] = [], [], [], {}
        block = 100
        try:
            for n in range(args.batches + 2):  # the first two rounds warm up
                for name in variants():
                    block += 1
                    batch = [stand_in_scored(f"{name[:12]}-{block}-{k}", cycles[k], block_number=block)
                             for k in range(args.batch)]
                    t0 = time.time()
                    results = stage.execute(batch, {31337: runners[name]}.__getitem__, DbJournal())
                    rpc.call("evm_mine")  # the block's sends mined before the next block's batch
                    if n < 2:
                        continue
                    decided = [(r.extra["decided_at"] - t0) * 1000 for r in results]
                    times[name] += decided
                    first[name].append(min(decided))
                    last[name].append(max(decided))
                    for r in results:
                        statuses[name][r.status] = statuses[name].get(r.status, 0) + 1
        finally:
            hot.clear()
    figs: dict[str, Any] = {}
    print(f"\nexecute stage, {args.batch} live sends a batch, {args.batches} batches a variant, ms from its start")
    print(f"{'variant':<32}{'decision p50':>13}{'p95':>8}{'first p50':>10}{'p95':>8}{'last p50':>10}{'p95':>8}"
          "  outcomes")
    for name in times:
        d, a, z = sorted(times[name]), sorted(first[name]), sorted(last[name])
        figs[name] = {"decision_p50": round(statistics.median(d), 2), "decision_p95": round(d[int(0.95 * (len(d) - 1))], 2),
                      "first_p50": round(statistics.median(a), 2), "first_p95": round(a[int(0.95 * (len(a) - 1))], 2),
                      "last_p50": round(statistics.median(z), 2), "last_p95": round(z[int(0.95 * (len(z) - 1))], 2),
                      "outcomes": statuses[name]}
        f = figs[name]
        print(f"{name:<32}{f['decision_p50']:>13.2f}{f['decision_p95']:>8.2f}{f['first_p50']:>10.2f}"
              f"{f['first_p95']:>8.2f}{f['last_p50']:>10.2f}{f['last_p95']:>8.2f}  {json.dumps(statuses[name])}")
    if any(set(s) != {"sent"} for s in statuses.values()):
        print("warning: not every decision was a send; the variants' figures are not alike")
    print(json.dumps({"bench": "execute-turn", "unit": "ms", "batch": args.batch, "batches": args.batches, **figs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
