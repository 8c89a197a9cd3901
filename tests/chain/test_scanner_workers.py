"""Several scan workers on one chain (each with its own Scanner, sharing Redis): under the
scan lock and claim_block, every block is published exactly once and in order, and a
worker that was idle adopts the cursor another one advanced."""

from __future__ import annotations

import threading
import time

from arbbot.chain.discovery import Factory
from arbbot.chain.scanner import Scanner, ScannerConfig
from arbbot.hotstate import HotState
from arbbot.types import PoolDelta, V2PoolState
from tests.chain.devchain import DevChain, build_v2_market


def test_workers_never_overlap_nor_double_publish(dev: DevChain, hot: HotState) -> None:
    mc = dev.deploy_multicall()
    factory, _ = build_v2_market(dev, n_tokens=5, n_pairs=8)
    cfg = ScannerConfig(chain_id=31337, rpc_urls=(dev.rpc.url,), multicall=mc, factories=(Factory(factory, "v2"),))
    workers = [Scanner(cfg, store=hot) for _ in range(3)]
    published: list[PoolDelta] = []
    pub_lock = threading.Lock()
    inside = 0
    overlap = False
    stop = threading.Event()

    def run(scanner: Scanner) -> None:
        nonlocal inside, overlap
        while not stop.is_set():
            with hot.scanning(ttl_s=30) as got:
                if got:
                    with pub_lock:
                        inside += 1
                        overlap |= inside > 1
                    for d in scanner.poll():
                        if hot.claim_block(d.block_number, d.block_hash):
                            with pub_lock:
                                published.append(d)
                    with pub_lock:
                        inside -= 1
            time.sleep(0.001)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    pairs = list(dev.pairs.values())
    for i in range(30):
        dev.send_many(dev.random_swap_txs(pairs[i % len(pairs)]))
        time.sleep(0.01)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()

    assert not overlap
    numbers = [d.block_number for d in published]
    assert numbers == list(range(numbers[0], dev.rpc.block_number() + 1))  # each once, in order
    assert len({(d.block_number, d.block_hash) for d in published}) == len(published)
    stored = hot.get_pools()
    for p in dev.pairs:
        s = stored[p]
        assert isinstance(s, V2PoolState) and (s.reserve0, s.reserve1) == dev.onchain_reserves(p)
    # a worker that was idle (or restarted) picks up from the shared cursor
    w = workers[0]
    dev.send_many(dev.random_swap_txs(pairs[0]))
    d = w.poll()
    assert [x.block_number for x in d] == [dev.rpc.block_number()]
    # and holds every pool as stored, whether it read what changed since its own last
    # block (changed_since) or every pool
    assert w.pools == hot.get_pools()
    assert all(x.pools == hot.get_pools() for x in workers if x.last_block == w.last_block)
