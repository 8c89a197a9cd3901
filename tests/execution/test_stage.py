"""The execute stage's loop (``arbbot.execution.stage``) with the database journal
(``webapp.core.services.DbJournal``) and a live-mode runner on a real anvil.

The executor is a stand-in: raw EVM code (set with ``anvil_setCode``) that answers every
call with a fixed profit and logs ``Executed(token, amountIn, profit)`` as ArbExecutor
does, so re-validation passes and the receipt carries a realised profit; what is under
test is the loop and its journal, not the contract (tests/execution/test_executor_contract.py).
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from typing import Iterator

import pytest
from eth_account import Account

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import LocalSigner
from arbbot.devnet.anvil import start_anvil
from arbbot.execution import stage
from arbbot.execution.runner import ExecutionRunner, Pending
from arbbot.hotstate import HotState
from arbbot.types import Opportunity, ScoredOpportunity, V2PoolState
from tests.execution.executor_helpers import stand_in_executor

pytestmark = pytest.mark.django_db

WETH, USDC = "0x" + "e0" * 20, "0x" + "c0" * 20
EXECUTOR = "0x" + "ee" * 20
PROFIT = 3 * 10**15
POOLS = ["0x" + f"{i:02x}" * 20 for i in range(1, 7)]


@pytest.fixture(scope="module")
def node() -> Iterator[RpcClient]:
    anvil = start_anvil()
    rpc = anvil.rpc()
    rpc.call("anvil_setCode", [EXECUTOR, stand_in_executor(PROFIT)])
    yield rpc
    anvil.stop()


@pytest.fixture
def signer(node: RpcClient) -> LocalSigner:
    key = "0x" + secrets.token_hex(32)
    address = Account.from_key(key).address
    node.call("anvil_setBalance", [address, hex(10**20)])
    return LocalSigner(node, key)


@pytest.fixture
def runner(node: RpcClient, signer: LocalSigner, hot: HotState) -> ExecutionRunner:
    hot.put_pools(
        [V2PoolState(p, USDC, WETH, 10**24, 10**21, 3000, 7) for p in POOLS], 7, "0x" + "07" * 32
    )
    return ExecutionRunner(
        rpc=node,
        executor=EXECUTOR,
        mode="live",
        pools=hot.get_pools,
        signer=signer,
        kill_switch=hot.fleet.kill_switch_engaged,
        is_orphaned=hot.is_orphaned,
        nonce_lock=lambda: hot.nonce_lock(signer.address),
        receipt_timeout_s=20.0,
    )


def scored(path_id: str, pools: tuple[str, str], *, chain_id: int = 31337, block_number: int = 7) -> ScoredOpportunity:
    return ScoredOpportunity(
        opportunity=Opportunity(
            chain_id=chain_id, block_number=block_number, block_hash="0x" + "07" * 32, path_id=path_id,
            pools=pools, tokens=(WETH, USDC, WETH), amount_in=10**18, amount_out=10**18 + 4 * 10**15,
            gas_estimate=200_000, gas_price_wei=10**9, gas_cost=2 * 10**14,
        ),
        score=1.0,
        decision="execute",
    )


def sent_count(node: RpcClient, signer: LocalSigner) -> int:
    return int(node.call("eth_getTransactionCount", [signer.address, "pending"]), 16)


def test_a_batch_is_sent_together_and_a_second_delivery_claims_and_sends_nothing(
    node: RpcClient, signer: LocalSigner, runner: ExecutionRunner
) -> None:
    from webapp.core.models import Execution
    from webapp.core.services import DbJournal

    batch = [scored("cycle-a", (POOLS[0], POOLS[1])), scored("cycle-b", (POOLS[2], POOLS[3]))]
    # Blocks are mined only once both transactions wait in the pool: were each one settled
    # before the next was sent, the first receipt would never come.
    node.call("evm_setAutomine", [False])
    stop = threading.Event()

    def mine_when_both_wait() -> None:
        while not stop.is_set():
            if int(node.call("txpool_status")["pending"], 16) >= 2:
                node.call("evm_mine")
                return
            time.sleep(0.05)

    miner = threading.Thread(target=mine_when_both_wait)
    miner.start()
    try:
        results = stage.execute(batch, {31337: runner}.__getitem__, DbJournal())
    finally:
        stop.set()
        miner.join()
        node.call("evm_setAutomine", [True])

    assert [(r.path_id, r.status, r.realised_profit) for r in results] == [
        ("cycle-a", "success", PROFIT), ("cycle-b", "success", PROFIT),
    ]
    assert results[0].mined_block == results[1].mined_block and results[0].tx_hash != results[1].tx_hash
    rows = {e.path_id: e for e in Execution.objects.all()}
    assert {p: (e.status, e.tx_hash, int(e.realised_profit)) for p, e in rows.items()} == {
        r.path_id: ("success", r.tx_hash, PROFIT) for r in results
    }
    assert sent_count(node, signer) == 2

    again = stage.execute(batch, {31337: runner}.__getitem__, DbJournal())
    assert again == []
    assert sent_count(node, signer) == 2
    assert {e.path_id: (e.status, e.tx_hash) for e in Execution.objects.all()} == {
        p: (e.status, e.tx_hash) for p, e in rows.items()
    }


def test_one_failing_item_is_recorded_failed_and_the_batch_goes_on(
    node: RpcClient, signer: LocalSigner, runner: ExecutionRunner
) -> None:
    from webapp.core.models import Execution
    from webapp.core.services import DbJournal

    batch = [
        scored("cycle-a", (POOLS[0], POOLS[1])),
        scored("elsewhere", (POOLS[2], POOLS[3]), chain_id=5),  # no runner for chain 5: raises
        scored("cycle-c", (POOLS[4], POOLS[5])),
    ]
    results = stage.execute(batch, {31337: runner}.__getitem__, DbJournal())
    assert [(r.path_id, r.status) for r in results] == [
        ("cycle-a", "success"), ("elsewhere", "failed"), ("cycle-c", "success"),
    ]
    failed = Execution.objects.get(chain_id=5)
    assert (failed.status, failed.reason, failed.tx_hash) == ("failed", "KeyError: 5", "")
    assert int(failed.predicted_profit) == 4 * 10**15 and failed.profit_token == WETH
    assert sent_count(node, signer) == 2


def test_reconcile_finishes_what_a_dead_worker_left_pending(
    node: RpcClient, signer: LocalSigner, runner: ExecutionRunner
) -> None:
    from django.utils import timezone

    from webapp.core.models import Execution
    from webapp.core.services import DbJournal

    journal = DbJournal()
    never_sent, sent, fresh = scored("never-sent", (POOLS[0], POOLS[1])), scored("sent", (POOLS[2], POOLS[3])), \
        scored("fresh", (POOLS[4], POOLS[5]))
    for s in (never_sent, sent, fresh):
        assert journal.claim(s)
    # The worker that claimed "sent" got its transaction out, then died before the receipt.
    pending = runner.submit(sent)
    assert isinstance(pending, Pending)
    journal.sent(pending)
    Execution.objects.exclude(path_id="fresh").update(created_at=timezone.now() - dt.timedelta(minutes=10))

    results = stage.reconcile({31337: runner}.__getitem__, journal, older_than_s=120.0)

    assert sorted((r.path_id, r.status) for r in results) == [("never-sent", "failed"), ("sent", "success")]
    rows = {e.path_id: e for e in Execution.objects.all()}
    assert (rows["never-sent"].status, rows["never-sent"].reason, rows["never-sent"].tx_hash) == (
        "failed", "worker stopped before sending; nothing was sent", "",
    )
    assert (rows["sent"].status, rows["sent"].tx_hash, int(rows["sent"].realised_profit)) == (
        "success", pending.tx_hash, PROFIT,
    )
    assert rows["sent"].reason == "reconciled from receipt"
    assert rows["fresh"].status == "pending"  # younger than the cutoff: its worker may be alive
    assert stage.reconcile({31337: runner}.__getitem__, journal, older_than_s=120.0) == []
