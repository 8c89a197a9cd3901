"""Re-validation with one ``eth_call`` bounded by a gas its success proves enough, no
``eth_estimateGas``: the cycle's remembered estimate, else the executor's modelled gas of its
hops; a call short of gas asks the node's estimate again (and remembers it); a real revert
is still a drop, with today's reason.
Runs the project's ArbExecutor and the genuine Uniswap V2 pairs on anvil (the ``chain``
fixture), through a client that records each request while forwarding it to that anvil;
the ahead-of-the-batch path on the stand-in executor's node."""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Mapping, Sequence

from arbbot.chain.rpc import RpcClient
from arbbot.devnet.scenarios import plant_price_gap, v2_state
from arbbot.errors import RpcError
from arbbot.execution.executor import decode_revert, gas_estimate
from arbbot.execution.runner import GAS_MEMORY_SLACK, GAS_MEMORY_TTL_S, ExecutionRunner, Pending, RiskLimits
from arbbot.paths.engine import path_id_for
from arbbot.paths.resize import resize
from arbbot.types import ExecutionResult, Opportunity, PoolState, ScoredOpportunity
from tests.execution.executor_helpers import (
    STAND_IN_EXECUTOR,
    STAND_IN_USDC,
    STAND_IN_WETH,
    planted_cycle,
    stand_in_scored,
    two_price_pools,
)

LIMITS = RiskLimits()


class Recording(RpcClient):
    """The real client to the test's anvil, keeping each request it forwards and the reply."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.sent: list[list[tuple[str, list[Any]]]] = []
        self.replies: list[list[Any]] = []

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        self.sent.append([(method, list(params))])
        reply = super().call(method, params)
        self.replies.append([reply])
        return reply

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]], *, raise_errors: bool = True) -> list[Any]:
        self.sent.append([(m, list(p)) for m, p in calls])
        replies = super().batch(calls, raise_errors=raise_errors)
        self.replies.append(replies)
        return replies

    def clear(self) -> None:
        self.sent.clear()
        self.replies.clear()

    def methods(self) -> list[str]:
        return [m for requests in self.sent for m, _ in requests]

    def simulations(self) -> list[tuple[list[tuple[str, list[Any]]], list[Any]]]:
        """The batches that ran an ``eth_call`` (re-validations), with their replies."""
        return [(s, r) for s, r in zip(self.sent, self.replies) if s[0][0] == "eth_call"]


class Cycle:
    """The planted WETH -uniswap-> USDC -sushiswap-> WETH cycle, its pools read from the chain."""

    def __init__(self, chain: Any) -> None:
        self.rpc, self.dep, self.signer = chain
        pools, self.tokens = planted_cycle(self.rpc, self.dep)
        self.pools = {p["address"]: p for p in pools}
        self.recording = Recording(self.rpc.url)

    def states(self, addresses: list[str] | None = None) -> dict[str, PoolState]:
        return {a: v2_state(self.rpc, self.pools[a]) for a in (addresses or list(self.pools))}

    def predicted(self) -> int:
        """The profit the exact math predicts on the chain's pools now."""
        sized = resize(list(self.states().values()), self.tokens)
        assert sized is not None
        return sized.profit

    def scored(self) -> ScoredOpportunity:
        pools = tuple(self.pools)
        opp = Opportunity(chain_id=self.dep.chain_id, block_number=1, block_hash="0x" + "00" * 32,
                          path_id=path_id_for(pools, self.tokens[:-1]), pools=pools, tokens=tuple(self.tokens),
                          amount_in=10**18, amount_out=10**18 + 10**16, gas_estimate=250_000, gas_price_wei=10**9,
                          gas_cost=1)
        return ScoredOpportunity(opportunity=opp, score=1.0, decision="execute")

    def runner(self, mode: str = "live", pools: Any = None, **kw: Any) -> ExecutionRunner:
        return ExecutionRunner(rpc=self.recording, executor=self.dep.executor, mode=mode, signer=self.signer,
                               pools=pools or self.states, native_token=self.dep.weth, chain_id=self.dep.chain_id,
                               receipt_timeout_s=20.0, **kw)

    def tx_gas(self, tx_hash: str) -> int:
        return int(self.rpc.call("eth_getTransactionByHash", [tx_hash])["gas"], 16)


