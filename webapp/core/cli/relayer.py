"""``arbbot relayer``: run the two-chain devnet bridge's relayer (``arbbot.crosschain.relayer``)
until interrupted: fee written to both bridges, delay in source blocks, seeded failure and
stall rates."""

from __future__ import annotations

import signal
import threading
from typing import Any, Callable

from webapp.core.cli import CliError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("relayer", help="run the two-chain devnet bridge's relayer (Ctrl-C stops)")
    p.add_argument("--dir", default=None, help="devnet directory with twochain.json (default ARBBOT_DEVNET_DIR)")
    p.add_argument("--fee-bps", type=int, default=None, help="bridge fee in bps, set on both bridges (default: keep)")
    p.add_argument("--delay-blocks", type=int, default=2, help="source-chain blocks before delivery")
    p.add_argument("--failure-rate", type=float, default=0.0, help="share of transfers failed and refunded")
    p.add_argument("--stall-rate", type=float, default=0.0, help="share of transfers never delivered")
    p.add_argument("--seed", type=int, default=0, help="a transfer's fate is drawn from the seed and its key")
    p.add_argument("--poll", type=float, default=0.5, help="seconds between passes")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long (default: until interrupted)")
    p.set_defaults(handler=run)


def run(opts: dict[str, Any], out: Callable[[str], None]) -> int:
    from arbbot.chain.rpc import RpcClient
    from arbbot.crosschain.relayer import Relayer, RelayerConfig
    from arbbot.devnet.twochain import load_twochain
    from arbbot.errors import ArbbotError

    try:
        two = load_twochain(opts["dir"])
        config = RelayerConfig(fee_bps=opts["fee_bps"], delay_blocks=opts["delay_blocks"],
                               failure_rate=opts["failure_rate"], stall_rate=opts["stall_rate"], seed=opts["seed"])
    except ArbbotError as exc:
        raise CliError(str(exc), code=2) from None
    rpcs = {two.a.chain_id: RpcClient(two.a.rpc_url), two.b.chain_id: RpcClient(two.b.rpc_url)}
    relayer = Relayer(rpcs, two.bridges, two.tokens, two.relayer, config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if opts["seconds"]:
        threading.Timer(opts["seconds"], stop.set).start()
    out(f"relayer for chains {sorted(rpcs)}: {config}")
    try:
        relayer.run(stop, opts["poll"])
    except KeyboardInterrupt:
        pass
    out("relayer stopped")
    return 0
