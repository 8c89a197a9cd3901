"""Live needs the mode set, a signing key and the chain's executor (``arbbot.execution.modes``):
without the key or the executor the runner drops every opportunity with a reason naming
what is missing and never reaches the node; the execute worker says so at start, per chain
(a real Celery worker process on the real broker and database)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from arbbot.chain.rpc import RpcClient, endpoint_label
from arbbot.chain.tx import LocalSigner
from arbbot.devnet.anvil import free_port
from arbbot.execution.modes import KEY_SOURCES, ZERO_ADDRESS, live_missing
from arbbot.execution.runner import ExecutionRunner
from arbbot.hotstate import HotState
from arbbot.types import ExecutionResult, Opportunity, ScoredOpportunity
from tests.execution.executor_helpers import two_price_pools
from tests.execution.test_runner import _BEFORE, _requests_total, rpc_requests

ROOT = Path(__file__).resolve().parents[2]
WETH, USDC = "0x" + "e0" * 20, "0x" + "c0" * 20
POOLS = ["0x" + f"{i:02x}" * 20 for i in range(1, 3)]
EXECUTOR = "0x" + "ee" * 20
KEY = "0x" + "42" * 32
NO_KEY = f"no signing key (set {KEY_SOURCES})"


def no_executor(chain_id: int) -> str:
    return f"no executor address on chain {chain_id} (deploy one: manage.py arbbot executor deploy --chain {chain_id})"


@pytest.fixture
def closed_rpc() -> RpcClient:
    """A real client on a closed port: any request would raise, and is counted."""
    rpc = RpcClient(f"http://127.0.0.1:{free_port()}", timeout_s=2.0, retries=0)
    _BEFORE[endpoint_label(rpc.url)] = _requests_total(rpc)
    return rpc


def scored(chain_id: int = 31337) -> ScoredOpportunity:
    return ScoredOpportunity(
        opportunity=Opportunity(
            chain_id=chain_id, block_number=7, block_hash="0x" + "07" * 32, path_id="cycle-1",
            pools=tuple(POOLS), tokens=(WETH, USDC, WETH), amount_in=10**18, amount_out=10**18 + 4 * 10**15,
            gas_estimate=200_000, gas_price_wei=10**9, gas_cost=2 * 10**14,
        ),
        score=1.0,
        decision="execute",
    )


def runner(rpc: RpcClient, hot: HotState, *, executor: str, signer: LocalSigner | None, mode: str = "live") -> ExecutionRunner:
    hot.put_pools(two_price_pools(POOLS, USDC, WETH), 7, "0x" + "07" * 32)
    return ExecutionRunner(
        rpc=rpc, executor=executor, mode=mode, pools=hot.get_pools, signer=signer,
        kill_switch=hot.fleet.kill_switch_engaged, is_orphaned=hot.is_orphaned, hot=hot, chain_id=31337,
    )


@pytest.mark.parametrize(
    ("has_key", "executor", "missing"),
    [
        (False, EXECUTOR, [NO_KEY]),
        (True, "", [no_executor(31337)]),
        (True, ZERO_ADDRESS, [no_executor(31337)]),
        (False, "", [NO_KEY, no_executor(31337)]),
    ],
)
def test_live_without_a_key_or_an_executor_is_dropped_naming_what_is_missing(
    hot: HotState, closed_rpc: RpcClient, has_key: bool, executor: str, missing: list[str]
) -> None:
    signer = LocalSigner(closed_rpc, KEY, chain_id=31337) if has_key else None
    result = runner(closed_rpc, hot, executor=executor, signer=signer).submit(scored())

    assert isinstance(result, ExecutionResult)
    assert result.status == "dropped"
    assert result.reason == "live mode refused, nothing sent: " + "; ".join(missing)
    assert result.extra["mode"] == "live" and result.tx_hash is None
    assert rpc_requests(closed_rpc) == 0  # refused before re-validation: the node was never asked


def test_with_a_key_and_an_executor_live_goes_on_to_the_node(hot: HotState, closed_rpc: RpcClient) -> None:
    from arbbot.errors import RpcError

    live = runner(closed_rpc, hot, executor=EXECUTOR, signer=LocalSigner(closed_rpc, KEY, chain_id=31337))
    with pytest.raises(RpcError):  # re-validation asks the node, which is not there
        live.submit(scored())
    assert rpc_requests(closed_rpc) > 0
    assert live_missing(has_signer=True, executor=EXECUTOR, chain_id=31337) == []


# --------------------------------------------------------------------------- at worker start


@pytest.fixture
def chains(transactional_db: Any) -> Iterator[dict[str, int]]:
    """Committed chains the worker process reads: one live by the fleet's mode with an
    executor, one live by its own setting without an executor, one dry-run, one inactive."""
    from webapp.core.models import Chain

    ids = {"with_executor": 910001, "no_executor": 910002, "dry_run": 910003, "inactive": 910004}
    url = "http://127.0.0.1:1"
    Chain.objects.create(chain_id=ids["with_executor"], name="with-executor", rpc_urls=url, executor=EXECUTOR)
    Chain.objects.create(chain_id=ids["no_executor"], name="no-executor", rpc_urls=url, mode="live")
    Chain.objects.create(chain_id=ids["dry_run"], name="dry", rpc_urls=url, mode="dry-run", executor=EXECUTOR)
    Chain.objects.create(chain_id=ids["inactive"], name="off", rpc_urls=url, is_active=False)
    yield ids
    Chain.objects.filter(chain_id__in=ids.values()).delete()


def test_an_execute_worker_says_at_start_why_live_is_refused(chains: dict[str, int], tmp_path: Path) -> None:
    from django.db import connection

    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBBOT_SIGNER_")}
    env.update(
        ARBBOT_DATABASE_NAME=connection.settings_dict["NAME"],
        ARBBOT_DEVNET_DIR=str(tmp_path / "no-devnet"),  # no devnet key file to fall back on
        ARBBOT_MODE="live",
        ARBBOT_HEARTBEAT_FILE=str(tmp_path / "hb"),
        PYTHONUNBUFFERED="1",
        ARBBOT_LOG_FORMAT="json",
    )
    env.pop("ARBBOT_METRICS_PORT", None)
    log_path = tmp_path / "worker.log"
    celery = str(Path(sys.executable).parent / "celery")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [celery, "-A", "workers.celery_app", "worker", "-Q", "execute", "-n", f"execute-{uuid.uuid4().hex[:6]}@%h",
             "--pool", "prefork", "--concurrency", "1", "-l", "INFO"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        text = _wait_for_log(log_path, proc, "nothing is sent", timeout_s=60)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # one JSON event a line (ARBBOT_LOG_FORMAT=json, arbbot.obs.logs)
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    lines = [(e["level"], e["event"]) for e in events if e["logger"] == "arbbot.execute.mode"]
    by_chain = {cid: [(lv, ev) for lv, ev in lines if f"chain {cid} (" in ev] for cid in chains.values()}

    [(level, with_executor)] = by_chain[chains["with_executor"]]
    assert level == "error" and "live asked (the fleet's ARBBOT_MODE=live) but REFUSED" in with_executor
    assert with_executor.endswith(NO_KEY)
    [(_, no_exec)] = by_chain[chains["no_executor"]]
    assert "live asked (the chain's mode setting 'live') but REFUSED" in no_exec
    assert no_exec.endswith(f"{NO_KEY}; {no_executor(chains['no_executor'])}")
    [(level, dry)] = by_chain[chains["dry_run"]]
    assert level == "info" and "mode dry-run, from the chain's mode setting 'dry-run'; nothing is sent" in dry
    assert by_chain[chains["inactive"]] == []


def _wait_for_log(path: Path, proc: subprocess.Popen[bytes], marker: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace")
        if marker in text:
            return text
        if proc.poll() is not None:
            raise AssertionError(f"the worker exited ({proc.returncode}) before saying its mode:\n{text[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"no {marker!r} in the worker's log after {timeout_s}s:\n{path.read_text()[-3000:]}")
