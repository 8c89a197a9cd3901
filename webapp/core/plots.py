"""Plots as inline SVG (no plotting library): the EV captured against the P(success)
threshold, for the dashboard's scoring section and ``arbbot ml evaluate --svg``."""

from __future__ import annotations

from typing import Any, Mapping


def ev_curve_svg(curve: Mapping[str, Any], width: int = 520, height: int = 200) -> str:
    """``curve``: ``thresholds`` (0..1), ``model`` (EV captured at each, wei) and ``rule``
    (the rule's EV, one number): the model's line, the rule's as a dashed level."""
    ts = [float(t) for t in curve.get("thresholds", [])]
    ev = [float(v) for v in curve.get("model", [])]
    rule = float(curve.get("rule", 0.0))
    if not ts or len(ts) != len(ev):
        return ""
    pad = 36
    lo, hi = min(min(ev), rule, 0.0), max(max(ev), rule)
    span = (hi - lo) or 1.0

    def x(t: float) -> float:
        return pad + (width - 2 * pad) * t

    def y(v: float) -> float:
        return height - pad - (height - 2 * pad) * (v - lo) / span

    line = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(ts, ev))
    best = max(range(len(ev)), key=ev.__getitem__)
    eth = 1e18
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">'
        f'<rect width="{width}" height="{height}" fill="#1b232c"/>'
        f'<line x1="{pad}" y1="{y(lo):.1f}" x2="{width - pad}" y2="{y(lo):.1f}" stroke="#555"/>'
        f'<line x1="{pad}" y1="{pad / 2}" x2="{pad}" y2="{height - pad}" stroke="#555"/>'
        f'<line x1="{pad}" y1="{y(rule):.1f}" x2="{width - pad}" y2="{y(rule):.1f}" stroke="#d29922" '
        f'stroke-dasharray="5,4"/>'
        f'<polyline points="{line}" fill="none" stroke="#56d364" stroke-width="2"/>'
        f'<circle cx="{x(ts[best]):.1f}" cy="{y(ev[best]):.1f}" r="3" fill="#56d364"/>'
        f'<text x="{pad}" y="{height - 10}" fill="#8a939b">P(success) threshold 0 → 1</text>'
        f'<text x="{width - pad}" y="{y(rule) - 4:.1f}" fill="#d29922" text-anchor="end">'
        f'rule {rule / eth:.4f} ETH</text>'
        f'<text x="{x(ts[best]) + 6:.1f}" y="{y(ev[best]) - 6:.1f}" fill="#56d364">'
        f'model {ev[best] / eth:.4f} ETH at {ts[best]:.2f}</text>'
        f'<text x="4" y="14" fill="#8a939b">EV captured on the holdout</text></svg>'
    )
