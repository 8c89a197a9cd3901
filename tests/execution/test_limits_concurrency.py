"""Risk limits that hold under concurrency: 8 execute-worker processes (each its own
RpcClient, Redis connection, HotState, runner) share one key on anvil, blocks mined on a
timer so sent transactions stay in flight for a while.

- the daily loss limit, with the worst-case gas of open transactions reserved under the
  nonce lock, is never exceeded: the account's spending stays within the limit;
- the kill switch, engaged while they send, stops every send within one second.

The executor is a stand-in that answers every call with a profit and keeps it (the key's
account only pays gas), so the account's ETH balance is exactly its loss.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import secrets
import threading
import time
from typing import Any, Iterator

import pytest
import redis
from eth_account import Account

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import LocalSigner
from arbbot.devnet.anvil import start_anvil
from arbbot.execution.fees import FeePolicy
from arbbot.execution.nonces import NonceManager
from arbbot.execution.runner import ExecutionRunner, Pending, RiskLimits
from arbbot.hotstate import HotState
from arbbot.types import Opportunity, ScoredOpportunity
from tests.execution.executor_helpers import stand_in_executor, two_price_pools
from tests.execution.test_runner import CANONICAL, EXECUTOR, PROFIT, USDC, WETH

GWEI = 10**9
PROCESSES = 8
POOLS = ["0x" + f"{i:02x}" * 20 for i in range(0x21, 0x29)]
TIP = 10 * GWEI  # every send pays at least this per gas: its cost is well above rounding
LOSS_LIMIT = 10**16


@pytest.fixture(scope="module")
def node() -> Iterator[str]:
    with start_anvil() as anvil:
        anvil.rpc().call("anvil_setCode", [EXECUTOR, stand_in_executor(PROFIT)])
        yield anvil.url


def balance(rpc: RpcClient, address: str) -> int:
    return int(rpc.call("eth_getBalance", [address, "latest"]), 16)


def scored(n: int) -> ScoredOpportunity:
    return ScoredOpportunity(
        opportunity=Opportunity(
            chain_id=31337, block_number=7, block_hash=CANONICAL, path_id=f"c-{n}", pools=(POOLS[2 * (n % 4)],
            POOLS[2 * (n % 4) + 1]), tokens=(WETH, USDC, WETH), amount_in=10**18, amount_out=10**18 + PROFIT,
            gas_estimate=200_000, gas_price_wei=GWEI, gas_cost=0,
        ),
        score=1.0,
        decision="execute",
    )


def _worker(
    url: str, redis_url: str, prefix: str, key: str, start_balance: int, seconds: float, settle: bool,
    loss_limit: int | None, out: Any,
) -> None:
    until = time.time() + seconds  # from this process's start: spawning 8 takes seconds
    rpc = RpcClient(url, timeout_s=10.0)
    hot = HotState(redis.Redis.from_url(redis_url), prefix, 31337)
    signer = LocalSigner(rpc, key, chain_id=31337)
    runner = ExecutionRunner(
        rpc=rpc, executor=EXECUTOR, mode="live", pools=hot.get_pools, signer=signer,
        kill_switch=hot.fleet.kill_switch_engaged, is_orphaned=hot.is_orphaned,
        nonces=NonceManager(hot, rpc, signer.address), native_token=WETH, hot=hot,
        limits=RiskLimits(daily_loss_limit_wei=loss_limit),
        daily_pnl_wei=lambda: balance(rpc, signer.address) - start_balance,
        fee_policy=FeePolicy(min_priority_fee_wei=TIP), receipt_timeout_s=30.0,
        modelled_gas=None,  # the stand-in spends a few thousand gas, not the ArbExecutor's model: the node estimates
    )
    log: list[tuple[float, str, str]] = []  # (time the outcome was known, status, reason)
    in_flight: list[Pending] = []
    n = 0

    def settle_mined(wait: bool) -> None:
        for p in list(in_flight):
            if wait or rpc.call("eth_getTransactionReceipt", [p.tx_hash]) is not None:
                result = runner.settle(p)
                in_flight.remove(p)
                log.append((time.time(), result.status, result.reason))

    while time.time() < until:
        n += 1
        try:
            outcome = runner.submit(scored(n))
            if isinstance(outcome, Pending):
                log.append((time.time(), "sent", outcome.tx_hash))
                in_flight.append(outcome)
            else:
                log.append((time.time(), outcome.status, outcome.reason))
            if settle:
                settle_mined(wait=False)
        except Exception as exc:
            log.append((time.time(), "error", f"{type(exc).__name__}: {exc}"))
        time.sleep(0.05 if log[-1][1] == "dropped" else 0.01)
    if settle:
        settle_mined(wait=True)
    out.put(log)


class Fleet:
    """The parent side: a funded key, the pools in Redis, a miner thread, the processes."""

    def __init__(self, url: str, hot: HotState) -> None:
        self.url, self.hot, self.rpc = url, hot, RpcClient(url)
        self.key = "0x" + secrets.token_hex(32)
        self.address = Account.from_key(self.key).address.lower()
        self.rpc.call("anvil_setBalance", [self.address, hex(10**20)])
        self.start_balance = balance(self.rpc, self.address)
        hot.put_pools(two_price_pools(POOLS, USDC, WETH), 7, CANONICAL)
        self.stop = threading.Event()

    def _mine(self, every_s: float) -> None:
        while not self.stop.wait(every_s):
            self.rpc.call("evm_mine")

    def run(
        self, seconds: float, *, mine_every_s: float = 1.0, settle: bool = True, loss_limit: int | None = LOSS_LIMIT,
        during: Any = None,
    ) -> list[list[tuple[float, str, str]]]:
        """Every worker submits for ``seconds`` without waiting for receipts (and settles
        what was mined meanwhile, unless not ``settle``); a block is mined every
        ``mine_every_s`` (0: automine), so many sends share a block."""
        miner = threading.Thread(target=self._mine, args=(mine_every_s,))
        if mine_every_s:
            self.rpc.call("evm_setAutomine", [False])
            miner.start()
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        redis_url = os.environ.get("ARBBOT_REDIS_URL", "redis://127.0.0.1:6379/0")
        procs = [ctx.Process(target=_worker, args=(self.url, redis_url, self.hot.prefix, self.key,
                                                   self.start_balance, seconds, settle, loss_limit, out))
                 for _ in range(PROCESSES)]
        try:
            for p in procs:
                p.start()
            if during:
                during()
            logs = [out.get(timeout=seconds + 180) for _ in procs]
            for p in procs:
                p.join(timeout=30)
        finally:
            self.stop.set()
            if miner.is_alive():
                miner.join()
            self.rpc.call("evm_mine")
            self.rpc.call("evm_setAutomine", [True])
        return logs

    def sent(self) -> int:
        return int(self.rpc.call("eth_getTransactionCount", [self.address, "pending"]), 16)


def test_the_daily_loss_limit_is_never_exceeded_by_8_concurrent_workers(node: str, hot: HotState) -> None:
    fleet = Fleet(node, hot)
    logs = fleet.run(seconds=15, mine_every_s=2.0)
    events = [e for log in logs for e in log]
    assert [e for e in events if e[1] in ("error", "failed", "reverted")] == []
    successes = [e for e in events if e[1] == "success"]
    refusals = [e for e in events if e[1] == "dropped"]
    # besides the limit, a cycle is refused while our last trade through its pools is unmined
    assert any(r[2].startswith("daily loss limit") for r in refusals)
    assert all(r[2].startswith("daily loss limit") or " is in flight: " in r[2] for r in refusals), {
        r[2][:100] for r in refusals if not r[2].startswith("daily loss limit")
    }
    spent = fleet.start_balance - balance(fleet.rpc, fleet.address)
    assert fleet.sent() == len(successes)
    assert 0 < spent <= LOSS_LIMIT
    assert spent > LOSS_LIMIT // 2, (spent, len(successes))  # the limit was used, not refused at once


def test_the_kill_switch_stops_every_send_within_a_second(node: str, hot: HotState) -> None:
    fleet = Fleet(node, hot)
    engaged: dict[str, Any] = {}

    def engage_under_load() -> None:
        deadline = time.monotonic() + 60
        while fleet.sent() < 20 and time.monotonic() < deadline:  # wait until they are sending
            time.sleep(0.05)
        time.sleep(1.0)
        engaged["at"] = time.time()
        hot.fleet.set_kill_switch(True)
        engaged["count"] = fleet.sent()

    try:
        # no settling and automine: each worker is back at the lock at once, so at any moment
        # most of them wait there past their first kill switch check
        logs = fleet.run(seconds=10, mine_every_s=0, settle=False, loss_limit=None, during=engage_under_load)
    finally:
        hot.fleet.set_kill_switch(False)
    t0 = engaged["at"]
    sends_after = [e for log in logs for e in log if e[1] == "sent" and e[0] > t0 + 1.0]
    assert sends_after == []
    # at most the one send whose holder was past its check when the switch was engaged
    assert fleet.sent() <= engaged["count"] + 1
    stopped = [e for log in logs for e in log if e[1] == "dropped" and e[2] == "kill switch engaged"]
    assert len(stopped) >= PROCESSES  # every worker was refused
    assert [e for log in logs for e in log if e[1] in ("error", "failed")] == []
