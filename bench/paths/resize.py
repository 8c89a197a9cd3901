"""How long one ``resize`` takes (not a timed test): prints a table and one JSON line.

    .venv/bin/python -m bench.paths.resize [--repeat 200]

The execute stage calls ``arbbot.paths.resize.resize`` once per opportunity, just before
signing. Cycles (the same synthetic pools as tests/paths/test_resize.py): 2 V2 hops,
3 V2 hops, 2 hops V2 + V3, 3 hops V2 + V2 + V3, each uncapped and capped at a third of its
optimum. Each call gets states it has not seen (a V2 reserve nudged per call), so no
cache can help; the figure is the median and p95 over ``--repeat`` calls after a warm-up
(``resize.warm()``, as a worker would at start).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import time
from typing import Sequence

from arbbot.paths import resize as resize_mod
from arbbot.types import PoolState, V2PoolState
from tests.paths._paths_helpers import DAI, USDC, WETH, v2
from tests.paths.test_v3_cycles import v3pool

E18, E6 = 10**18, 10**6


def _v3(i: int, usdc_per_weth: float) -> PoolState:
    spot = usdc_per_weth * E6 / E18
    return v3pool(i, USDC, WETH, 1 / spot, [(-887220, 887220, 3 * 10**16), (198000, 207000, 2 * 10**17)])


def cycles() -> dict[str, tuple[list[PoolState], list[str]]]:
    weth_usdc_a = v2(1, USDC, WETH, 4_000_000 * E6, 2000 * E18)
    weth_usdc_b = v2(2, USDC, WETH, 4_000_000 * E6 * 97 // 100, 2000 * E18)
    dai_weth = v2(3, DAI, WETH, 4_200_000 * E18, 2000 * E18)
    usdc_dai = v2(4, USDC, DAI, 3_000_000 * E6, 3_000_000 * E18)
    return {
        "2 hops v2": ([weth_usdc_a, weth_usdc_b], [WETH, USDC, WETH]),
        "3 hops v2": ([dai_weth, usdc_dai, weth_usdc_b], [WETH, DAI, USDC, WETH]),
        "2 hops v2+v3": ([weth_usdc_a, _v3(5, 1940.0)], [WETH, USDC, WETH]),
        "3 hops v2+v2+v3": ([dai_weth, usdc_dai, _v3(5, 2000.0)], [WETH, DAI, USDC, WETH]),
    }


def _nudged(states: Sequence[PoolState], i: int) -> list[PoolState]:
    """Fresh states: the first V2 pool's reserve moved by ``i`` parts in 10^7."""
    out = list(states)
    first = out[0]
    assert isinstance(first, V2PoolState)
    out[0] = dataclasses.replace(first, reserve0=first.reserve0 + first.reserve0 * (i % 50) // 10**7)
    return out


def measure(states: list[PoolState], tokens: list[str], repeat: int, capped: bool) -> dict[str, float]:
    best = resize_mod.resize(states, tokens)
    assert best is not None, "benchmark cycle does not pay"
    cap = best.amount_in // 3 if capped else None
    times = []
    for i in range(repeat):
        fresh = _nudged(states, i + 1)
        t0 = time.perf_counter()
        got = resize_mod.resize(fresh, tokens, max_amount_in=cap)
        times.append(time.perf_counter() - t0)
        assert got is not None
    times.sort()
    return {
        "median_us": round(statistics.median(times) * 1e6, 1),
        "p95_us": round(times[int(0.95 * (len(times) - 1))] * 1e6, 1),
        "max_us": round(times[-1] * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    resize_mod.warm()
    res: dict[str, object] = {"bench": "paths.resize", "repeat": args.repeat, "python": platform.python_version()}
    print(f"{'cycle':<22} {'cap':<8} {'median µs':>10} {'p95 µs':>10} {'max µs':>10}")
    for name, (states, tokens) in cycles().items():
        for capped in (False, True):
            m = measure(states, tokens, args.repeat, capped)
            label = "1/3 opt" if capped else "none"
            print(f"{name:<22} {label:<8} {m['median_us']:>10} {m['p95_us']:>10} {m['max_us']:>10}")
            res[f"{name.replace(' ', '_').replace('+', '_')}{'_capped' if capped else ''}"] = m
    print(json.dumps(res, sort_keys=True))


if __name__ == "__main__":
    main()
