"""Scan-stage benchmark (not a timed test): on a fresh anvil devnet with >= 5,000 genuine
Uniswap V2 pairs (createPair through the npm UniswapV2Factory, funded by transfer+mint),
measure in one run:

  (a) a full refresh of every pool through the batched Multicall3 path
      (hand-encoded aggregate3, JSON-RPC batches, a small thread pool),
  (b) the same reads through plain web3.py contract calls (a sample, extrapolated),
  (c) per-block incremental sync (Scanner.poll(): header + logs, decode, Redis write)
      of blocks in which ~200 pools change by swaps.

Prints a table and one JSON line. Usage:
  .venv/bin/python bench/scan/run.py [--pairs 5050] [--chunk 500] [--per-request 2] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import redis  # noqa: E402

from arbbot.chain.discovery import Factory  # noqa: E402
from arbbot.chain.rpc import RpcClient  # noqa: E402
from arbbot.chain.scanner import Scanner, ScannerConfig  # noqa: E402
from arbbot.chain.tx import encode_call  # noqa: E402
from arbbot.devnet import artifacts  # noqa: E402
from arbbot.devnet.anvil import start_anvil  # noqa: E402
from arbbot.hotstate import HotState  # noqa: E402
from arbbot.types import V2PoolState  # noqa: E402
from tests.chain.devchain import DevChain, V2Pair, v2_pair_address  # noqa: E402  (shared devnet helpers)


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def deploy(dev: DevChain, n_pairs: int) -> tuple[str, str]:
    t0 = time.perf_counter()
    mc = dev.deploy_multicall()
    factory = dev.deploy_v2_factory()
    n_tokens = 2
    while n_tokens * (n_tokens - 1) // 2 < n_pairs:
        n_tokens += 1
    art = artifacts.load("ERC20PresetMinterPauser")
    from eth_abi import encode

    deploys = [
        {"from": dev.sender, "data": art.bytecode + encode(["string", "string"], [f"Token{i}", f"T{i}"]).hex(),
         "gas": hex(3_000_000)}
        for i in range(n_tokens)
    ]
    nonce0 = int(dev.rpc.call("eth_getTransactionCount", [dev.sender, "pending"]), 16)
    dev.send_many(deploys)
    from eth_utils import keccak
    import rlp  # type: ignore[import-untyped]  # shipped with eth-account

    tokens = [
        "0x" + keccak(rlp.encode([bytes.fromhex(dev.sender[2:]), nonce0 + i]))[12:].hex() for i in range(n_tokens)
    ]
    dev.send_many([dev.tx(t, encode_call("mint(address,uint256)", [dev.sender, 10**40]), 100_000) for t in tokens])
    progress(f"  {n_tokens} tokens deployed and minted ({time.perf_counter() - t0:.1f}s)")
    combos = [(a, b) for i, a in enumerate(tokens) for b in tokens[i + 1 :]][:n_pairs]
    step = 1000
    for i in range(0, len(combos), step):
        txs = []
        for a, b in combos[i : i + step]:
            txs.append(dev.tx(factory, encode_call("createPair(address,address)", [a, b]), 3_000_000))
            t0_, t1_ = sorted([a, b])
            addr = v2_pair_address(factory, t0_, t1_)
            dev.pairs[addr] = V2Pair(addr, t0_, t1_)
        dev.send_many(txs)
        progress(f"  createPair {min(i + step, len(combos))}/{len(combos)} ({time.perf_counter() - t0:.1f}s)")
    pairs = list(dev.pairs.values())
    step = 500
    for i in range(0, len(pairs), step):
        txs = []
        for p in pairs[i : i + step]:
            base = 10**21 * dev.rng.randint(1, 50)
            txs += dev.liquidity_txs(p, base, base * dev.rng.randint(1, 20))
        dev.send_many(txs)
        progress(f"  liquidity {min(i + step, len(pairs))}/{len(pairs)} ({time.perf_counter() - t0:.1f}s)")
    return mc, factory


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=5050)
    ap.add_argument("--chunk", type=int, default=500)
    ap.add_argument("--per-request", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--web3-sample", type=int, default=300)
    ap.add_argument("--changed", type=int, default=200)
    ap.add_argument("--blocks", type=int, default=10)
    args = ap.parse_args()

    progress(f"starting anvil, deploying {args.pairs} genuine UniswapV2 pairs ...")
    anvil = start_anvil(gas_limit=1_000_000_000)
    r = redis.Redis.from_url(os.environ.get("ARBBOT_REDIS_URL", "redis://127.0.0.1:6379/0"))
    hot = HotState(r, f"bench-scan-{uuid.uuid4().hex[:8]}", 31337)
    try:
        dev = DevChain(RpcClient(anvil.url, timeout_s=120), rng=random.Random(1))
        t_dep = time.perf_counter()
        mc, factory = deploy(dev, args.pairs)
        deploy_s = time.perf_counter() - t_dep
        n = len(dev.pairs)
        cfg = ScannerConfig(
            chain_id=31337, rpc_urls=(anvil.url,), multicall=mc, factories=(Factory(factory, "v2"),),
            chunk_size=args.chunk, calls_per_request=args.per_request, concurrency=args.concurrency,
            rpc_timeout_s=30,
        )
        scanner = Scanner(cfg, store=hot)
        t = time.perf_counter()
        first = scanner.poll()
        bootstrap_s = time.perf_counter() - t
        assert len(first) == 1 and len(first[0].states) == n, (len(first), n)
        progress(f"bootstrap (discovery of {n} pairs + tokens + full refresh + Redis): {bootstrap_s * 1000:.0f} ms")

        # (a) full refresh: V2 reserves through PairReserves (state override), interleaved
        # with (a0) the same through Multicall3 aggregate3 (the path before, same run)
        head = dev.rpc.block_number()
        runs, agg_runs = [], []
        for _ in range(7):
            scanner.mc.pair_reader = False
            t = time.perf_counter()
            scanner.full_refresh(head)
            agg_runs.append(time.perf_counter() - t)
            scanner.mc.pair_reader = True
            t = time.perf_counter()
            states = scanner.full_refresh(head)
            runs.append(time.perf_counter() - t)
        agg_ms = statistics.median(agg_runs) * 1000
        for s in states:
            p = dev.pairs[s.address]
            assert isinstance(s, V2PoolState) and (s.reserve0, s.reserve1) == (p.reserve0, p.reserve1)
        full_ms = statistics.median(runs) * 1000
        full_best_ms = min(runs) * 1000

        # (b) plain web3 contract calls on a sample
        from web3 import Web3

        w3 = Web3(Web3.HTTPProvider(anvil.url))
        abi = artifacts.load("UniswapV2Pair").abi
        sample = random.Random(2).sample(sorted(dev.pairs), min(args.web3_sample, n))
        contracts = [w3.eth.contract(address=Web3.to_checksum_address(a), abi=abi) for a in sample]
        t = time.perf_counter()
        for c in contracts:
            c.functions.getReserves().call(block_identifier=head)
        web3_s = time.perf_counter() - t
        web3_rate = len(sample) / web3_s
        web3_full_ms = n / web3_rate * 1000

        # (c) incremental: blocks with ~200 changed pools
        pairs = list(dev.pairs.values())
        inc = []
        changed_counts = []
        for _ in range(args.blocks):
            chosen = random.Random().sample(pairs, args.changed)
            txs = []
            for p in chosen:
                txs += dev.random_swap_txs(p)
            dev.send_many(txs)
            t = time.perf_counter()
            deltas = scanner.poll()
            inc.append(time.perf_counter() - t)
            assert len(deltas) == 1
            changed_counts.append(len(deltas[0].states))
        for p in pairs:
            s = scanner.pools[p.address]
            assert isinstance(s, V2PoolState) and (s.reserve0, s.reserve1) == (p.reserve0, p.reserve1)
        inc_ms = statistics.median(inc) * 1000

        res = {
            "pools": n,
            "deploy_s": round(deploy_s, 1),
            "bootstrap_ms": round(bootstrap_s * 1000, 1),
            "full_refresh_ms_median": round(full_ms, 1),
            "full_refresh_ms_best": round(full_best_ms, 1),
            "full_refresh_pools_per_s": round(n / (full_ms / 1000)),
            "full_refresh_aggregate3_ms_median": round(agg_ms, 1),
            "load_avg": [round(x, 1) for x in os.getloadavg()],
            "web3_sample": len(sample),
            "web3_calls_per_s": round(web3_rate, 1),
            "web3_full_refresh_ms_extrapolated": round(web3_full_ms),
            "speedup_vs_web3": round(web3_full_ms / full_ms, 1),
            "incremental_changed_pools": statistics.median(changed_counts),
            "incremental_ms_median": round(inc_ms, 2),
            "incremental_ms_max": round(max(inc) * 1000, 2),
            "chunk": args.chunk,
            "per_request": args.per_request,
            "concurrency": args.concurrency,
            "targets_met": {
                "full_refresh_le_250ms": full_ms <= 250,
                "speedup_ge_50x": web3_full_ms / full_ms >= 50,
                "incremental_le_20ms": inc_ms <= 20,
            },
        }
        print(f"\nscan benchmark, {n} genuine UniswapV2 pairs on anvil (one run)")
        print(f"{'measure':<52}{'value':>16}")
        print("-" * 68)
        rows = [
            ("deploy (tokens, createPair, liquidity)", f"{deploy_s:.1f} s"),
            ("bootstrap: discovery + tokens + refresh + Redis", f"{bootstrap_s * 1000:.0f} ms"),
            (f"(a) full refresh, PairReserves (median of {len(runs)})", f"{full_ms:.1f} ms"),
            ("    best", f"{full_best_ms:.1f} ms"),
            ("    throughput", f"{n / (full_ms / 1000):,.0f} pools/s"),
            ("(a0) the same through Multicall3 aggregate3 (before)", f"{agg_ms:.1f} ms"),
            (f"(b) web3 contract calls ({len(sample)} sampled)", f"{web3_rate:,.0f} calls/s"),
            (f"    extrapolated to {n} pools", f"{web3_full_ms:,.0f} ms"),
            ("    (a) speedup over (b)", f"{web3_full_ms / full_ms:,.0f} x"),
            (f"(c) incremental poll, {statistics.median(changed_counts):.0f} changed (median)", f"{inc_ms:.2f} ms"),
            ("    max", f"{max(inc) * 1000:.2f} ms"),
        ]
        for k, v in rows:
            print(f"{k:<52}{v:>16}")
        print(json.dumps(res))
    finally:
        hot.clear()
        anvil.stop()


if __name__ == "__main__":
    main()