def plant(runner: ExecutionRunner, path_id: str, gas: int, age_s: float = 0.0) -> None:
    """Make ``runner`` remember an estimate whose call is bounded by ``gas`` (to a few gas),
    learned ``age_s`` ago."""
    runner._gas[path_id] = (int(gas / GAS_MEMORY_SLACK), time.monotonic() - age_s)


def stand_in_pools(first: int) -> tuple[list[str], Callable[[list[str]], Mapping[str, PoolState]]]:
    """Four USDC/WETH pools from address byte ``first`` (two paying cycles over them on the
    stand-in node) and their hot-state read."""
    pools = ["0x" + f"{i:02x}" * 20 for i in range(first, first + 4)]
    states = {s.address: s for s in two_price_pools(pools, STAND_IN_USDC, STAND_IN_WETH)}
    return pools, lambda addresses: {a: states[a] for a in addresses}


def bound(estimate: int) -> int:
    """The gas a remembered ``estimate`` bounds its cycle's call by."""
    return math.ceil(estimate * GAS_MEMORY_SLACK)


def test_a_cycle_is_re_validated_without_eth_estimate_gas_first_seen_or_remembered_and_trades_to_the_wei(
    chain: Any,
) -> None:
    cycle = Cycle(chain)
    runner = cycle.runner()
    predicted = cycle.predicted()
    first = runner.submit(cycle.scored())  # first seen: bounded by the executor's modelled gas
    assert isinstance(first, Pending)
    assert "eth_estimateGas" not in cycle.recording.methods()
    [(requests, _)] = cycle.recording.simulations()  # one round trip
    modelled = bound(gas_estimate(["v2", "v2"]))  # with the memory's slack: a call needs more than it uses
    assert requests[0][1][0]["gas"] == hex(modelled)
    assert cycle.tx_gas(first.tx_hash) == LIMITS.limit_for(modelled)
    settled = runner.settle(first)
    assert (settled.status, settled.realised_profit, first.simulated_profit) == ("success", predicted, predicted)
    assert settled.gas_used is not None and settled.gas_used <= modelled

    plant_price_gap(cycle.rpc, cycle.dep, "WETH", "USDC", 3.0, dex="sushiswap")  # the gap again
    estimate = settled.gas_used + 10_000  # as if the node had estimated it: remembered, it comes first
    plant(runner, cycle.scored().opportunity.path_id, bound(estimate))
    estimate = runner._gas[cycle.scored().opportunity.path_id][0]
    predicted = cycle.predicted()
    cycle.recording.clear()
    second = runner.submit(cycle.scored())
    assert isinstance(second, Pending)
    assert "eth_estimateGas" not in cycle.recording.methods()
    [(requests, _)] = cycle.recording.simulations()  # one round trip
    limit = LIMITS.limit_for(bound(estimate))
    assert requests[0][1][0]["gas"] == hex(bound(estimate))  # the call proves that much gas enough
    assert cycle.tx_gas(second.tx_hash) == limit  # and the transaction gets that bound's limit
    settled = runner.settle(second)
    assert (settled.status, settled.realised_profit, second.simulated_profit) == ("success", predicted, predicted)
    assert settled.gas_used is not None and settled.gas_used <= limit


def test_a_remembered_estimate_is_asked_again_once_it_is_old(chain: Any) -> None:
    """After ``GAS_MEMORY_TTL_S`` the cycle is estimated again (an estimate grown too high
    would otherwise stay, and with it a stricter worst-case check than the cycle needs);
    with a gas model, it is bounded by the model again."""
    cycle = Cycle(chain)
    pid = cycle.scored().opportunity.path_id
    modelled = cycle.runner(mode="dry-run")
    plant(modelled, pid, 2_000_000, age_s=GAS_MEMORY_TTL_S + 1)
    result = modelled.submit(cycle.scored())
    assert isinstance(result, ExecutionResult) and result.extra["gas_limit"] == LIMITS.limit_for(
        bound(gas_estimate(["v2", "v2"])))
    assert "eth_estimateGas" not in cycle.recording.methods()
    cycle.recording.clear()
    runner = cycle.runner(mode="dry-run", modelled_gas=None)
    plant(runner, pid, 2_000_000, age_s=GAS_MEMORY_TTL_S - 5)  # high, and still fresh: used
    fresh = runner.submit(cycle.scored())
    assert isinstance(fresh, ExecutionResult) and fresh.extra["gas_limit"] == LIMITS.limit_for(
        bound(runner._gas[pid][0]))
    assert "eth_estimateGas" not in cycle.recording.methods()
    plant(runner, pid, 2_000_000, age_s=GAS_MEMORY_TTL_S + 1)  # old: asked again
    cycle.recording.clear()
    old = runner.submit(cycle.scored())
    [(requests, replies)] = cycle.recording.simulations()
    assert [m for m, _ in requests[:2]] == ["eth_call", "eth_estimateGas"]
    assert isinstance(old, ExecutionResult) and old.extra["gas_limit"] == LIMITS.limit_for(int(replies[1], 16))
    assert runner._gas[pid][0] == int(replies[1], 16) < 2_000_000


