"""The EV-against-threshold plot as a PNG (matplotlib, no display): what ``arbbot ml
evaluate --png`` writes. The model's EV captured on the holdout when it executes at
P(success) >= each threshold, the rule's EV as a level, the oracle's as a ceiling."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping


def ev_curve_png(curve: Mapping[str, Any], path: str | Path, *, oracle: float | None = None, title: str = "") -> Path:
    """``curve``: ``thresholds`` (0..1), ``model`` (EV captured at each, wei) and ``rule``
    (the rule's EV, one number), as ``webapp.core.services.ev_curve`` makes it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eth = 1e18
    ts = [float(t) for t in curve["thresholds"]]
    ev = [float(v) / eth for v in curve["model"]]
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
    ax.plot(ts, ev, linewidth=2.2, marker="o", markersize=3, label="model: execute at P(success) ≥ threshold")
    ax.axhline(float(curve["rule"]) / eth, color="tab:orange", linestyle="--", label="rule (profit > gas × margin)")
    if oracle is not None:
        ax.axhline(oracle / eth, color="black", linestyle=":", linewidth=1.2, label="oracle (every success only)")
    best = max(range(len(ev)), key=ev.__getitem__) if ev else None
    if best is not None:
        ax.annotate(f"{ev[best]:.4f} at {ts[best]:.2f}", (ts[best], ev[best]), textcoords="offset points",
                    xytext=(6, 6))
    ax.set_xlabel("P(success) threshold")
    ax.set_ylabel("EV captured on the holdout (native)")
    ax.set_title(title or "EV captured against the threshold")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out
