"""The runner's risk checks, in their documented order: orphaned block, kill switch,
decision, daily loss limit (live only), input cap, signing key. Each drop gives its
documented status and reason, and none of them reaches the node: the runner talks to a
real RpcClient on a closed port, so any request would raise, and the client's own request
counter stays at zero. The orphan and kill switch checks read the real hot state."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator, Mapping

import pytest
from prometheus_client import REGISTRY

from arbbot.chain.rpc import RpcClient, endpoint_label
from arbbot.chain.tx import LocalSigner
from arbbot.devnet.anvil import free_port
from arbbot.errors import RpcError
from arbbot.execution.runner import ExecutionRunner, RiskLimits
from arbbot.hotstate import HotState
from arbbot.types import ExecutionResult, Opportunity, PoolState, ScoredOpportunity, V2PoolState

WETH, USDC = "0x" + "e0" * 20, "0x" + "c0" * 20
P1, P2 = "0x" + "01" * 20, "0x" + "02" * 20
EXECUTOR = "0x" + "ee" * 20
ORPHAN, CANONICAL = "0x" + "0a" * 32, "0x" + "0b" * 32
CAP = 10**18
LOSS_LIMIT = 10**17
KEY = "0x" + "42" * 32


def rpc_requests(rpc: RpcClient) -> float:
    """Requests the client made (attempted) to its endpoint, all methods."""
    label = endpoint_label(rpc.url)
    return sum(
        s.value
        for m in REGISTRY.collect()
        if m.name == "arbbot_rpc_requests"
        for s in m.samples
        if s.name == "arbbot_rpc_requests_total" and s.labels.get("endpoint") == label
    )


class Risky:
    """Everything a risk check reads, each set so that it trips."""

    def __init__(self, hot: HotState) -> None:
        self.hot = hot
        self.pnl_wei = -LOSS_LIMIT
        self.pool_reads: list[list[str]] = []
        hot.put_pools([], 8, CANONICAL, orphaned=[ORPHAN])
        hot.fleet.set_kill_switch(True)
        self.scored = ScoredOpportunity(
            opportunity=Opportunity(
                chain_id=31337, block_number=7, block_hash=ORPHAN, path_id="cycle-1", pools=(P1, P2),
                tokens=(WETH, USDC, WETH), amount_in=CAP + 1, amount_out=CAP + 10**16,
                gas_estimate=200_000, gas_price_wei=10**9, gas_cost=2 * 10**14,
            ),
            score=0.2,
            decision="skip",
            reason="score below the margin",
        )

    def pools(self, addresses: list[str]) -> Mapping[str, PoolState]:
        self.pool_reads.append(addresses)
        return {
            P1: V2PoolState(P1, USDC, WETH, 10**24, 10**21, 3000, 7),
            P2: V2PoolState(P2, USDC, WETH, 10**24, 10**21, 3000, 7),
        }

    def runner(self, rpc: RpcClient, mode: str = "live", signer: LocalSigner | None = None) -> ExecutionRunner:
        return ExecutionRunner(
            rpc=rpc,
            executor=EXECUTOR,
            mode=mode,
            pools=self.pools,
            signer=signer,
            limits=RiskLimits(default_max_amount_in=CAP, daily_loss_limit_wei=LOSS_LIMIT),
            kill_switch=self.hot.fleet.kill_switch_engaged,
            is_orphaned=self.hot.is_orphaned,
            daily_pnl_wei=lambda: self.pnl_wei,
        )

    def opportunity(self, **changes: Any) -> None:
        self.scored = dataclasses.replace(
            self.scored, opportunity=dataclasses.replace(self.scored.opportunity, **changes)
        )


@pytest.fixture
def closed_rpc() -> RpcClient:
    return RpcClient(f"http://127.0.0.1:{free_port()}", timeout_s=2.0, retries=0)


@pytest.fixture
def risky(hot: HotState) -> Iterator[Risky]:
    r = Risky(hot)
    yield r
    hot.fleet.set_kill_switch(False)


def test_each_risk_check_beats_the_next_and_none_reaches_the_node(risky: Risky, closed_rpc: RpcClient) -> None:
    runner = risky.runner(closed_rpc)

    def outcome() -> tuple[str, str]:
        result = runner.submit(risky.scored)
        assert isinstance(result, ExecutionResult)
        return result.status, result.reason

    assert outcome() == ("dropped", "computed on an orphaned block (reorg)")
    risky.opportunity(block_hash=CANONICAL)
    assert outcome() == ("dropped", "kill switch engaged")
    risky.hot.fleet.set_kill_switch(False)
    assert outcome() == ("dropped", "decision was skip: score below the margin")
    risky.scored = dataclasses.replace(risky.scored, decision="execute", reason="")
    assert outcome() == (
        "dropped",
        f"daily loss limit reached: PnL today {-LOSS_LIMIT} wei, limit -{LOSS_LIMIT} wei",
    )
    risky.pnl_wei = -LOSS_LIMIT + 1
    assert outcome() == ("dropped", f"amount_in {CAP + 1} above the risk cap {CAP}")
    risky.opportunity(amount_in=CAP)
    assert outcome() == ("failed", "live mode without a signing key")

    assert risky.pool_reads == [] and rpc_requests(closed_rpc) == 0
    # With a key every check passes: re-validation reads the pools and asks the node,
    # which here is not there. The drops above were the risk checks' doing alone.
    signed = risky.runner(closed_rpc, signer=LocalSigner(closed_rpc, KEY, chain_id=31337))
    with pytest.raises(RpcError):
        signed.submit(risky.scored)
    assert risky.pool_reads == [[P1, P2]] and rpc_requests(closed_rpc) > 0


def test_the_daily_loss_limit_binds_live_trading_only(risky: Risky, closed_rpc: RpcClient) -> None:
    risky.hot.fleet.set_kill_switch(False)
    risky.opportunity(block_hash=CANONICAL)
    risky.scored = dataclasses.replace(risky.scored, decision="execute", reason="")
    for mode in ("paper", "dry-run"):
        result = risky.runner(closed_rpc, mode=mode).submit(risky.scored)
        assert isinstance(result, ExecutionResult)
        assert (result.status, result.reason) == ("dropped", f"amount_in {CAP + 1} above the risk cap {CAP}")
    assert rpc_requests(closed_rpc) == 0