def test_a_remembered_estimate_too_low_asks_the_node_again_whatever_the_call_failed_with(chain: Any) -> None:
    """Short of gas, the call fails in every way anvil has (found by calling it at each gas
    below the estimate): the intrinsic gas refused, out of gas at the top, an inner call's
    empty revert, a pair's ``UniswapV2: TRANSFER_FAILED`` (revert data: a token transfer
    short of gas). Each time the runner asks the estimate again and goes on with the node's
    figure; the next re-validation is bounded by it."""
    cycle = Cycle(chain)
    pid = cycle.scored().opportunity.path_id
    probe = cycle.runner(mode="dry-run", modelled_gas=None)
    probe.submit(cycle.scored())
    [(requests, replies)] = cycle.recording.simulations()
    call, estimate = requests[0][1][0], int(replies[1], 16)
    gases = range(21_500, estimate, 500)
    answers = cycle.rpc.batch([("eth_call", [{**call, "gas": hex(g)}, "latest"]) for g in gases], raise_errors=False)
    shapes: dict[str, int] = {}  # how the call failed -> a gas it failed with so
    for g, answer in zip(gases, answers):
        assert isinstance(answer, RpcError), (g, answer)
        shape = decode_revert(answer.data) if isinstance(answer.data, str) else str(answer).split(" -- ")[0]
        shapes.setdefault(shape, g)
    assert set(shapes) == {"eth_call: intrinsic gas too high", "eth_call: EVM error OutOfGas", "reverted (no data)",
                           "UniswapV2: TRANSFER_FAILED"}, shapes
    for shape, call_gas in shapes.items():
        runner = cycle.runner(mode="dry-run")
        plant(runner, pid, call_gas)  # too low for this cycle
        if shape == "UniswapV2: TRANSFER_FAILED":  # a model too low for it: the same
            runner = cycle.runner(mode="dry-run", modelled_gas=lambda kinds, g=int(call_gas / GAS_MEMORY_SLACK): g)
        cycle.recording.clear()
        result = runner.submit(cycle.scored())
        assert isinstance(result, ExecutionResult), result
        assert result.status == "simulated", (shape, result.reason)
        [(bounded, failed), (asked, replies)] = cycle.recording.simulations()
        assert abs(int(bounded[0][1][0]["gas"], 16) - call_gas) <= 2 and isinstance(failed[0], RpcError)
        assert [m for m, _ in asked[:2]] == ["eth_call", "eth_estimateGas"]
        assert int(replies[1], 16) == estimate and result.extra["gas_limit"] == LIMITS.limit_for(estimate)
        assert runner._gas[pid][0] == estimate  # learned: the next one is bounded by it

    # live: the trade goes on with the node's estimate and realises the prediction
    runner = cycle.runner()
    plant(runner, pid, shapes["UniswapV2: TRANSFER_FAILED"])
    predicted = cycle.predicted()
    cycle.recording.clear()
    sent = runner.submit(cycle.scored())
    assert isinstance(sent, Pending)
    estimate = int(cycle.recording.simulations()[1][1][1], 16)
    assert cycle.tx_gas(sent.tx_hash) == LIMITS.limit_for(estimate)
    settled = runner.settle(sent)
    assert (settled.status, settled.realised_profit) == ("success", predicted)


