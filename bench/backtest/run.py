"""Backtest benchmark (not a timed test): record a devnet market of ``--blocks`` blocks (the
market simulator's random swaps, ``--swaps-per-block`` per block, one block mined per round
as 1 s blocks would hold them; the scan stage's Scanner and Recorder, a state dump at the
start), then replay it through ``arbbot.replay.backtest`` with the default strategy and
measure, in the same run:

  (a) the backtest: every block through the path, ml and execute code in paper mode and the
      hindsight optimum's engine (blocks/s, wall time; the target: a one-hour recording of
      1 s blocks, 3,600 blocks, in under 60 s),
  (b) baseline: the previous code path, paper fills leaving the pools as recorded (a gap no
      one closes is taken again and again: more trades, more work),
  (c) the default of ``arbbot backtest`` on a devnet recording: every block with fills on an
      anvil loaded from the recording's state dump (the genuine contracts), the anvil's
      answers verified in the background (``run(..., ahead=True)``), against (a) (the fills
      must be equal, to the wei); the same target,
  (c') baseline: the first ``--anvil-blocks`` blocks (600) on the anvil waiting for each
      answer (``ahead=False``, the previous path), against the same blocks by the math,
  (d) baseline: reading and decoding the same recording only (what the format costs),
  (e) baseline: the chain's own time for those blocks at 1 s a block.

Prints a table and one JSON line (with the machine's load average: on a shared 2-core
machine the figures move with it). Usage:
  .venv/bin/python -m bench.backtest.run [--blocks 3600] [--swaps-per-block 4] [--seed 7] [--keep DIR]
  .venv/bin/python -m bench.backtest.run --recording FILE   # (a) and (b) on a kept recording
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from arbbot.chain.discovery import Factory
from arbbot.chain.scanner import Scanner, ScannerConfig
from arbbot.devnet.scenarios import deployed_devnet
from arbbot.devnet.simulator import simulate
from arbbot.execution.fees import FeePolicy
from arbbot.replay.backtest import BacktestResult, BacktestStrategy, open_chain, run
from arbbot.replay.recorder import Recorder
from arbbot.replay.recording import Recording, RecordingWriter
from arbbot.replay.report import executed_cycles, summarize


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def record(directory: Path, blocks: int, swaps_per_block: int, seed: int) -> tuple[Path, float]:
    """A recording of ``blocks`` simulated blocks; its path and the seconds it took."""
    with deployed_devnet(directory / "devnet", v3=True) as (anvil, dep):
        rpc = anvil.rpc()
        scanner = Scanner(ScannerConfig(
            chain_id=dep.chain_id, rpc_urls=(anvil.url,), multicall=dep.multicall3,
            factories=tuple(Factory(d["factory"], d["kind"], fee_pips=d.get("fee_pips", 3000)) for d in dep.dexes
                            if d.get("factory")),
        ))
        meta = {"chain": {"name": "bench-devnet", "weth": dep.weth, "executor": dep.executor, "is_devnet": True},
                "strategy": BacktestStrategy(name="default").to_wire(), "exclusions": {},
                "fee_policy": {"inclusion_blocks": 3, "priority_percentile": 50.0, "history_blocks": 10}}
        recorder = Recorder(RecordingWriter(directory, dep.chain_id), rpc, FeePolicy(), lambda: meta, dump_state=True)
        recorded = [0]
        paths: set[Path] = set()
        started = time.perf_counter()

        def mine_and_record() -> None:
            if recorded[0] == 0:
                rpc.call("evm_setAutomine", [False])  # from now on a round's swaps share one block
            else:
                rpc.call("evm_mine")
            for delta in scanner.poll():
                paths.add(recorder.record(delta))
                recorded[0] += 1
            if recorded[0] % 300 < 1:
                say(f"recorded {recorded[0]} blocks")

        simulate(anvil.url, deployment=dep, rounds=blocks, seed=seed, swaps_per_block=swaps_per_block,
                 progress=None, after_round=mine_and_record)
        elapsed = time.perf_counter() - started
    (path,) = paths
    return path, elapsed


def _timed(recording: Recording, **kw: object) -> tuple[BacktestResult, float, float]:
    """A backtest with the default strategy; its result, wall and CPU seconds."""
    t0, c0 = time.perf_counter(), time.process_time()
    result = run(recording, BacktestStrategy(name="default"), **kw)  # type: ignore[arg-type]
    return result, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, default=3600)
    ap.add_argument("--swaps-per-block", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", metavar="DIR", help="keep the recording (and its state dump) in DIR")
    ap.add_argument("--recording", metavar="FILE", help="replay this recording instead of making one")
    ap.add_argument("--no-anvil", action="store_true", help="skip the anvil-backed run")
    ap.add_argument("--anvil-blocks", type=int, default=600,
                    help="blocks the baseline anvil run (waiting for each answer) replays, and the math run "
                         "it is compared with")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="arbbot-bench-backtest-"))
    load_before = os.getloadavg()[0]
    anvil: tuple[BacktestResult, float, float] | None = None  # waiting for each answer, first blocks
    anvil_math: tuple[BacktestResult, float, float] | None = None
    ahead: tuple[BacktestResult, float, float] | None = None  # the default: every block, verified after
    searched: tuple[BacktestResult, float, float] | None = None  # the same, every estimate anvil's search
    gas_confirmed = gas_asked = 0
    try:
        if args.recording:
            path, record_s = Path(args.recording), 0.0
        else:
            say(f"recording {args.blocks} blocks of the devnet market ({args.swaps_per_block} swaps a block)")
            path, record_s = record(tmp, args.blocks, args.swaps_per_block, args.seed)
        recording = Recording.open(path)
        run(recording, BacktestStrategy(name="default"), to_block=recording.first_block)  # compile the kernels
        n = len(recording.frames)

        t0 = time.perf_counter()
        decoded = sum(1 for _ in recording.blocks())
        decode_s = time.perf_counter() - t0

        say("replaying: pure math, paper fills moving the pools (the default)")
        result, backtest_s, backtest_cpu_s = _timed(recording)
        say("replaying: baseline, fills leaving the pools as recorded (the previous code path)")
        still, still_s, still_cpu_s = _timed(recording, move_pools=False)
        if not args.no_anvil:
            assert recording.first_block is not None
            last = recording.first_block + args.anvil_blocks - 1
            say("replaying: fills on an anvil loaded from the state dump, verified in the background (the default)")
            chain = open_chain(recording, log_path=tmp / "replay-anvil.log")
            if chain is not None:
                try:
                    ahead = _timed(recording, chain=chain)
                    gas_confirmed, gas_asked = chain.gas_confirmed, chain.gas_asked
                    chain.reset()
                    say("replaying: baseline, the same with anvil's own eth_estimateGas search for every trade")
                    chain.guess_gas = False
                    searched = _timed(recording, chain=chain)
                    chain.guess_gas = True
                    chain.reset()
                    say(f"replaying {args.anvil_blocks} blocks: baseline, waiting for each anvil answer, then by the math")
                    anvil = _timed(recording, chain=chain, to_block=last, ahead=False)
                finally:
                    chain.close()
                anvil_math = _timed(recording, to_block=last)
        summary = summarize(result)
        size = path.stat().st_size
        if args.keep and not args.recording:
            keep = Path(args.keep)
            keep.mkdir(parents=True, exist_ok=True)
            for f in path.parent.glob(path.name.removesuffix(".arbrec") + "*"):
                shutil.copy2(f, keep / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    m = anvil[0].replayed_blocks if anvil is not None else 0

    def per_hour(seconds: float, blocks: int) -> float:
        return round(3600 * seconds / max(blocks, 1), 1)

    figures = {
        "blocks": n,
        "swaps_per_block": None if args.recording else args.swaps_per_block,
        "recording_bytes": size,
        "recording_bytes_per_block": round(size / max(n, 1), 1),
        "record_s": round(record_s, 1),
        "backtest_s": round(backtest_s, 2),
        "backtest_blocks_per_s": round(n / backtest_s, 1),
        "backtest_cpu_s": round(backtest_cpu_s, 2),
        "baseline_unmoved_s": round(still_s, 2),
        "baseline_unmoved_cpu_s": round(still_cpu_s, 2),
        "baseline_unmoved_blocks_per_s": round(n / still_s, 1),
        "anvil_blocks": m or None,
        "anvil_s": None if anvil is None else round(anvil[1], 2),
        "anvil_cpu_s": None if anvil is None else round(anvil[2], 2),
        "anvil_blocks_per_s": None if anvil is None else round(m / anvil[1], 1),
        "anvil_math_s": None if anvil_math is None else round(anvil_math[1], 2),
        "anvil_projected_s_per_3600_blocks": None if anvil is None else per_hour(anvil[1], m),
        "ahead_s": None if ahead is None else round(ahead[1], 2),
        "ahead_cpu_s": None if ahead is None else round(ahead[2], 2),
        "ahead_blocks_per_s": None if ahead is None else round(n / ahead[1], 1),
        "ahead_projected_s_per_3600_blocks": None if ahead is None else per_hour(ahead[1], n),
        "ahead_fills_equal_math": None if ahead is None else executed_cycles(ahead[0]) == executed_cycles(result),
        "ahead_gas_confirmed": gas_confirmed if ahead is not None else None,
        "ahead_gas_searched": gas_asked if ahead is not None else None,
        "searched_s": None if searched is None else round(searched[1], 2),
        "searched_cpu_s": None if searched is None else round(searched[2], 2),
        "searched_projected_s_per_3600_blocks": None if searched is None else per_hour(searched[1], n),
        "searched_equal_ahead": None if searched is None or ahead is None
        else executed_cycles(searched[0]) == executed_cycles(ahead[0])
        and [r.extra.get("gas_limit") for r in searched[0].executions]
        == [r.extra.get("gas_limit") for r in ahead[0].executions],
        "anvil_fills_equal_math": None if anvil is None or anvil_math is None
        else executed_cycles(anvil[0]) == executed_cycles(anvil_math[0]),
        "decode_only_s": round(decode_s, 2),
        "decode_blocks_per_s": round(decoded / decode_s, 1),
        "chain_time_s": n,  # 1 s blocks
        "speedup_vs_chain": round(n / backtest_s, 1),
        "target_s_per_3600_blocks": 60,
        "projected_s_per_3600_blocks": round(3600 * backtest_s / max(n, 1), 1),
        "opportunities_found": summary["opportunities"]["found"],
        "executed_paper": summary["opportunities"]["executed"],
        "optimum_share": summary["optimum"]["share"],
        "unmoved_found": summarize(still)["opportunities"]["found"],
        "unmoved_executed_paper": summarize(still)["opportunities"]["executed"],
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }
    rows = [
        ("blocks recorded (1 s each on the chain)", f"{n:,}"),
        ("recording size", f"{size / 1e6:.2f} MB ({figures['recording_bytes_per_block']} B/block)"),
        ("backtest (math fills moving the pools): wall", f"{backtest_s:.2f} s = {n / backtest_s:,.0f} blocks/s"),
        ("  CPU time of this process", f"{backtest_cpu_s:.2f} s = {n / backtest_cpu_s:,.0f} blocks per CPU s"),
        ("  opportunities found / executed (paper)", f"{figures['opportunities_found']} / {figures['executed_paper']}"),
        ("baseline: fills not moving the pools (before)", f"{still_s:.2f} s = {n / still_s:,.0f} blocks/s, "
                                                          f"CPU {still_cpu_s:.2f} s"),
        ("  opportunities found / executed (paper)",
         f"{figures['unmoved_found']} / {figures['unmoved_executed_paper']}"),
    ]
    if ahead is not None:
        rows.append(("fills on the anvil, verified in the background (default)",
                     f"{ahead[1]:.2f} s = {n / ahead[1]:,.0f} blocks/s, CPU {ahead[2]:.2f} s (+ the anvil's)"))
        rows.append(("  same fills as the math, to the wei", str(figures["ahead_fills_equal_math"])))
        rows.append(("  one hour of 1 s blocks, projected",
                     f"{figures['ahead_projected_s_per_3600_blocks']} s (target < 60 s)"))
        rows.append(("  gas estimates confirmed from a guess / by anvil's search", f"{gas_confirmed} / {gas_asked}"))
    if searched is not None:
        rows.append(("baseline: the same, anvil's eth_estimateGas search each trade (before)",
                     f"{searched[1]:.2f} s, CPU {searched[2]:.2f} s; projected "
                     f"{figures['searched_projected_s_per_3600_blocks']} s/h; same fills and gas limits: "
                     f"{figures['searched_equal_ahead']}"))
    if anvil is not None and anvil_math is not None:
        rows.append((f"baseline: first {m} blocks on the anvil, waiting for each answer",
                     f"{anvil[1]:.2f} s = {m / anvil[1]:,.0f} blocks/s, CPU {anvil[2]:.2f} s; "
                     f"projected {figures['anvil_projected_s_per_3600_blocks']} s/h"))
        rows.append(("  the same blocks by the pool math (baseline)",
                     f"{anvil_math[1]:.2f} s = {m / anvil_math[1]:,.0f} blocks/s; same fills to the wei: "
                     f"{figures['anvil_fills_equal_math']}"))
    rows += [
        ("baseline: decode only", f"{decode_s:.2f} s = {decoded / decode_s:,.0f} blocks/s"),
        ("baseline: the chain's own time", f"{n:,} s (backtest {n / backtest_s:,.0f}x faster)"),
        ("math fills: one hour of 1 s blocks, projected", f"{figures['projected_s_per_3600_blocks']} s (target < 60 s)"),
        ("load average (1 min) before / after, 2 cores", " / ".join(map(str, figures["load_average"]))),
    ]
    width = max(len(r[0]) for r in rows) + 2
    for label, value in rows:
        print(f"{label.ljust(width)}{value}")
    print(json.dumps({"bench": "backtest", **figures}))


if __name__ == "__main__":
    main()
