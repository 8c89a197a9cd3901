"""The private route wired end to end: a live runner signs, the journal records, the
trade goes as a bundle to the project's own relay process (the Flashbots wire format) in
front of a real anvil, and the follow passes settle it or, when no block took it, drop it
with nothing paid and its nonce free again."""

from __future__ import annotations

from typing import Iterator

import pytest
from eth_account import Account

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import LocalSigner
from arbbot.devnet.anvil import start_anvil
from arbbot.execution import stage
from arbbot.execution.follow import FollowPolicy, follow
from arbbot.execution.nonces import NonceManager
from arbbot.execution.relay import RelayClient
from arbbot.execution.runner import ExecutionRunner
from arbbot.execution.submit import PrivateSubmitter
from arbbot.hotstate import HotState
from tests.devnet.relay_proc import RelayProc, start_relay
from tests.execution.executor_helpers import stand_in_executor
from tests.execution.test_stage import EXECUTOR, POOLS, PROFIT, cycle_pools, scored

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_journal() -> None:
    from webapp.core.models import Execution, Transaction

    Transaction.objects.all().delete()
    Execution.objects.all().delete()


@pytest.fixture
def relayed(hot: HotState) -> Iterator[tuple[RpcClient, RelayProc, RelayClient, ExecutionRunner]]:
    anvil = start_anvil()
    proc = None
    try:
        rpc = RpcClient(anvil.url, timeout_s=10)
        rpc.call("anvil_setCode", [EXECUTOR, stand_in_executor(PROFIT)])
        key = "0x" + bytes(Account.create().key).hex()
        rpc.call("anvil_setBalance", [Account.from_key(key).address, hex(10**20)])
        proc = start_relay(anvil.url, block_time_s=0.3)
        relay = RelayClient(proc.url, "0x" + bytes(Account.create().key).hex())
        signer = LocalSigner(rpc, key)
        hot.put_pools(cycle_pools(), 7, "0x" + "07" * 32)
        runner = ExecutionRunner(
            rpc=rpc, executor=EXECUTOR, mode="live", pools=hot.get_pools, signer=signer,
            nonces=NonceManager(hot, rpc, signer.address), submitter=PrivateSubmitter(rpc, [relay], max_blocks=4),
        )
        yield rpc, proc, relay, runner
    finally:
        if proc is not None:
            proc.stop()
        anvil.stop()


def follow_until(runner: ExecutionRunner, path_id: str, status: str, timeout_blocks: int = 40) -> None:
    from webapp.core.models import Execution
    from webapp.core.services import DbJournal

    start = runner.rpc.block_number()
    while runner.rpc.block_number() < start + timeout_blocks:
        follow(runner, DbJournal(), FollowPolicy(confirmations=1))
        if Execution.objects.get(path_id=path_id).status == status:
            return
        runner.rpc.call("eth_blockNumber")  # the relay mines every 0.3 s; each pass reads anew
    raise AssertionError(f"{path_id} not {status}: {Execution.objects.get(path_id=path_id).status}")


def test_a_trade_on_the_private_route_lands_through_the_relay_and_is_settled(relayed) -> None:  # type: ignore[no-untyped-def]
    from webapp.core.models import Execution, Transaction
    from webapp.core.services import DbJournal

    rpc, proc, _, runner = relayed
    [result] = stage.execute([scored("cycle-a", (POOLS[0], POOLS[1]))], {31337: runner}.__getitem__, DbJournal())
    assert result.status == "sent"
    tx = Transaction.objects.get()
    assert tx.route == "private" and tx.submission["route"] == "private" and tx.submission["bundle_hash"]
    # A bundle is not in any mempool: the node does not know it before it is mined.
    assert rpc.call("txpool_content")["pending"] == {}
    assert proc.wait_for("bundle")  # the relay took it
    follow_until(runner, "cycle-a", "success")
    e = Execution.objects.get()
    assert (e.tx_hash, int(e.realised_profit), e.mode) == (tx.tx_hash, PROFIT, "live")


def test_a_bundle_no_block_takes_is_dropped_nothing_paid_and_its_nonce_reused(relayed) -> None:  # type: ignore[no-untyped-def]
    from webapp.core.models import Execution, Transaction
    from webapp.core.services import DbJournal

    rpc, _, relay, runner = relayed
    relay.request("devrelay_pause", [True])
    head = rpc.block_number()
    relay.request("devrelay_missBlocks", [[hex(b) for b in range(head + 1, head + 10)]])
    stage.execute([scored("cycle-a", (POOLS[0], POOLS[1]))], {31337: runner}.__getitem__, DbJournal())
    relay.request("devrelay_pause", [False])
    follow_until(runner, "cycle-a", "dropped")
    e = Execution.objects.get()
    assert "not included in blocks" in e.reason and e.gas_used == 0
    first = Transaction.objects.get()
    assert first.state == "dropped"
    signer = runner.signer
    assert signer is not None
    assert int(rpc.call("eth_getTransactionCount", [signer.address, "latest"]), 16) == 0
    # The next trade takes the same nonce: no gap behind a bundle that never landed.
    while rpc.block_number() < head + 10:
        rpc.call("eth_blockNumber")
    stage.execute([scored("cycle-b", (POOLS[2], POOLS[3]))], {31337: runner}.__getitem__, DbJournal())
    assert Transaction.objects.get(path_id="cycle-b").nonce == first.nonce
    follow_until(runner, "cycle-b", "success")
