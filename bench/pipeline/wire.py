"""The wire format between the stages (not a timed test): one block's opportunities as the
per-item JSON records the fleet sent before (``Opportunity.to_wire`` each, a JSON list) and as
one columnar batch (``arbbot.types.opportunities_to_wire``), both through ``json`` as Celery
sends them; encode, decode with every check, and bytes, per opportunity, best of several
rounds, in one run. Prints a table and one JSON line.

    .venv/bin/python -m bench.pipeline.wire [--blocks 4]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time
from typing import Any, Callable

from arbbot.types import (
    Opportunity,
    ScoredOpportunity,
    opportunities_from_wire,
    opportunities_to_wire,
    scored_from_wire,
    scored_to_wire,
)


def _best_us(fn: Callable[[], Any], n: int, rounds: int = 7) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best * 1e6 / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=4, help="blocks of 300 moved pools to size")
    args = ap.parse_args()
    from arbbot.paths.engine import PathEngine
    from bench.pipeline.market import WETH, Feed, build

    market = build()
    engine = PathEngine(base_tokens=[], weth=WETH, max_hops=3, max_per_pool=3)
    engine.upsert(market.pools)
    feed = Feed(market, 31337, 300, 0.01, seed=99)
    opps: list[Opportunity] = []
    for b in range(1, args.blocks + 1):
        d = feed.block(b, time.time(), 10**9)
        opps += engine.evaluate(engine.upsert(d.states), chain_id=31337, block_number=b, block_hash=d.block_hash,
                                gas_price_wei=10**9, observed_at=d.observed_at)
    # one block's batch, as a message carries it: the biggest block's
    by_block: dict[int, list[Opportunity]] = {}
    for o in opps:
        by_block.setdefault(o.block_number, []).append(o)
    batch = max(by_block.values(), key=len)
    scored = [ScoredOpportunity(o, 1.5, "skip", "below the margin", "rule",
                                {"hops": 3.0, "pool_age_blocks": 12.0, "gas_share": 0.25}) for o in batch]
    n = len(batch)
    # the ml and analytics workers hold no market: drop it, so the collector's passes over
    # this process's heap do not weigh on the decoding timed below
    del engine, market, feed, opps, by_block
    gc.collect()
    gc.freeze()  # what is left is long-lived, as a worker's imports are
    res: dict[str, Any] = {"bench": "pipeline-wire", "opportunities": n, "load": [round(x, 1) for x in os.getloadavg()]}
    for name, items, enc_old, dec_old, enc_new, dec_new in (
        ("opportunity", batch, lambda xs: [x.to_wire() for x in xs], lambda w: [Opportunity.from_wire(x) for x in w],
         opportunities_to_wire, opportunities_from_wire),
        ("scored", scored, lambda xs: [x.to_wire() for x in xs], lambda w: [ScoredOpportunity.from_wire(x) for x in w],
         scored_to_wire, scored_from_wire),
    ):
        for fmt, enc, dec in (("per-item JSON (before)", enc_old, dec_old), ("columnar batch", enc_new, dec_new)):
            text = json.dumps(enc(items))
            assert dec(json.loads(text)) == items
            res[f"{name} {fmt}"] = {
                "encode_us": round(_best_us(lambda: json.dumps(enc(items)), n), 2),
                "decode_us": round(_best_us(lambda: dec(json.loads(text)), n), 2),
                "bytes": len(text) // n,
            }
    print(f"one block's batch: {n} opportunities; load {res['load']}")
    print(f"{'record / format':<40} {'encode µs':>10} {'decode µs':>10} {'bytes':>7}   (per opportunity)")
    for k, v in res.items():
        if isinstance(v, dict):
            print(f"{k:<40} {v['encode_us']:>10} {v['decode_us']:>10} {v['bytes']:>7}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
