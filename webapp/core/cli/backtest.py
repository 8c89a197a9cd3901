"""``arbbot backtest RECORDING [--config FILE | --compare A B] [--from BLOCK] [--to BLOCK]``:
replay a recording (written by the scan stage with ``ARBBOT_RECORD_DIR``) through the
fleet's path, ml and execute code in paper mode (``arbbot.replay.backtest``) and report
(``arbbot.replay.report``): a table, a JSON summary and a PNG of cumulative PnL against the
hindsight optimum.

Paper fills are run by the genuine contracts on an anvil loaded from the recording's state
dump where there is one (``--fills auto``, the default; ``anvil`` insists, ``math`` uses the
exact pool math on the recorded states), and they move the pools the next blocks see
(``arbbot.replay.fills``).

The strategy is the one recorded (in force when the recording started) unless ``--config``
names a file: a configuration file (its chain's ``strategy``), or a file holding only a
``strategy``. ``--compare A B`` runs both on the same blocks and prints them side by side.
Bad input (a truncated, corrupt or newer-version recording, a gap in its blocks, a file
naming tokens no pool of the recording holds, blocks outside it) is an error naming the
problem, exit code 2, and nothing is written: the outputs are written only at the end.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("backtest", help="replay a recording through the engine in paper mode and report")
    p.add_argument("recording", help="a recording file (chain-<id>-<block>.arbrec, written with ARBBOT_RECORD_DIR)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--config", metavar="FILE", help="trade with this file's strategy (default: the recorded one)")
    which.add_argument("--compare", nargs=2, metavar=("A", "B"), help="run two strategy files on the same blocks")
    p.add_argument("--from", dest="from_block", type=int, metavar="BLOCK", help="trade from this block on")
    p.add_argument("--to", dest="to_block", type=int, metavar="BLOCK", help="stop after this block")
    p.add_argument("--json", metavar="FILE", help="the JSON summary (default: backtest-<recording>.json here)")
    p.add_argument("--png", metavar="FILE", help="the chart (default: backtest-<recording>.png here)")
    p.add_argument("--optimum-hops", type=int, default=3, choices=(2, 3, 4),
                   help="longest cycle of the hindsight optimum (default 3)")
    p.add_argument("--fills", choices=("auto", "anvil", "math"), default="auto",
                   help="how paper fills are simulated: on an anvil loaded from the recording's state dump "
                        "(exact: the genuine contracts), by the exact pool math, or auto: anvil where a dump exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(opts: dict[str, Any], out: Callable[[str], None]) -> int:
    from arbbot.errors import ArbbotError
    from arbbot.replay import backtest, report
    from arbbot.replay.recording import Recording
    from webapp.core.cli import CliError

    try:
        recording = Recording.open(opts["recording"])
    except ArbbotError as exc:
        raise CliError(str(exc), code=2) from None
    recorded = backtest.BacktestStrategy.from_wire(recording.meta.get("strategy") or {})
    files = opts["compare"] or ([opts["config"]] if opts["config"] else [])
    strategies = [_strategy(Path(f), recording.chain_id, recorded) for f in files] or [recorded]
    for name, strategy in zip(files or ["recorded"], strategies):
        unknown = backtest.unknown_tokens(recording, strategy, opts["to_block"])
        if unknown:
            raise CliError(f"{name}: names tokens no pool of the recording holds: {', '.join(sorted(unknown))}", code=2)
    stem = recording.path.name.removesuffix(".arbrec")
    json_path = Path(opts["json"] or f"backtest-{stem}.json")
    png_path = Path(opts["png"] or f"backtest-{stem}.png")
    results = []
    # each paper trade is logged by the execute stage at INFO: the bar and the report say it here
    logging.getLogger("arbbot").setLevel(logging.WARNING)
    fills = opts.get("fills") or "auto"
    for strategy in strategies:
        bar = None if opts["quiet"] else _Bar(strategy.name)
        chain = None
        try:
            if fills != "math":  # one anvil per strategy: each starts from the dump
                chain = backtest.open_chain(recording)
                if chain is None and fills == "anvil":
                    raise CliError(f"{recording.path}: --fills anvil needs a state dump and an executor; "
                                   "the recording has none (a devnet's recording has both)", code=2)
            results.append(backtest.run(recording, strategy, from_block=opts["from_block"], to_block=opts["to_block"],
                                        optimum_max_hops=opts["optimum_hops"], progress=bar, chain=chain))
        except ArbbotError as exc:
            raise CliError(str(exc), code=2) from None
        finally:
            if chain is not None:
                chain.close()
            if bar is not None:
                bar.close()
    names = [s.name for s in strategies]
    summaries = [report.summarize(r) for r in results]
    out(report.side_by_side(names, summaries))
    document = summaries[0] if len(summaries) == 1 else {"compare": dict(zip(names, summaries))}
    _write(json_path, lambda tmp: tmp.write_text(json.dumps(document, indent=2) + "\n"))
    _write(png_path, lambda tmp: report.plot(names, results, tmp))
    out(f"summary: {json_path}  chart: {png_path}")
    return 0


def _strategy(path: Path, chain_id: int, recorded: Any) -> Any:
    """The strategy of a file; fleet settings a file does not hold (the input cap of other
    tokens, the per-pool cap) stay as recorded."""
    from django.core.exceptions import ValidationError

    from webapp.core.cli import CliError
    from webapp.core.cli.config import read_yaml
    from webapp.core.config_schema import parse_strategy

    try:
        spec = parse_strategy(read_yaml(path), chain_id)
    except ValidationError as exc:
        raise CliError(f"{path}: {' '.join(exc.messages)}", code=2) from None
    return dataclasses.replace(
        recorded, start_tokens=tuple(spec.start_tokens), max_hops=spec.max_hops, margin=Fraction(spec.margin),
        min_profit_wei=spec.min_profit_wei, max_amount_in=dict(spec.max_amount_in),
        max_fee_per_gas_wei=spec.max_fee_per_gas_wei, max_sends_per_block=spec.max_sends_per_block, name=path.stem,
    )


def _write(path: Path, write: Callable[[Path], Any]) -> None:
    """Write through a temporary file beside ``path``: never a half-written output."""
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class _Bar:
    """A progress bar on stderr: blocks done, blocks/s, time left."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.started = time.monotonic()
        self.shown = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.shown < 0.2:
            return
        self.shown = now
        rate = done / max(now - self.started, 1e-9)
        width = 30
        filled = width * done // max(total, 1)
        left = (total - done) / rate if rate > 0 else 0.0
        sys.stderr.write(f"\r{self.label[:24]:<24} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} blocks "
                         f"{rate:,.0f}/s, {left:,.0f}s left ")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()
