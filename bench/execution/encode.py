#!/usr/bin/env python
"""A cycle's ``execute`` calldata, two ways in the same run (``arbbot.execution.executor``):

- **eth_abi**: the whole call encoded by eth_abi each time (``encode_execute`` until
  session 36: ~0.16 ms quiet, ~0.8 under load, most of it eth_abi validating each value);
- **template**: ``encode_execute`` now: the cycle's calldata as eth_abi encoded it once,
  its amounts written into their two static words.

The execute stage encodes each opportunity of a batch before its claim (the re-validation
ahead) and each send again with its profit guard, so both lie on the way to a decision.
Each of ``--cycles`` random 2-4 hop cycles is encoded ``--calls`` times with new amounts;
every template result is checked against eth_abi's. Prints a table and a JSON line.

Run: ``PYTHONPATH=. .venv/bin/python bench/execution/encode.py [--cycles 200] [--calls 5]``
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

from bench.traces import pct  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=200, help="distinct cycles")
    ap.add_argument("--calls", type=int, default=5, help="encodings of each cycle, each with new amounts")
    args = ap.parse_args()
    for name in ("cycles", "calls"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} {getattr(args, name)}: must be positive")
    from eth_abi import encode

    from arbbot.execution.executor import EXECUTE_SELECTOR, EXECUTE_TYPES, Hop, encode_execute

    rng = random.Random(36)

    def address() -> str:
        return "0x" + rng.randbytes(20).hex()

    cycles = []
    for _ in range(args.cycles):
        token = address()
        hops = [Hop(address(), address(), rng.choice(["v2", "v3"]), rng.choice([500, 3000, 10000]))
                for _ in range(rng.randint(2, 4))]
        hops[-1] = Hop(hops[-1].pool, token, hops[-1].kind, hops[-1].fee_pips)
        cycles.append((token, hops))
    calls = [(token, hops, rng.randint(1, 10**24), rng.randint(0, 10**20))
             for _ in range(args.calls) for token, hops in cycles]

    def eth_abi(token: str, hops: list[Hop], amount_in: int, min_profit: int) -> str:
        args_ = [token, amount_in, min_profit, True, [h.as_tuple() for h in hops], 0]
        return "0x" + (EXECUTE_SELECTOR + encode(EXECUTE_TYPES, args_)).hex()

    def template(token: str, hops: list[Hop], amount_in: int, min_profit: int) -> str:
        return encode_execute(token, amount_in, min_profit, hops)

    times: dict[str, list[float]] = {"eth_abi": [], "template": []}
    for call in calls:  # interleaved, so a drift of the machine's load hits both
        for name, fn in (("eth_abi", eth_abi), ("template", template)):
            t0 = time.perf_counter()
            out = fn(*call)
            times[name].append((time.perf_counter() - t0) * 1e6)
        if out != eth_abi(*call):
            print(f"error: the template's calldata differs from eth_abi's for {call}", file=sys.stderr)
            return 1
    figs = {name: {"p50": round(pct(ts, 50), 1), "p95": round(pct(ts, 95), 1), "mean": round(statistics.fmean(ts), 1)}
            for name, ts in times.items()}
    print(f"\nexecute calldata, {args.cycles} cycles x {args.calls} calls, µs a call")
    print(f"{'way':<12}{'p50':>9}{'p95':>9}{'mean':>9}")
    for name, f in figs.items():
        print(f"{name:<12}{f['p50']:>9.1f}{f['p95']:>9.1f}{f['mean']:>9.1f}")
    ratio = figs["eth_abi"]["p50"] / figs["template"]["p50"]
    print(f"p50: the template {ratio:.0f}x as fast (each cycle's first call is eth_abi's, inside the template's)")
    print(json.dumps({"bench": "execute-encode", "unit": "us", "cycles": args.cycles, "calls": args.calls, **figs,
                      "speedup_p50": round(ratio, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
