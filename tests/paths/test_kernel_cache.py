"""The compiled sizing kernels are kept on disk: a second process loads them instead of
compiling again (a path worker's start drops from ~10 s to well under one), and the
loaded machine code gives the same results, bit for bit, as the freshly compiled one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, numpy as np
from arbbot.paths import _kernels as k
k.warm()
rng = np.random.default_rng(7)
# WETH -> a 0-decimal token -> WETH, 20% apart: hop rows (1e6*r_in, r_out, 1e6-fee, cap)
tab = np.array([[1e27, 1e5, 997_000.0, 1e30], [1e11, 1.2e21, 997_000.0, 1e30]])
status, j, levels, keys = k.window_run(tab, 0.0, 64, 1024, 1 << 17, 256)
edges = rng.integers(0, 50, size=(400, 3)).astype(np.int32)
p = rng.uniform(0.9, 1.1, 50); q = rng.uniform(1e-12, 1e-9, 50)
si, sx, sp = k.screen_rows(edges, np.arange(400, dtype=np.int64), p, q)
stats = {name: (sum(f.stats.cache_hits.values()), sum(f.stats.cache_misses.values()))
         for name, f in (("window_run", k.window_run), ("screen_rows", k.screen_rows))}
print(json.dumps({"cache": k._CACHE, "stats": stats,
                  "window": [int(status), int(j)],
                  "out": [a.tolist() for a in (levels, keys, si, sx, sp)]}))
"""


def _run(cache_dir: Path) -> dict:  # type: ignore[type-arg]
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_second_process_loads_the_kernels_from_disk_with_identical_results(tmp_path: Path) -> None:
    first = _run(tmp_path)
    assert first["cache"] is True
    assert all(hits == 0 and misses >= 1 for hits, misses in first["stats"].values()), first["stats"]
    assert any(tmp_path.rglob("*.nbi")) and any(tmp_path.rglob("*.nbc"))
    assert first["window"][0] == 1 and len(first["out"][0]) > 0, "the window probe must find levels to compare"
    assert len(first["out"][2]) > 0, "the screen probe must keep some rows to compare"
    second = _run(tmp_path)
    assert all(hits >= 1 and misses == 0 for hits, misses in second["stats"].values()), second["stats"]
    assert second["out"] == first["out"]
