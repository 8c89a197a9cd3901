"""What a backtest reports: the JSON summary (``summarize``), a table of one or more
summaries side by side (``side_by_side``) and the chart of cumulative PnL against the
hindsight optimum (``plot``, a PNG by matplotlib's Agg backend).

Amounts are integers in base units, decimal strings in the JSON (as on the wire); floats
appear only in ratios, speeds and the chart. A *revert* in a backtest is an attempt the
re-validation refused because the cycle would not pay on the block's state (stale, or
the simulation reverted): what would have reverted on-chain had it been sent unchecked.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Sequence

from arbbot.replay.backtest import BacktestResult, gas_native, reasons

REVERT_PREFIXES = ("stale", "re-validation reverted")


def summarize(result: BacktestResult) -> dict[str, Any]:
    executed = [r for r in result.executions if r.status == "simulated"]
    dropped = [r for r in result.executions if r.status == "dropped"]
    reverted = [r for r in dropped if r.reason.startswith(REVERT_PREFIXES)]
    per_token: dict[str, int] = defaultdict(int)
    for r in executed:
        per_token[r.profit_token] += r.realised_profit
    captured = sum(b.captured_native for b in result.blocks)
    optimum = sum(b.optimum_native for b in result.blocks)
    gas = sum(gas_native(r) for r in executed)
    attempts = len(executed) + len(reverted)
    blocks = result.blocks
    return {
        "recording": result.recording,
        "chain_id": result.chain_id,
        "strategy": result.strategy.to_wire(),
        "fills": result.fills,
        "blocks": {
            "first": blocks[0].number if blocks else None,
            "last": blocks[-1].number if blocks else None,
            "traded": len(blocks),
            "replayed": result.replayed_blocks,
        },
        "opportunities": {
            "found": sum(b.found for b in blocks),
            "executed": len(executed),
            "skipped": dict(result.skipped.most_common()),
            "dropped": dict(reasons(result.executions, "dropped").most_common()),
            "failed": dict(reasons(result.executions, "failed").most_common()),
        },
        "pnl": {
            "per_token": {t: str(v) for t, v in sorted(per_token.items())},
            "native_wei": str(captured),
            "gross_native_wei": str(captured + gas),
        },
        "gas": {"native_wei": str(gas), "trades": len(executed)},
        "reverts": {"count": len(reverted), "rate": (len(reverted) / attempts) if attempts else 0.0},
        "optimum": {
            "native_wei": str(optimum),
            "cycles": sum(b.optimum_cycles for b in blocks),
            "captured_native_wei": str(captured),
            "share": (captured / optimum) if optimum > 0 else None,
        },
        # each block with anything in it: number, found, executed, captured and optimum (native, net)
        "per_block": [
            [b.number, b.found, b.executed, str(b.captured_native), str(b.optimum_native)]
            for b in blocks if b.found or b.optimum_native
        ],
        "speed": {
            "elapsed_s": round(result.elapsed_s, 3),
            "blocks_per_s": round(result.replayed_blocks / result.elapsed_s, 1) if result.elapsed_s > 0 else None,
        },
    }


def _eth(wei: int | str) -> str:
    return f"{int(wei) / 10**18:.6f}"


def side_by_side(names: Sequence[str], summaries: Sequence[dict[str, Any]]) -> str:
    """A text table of the summaries' headline figures, one column each."""
    rows: list[tuple[str, list[str]]] = [
        ("blocks traded", [str(s["blocks"]["traded"]) for s in summaries]),
        ("opportunities found", [str(s["opportunities"]["found"]) for s in summaries]),
        ("executed (paper)", [str(s["opportunities"]["executed"]) for s in summaries]),
        ("skipped by the scorer", [str(sum(s["opportunities"]["skipped"].values())) for s in summaries]),
        ("dropped at execute", [str(sum(s["opportunities"]["dropped"].values())) for s in summaries]),
        ("PnL net of gas (native)", [_eth(s["pnl"]["native_wei"]) for s in summaries]),
        ("gas (native)", [_eth(s["gas"]["native_wei"]) for s in summaries]),
        ("revert rate", [f"{s['reverts']['rate']:.1%}" for s in summaries]),
        ("hindsight optimum (native)", [_eth(s["optimum"]["native_wei"]) for s in summaries]),
        ("share captured", ["-" if s["optimum"]["share"] is None else f"{s['optimum']['share']:.1%}"
                            for s in summaries]),
        ("blocks/s", [str(s["speed"]["blocks_per_s"]) for s in summaries]),
    ]
    tokens = sorted({t for s in summaries for t in s["pnl"]["per_token"]})
    rows += [(f"PnL {t[:10]}…", [s["pnl"]["per_token"].get(t, "0") for s in summaries]) for t in tokens]
    reasons_seen: Counter[str] = Counter()
    for s in summaries:
        reasons_seen.update(s["opportunities"]["dropped"])
    rows += [(f"  dropped: {why}"[:40], [str(s["opportunities"]["dropped"].get(why, 0)) for s in summaries])
             for why, _ in reasons_seen.most_common(5)]
    width = max(len(label) for label, _ in rows) + 2
    cols = [max(len(n), *(len(v[i]) for _, v in rows)) + 2 for i, n in enumerate(names)]
    lines = ["".ljust(width) + "".join(n.rjust(c) for n, c in zip(names, cols))]
    lines += [label.ljust(width) + "".join(v.rjust(c) for v, c in zip(values, cols)) for label, values in rows]
    return "\n".join(lines)


def plot(names: Sequence[str], results: Sequence[BacktestResult], path: str | Path) -> Path:
    """Cumulative PnL (net of gas, native) of each result against its hindsight optimum (each
    its own: a block's optimum is on the pools as that strategy's fills left them)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=110)
    for i, (name, result) in enumerate(zip(names, results)):
        xs = [b.number for b in result.blocks]
        pnl, best, run_pnl, run_best = [], [], 0, 0
        for b in result.blocks:
            run_pnl += b.captured_native
            run_best += b.optimum_native
            pnl.append(run_pnl / 10**18)
            best.append(run_best / 10**18)
        color = f"C{i}"
        ax.plot(xs, pnl, linewidth=2.2, color=color, label=name)
        # on top, thin: a strategy that captures it all hides under it
        ax.plot(xs, best, color=color, linestyle="--", linewidth=1.1, zorder=5,
                label=f"{name}: hindsight optimum" if len(results) > 1 else "hindsight optimum")
    ax.set_xlabel("block")
    ax.set_ylabel("cumulative PnL, net of gas (native)")
    ax.set_title(f"backtest: chain {results[0].chain_id}" if results else "backtest")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out


def executed_cycles(result: BacktestResult) -> dict[tuple[int, str], int]:
    """(block, path id) -> realised (paper) profit of every executed cycle."""
    return {(r.block_number, r.path_id): r.realised_profit for r in result.executions if r.status == "simulated"}

