#!/usr/bin/env python
"""The signature each live send waits for: eth-account's ``sign_transaction`` against the
signer's own encoding (``arbbot.chain.rawtx.sign_raw_tx``), in the same run on the same
transactions, both on libsecp256k1 (coincurve).

An EIP-1559 call to the executor with ``--calldata`` bytes of calldata (a 3-hop cycle's
``execute`` is ~700), a new nonce each time; the variants alternate in rounds, every
signature of one is checked byte for byte against the other's. Prints a table and a JSON line.

Run: ``PYTHONPATH=. .venv/bin/python bench/execution/sign.py [--signatures 2000] [--calldata 700]``
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import coincurve  # noqa: E402
from eth_account import Account  # noqa: E402
from eth_utils import to_checksum_address  # noqa: E402

from arbbot.chain.rawtx import sign_raw_tx  # noqa: E402

EXECUTOR = "0x" + "e5" * 20


def variants(key: bytes, data: str) -> dict[str, Callable[[int], tuple[str, str]]]:
    account = Account.from_key(key)
    private = coincurve.PrivateKey(key)

    def eth_account(nonce: int) -> tuple[str, str]:
        tx: dict[str, Any] = {"chainId": 1, "nonce": nonce, "to": to_checksum_address(EXECUTOR), "data": data,
                              "value": 0, "gas": 400_000, "type": 2, "maxFeePerGas": 30 * 10**9,
                              "maxPriorityFeePerGas": 10**9}
        signed = account.sign_transaction(tx)
        return "0x" + bytes(signed.raw_transaction).hex(), "0x" + bytes(signed.hash).hex()

    def own(nonce: int) -> tuple[str, str]:
        return sign_raw_tx(private, chain_id=1, nonce=nonce, to=EXECUTOR, data=data, gas=400_000,
                           max_fee_per_gas=30 * 10**9, max_priority_fee_per_gas=10**9)

    return {"before: eth-account sign_transaction": eth_account, "now: sign_raw_tx": own}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--signatures", type=int, default=2000, help="signatures timed per variant")
    ap.add_argument("--calldata", type=int, default=700, help="bytes of calldata")
    args = ap.parse_args()
    if args.signatures < 10:
        ap.error(f"--signatures {args.signatures}: at least 10")
    if args.calldata < 0:
        ap.error(f"--calldata {args.calldata}: must not be negative")
    fns = variants(secrets.token_bytes(32), "0x" + secrets.token_bytes(args.calldata).hex())
    times: dict[str, list[float]] = {name: [] for name in fns}
    rounds = 10
    nonce = 0
    for _ in range(rounds):
        for _ in range(args.signatures // rounds):
            nonce += 1
            out = set()
            for name, fn in fns.items():
                t = time.perf_counter()
                out.add(fn(nonce))
                times[name].append((time.perf_counter() - t) * 1000)
            if len(out) != 1:
                raise SystemExit(f"nonce {nonce}: the variants signed different bytes")
    figs = {}
    print(f"{'one EIP-1559 signature, ms':<40}{'p50':>8}{'p95':>8}")
    for name, xs in times.items():
        s = sorted(xs)
        figs[name] = {"n": len(s), "p50": round(statistics.median(s), 3), "p95": round(s[int(0.95 * (len(s) - 1))], 3)}
        print(f"{name:<40}{figs[name]['p50']:>8.3f}{figs[name]['p95']:>8.3f}")
    b, n = (figs[name]["p50"] for name in fns)
    print(f"p50: now {b / n:.1f}x as fast, the same bytes for all {nonce} transactions")
    print(json.dumps({"bench": "sign", "unit": "ms", "calldata": args.calldata,
                      **{k.split(":")[0]: v for k, v in figs.items()}, "speedup_p50": round(b / n, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
