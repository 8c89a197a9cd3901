"""CLI: ``python -m arbbot.devnet up|down|status|simulate`` (``manage.py devnet`` wraps it)."""

from __future__ import annotations

import argparse
import json
import sys

from arbbot.devnet.lifecycle import DEFAULT_BLOCK_TIME_S, DEFAULT_PORT, down, status, up
from arbbot.devnet.simulator import simulate
from arbbot.errors import ArbbotError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m arbbot.devnet", description=__doc__)
    ap.add_argument("--dir", default=None, help="devnet state directory (default ARBBOT_DEVNET_DIR or .devnet/)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="start anvil and deploy everything (idempotent)")
    p_up.add_argument("--port", type=int, default=DEFAULT_PORT)
    p_up.add_argument("--block-time", type=float, default=DEFAULT_BLOCK_TIME_S,
                      help="seconds per block after deployment; 0 = automine")
    p_up.add_argument("--no-v3", action="store_true", help="skip the Uniswap V3 stack and pools")
    sub.add_parser("down", help="stop the devnet's anvil")
    sub.add_parser("status", help="print a JSON status")
    p_sim = sub.add_parser("simulate", help="random swaps every block (Ctrl-C stops)")
    p_sim.add_argument("--rpc-url", default=None)
    p_sim.add_argument("--seconds", type=float, default=None, help="stop after this long (default: forever)")
    p_sim.add_argument("--seed", type=int, default=None)
    p_sim.add_argument("--swaps-per-block", type=int, default=4)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "up":
            up(port=args.port, directory=args.dir, block_time_s=args.block_time or None, v3=not args.no_v3)
        elif args.cmd == "down":
            down(directory=args.dir)
        elif args.cmd == "status":
            print(json.dumps(status(directory=args.dir), indent=2))
        elif args.cmd == "simulate":
            try:
                simulate(args.rpc_url, seconds=args.seconds, seed=args.seed, directory=args.dir,
                         swaps_per_block=args.swaps_per_block)
            except KeyboardInterrupt:
                print("simulator stopped")
    except ArbbotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