def test_a_real_revert_of_a_remembered_cycle_is_still_a_drop_with_the_same_reason(chain: Any) -> None:
    cycle = Cycle(chain)
    stale = cycle.states()  # as the hot state still has them once the chain moved
    remembered = cycle.runner(pools=lambda addresses: {a: stale[a] for a in addresses})
    learn = remembered.submit(cycle.scored())  # dry-run would do; live sends, so learn while it pays
    assert isinstance(learn, Pending) and remembered.settle(learn).status == "success"
    # the trade closed the gap: the pools moved against the stale sizing
    sent_before = int(cycle.rpc.call("eth_getTransactionCount", [cycle.signer.address, "latest"]), 16)
    cycle.recording.clear()
    dropped = remembered.submit(cycle.scored())
    assert "eth_estimateGas" not in cycle.recording.methods()
    assert len(cycle.recording.simulations()) == 1
    fresh = cycle.runner(pools=lambda addresses: {a: stale[a] for a in addresses}).submit(cycle.scored())
    assert isinstance(dropped, ExecutionResult) and isinstance(fresh, ExecutionResult)
    assert dropped.status == fresh.status == "dropped"
    assert dropped.reason == fresh.reason
    assert dropped.reason.startswith("stale: the cycle no longer pays on re-validation (ProfitTooLow(")
    assert int(cycle.rpc.call("eth_getTransactionCount", [cycle.signer.address, "latest"]), 16) == sent_before


def test_a_batch_re_validated_ahead_bounds_remembered_cycles_and_asks_again_for_one_short(
    stand_in_node: RpcClient,
) -> None:
    pools, read = stand_in_pools(0x31)
    recording = Recording(stand_in_node.url)

    # the stand-in spends a few thousand gas: a model that prices its cycles so would bound them by far
    # less than the ArbExecutor's; here none, as a cycle of an unknown hop kind (the node estimates)
    runner = ExecutionRunner(rpc=recording, executor=STAND_IN_EXECUTOR, mode="dry-run", pools=read, chain_id=31337,
                             modelled_gas=None)
    runner.ahead_ttl_s = 60.0  # this test's pace is not the point
    batch = [stand_in_scored("cycle-a", (pools[0], pools[1])), stand_in_scored("cycle-b", (pools[2], pools[3]))]

    def decide() -> list[ExecutionResult]:
        recording.clear()
        assert runner.revalidate_ahead(batch) == 2
        results = [runner.submit(s) for s in batch]
        assert all(isinstance(r, ExecutionResult) and r.status == "simulated" for r in results), results
        return results  # type: ignore[return-value]

    decide()
    [(first, replies)] = recording.simulations()
    assert [m for m, _ in first[:4]] == ["eth_call", "eth_estimateGas"] * 2
    estimates = {"cycle-a": int(replies[1], 16), "cycle-b": int(replies[3], 16)}

    results = decide()  # both remembered: bounded calls, no estimate, no further round trip
    [(ahead, _)] = recording.simulations()
    assert "eth_estimateGas" not in recording.methods()
    assert [r[1][0]["gas"] for r in ahead[:2]] == [hex(bound(e)) for e in estimates.values()]
    assert [r.extra["gas_limit"] for r in results] == [LIMITS.limit_for(bound(e)) for e in estimates.values()]

    plant(runner, "cycle-b", 10_000)  # its call cannot even pay the intrinsic gas
    results = decide()
    [(ahead, _), (again, _)] = recording.simulations()
    assert [m for m, _ in ahead[:2]] == ["eth_call", "eth_call"]
    assert [m for m, _ in again[:2]] == ["eth_call", "eth_estimateGas"]  # cycle-b alone, asked again
    assert [r.extra["gas_limit"] for r in results] == [LIMITS.limit_for(bound(estimates["cycle-a"])),
                                                        LIMITS.limit_for(estimates["cycle-b"])]


