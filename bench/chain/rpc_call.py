#!/usr/bin/env python
"""What one JSON-RPC call to a local node costs this process, by transport, in the same run
on the same anvil: ``requests`` (a ``Session`` as the client used it: environment read once,
the endpoint's proxies given) against urllib3's connection pool as ``RpcClient`` uses it now
(``arbbot.chain.rpc._Pool``), and the whole ``RpcClient.call`` (breaker, metrics, ids).

Each live send waits for several calls (the re-validation's round trip, the send, the
nonce's count), the scan for its batches: the transport's own time is on the way of every
block. ``eth_chainId`` and ``eth_blockNumber``, which anvil answers at once, so the figures
are the transport's; the variants alternate in rounds.

Run: ``PYTHONPATH=. .venv/bin/python bench/chain/rpc_call.py [--calls 2000]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import requests  # noqa: E402

from arbbot.chain.rpc import Endpoint, RpcClient, _Pool, endpoint_label  # noqa: E402
from arbbot.devnet.anvil import start_anvil  # noqa: E402


def variants(url: str) -> dict[str, Callable[[dict[str, Any]], Any]]:
    session = requests.Session()
    session.trust_env = False
    ep = Endpoint(url, endpoint_label(url))
    pool = _Pool(ep)
    client = RpcClient(url)

    def before(payload: dict[str, Any]) -> Any:
        return session.post(url, json=payload, timeout=10.0, proxies=ep.proxies).json()

    def now(payload: dict[str, Any]) -> Any:
        status, data = pool.post(json.dumps(payload).encode(), 10.0)
        return json.loads(data)

    def whole(payload: dict[str, Any]) -> Any:
        return {"result": client.call(payload["method"], payload["params"])}

    return {"before: requests.Session": before, "now: urllib3 pool (_Pool)": now, "now: RpcClient.call": whole}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000, help="calls timed per variant and method")
    args = ap.parse_args()
    if args.calls < 10:
        ap.error(f"--calls {args.calls}: at least 10")
    with start_anvil() as anvil:
        fns = variants(anvil.url)
        payloads = {
            "eth_chainId": {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
            "eth_blockNumber": {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []},
        }
        times: dict[tuple[str, str], list[float]] = {(m, v): [] for m in payloads for v in fns}
        for fn in fns.values():  # connect and warm each
            for p in payloads.values():
                fn(p)
        rounds = 10
        for _ in range(rounds):
            for method, p in payloads.items():
                for name, fn in fns.items():
                    expected = None
                    for _ in range(args.calls // rounds):
                        t = time.perf_counter()
                        reply = fn(p)
                        times[(method, name)].append((time.perf_counter() - t) * 1000)
                        if expected is None:
                            expected = reply["result"]
                        elif method == "eth_chainId" and reply["result"] != expected:
                            raise SystemExit(f"{name}: {method} answered {reply['result']}, then {expected}")
    figs: dict[str, Any] = {}
    print(f"{'one call to a local anvil, ms':<44}{'p50':>8}{'p95':>8}")
    for (method, name), xs in times.items():
        s = sorted(xs)
        f = {"n": len(s), "p50": round(statistics.median(s), 3), "p95": round(s[int(0.95 * (len(s) - 1))], 3)}
        figs.setdefault(method, {})[name.split(":")[0] + ":" + name.split(":")[1].strip()] = f
        print(f"{method + ', ' + name:<44}{f['p50']:>8.3f}{f['p95']:>8.3f}")
    print(json.dumps({"bench": "rpc-call", "unit": "ms", "calls": args.calls, **figs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
