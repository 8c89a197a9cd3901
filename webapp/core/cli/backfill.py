"""``arbbot backfill --chain ID [--to BLOCK] [--chunk N]``: discover a chain's pools from each
DEX's start block (``arbbot.chain.backfill``), recording each chunk's pools with the cursor
(``services.DbBackfillLedger``), so Ctrl-C or a crash loses nothing: the same command
resumes. The scan stage then discovers from where it stopped.

Progress: on a terminal one line rewritten in place (bar, blocks, pools, rate, ETA);
otherwise (a log, a pipe) a line every few seconds and at the end."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, TextIO

from webapp.core.cli import CliError

LINE_EVERY_S = 5.0  # without a terminal: one progress line this often
REDRAW_EVERY_S = 0.2  # on a terminal


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "backfill", help="discover a chain's pools from each DEX's start block (resumable)",
        description="Discover the pools of every DEX of a chain from its start block to the head minus the "
        "chain's confirmations, in chunks that follow the node's limits. Interrupted, the same command resumes.",
    )
    p.add_argument("--chain", type=int, required=True, metavar="ID", help="chain id (as configured)")
    p.add_argument("--to", type=int, metavar="BLOCK", help="last block to discover (default: head - confirmations)")
    p.add_argument("--chunk", type=int, default=10_000, metavar="N",
                   help="most blocks per eth_getLogs request (default 10000; shrinks when the node refuses)")
    p.add_argument("--reset", action="store_true",
                   help="forget where earlier runs stopped and start again at each DEX's start block "
                   "(pools already recorded stay; for a chain reset under the same id)")
    p.set_defaults(handler=run)


def _duration(s: float | None) -> str:
    if s is None:
        return "--:--"
    s = int(s)
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60:02d}:{rest % 60:02d}"


class ProgressPrinter:
    """Renders ``arbbot.chain.backfill.Progress`` reports."""

    def __init__(self, out: Callable[[str], None], stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.clock = clock
        self.last_shown = float("-inf")
        self.drawn = False

    def line(self, p: Any) -> str:
        frac = p.blocks_done / p.blocks_total if p.blocks_total else 1.0
        filled = int(frac * 30)
        bar = "#" * filled + "-" * (30 - filled)
        return (
            f"[{bar}] {frac * 100:5.1f}% {p.blocks_done:,}/{p.blocks_total:,} blocks, {p.pools_found:,} pools, "
            f"{p.rate_bps:,.0f} blocks/s, chunk {p.chunk_size:,}, ETA {_duration(p.eta_s)}"
        )

    def __call__(self, p: Any) -> None:
        now = self.clock()
        final = p.blocks_done >= p.blocks_total
        if self.tty:
            if final or now - self.last_shown >= REDRAW_EVERY_S:
                self.stream.write("\r" + self.line(p) + "\x1b[K")
                self.stream.flush()
                self.drawn = True
                self.last_shown = now
        elif final or now - self.last_shown >= LINE_EVERY_S:
            self.out(f"{self.line(p)} (factory {p.factory}, block {p.block:,})")
            self.last_shown = now

    def end(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


def run(opts: dict[str, Any], out: Callable[[str], None]) -> int:
    from arbbot.chain.backfill import BackfillConflict, backfill, first_block
    from arbbot.chain.discovery import Factory
    from arbbot.chain.rpc import RpcClient
    from arbbot.errors import RpcError
    from webapp.core import selectors, services
    from webapp.core.models import Chain

    chain_id = opts["chain"]
    chain = Chain.objects.filter(chain_id=chain_id).first()
    if chain is None:
        raise CliError(f"unknown chain {chain_id} (configure it first: arbbot config apply)", code=2)
    if opts["chunk"] < 1:
        raise CliError(f"--chunk must be at least 1, got {opts['chunk']}", code=2)
    dexes = list(chain.dexes.order_by("id"))
    if not dexes:
        raise CliError(f"chain {chain_id} has no DEX configured: nothing to backfill", code=2)
    rpc = RpcClient(chain.rpc_url_list(), timeout_s=30.0, retries=1)
    try:
        head = rpc.block_number()
    except RpcError as exc:
        raise CliError(f"chain {chain_id}: no node answers: {exc}") from exc
    to_block = opts["to"] if opts["to"] is not None else head - chain.confirmations
    if to_block > head:
        raise CliError(f"--to {to_block} is beyond the node's head {head}", code=2)
    if to_block < 0:
        raise CliError(f"--to {to_block} is negative", code=2)

    if opts.get("reset"):
        out(f"forgot {services.backfill_cursors_reset(chain_id)} backfill cursor(s) of chain {chain_id}")
    cursors = selectors.backfill_cursors(chain_id)
    names = {d.factory: d.name for d in dexes}
    ahead = [f"{names[f]} (block {b:,})" for f, b in cursors.items() if b > head]
    if ahead:
        raise CliError(
            f"chain {chain_id}: backfilled beyond the node's head {head:,}: {', '.join(ahead)}; is this the same "
            "chain? If it was reset, run again with --reset"
        )
    factories = [
        Factory(d.factory, d.kind, start_block=d.start_block, fee_pips=d.fee_pips, discovered_to=cursors.get(d.factory))
        for d in dexes
    ]
    ledger = services.DbBackfillLedger(chain_id)
    for f in factories:
        lo = first_block(f, ledger)
        state = "up to date" if lo > to_block else f"blocks {lo:,}-{to_block:,}"
        resumed = f" (resuming after block {f.discovered_to:,})" if f.discovered_to is not None else ""
        out(f"{names[f.address]} ({f.kind}, factory {f.address}): {state}{resumed}")

    printer = ProgressPrinter(out, sys.stdout)
    try:
        result = backfill(rpc, factories, ledger, to_block=to_block, max_chunk=opts["chunk"], on_progress=printer)
    except KeyboardInterrupt:
        printer.end()
        again = f"arbbot backfill --chain {chain_id}" + ("" if opts["to"] is None else f" --to {opts['to']}")
        sys.stderr.write(
            f"interrupted: everything up to {_where(chain_id, names)} is saved; resume with the same command: {again}\n"
        )
        sys.stderr.flush()
        return 130
    except BackfillConflict as exc:
        printer.end()
        raise CliError(str(exc)) from exc
    except RpcError as exc:
        printer.end()
        raise CliError(
            f"chain {chain_id}: {exc}; what was found up to {_where(chain_id, names)} is saved, "
            "run the same command again to resume"
        ) from exc
    printer.end()
    out(
        f"chain {chain_id} backfilled through block {to_block:,}: {result.blocks:,} blocks in {result.chunks:,} "
        f"chunks, {result.pools_found:,} pools found ({ledger.created:,} new), {result.refusals} refusals by the node"
    )
    out("the scan stage discovers from the next block on")
    return 0


def _where(chain_id: int, names: dict[str, str]) -> str:
    """Each DEX's cursor, for the interrupted/failed message."""
    from webapp.core import selectors

    try:
        cursors = selectors.backfill_cursors(chain_id)
    except Exception:  # the database connection may be what was interrupted
        return "the last recorded chunk"
    parts = [f"{name} block {cursors[f]:,}" if f in cursors else f"{name} (not started)" for f, name in names.items()]
    return ", ".join(parts) or "nothing"
