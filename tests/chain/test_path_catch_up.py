"""What a path worker holds after a reorg another worker took, on anvil with the genuine
pairs and the real hot state: a pool the reorg's correction quarantined (deleted from the
hot state, named in that block's changed set and in the delta's ``removed``) leaves every
path worker's cache, and a worker that processed an orphaned block and then receives the
next block of the new branch (in sequence by number) catches up on the reorg's
corrections instead of keeping the orphaned states."""

from __future__ import annotations

from arbbot.chain.discovery import Factory
from arbbot.chain.scanner import Scanner, ScannerConfig
from arbbot.hotstate import HotState
from arbbot.paths.engine import PathEngine
from arbbot.paths.stage import PathStage
from arbbot.types import V2PoolState
from tests.chain.devchain import DevChain, build_v2_market
from tests.chain.test_unreadable_pools import GARBAGE_CODE


def _no_exclusions(chain_id: int) -> dict[str, str]:
    return {}


def test_a_worker_on_an_orphaned_block_catches_up_and_forgets_quarantined_pools(dev: DevChain, hot: HotState) -> None:
    mc = dev.deploy_multicall()
    factory, tokens = build_v2_market(dev, n_tokens=4, n_pairs=6)
    scanner = Scanner(ScannerConfig(chain_id=31337, rpc_urls=(dev.rpc.url,), multicall=mc,
                                    factories=(Factory(factory, "v2"),)), store=hot)
    base = tokens[0].lower()
    worker, other = (PathStage(PathEngine(base_tokens=[base], weth=base)) for _ in range(2))
    [d0] = scanner.poll()
    for w in (worker, other):
        w.process(d0, hot, _no_exclusions)
    pairs = sorted(dev.pairs)
    broken, moved = pairs[0], pairs[1]
    before = {p: dev.onchain_reserves(p) for p in (broken, moved)}

    # block n: swaps through both pools; this worker evaluates it, then it is orphaned
    snap = dev.rpc.call("evm_snapshot", [])
    dev.send_many(dev.random_swap_txs(dev.pairs[broken]) + dev.random_swap_txs(dev.pairs[moved]))
    [dn] = scanner.poll()
    worker.process(dn, hot, _no_exclusions)
    assert (worker.engine.states[moved].reserve0, worker.engine.states[moved].reserve1) != before[moved]

    # the new branch at the same height: the swaps never happened, and one pool's code
    # now answers garbage, so the correction's re-read quarantines it
    assert dev.rpc.call("evm_revert", [snap])
    dev.rpc.call("anvil_setCode", [broken, GARBAGE_CODE])
    dev.mine(1)
    [fix] = scanner.poll()
    assert fix.reorg and fix.block_number == dn.block_number and fix.removed == (broken,)
    assert broken not in hot.get_pools()
    assert hot.redis.sismember(hot.key(f"changed:{fix.block_number}"), broken), "named in the block's changes"
    other.process(fix, hot, _no_exclusions)  # another worker takes the correction
    assert broken not in other.engine.states

    # the next block of the new branch reaches the worker that saw the orphaned block: in
    # sequence by number, but its parent is not the block the worker saw
    dev.mine(1)
    [nxt] = scanner.poll()
    assert nxt.block_number == dn.block_number + 1 and not nxt.reorg and nxt.parent_hash == fix.block_hash
    worker.process(nxt, hot, _no_exclusions)
    held = worker.engine.states
    assert broken not in held, "the quarantined pool's orphaned state is gone"
    s = held[moved]
    assert isinstance(s, V2PoolState) and (s.reserve0, s.reserve1) == before[moved] == dev.onchain_reserves(moved)
    assert worker.synced_hash == nxt.block_hash

    # a third worker that missed the reorg block entirely catches up from the changed sets
    late = PathStage(PathEngine(base_tokens=[base], weth=base))
    late.process(d0, hot, _no_exclusions)
    dev.mine(1)
    [last] = scanner.poll()
    got = hot.changed_since(d0.block_number, d0.block_hash)
    assert got is not None and broken in got[2], "a catch-up learns the pool was removed"
    late.process(last, hot, _no_exclusions)
    assert broken not in late.engine.states


def test_a_late_delta_of_an_orphaned_branch_does_not_leave_its_states(dev: DevChain, hot: HotState) -> None:
    """A worker that took the reorg's correction and then receives a queued delta of the
    orphaned branch (next by number, but its parent is not the block the worker holds)
    reads every pool: the orphaned states the delta carried do not stay."""
    mc = dev.deploy_multicall()
    factory, tokens = build_v2_market(dev, n_tokens=4, n_pairs=6)
    scanner = Scanner(ScannerConfig(chain_id=31337, rpc_urls=(dev.rpc.url,), multicall=mc,
                                    factories=(Factory(factory, "v2"),)), store=hot)
    base = tokens[0].lower()
    worker = PathStage(PathEngine(base_tokens=[base], weth=base))
    [d0] = scanner.poll()
    worker.process(d0, hot, _no_exclusions)
    pairs = sorted(dev.pairs)
    snap = dev.rpc.call("evm_snapshot", [])
    dev.send_many(dev.random_swap_txs(dev.pairs[pairs[2]]))
    dev.send_many(dev.random_swap_txs(dev.pairs[pairs[3]]))
    dn, dn1 = scanner.poll()
    assert dev.rpc.call("evm_revert", [snap])
    dev.resync_mirror()
    dev.mine(1)  # the new branch is one block long: blocks n and n+1 are orphaned
    [fix] = scanner.poll()
    assert fix.reorg and fix.block_number == dn.block_number
    worker.process(fix, hot, _no_exclusions)
    worker.process(dn1, hot, _no_exclusions)  # queued before the reorg, delivered after
    for p in pairs[2:4]:
        s = worker.engine.states[p]
        assert isinstance(s, V2PoolState) and (s.reserve0, s.reserve1) == dev.onchain_reserves(p), p
