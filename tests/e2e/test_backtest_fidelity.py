"""Fidelity of a backtest: the e2e fleet (live mode, no competitor) records every block it
scans (``ARBBOT_RECORD_DIR``); price gaps planted on V2 and V3 pools are traded live; the
recording replayed with the strategy in force executes the same cycles, on the same blocks,
for the same profits, to the wei, both by the exact pool math and with the fills run by the
genuine contracts on an anvil loaded from the recording's state dump.

Each gap is planted by one transaction (its sender funded and approved before the range
replayed), and the next only once the fleet is quiet: every recorded block processed by
the path stage, every opportunity decided, every execution final. So each live trade is
decided on the state of the block its opportunity came from, as a backtest decides it; a
gap planted while the fleet still trades the last one would race it (the live trade then
lands blocks later, on another state), which is a latency question, not a replay one. For
the same reason the strategy's minimum net profit is set above the small follow-on cycles a
trade leaves behind: two of them decided in one batch race each other in the same way (the
first one's block arrives before the second is decided).
"""

from __future__ import annotations

import contextlib
import math
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from arbbot.devnet import v3 as devnet_v3
from arbbot.devnet.anvil import start_anvil
from arbbot.devnet.scenarios import approve, fund_token, swap_v2, v2_state
from arbbot.replay.backtest import BacktestStrategy, open_chain, run
from arbbot.replay.recording import Recording
from arbbot.replay.report import executed_cycles, summarize
from tests.e2e.fleet import wait_for

# No django_db mark: its transaction would keep the strategy this test sets from the workers
# (the fleet fixture creates this run's database itself); every query here is unblocked.
pytestmark = [pytest.mark.e2e]
FINAL = ("success", "reverted", "cancelled", "dropped", "failed", "simulated")


def _recording(fleet: dict[str, Any]) -> Path | None:
    files = sorted(Path(fleet["recordings"]).glob(f"chain-{fleet['dep'].chain_id}-*.arbrec"))
    return files[-1] if files else None


