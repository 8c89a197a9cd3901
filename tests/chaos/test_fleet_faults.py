"""The fleet under faults (``make chaos``): real execute and analytics workers on private
PostgreSQL, Redis and RabbitMQ instances, a steady load of batches, and one fault per
case. Each case reports the load it held, how long processing took to resume, and what
was lost or duplicated, counted from the database and the chain; the summary table is
printed at the end of the run (``tests/chaos/conftest.py``)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import psycopg
import pytest

from tests.chaos.conftest import SUMMARY
from tests.chaos.fleet import BATCH, ChaosFleet, chaos_fleet
from tests.e2e.fleet import wait_for

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.skipif(not os.environ.get("ARBBOT_CHAOS"), reason="the long chaos cases run with `make chaos`"),
]

RATE = 4.0  # batches a second into each of execute and analytics


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosFleet]:
    with chaos_fleet(tmp_path_factory.mktemp("chaos")) as f:
        yield f


def _report(fleet: ChaosFleet, fault: str, recovery_s: float | None, result: dict[str, Any]) -> None:
    SUMMARY.append({
        "fault": fault,
        "load held": (f"{fleet.load.rate:.1f} blocks/s to ml ({fleet.load.rate * BATCH:.0f} items/s)"
                      if fleet.load.via == "ml" else
                      f"{fleet.load.rate:.1f} blocks/s to path ({len(fleet.cycles) * 2} pools each)"
                      if fleet.load.via == "path" else
                      f"{fleet.load.rate:.1f} batches/s x2 ({fleet.load.rate * BATCH * 2:.0f} items/s)"),
        "recovery s": "-" if recovery_s is None else f"{recovery_s:.1f}",
        "lost": result["analytics_lost"] + result["execute_lost"],
        "duplicated": result["analytics_duplicated"] + result["execute_duplicated"] + result["tx_sent_twice"],
    })


def _assert_nothing_lost_or_twice(result: dict[str, Any]) -> None:
    assert result["analytics_lost"] == 0 and result["execute_lost"] == 0, result
    assert result["analytics_duplicated"] == 0 and result["execute_duplicated"] == 0, result
    assert result["tx_sent_twice"] == 0 and result["tx_unjournaled"] == 0, result


def _pool_children(pid: int) -> list[int]:
    """The pool processes of the worker ``pid`` (the processes that run its tasks)."""
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _run(fleet: ChaosFleet, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.1)


def test_baseline_load(fleet: ChaosFleet) -> None:
    fleet.start_load(RATE)
    _run(fleet, 5)
    fleet.stop_load()
    result = fleet.verify()
    _report(fleet, "none (baseline)", None, result)
    _assert_nothing_lost_or_twice(result)
    assert result["tx_mined"] > 0


@pytest.mark.parametrize("queue", ["execute", "analytics", "ml", "path"])
def test_sigkill_a_worker_mid_batch(fleet: ChaosFleet, queue: str) -> None:
    """Its pool process SIGKILLed three times under load: every batch's effect once. For
    ml and path, the load goes through it (ml: blocks of opportunities it decides; path:
    blocks of pool changes it finds and decides), handed on to the execute and analytics
    workers: every opportunity recorded once with its decision, each decided ``execute``
    executed once, none executed that its record does not say was chosen (a redelivered
    block decided anew must not differ), no transaction twice; through path, the case's
    last block recorded (a restarted path worker takes the head at once) and every block
    sent from a second after the stages wrote again."""
    if queue not in fleet.workers:
        fleet.start_worker(queue)
    fleet.start_load(RATE, via=queue if queue in ("ml", "path") else "direct")
    _run(fleet, 2)
    pid = fleet.workers[queue].pid
    killed_at = 0.0
    for _ in range(3):  # the pool process that runs the batches, three times
        child = _pool_children(pid)[0]
        os.kill(child, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(lambda: _pool_children(pid) and _pool_children(pid)[0] != child, 30, "a new pool process")
        _run(fleet, 1.5)
    recovery = fleet.resumed_after(killed_at)
    _run(fleet, 2)
    fleet.stop_load()
    assert fleet.workers[queue].poll() is None  # the worker itself lives on
    result = fleet.verify()
    _report(fleet, f"SIGKILL {queue} pool process x3", recovery, result)
    _assert_nothing_lost_or_twice(result)
    if queue in ("ml", "path"):
        assert result["chosen"] > 0 and result["executed_unchosen"] == 0, result
        assert sum(result["statuses"].get(k, 0) for k in ("sent", "success")) > 0, result  # this case traded
    if queue == "path":  # only the blocks queued while a pool process restarted collapse into one
        since = [b for b, at in zip(fleet.load.blocks, fleet.load.block_at) if at > killed_at + recovery + 1.0]
        assert since and not set(since) - result["recorded"], (since, sorted(result["recorded"]))
    print(f"{queue}: { {k: v for k, v in result.items() if k != 'recorded'} }")


def _outage(fleet: ChaosFleet, fault: str, stop: Callable[[], None], start: Callable[[], None]) -> None:
    """Under load: ``stop`` a service, two seconds down, ``start`` it; processing resumes
    within 10 s of its return, nothing lost, nothing twice."""
    fleet.start_load(RATE)
    _run(fleet, 2)
    stop()
    _run(fleet, 2)
    start()
    recovery = fleet.resumed_after(time.monotonic())
    _run(fleet, 3)
    fleet.stop_load()
    result = fleet.verify()
    _report(fleet, fault, recovery, result)
    _assert_nothing_lost_or_twice(result)
    assert recovery <= 10


def test_restart_rabbitmq_under_load(fleet: ChaosFleet) -> None:
    _outage(fleet, "RabbitMQ stopped and restarted", fleet.rabbit.stop, fleet.rabbit.start)


def test_crash_postgresql_under_load(fleet: ChaosFleet) -> None:
    _outage(fleet, "PostgreSQL crashed and restarted", fleet.pg.crash, fleet.pg.start)


def test_crash_redis_under_load_kill_switch_holds_nonces_resync(fleet: ChaosFleet) -> None:
    fleet.start_load(RATE)
    _run(fleet, 2)
    fleet.hot.fleet.set_kill_switch(True)
    _run(fleet, 2)  # AOF: fsynced within a second
    sent_before = fleet.nonce("pending")
    fleet.redis.crash()
    _run(fleet, 1)
    fleet.redis.start()
    back = time.monotonic()
    assert fleet.hot.fleet.kill_switch_engaged()  # survived the crash
    recovery = fleet.resumed_after(back)
    _run(fleet, 2)
    assert fleet.nonce("pending") == sent_before  # engaged: nothing went out across the crash
    fleet.hot.fleet.set_kill_switch(False)
    _run(fleet, 3)
    fleet.stop_load()
    result = fleet.verify()
    assert fleet.nonce("latest") > sent_before  # sending again, on nonces resynced from the chain
    _report(fleet, "Redis SIGKILLed and restarted (kill switch on)", recovery, result)
    _assert_nothing_lost_or_twice(result)
    assert recovery <= 10


def _branch(fleet: ChaosFleet, depth: int, timestamp_step: int) -> list[tuple[int, str]]:
    """Mine ``depth`` empty blocks on the head; their (number, hash)."""
    out = []
    for _ in range(depth):
        ts = int(fleet.rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
        fleet.rpc.call("evm_setNextBlockTimestamp", [hex(ts + timestamp_step)])
        fleet.rpc.call("evm_mine")
        blk = fleet.rpc.call("eth_getBlockByNumber", ["latest", False])
        out.append((int(blk["number"], 16), blk["hash"].lower()))
    return out


@pytest.mark.parametrize("depth", [1, 3, 5])
def test_reorg_under_load_nothing_on_orphaned_state_is_sent(fleet: ChaosFleet, depth: int) -> None:
    """A reorg of ``depth`` blocks on the devnet (a branch of ``depth`` blocks replaced by a
    longer one), recorded as the scanner records it (the orphaned hashes with the correcting
    head, ``HotState.put_pools``); then under load, half of every batch still computed on
    the orphaned branch (what the path and ml stages had in flight), half on the new one:
    no execution on the orphaned blocks is sent - each is dropped for the reorg - and the
    others go on."""
    snapshot = fleet.rpc.call("evm_snapshot")
    orphaned = _branch(fleet, depth, 1)
    assert fleet.rpc.call("evm_revert", [snapshot])
    canonical = _branch(fleet, depth + 1, 2)  # the longer branch wins
    assert {h for _, h in orphaned}.isdisjoint(h for _, h in canonical)
    assert fleet.rpc.call("eth_getBlockByNumber", [hex(orphaned[-1][0]), False])["hash"].lower() != orphaned[-1][1]
    head = canonical[-1]
    fleet.hot.put_pools([], head[0], head[1], orphaned=[h for _, h in orphaned])

    # even items: computed on the orphaned branch; odd ones: on the canonical head
    fleet.block_of = lambda n: orphaned[(n // 2) % depth] if n % 2 == 0 else head
    try:
        fleet.start_load(RATE)
        _run(fleet, 4)
        fleet.stop_load()
        result = fleet.verify()
    finally:
        fleet.block_of = None
    _report(fleet, f"reorg depth {depth} (half the load on orphaned blocks)", None, result)
    _assert_nothing_lost_or_twice(result)
    tag = fleet.load.tag

    def settled() -> bool:  # the last batch may still be deciding (claimed `pending`) after the drain
        with psycopg.connect(fleet.pg.dsn()) as c:
            row = c.execute("SELECT count(*) FROM core_execution WHERE path_id LIKE %s AND status = 'pending'",
                            (f"e{tag}-%",)).fetchone()
        return row is not None and row[0] == 0

    wait_for(settled, 60, "the last executions to be decided")
    with psycopg.connect(fleet.pg.dsn()) as c:
        rows = c.execute("SELECT path_id, status, reason FROM core_execution WHERE path_id LIKE %s",
                         (f"e{tag}-%",)).fetchall()
        sent_paths = {r[0] for r in c.execute("SELECT path_id FROM core_transaction WHERE path_id LIKE %s",
                                              (f"e{tag}-%",))}
    on_orphaned = [r for r in rows if int(r[0].rsplit("-", 1)[1]) % 2 == 0]
    on_canonical = [r for r in rows if int(r[0].rsplit("-", 1)[1]) % 2 == 1]
    assert on_orphaned and on_canonical
    assert all(status == "dropped" and "orphaned" in reason for _, status, reason in on_orphaned), \
        {(s, r) for _, s, r in on_orphaned}
    assert not sent_paths & {p for p, _, _ in on_orphaned}, "a transaction on an orphaned block was signed"
    assert sent_paths & {p for p, _, _ in on_canonical}, "the canonical work went on"
    assert result["tx_mined"] > 0


def test_sigkill_the_scan_worker_while_it_holds_the_scan_lock(fleet: ChaosFleet) -> None:
    """The scan worker's pool process SIGKILLed three times in the middle of a scan, under
    swaps and scans (4 a second): its node is the project's fault proxy, which answers
    ``eth_getLogs`` 0.3 s late, so each scan holds the chain's scan lock that long and each
    kill lands in one (the lock is seen held first). The chain's scans go on within 10 s of
    the last kill (a dead scan's lock does not stall the chain for its TTL), and the hot
    state ends at the chain's head with every pair's reserves as the chain has them: no
    block's changes lost. Last of the module: it empties the hot state the other cases
    filled and leaves the chain's pools as the scanner reads them."""
    from arbbot.devnet.faultproxy import FaultProxy
    from arbbot.devnet.scenarios import read_v2_reserves

    fleet.hot.clear()  # the scanner starts afresh: a full refresh at the node's head
    proxy = FaultProxy(fleet.anvil.url)
    fleet.set_rpc(proxy.url)  # read by the scan worker started next
    halt: Callable[[], None] | None = None
    try:
        proxy.set("slow", delay_s=0.3, methods=("eth_getLogs",))
        if "scan" not in fleet.workers:
            fleet.start_worker("scan")
        halt = fleet.start_scans(RATE)
        wait_for(fleet.hot.head, 60, "the first scan")
        pid = fleet.workers["scan"].pid
        killed_at, head_at_kill, killed_token = 0.0, None, None
        for _ in range(3):
            child = _pool_children(pid)[0]
            # a scan under way: the lock held, and not by the scan killed last (its lock stays until its TTL)
            killed_token = wait_for(lambda: (t := fleet.scan_lock_token()) is not None and t != killed_token and t,
                                    30, "a scan under way", poll_s=0.005)
            os.kill(child, signal.SIGKILL)
            killed_at, head_at_kill = time.monotonic(), fleet.hot.head()
            wait_for(lambda: _pool_children(pid) and _pool_children(pid)[0] != child, 30, "a new pool process")
            _run(fleet, 1.0)
        assert head_at_kill is not None
        wait_for(lambda: (fleet.hot.head() or (0, ""))[0] > head_at_kill[0], 60, "a scan after the last kill",
                 poll_s=0.05)
        recovery = time.monotonic() - killed_at
        halt()
        halt = None
        fleet.rpc.call("evm_mine")
        pairs = [p for p in fleet.dep.pools if p["kind"] == "v2"]

        def converged() -> bool:
            fleet.scan_once()  # for the blocks since the last
            head = fleet.hot.head()
            return head is not None and head[0] == fleet.rpc.block_number()

        wait_for(converged, 60, "the hot state at the chain's head", poll_s=0.5)
        chain = read_v2_reserves(fleet.rpc, [p["address"] for p in pairs])
        held = fleet.hot.get_pools([p["address"] for p in pairs])
        wrong = {a: (chain[a], (held[a.lower()].reserve0, held[a.lower()].reserve1)) for a in chain
                 if a.lower() not in held or (held[a.lower()].reserve0, held[a.lower()].reserve1) != chain[a]}
        SUMMARY.append({"fault": "SIGKILL scan pool process x3, each mid-scan", "load held": f"{RATE:.0f} scans/s",
                        "recovery s": f"{recovery:.1f}", "lost": len(wrong), "duplicated": "-"})
        assert not wrong, wrong
        assert recovery <= 10, f"scans resumed {recovery:.1f} s after the last kill"
    finally:
        if halt is not None:
            halt()
        fleet.set_rpc(fleet.anvil.url)
        proxy.stop()
