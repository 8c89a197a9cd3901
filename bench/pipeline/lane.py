"""The block follower's own lane, as the pipeline bench runs it: a process that stands in for
``arbbot follow --through ml`` (the fleet's default) once its scan is done. Per block it
moves pools of the bench's market (``market.Feed``, from the states the hot state holds),
stamps the block's arrival, writes the moved pools into the hot state (the scan's write) and
runs what the follower runs after its scan, ``workers.tasks.path.decide_here``: the path
stage and the ml decision in this process (a big block in two parts, the lane's pause
between them: ``ARBBOT_LANE_YIELD_MS``), the chosen
opportunities straight to the execute queue, every decision to the analytics queue. The
real follower's scan reads the pools from a node instead (bench/scan, bench/follower).

    python -m bench.pipeline.lane --chain 31337 --first N --blocks K --rate R --out FILE

Writes one JSON object to ``--out``: the blocks run, where each went (``decide_here``), and
how many messages went to the execute and analytics queues (the bench waits for them)."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from bench.pipeline.market import REVERT


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chain", type=int, required=True)
    ap.add_argument("--first", type=int, required=True, help="the first block's number")
    ap.add_argument("--blocks", type=int, required=True)
    ap.add_argument("--rate", type=float, required=True, help="blocks a second")
    ap.add_argument("--changed", type=int, default=300, help="pools moved per block")
    ap.add_argument("--sigma", type=float, default=0.01, help="a moved V2 pool's price change (std dev)")
    ap.add_argument("--revert", type=float, default=REVERT,
                    help="the feed's pull back toward the market as built (bench/pipeline/market.py)")
    ap.add_argument("--gas-price", type=int, default=10**9)
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--mirror", metavar="RPC_URL,BALANCE_SLOT",
                    help="write each block's moved pools to this devnet too (bench/pipeline/onchain.py)")
    args = ap.parse_args()
    if args.blocks < 1 or args.rate <= 0:
        ap.error("--blocks must be >= 1 and --rate > 0")

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    django.setup()
    from arbbot.paths import _kernels
    from arbbot.scoring import kernel
    from bench.pipeline.market import Feed, build
    from workers import kept, runtime
    from workers.stage import Trace
    from workers.celery_app import warm_publisher
    from workers.tasks import ml, path

    _kernels.warm()  # as a path worker does before its first block (workers.celery_app)
    kernel.warm()
    kept.start_refresher()  # as the follower does: the strategy and the like read off the block's way
    hot = runtime.hotstate(args.chain)
    market = build().settled(args.sigma, args.revert)  # the run's market: the same centre to revert to
    mirror = None
    if args.mirror:
        from bench.pipeline.onchain import Mirror

        url, _, slot = args.mirror.rpartition(",")
        mirror = Mirror(url, int(slot))
    feed = Feed(market, args.chain, args.changed, args.sigma, seed=args.seed, mirror=mirror, revert=args.revert)
    held = hot.get_pools()  # where the feed before this one left the market
    feed.states = [held.get(s.address.lower(), s) for s in feed.states]
    path.warm(args.chain)  # as the follower prepares its lane (workers.follow_scan.InlineScan.warm)
    ml.warm(args.chain)
    warm_publisher(path.publishes())

    sends = {"execute": 0, "analytics": 0}

    def send(decided: list, tr: Trace) -> int:
        chosen = ml.send(decided, tr, records=False)
        sends["execute"] += 1 if chosen else 0
        return chosen

    def record(decided: list, *, chosen: bool) -> None:
        ml.record(decided, chosen=chosen)
        sends["analytics"] += 1

    went: dict[str, int] = {}
    start = time.monotonic()
    for k in range(args.blocks):
        due = start + k / args.rate
        if due > time.monotonic():
            time.sleep(due - time.monotonic())
        number = args.first + k
        delta = feed.block(number, None, args.gas_price)  # arrives once its pools have moved
        arrived = delta.observed_at
        hot.put_pools(delta.states, number, delta.block_hash)
        # the follower's pause after a first part sent to execute (its wait also ends on a
        # newer head; this loop's next block is never due within it at the phase's rate)
        where = path.decide_here(delta, Trace.start(arrived), send=send, record=record, pause=time.sleep)
        went[where] = went.get(where, 0) + 1
        path.after_block(args.chain)  # off the block's way, as the follower does
    args.out.write_text(json.dumps({"blocks": args.blocks, "went": went, "messages": sends}))


if __name__ == "__main__":
    main()