def test_a_batch_re_validated_ahead_bounds_first_seen_cycles_by_the_model_and_asks_again_for_one_short(
    stand_in_node: RpcClient,
) -> None:
    """First-seen cycles: one round trip, each call bounded by the modelled gas, no estimate.
    A model short for one cycle: its call is asked again, unbounded and estimated, in a second
    round trip of the re-validation ahead (not by its submit), and the estimate remembered."""
    pools, read = stand_in_pools(0x51)
    recording = Recording(stand_in_node.url)

    runner = ExecutionRunner(rpc=recording, executor=STAND_IN_EXECUTOR, mode="dry-run", pools=read, chain_id=31337,
                             modelled_gas=lambda kinds: 90_910)  # bounds by 100,001 gas
    runner.ahead_ttl_s = 60.0  # this test's pace is not the point
    batch = [stand_in_scored("cycle-a", (pools[0], pools[1])), stand_in_scored("cycle-b", (pools[2], pools[3]))]

    def decide() -> tuple[list[ExecutionResult], int]:
        """The results, and the round trips the submits made themselves."""
        recording.clear()
        assert runner.revalidate_ahead(batch) == 2
        before = len(recording.sent)
        results = [runner.submit(s) for s in batch]
        assert all(isinstance(r, ExecutionResult) and r.status == "simulated" for r in results), results
        return results, len(recording.sent) - before  # type: ignore[return-value]

    results, own = decide()
    [(ahead, _)] = recording.simulations()
    assert own == 0 and "eth_estimateGas" not in recording.methods()
    assert [r[1][0]["gas"] for r in ahead[:2]] == [hex(bound(90_910))] * 2
    assert [r.extra["gas_limit"] for r in results] == [LIMITS.limit_for(bound(90_910))] * 2
    assert not runner._gas  # nothing estimated, nothing remembered

    plant(runner, "cycle-a", 90_000)  # remembered: it comes before the model
    runner.modelled_gas = lambda kinds: 9_000  # cannot even pay the intrinsic gas
    results, own = decide()
    [(ahead, _), (again, replies)] = recording.simulations()
    assert own == 0
    assert [r[1][0]["gas"] for r in ahead[:2]] == [hex(bound(runner._gas["cycle-a"][0])), hex(bound(9_000))]
    assert [m for m, _ in again[:3]] == ["eth_call", "eth_estimateGas", "eth_blockNumber"]  # cycle-b alone
    estimate = int(replies[1], 16)
    assert runner._gas["cycle-b"][0] == estimate  # remembered: the next call is bounded by it
    assert [r.extra["gas_limit"] for r in results] == [LIMITS.limit_for(bound(runner._gas["cycle-a"][0])),
                                                        LIMITS.limit_for(estimate)]


def test_an_estimate_learned_by_one_execute_process_serves_the_others(stand_in_node: RpcClient, hot: Any) -> None:
    """Two runners (two execute processes) on one hot state: what one estimated, the other
    bounds its call by without asking the node; another executor's cycles are its own."""
    pools, read = stand_in_pools(0x41)

    def runner(executor: str = STAND_IN_EXECUTOR) -> tuple[ExecutionRunner, Recording]:
        recording = Recording(stand_in_node.url)
        made = ExecutionRunner(rpc=recording, executor=executor, mode="dry-run", pools=read, chain_id=31337, hot=hot,
                               modelled_gas=None)
        made.ahead_ttl_s = 60.0  # this test's pace is not the point
        return made, recording

    batch = [stand_in_scored("cycle-a", (pools[0], pools[1])), stand_in_scored("cycle-b", (pools[2], pools[3]))]
    first, first_rpc = runner()
    assert first.revalidate_ahead(batch) == 2
    assert all(first.submit(s).status == "simulated" for s in batch)  # type: ignore[union-attr]
    [(requests, replies)] = first_rpc.simulations()
    assert [m for m, _ in requests[:4]] == ["eth_call", "eth_estimateGas"] * 2
    estimates = [int(replies[1], 16), int(replies[3], 16)]

    second, second_rpc = runner()
    assert second.revalidate_ahead(batch) == 2
    results = [second.submit(s) for s in batch]
    assert "eth_estimateGas" not in second_rpc.methods()
    [(ahead, _)] = second_rpc.simulations()
    assert [r[1][0]["gas"] for r in ahead[:2]] == [hex(bound(e)) for e in estimates]
    assert [r.extra["gas_limit"] for r in results] == [LIMITS.limit_for(bound(e)) for e in estimates]  # type: ignore[union-attr]

    lone, lone_rpc = runner()  # a batch of one, re-validated by its submit alone
    assert lone.submit(batch[0]).extra["gas_limit"] == LIMITS.limit_for(bound(estimates[0]))  # type: ignore[union-attr]
    assert "eth_estimateGas" not in lone_rpc.methods()

    other, other_rpc = runner("0x" + "ef" * 20)  # another executor: not its estimates
    other.revalidate_ahead(batch)
    assert other_rpc.methods().count("eth_estimateGas") == 2
