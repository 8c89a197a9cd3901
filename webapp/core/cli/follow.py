"""``arbbot follow --chain ID``: the chain's block follower, a long-running process (one per
chain, like beat). Each new block is scanned the moment it arrives, stamped with its arrival
time: by default in this process (``--scan inline``: ``arbbot.chain.follower.Follower`` ->
``workers.follow_scan.InlineScan``, which hands a block to the scan queue when its scan fails
here), or by a scan worker (``--scan queue``: -> ``workers.tasks.scan.announce``). A block
scanned here is also carried through the path stage and the ml decision here by default
(``--through ml``: the chosen opportunities go straight to the execute queue, two Celery
hops sooner; what fails here goes to the path or ml queue), or sent to the path queue
(``--through scan``). Beat's
once-a-second tick stays as the fallback while no follower holds the chain's lease
(``HotState.follower_lock``). A second follower of the same chain waits as a
standby and takes over within the lease's TTL if the first dies.

WebSocket URLs (``newHeads``) come from ``--ws`` (repeatable) or ``ARBBOT_WS_URLS``
(comma-separated) until the chain configuration carries them; without any, the follower
polls the chain's HTTP RPC URLs every ``--poll-interval`` seconds. SIGTERM or Ctrl-C stops
it and releases the lease at once.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any, Callable

from webapp.core.cli import CliError

SCAN_WHERE = ("inline", "queue")
THROUGH = ("scan", "ml")  # workers.follow_scan.THROUGH (not imported here: --help stays light)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("follow", help="follow a chain's new blocks and scan each at once (one per chain)")
    p.add_argument("--chain", type=int, required=True, metavar="ID", help="chain id (configured and active)")
    p.add_argument("--ws", action="append", default=None, metavar="URL",
                   help="newHeads WebSocket URL, several for failover (default: $ARBBOT_WS_URLS, comma-separated)")
    p.add_argument("--poll-interval", type=float, default=None, metavar="SECONDS",
                   help="head poll interval without WebSocket (default: $ARBBOT_FOLLOW_POLL_INTERVAL or 0.1)")
    p.add_argument("--scan", choices=SCAN_WHERE, default=None,
                   help="where each block is scanned: in this process (inline, one Celery hop sooner) or by a "
                        "scan worker (queue) (default: $ARBBOT_FOLLOW_SCAN or inline)")
    p.add_argument("--through", choices=THROUGH, default=None,
                   help="with --scan inline, how far a block goes in this process: the scan only, then the path "
                        "queue (scan), or also the path stage and the ml decision, then the execute queue (ml: two "
                        "Celery hops sooner; needs a path worker's memory) (default: $ARBBOT_FOLLOW_THROUGH or ml)")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long (default: run until stopped)")
    p.set_defaults(handler=run)


def run(opts: dict[str, Any], out: Callable[[str], None]) -> int:
    from arbbot.chain.follower import DEFAULT_POLL_INTERVAL_S, LEASE_TTL_S, Follower, Lease, check_ws_urls
    from arbbot.chain.rpc import RpcClient, endpoint_label
    from arbbot.config import get_settings
    from arbbot.errors import ConfigError
    from arbbot.obs import tracing
    from webapp.core import selectors

    chain_id = opts["chain"]
    ws_raw = opts["ws"] if opts["ws"] is not None else os.environ.get("ARBBOT_WS_URLS", "").split(",")
    poll = opts["poll_interval"]
    if poll is None:
        raw = os.environ.get("ARBBOT_FOLLOW_POLL_INTERVAL", str(DEFAULT_POLL_INTERVAL_S))
        try:
            poll = float(raw)
        except ValueError:
            raise CliError(f"ARBBOT_FOLLOW_POLL_INTERVAL: {raw!r} is not a number of seconds", code=2) from None
    try:
        ws_urls = check_ws_urls(ws_raw)
    except ConfigError as exc:
        raise CliError(f"--ws / ARBBOT_WS_URLS: {exc}", code=2) from None
    if not 0 < poll <= 60:
        raise CliError(f"--poll-interval / ARBBOT_FOLLOW_POLL_INTERVAL: {poll:g} is not within (0, 60] seconds", code=2)
    where = opts["scan"] or os.environ.get("ARBBOT_FOLLOW_SCAN", "").strip() or "inline"
    if where not in SCAN_WHERE:
        raise CliError(f"ARBBOT_FOLLOW_SCAN: {where!r} is not one of {', '.join(SCAN_WHERE)}", code=2)
    through = opts["through"] or os.environ.get("ARBBOT_FOLLOW_THROUGH", "").strip() or "ml"
    if through not in THROUGH:
        raise CliError(f"ARBBOT_FOLLOW_THROUGH: {through!r} is not one of {', '.join(THROUGH)}", code=2)
    if where == "queue":
        if opts["through"] == "ml":
            raise CliError("--through ml: a block is carried on here only when it is scanned here (--scan inline)",
                           code=2)
        through = "scan"

    from webapp.core.models import Chain

    try:
        chain = selectors.chain_get(chain_id)
    except Chain.DoesNotExist:
        raise CliError(f"--chain {chain_id}: no such chain configured", code=2) from None
    if not chain.is_active:
        raise CliError(f"--chain {chain_id}: the chain is not active", code=2)
    http_urls = chain.rpc_url_list()
    if not http_urls:
        raise CliError(f"--chain {chain_id}: no RPC URL configured", code=2)

    # the fleet's side: the scan task's body (inline) or the scan task (queue)
    from workers import runtime
    from workers.tasks import scan

    settings = get_settings()
    runtime.start_tracing("arbbot-follower")  # each block's trace starts at its arrival here
    hot = runtime.hotstate(chain_id)
    inline = None
    if where == "inline":
        from workers import kept
        from workers.follow_scan import InlineScan

        kept.start_refresher()  # the pool filter the scanner asks for, read off the block's way
        inline = InlineScan(chain_id, through=through).start()
    follower = Follower(
        RpcClient(http_urls, timeout_s=2.0, retries=0, breaker_cooldown_s=1.0),
        inline or (lambda head: scan.announce(chain_id, head)),
        chain_id=chain_id,
        ws_urls=ws_urls,
        poll_interval_s=poll,
        lease=Lease(hot.follower_lock(LEASE_TTL_S), LEASE_TTL_S),
        # the workers' liveness file, checked by age (python -m workers.health): a wedged
        # loop stops touching it, and loses the lease too
        heartbeat=lambda: settings.heartbeat_file.touch(),
    )

    _serve_metrics()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if opts["seconds"]:
        timer = threading.Timer(opts["seconds"], stop.set)
        timer.daemon = True
        timer.start()
    via = ", ".join(endpoint_label(u) for u in ws_urls) or "no WebSocket"
    out(f"following chain {chain_id}: newHeads via {via}; HTTP poll every {poll:g}s "
        f"{'as fallback' if ws_urls else 'always'}; each block scanned "
        f"{'here (the scan queue if that fails)' if inline else 'by a scan worker'}"
        + ("; its cycles found and decided here too (the path and ml queues if that fails)"
           if through == "ml" else ""))
    try:
        follower.run(stop)
    finally:
        if inline is not None:
            inline.stop()
    s = follower.stats
    tracing.flush()
    out(f"stopped: {s.announced} heads announced ({s.by_source}), {s.gap_blocks} gap blocks, "
        f"{s.reorgs} reorgs, {s.ws_failures} WebSocket failures")
    if inline is not None:
        i = inline.stats
        out(f"scanned here: {i.scanned} heads, {i.retried} retries, {i.gave_up} left to the next scan, "
            f"{i.queued} to the scan queue" + (f", failures {i.failed}" if i.failed else "")
            + (f"; blocks carried on here: {i.blocks}" if i.blocks else ""))
    return 0


def _serve_metrics() -> None:
    """The follower's metrics on ``ARBBOT_METRICS_PORT``. One process, so the default
    registry: it reads a metric's value whether it was made before or after
    ``workers.celery_app`` switched prometheus_client to multiprocess files."""
    from arbbot.config import get_settings

    port = get_settings().metrics_port
    if port:
        from prometheus_client import start_http_server

        start_http_server(port)