def _metric(fleet: dict[str, Any], queue: str, name: str) -> float:
    text = requests.get(f"http://127.0.0.1:{fleet['metrics_ports'][queue]}/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def _unsettled(fleet: dict[str, Any], django_db_blocker: Any, path: Path) -> tuple[str, bool] | None:
    """None when the fleet has done everything the chain's blocks so far ask of it; else
    what it still waits for, and whether that is only mined trades' confirmations."""
    from webapp.core.models import Execution, Opportunity

    chain_id = fleet["dep"].chain_id
    recording = Recording.open(path)
    head = fleet["rpc"].block_number()
    try:
        if recording.last_block != head:  # a block not scanned (and recorded) yet
            return f"recorded up to block {recording.last_block}, the chain is at {head}", False
        through_path = _metric(fleet, "path", 'arbbot_stage_batch_seconds_count{stage="path"}')
        if through_path < len(recording.frames):  # a recorded block not through the path stage yet
            return f"{through_path} blocks through the path stage of {len(recording.frames)} recorded", False
        found = _metric(fleet, "path", "arbbot_opportunities_total")
    except requests.ConnectionError as exc:  # the worker's metrics endpoint is not up yet
        return f"a worker's metrics endpoint: {exc}", False
    with django_db_blocker.unblock():
        recorded = Opportunity.objects.filter(chain_id=chain_id).count()
        if recorded < found:  # opportunities not decided (and recorded) yet
            return f"{recorded} opportunities recorded of {found} found", False
        chosen = set(Opportunity.objects.filter(chain_id=chain_id, decision="execute").values_list("block_number", "path_id"))
        done = dict(((b, p), s) for b, p, s in Execution.objects.filter(chain_id=chain_id).values_list(
            "block_number", "path_id", "status"))
    waiting = sorted((key, done.get(key)) for key in chosen if done.get(key) not in FINAL)
    if not waiting:
        return None
    return f"executions not final: {waiting[:5]}", all(status == "mined" for _, status in waiting)


def _wait_quiet(fleet: dict[str, Any], django_db_blocker: Any, path: Path, timeout_s: float, what: str,
                done: Callable[[], bool] = lambda: True) -> None:
    """Wait until ``done`` and the fleet is quiet (``_unsettled``). The devnet mines a block
    only for a transaction (automine): a trade mined in the chain's last block waits for the
    next one to be final (``Chain.confirmations``), which nothing else may bring; a chain's
    blocks keep coming, so here one is mined for it (empty, at most one a second)."""
    last: list[tuple[str, bool] | None] = [None]
    mined_at = [0.0]

    def quiet() -> bool:
        last[0] = _unsettled(fleet, django_db_blocker, path)  # first: it tells whether only confirmations wait
        if last[0] is None and done():
            return True
        if last[0] is not None and last[0][1] and time.monotonic() - mined_at[0] >= 1.0:
            fleet["rpc"].call("evm_mine")
            mined_at[0] = time.monotonic()
        return False

    try:
        wait_for(quiet, timeout_s, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen: {last[0][0] if last[0] else 'settled'}") from None


def _v2_plant(rpc: Any, dep: Any, a: str, b: str, pct: float, dex: str, sender: str) -> Callable[[], str]:
    """Fund and approve now; the returned call makes ``a`` about ``pct`` % cheaper on ``dex``'s
    pair in one swap (``scenarios.plant_price_gap``'s sizing)."""
    pool = dep.pool(dex, a, b)
    state = v2_state(rpc, pool)
    reserve = state.reserve0 if dep._addr(a) == state.token0 else state.reserve1
    amount = int(reserve * (1 / math.sqrt(1 - pct / 100) - 1))
    fund_token(rpc, dep, a, sender, amount)
    approve(rpc, sender, dep._addr(a), dep.dex(dex)["router"], amount)

    def plant() -> str:
        swap_v2(rpc, dep, sender, pool, a, amount)
        return str(pool["address"])

    return plant


def _v3_plant(rpc: Any, dep: Any, a: str, b: str, fee: int, pct: float, sender: str) -> Callable[[], str]:
    """As ``scenarios.plant_v3_price_gap``, with the funding and approval done now."""
    pool = dep.pool(devnet_v3.V3_DEX_NAME, a, b, fee)
    router = dep.dex(devnet_v3.V3_DEX_NAME)["swap_router"]
    addr_a, addr_b = dep._addr(a), dep._addr(b)
    price_usd = next(float(t["price_usd"]) for t in dep.tokens if t["address"] == addr_a)
    amount = int(20_000_000 / price_usd) * 10**18
    fund_token(rpc, dep, addr_a, sender, amount)
    approve(rpc, sender, addr_a, router, amount)

    def plant() -> str:
        before, _ = devnet_v3.slot0(rpc, pool["address"])
        factor = math.sqrt(1 - pct / 100) if addr_a == pool["token0"] else 1 / math.sqrt(1 - pct / 100)
        devnet_v3.swap_exact_input_single(rpc, sender, router, addr_a, addr_b, fee, amount,
                                          sqrt_price_limit_x96=int(before * factor))
        return str(pool["address"])

    return plant


def test_a_recorded_live_run_replays_to_the_wei(fleet: dict[str, Any], django_db_blocker: Any, tmp_path: Path) -> None:
    chain_id = fleet["dep"].chain_id
    path = wait_for(lambda: _recording(fleet), 90, "the scan stage to start a recording")
    with _strategy(chain_id, django_db_blocker, min_profit_wei=MIN_PROFIT_WEI):
        _plant_trade_and_replay(fleet, django_db_blocker, tmp_path, path)


MIN_PROFIT_WEI = 5 * 10**16  # 0.05 WETH: each planted gap's first trade makes more, its follow-ons less


@contextlib.contextmanager
def _strategy(chain_id: int, django_db_blocker: Any, **fields: Any) -> Iterator[None]:
    """The chain's strategy with ``fields`` changed, for the block; the defaults after."""
    from webapp.core import services
    from webapp.core.config_schema import StrategySpec
    from webapp.core.models import Chain

    def spec(**kw: Any) -> StrategySpec:
        return StrategySpec(**{"start_tokens": [], "max_hops": 3, "min_profit_wei": 0, "margin": Decimal("1.5"),
                               "max_amount_in": {}, "max_fee_per_gas_wei": None, **kw})

    with django_db_blocker.unblock():
        chain = Chain.objects.get(chain_id=chain_id)
        services.strategy_set(chain, spec(**fields), source="test_backtest_fidelity")
    try:
        yield
    finally:
        with django_db_blocker.unblock():
            services.strategy_set(chain, spec(), source="test_backtest_fidelity")


def _plant_trade_and_replay(fleet: dict[str, Any], django_db_blocker: Any, tmp_path: Path, path: Path) -> None:
    from webapp.core import selectors
    from webapp.core.models import Execution
    from workers import runtime

    rpc, dep = fleet["rpc"], fleet["dep"]
    chain_id = dep.chain_id
    accounts = [a.lower() for a in rpc.call("eth_accounts")]
    plants = [
        _v2_plant(rpc, dep, "WETH", "USDC", 4.0, "sushiswap", accounts[7]),
        _v3_plant(rpc, dep, "WETH", "USDC", 3000, 3.0, accounts[8]),
        _v2_plant(rpc, dep, "WETH", "LINK", 5.0, "uniswap", accounts[6]),
    ]
    _wait_quiet(fleet, django_db_blocker, path, 60, "the fleet to settle after the funding")
    first = rpc.block_number() + 1

    def live() -> list[Any]:
        with django_db_blocker.unblock():
            return list(Execution.objects.filter(chain_id=chain_id, block_number__gte=first).order_by("id"))

    for plant in plants:
        traded = len([e for e in live() if e.status == "success"])
        planted = plant()
        _wait_quiet(fleet, django_db_blocker, path, 90, f"the fleet to trade the gap in {planted} and settle",
                    lambda: len([e for e in live() if e.status == "success"]) > traded)
    last = rpc.block_number()
    executions = live()
    assert executions and {e.status for e in executions} == {"success"}, [
        (e.block_number, e.path_id, e.status, e.mined_block, e.reason) for e in executions
    ]

    recording = Recording.open(path)
    assert recording.first_block is not None and recording.first_block < first <= last == recording.last_block
    with django_db_blocker.unblock():
        in_force = BacktestStrategy.from_wire(runtime.recording_meta(chain_id)["strategy"])
        exclusions = selectors.exclusions(chain_id)
    result = run(recording, in_force, from_block=first, to_block=last, exclusions=exclusions)

    expected = {(e.block_number, e.path_id): int(e.realised_profit) for e in executions}
    assert len(expected) == len(plants)
    assert all(profit > MIN_PROFIT_WEI for profit in expected.values())
    assert executed_cycles(result) == expected
    summary = summarize(result)
    assert sum(int(v) for v in summary["pnl"]["per_token"].values()) == sum(expected.values())
    assert summary["opportunities"]["dropped"] == {}

    # the same on an anvil loaded from the recording's state dump: the genuine contracts, kept
    # at each block's recorded pool states, pay the live run's profits to the wei
    chain = open_chain(recording, log_path=tmp_path / "replay-anvil.log")
    assert chain is not None
    try:
        on_anvil = run(recording, in_force, from_block=first, to_block=last, exclusions=exclusions, chain=chain)
    finally:
        chain.close()
    assert on_anvil.fills == "anvil" and chain.writes > 0
    assert executed_cycles(on_anvil) == expected

    # the devnet's recording starts from anvil's state: loaded into a fresh anvil, it is the chain
    dump = recording.meta["state_dump"]
    assert dump["block"] >= recording.meta["first_block"]
    state = (path.parent / dump["file"]).read_bytes()
    fresh = start_anvil(log_path=tmp_path / "anvil.log")
    try:
        other = fresh.rpc()
        assert other.call("anvil_loadState", ["0x" + state.hex()]) is True
        assert other.call("eth_getCode", [dep.executor, "latest"]) == rpc.call("eth_getCode", [dep.executor, "latest"])
    finally:
        fresh.stop()
