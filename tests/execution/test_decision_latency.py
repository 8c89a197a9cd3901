"""The latency from a block's arrival to the execute stage's decision: stamped on each result
(``arbbot.execution.stage``), kept on the execution row (a sent one's too, and through its
follow to the final outcome), counted in ``arbbot_block_to_decision_seconds`` by the execute
task, and read back as percentiles (``selectors.latency_percentiles``) for the demo's
progress line and the dashboard. Real anvil (a stand-in executor, as in test_stage),
Redis and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import secrets
import time

import pytest
from eth_account import Account
from prometheus_client import REGISTRY

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import LocalSigner
from arbbot.execution import stage
from arbbot.execution.follow import FollowPolicy, follow
from arbbot.execution.nonces import NonceManager
from arbbot.execution.runner import ExecutionRunner
from arbbot.hotstate import HotState
from arbbot.types import ScoredOpportunity
from tests.execution.executor_helpers import (
    STAND_IN_EXECUTOR as EXECUTOR,
    STAND_IN_PROFIT as PROFIT,
    STAND_IN_USDC as USDC,
    STAND_IN_WETH as WETH,
    stand_in_scored,
    two_price_pools,
)

pytestmark = pytest.mark.django_db

POOLS = ["0x" + f"{i:02x}" * 20 for i in range(1, 5)]


@pytest.fixture(scope="module")
def node(stand_in_node: RpcClient) -> RpcClient:
    return stand_in_node


@pytest.fixture
def runner(node: RpcClient, hot: HotState) -> ExecutionRunner:
    key = "0x" + secrets.token_hex(32)
    node.call("anvil_setBalance", [Account.from_key(key).address, hex(10**20)])
    signer = LocalSigner(node, key)
    hot.put_pools(two_price_pools(POOLS, USDC, WETH), 7, "0x" + "07" * 32)
    return ExecutionRunner(
        rpc=node, executor=EXECUTOR, mode="live", pools=hot.get_pools, signer=signer,
        kill_switch=hot.fleet.kill_switch_engaged, is_orphaned=hot.is_orphaned,
        nonces=NonceManager(hot, node, signer.address), chain_id=31337,
    )


def scored(path_id: str, pools: tuple[str, str], observed_at: float, decision: str = "execute",
           chain_id: int = 31337) -> ScoredOpportunity:
    return stand_in_scored(path_id, pools, observed_at=observed_at, decision=decision, chain_id=chain_id)


def test_each_decision_carries_its_latency_from_the_blocks_arrival_to_the_row(runner: ExecutionRunner) -> None:
    from webapp.core.models import Execution
    from webapp.core.services import DbJournal

    arrived = time.time() - 0.040  # the block arrived 40 ms ago
    batch = [
        scored("sent", (POOLS[0], POOLS[1]), arrived),
        scored("skipped", (POOLS[2], POOLS[3]), arrived, decision="skip"),
        scored("unstamped", (POOLS[2], POOLS[3]), 0.0, decision="skip"),  # arrival unknown
    ]
    before = time.time()
    results = stage.execute(batch, {31337: runner}.__getitem__, DbJournal())
    after = time.time()

    by_path = {r.path_id: r for r in results}
    assert {p: r.status for p, r in by_path.items()} == {"sent": "sent", "skipped": "dropped", "unstamped": "dropped"}
    for path_id in ("sent", "skipped"):
        extra = by_path[path_id].extra
        assert before <= extra["decided_at"] <= after
        assert extra["decision_latency_s"] == pytest.approx(extra["decided_at"] - arrived, abs=1e-9)
        assert 0.040 <= extra["decision_latency_s"] < 0.040 + (after - before) + 1e-3
    # a refusal is decided at its check, a send once it left (after the batch's checks)
    assert by_path["skipped"].extra["decided_at"] < by_path["sent"].extra["decided_at"]
    assert by_path["unstamped"].extra["decision_latency_s"] is None

    rows = {e.path_id: e for e in Execution.objects.all()}
    for path_id in ("sent", "skipped"):
        assert rows[path_id].decision_latency_ms == pytest.approx(by_path[path_id].extra["decision_latency_s"] * 1000)
    assert rows["unstamped"].decision_latency_ms is None

    # The sent one's outcome, recorded by a follow pass later, keeps its decision latency.
    for _ in range(10):
        runner.rpc.call("evm_mine")
        follow(runner, DbJournal(), FollowPolicy(confirmations=1))
        if Execution.objects.get(path_id="sent").status == "success":
            break
    final = Execution.objects.get(path_id="sent")
    assert final.status == "success" and int(final.realised_profit) == PROFIT
    assert final.decision_latency_ms == pytest.approx(by_path["sent"].extra["decision_latency_s"] * 1000)


def test_percentiles_of_this_window_only() -> None:
    from django.utils import timezone

    from webapp.core import selectors
    from webapp.core.models import Execution, Opportunity

    now = timezone.now()
    old = now - dt.timedelta(hours=2)
    Execution.objects.bulk_create(
        [Execution(created_at=now, chain_id=1, block_number=i, path_id="p", status="dropped",
                   decision_latency_ms=float(i)) for i in range(1, 101)]
        + [Execution(created_at=now, chain_id=1, block_number=500, path_id="p", status="dropped")]  # unmeasured
        + [Execution(created_at=old, chain_id=1, block_number=1000 + i, path_id="p", status="dropped",
                     decision_latency_ms=10_000.0) for i in range(50)]  # before the window
    )
    Opportunity.objects.bulk_create(
        [Opportunity(created_at=now, chain_id=1, block_number=i, block_hash="0x", path_id="p", pools=[], tokens=[],
                     profit_token=WETH, amount_in=0, amount_out=0, gas_cost=0, net_profit=0, score=1.0,
                     decision="skip", latency_ms=float(10 * i)) for i in range(1, 11)]
    )

    figures = selectors.latency_percentiles(since=now - dt.timedelta(minutes=1))
    # percentile_cont interpolates: over 1..100, p50 = 50.5, p95 = 95.05, p99 = 99.01
    assert figures["block_to_decision_ms"] == {"n": 100, "p50": 50.5, "p95": 95.05, "p99": 99.01}
    assert figures["block_to_recorded_ms"] == {"n": 10, "p50": 55.0, "p95": 95.5, "p99": 99.1}
    assert selectors.latency_percentiles(since=now + dt.timedelta(minutes=1))["block_to_decision_ms"] == {
        "n": 0, "p50": None, "p95": None, "p99": None,
    }
    summary = selectors.dashboard_summary(limit=0, since=now - dt.timedelta(minutes=1))
    assert summary["latency"] == figures
    # Without ``since``: the last hour, so the two-hour-old rows stay out.
    assert selectors.dashboard_summary(limit=0)["latency"]["block_to_decision_ms"]["p99"] == 99.01


def test_the_execute_task_counts_each_decision_in_the_histogram(node: RpcClient) -> None:
    """The task as a worker runs it (its runner built from the chain's row): a skipped
    opportunity is decided without touching the node, and observed per chain."""
    from webapp.core.models import Chain
    from workers import runtime
    from workers.tasks import execute

    chain_id = 920001
    Chain.objects.create(chain_id=chain_id, name="latency", rpc_urls=node.url, executor=EXECUTOR, weth=WETH,
                         mode="dry-run")

    def observed() -> tuple[float, float]:
        labels = {"chain": str(chain_id)}
        count = REGISTRY.get_sample_value("arbbot_block_to_decision_seconds_count", labels) or 0.0
        total = REGISTRY.get_sample_value("arbbot_block_to_decision_seconds_sum", labels) or 0.0
        return count, total

    count0, sum0 = observed()
    runtime.reset()
    try:
        runtime.runner(chain_id)  # built (and its sizing code loaded) before the block "arrives"
        arrived = time.time() - 0.25
        batch = [scored(f"task-{i}", (POOLS[0], POOLS[1]), arrived, decision="skip", chain_id=chain_id).to_wire()
                 for i in range(3)]
        batch.append(scored("task-unstamped", (POOLS[0], POOLS[1]), 0.0, decision="skip", chain_id=chain_id).to_wire())
        assert execute.execute(batch) == 4
    finally:
        runtime.reset()
    count, total = observed()
    assert count - count0 == 3  # the unstamped one is not a latency
    assert 3 * 0.25 <= total - sum0 < 3 * (0.25 + 2.0)
