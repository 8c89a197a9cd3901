"""A backtest: a recording's blocks through the same path, ml and execute code the fleet
runs, in ``paper`` mode, as fast as the machine allows.

Each recorded ``PoolDelta`` goes, in order, to a ``PathStage`` (the fleet's path engine,
built from the strategy), its opportunities to the ``RuleScorer`` (the ml stage's decision
rule, with the strategy's margin and minimum), the ones decided ``execute`` to the execute
stage (``arbbot.execution.stage.execute``) with an ``ExecutionRunner`` in paper mode under
the strategy's caps and fee cap. What the fleet reads from Redis and the node comes from the
recording instead: the pool states as of the block being replayed (``ReplayState``), and the
re-validation's replies (``ReplayState.revalidate``): the fill, run by the genuine contracts
on an anvil started on the recording's state dump (``arbbot.replay.chain``) or by the exact
pool math on those states (the re-sized cycle's profit, which the contracts pay to the wei)
with the path stage's gas estimate, and the block's recorded fee data, so the fee cap and the
worst-case gas check decide as they did live. Each paper fill moves its pools for the blocks
after (``arbbot.replay.fills`` has the rule). Blocks before ``from_block`` only bring the
engines up to date.

The hindsight optimum of a block: the cycles an engine free of the strategy's choices
(every liquid token may start, ``optimum_max_hops`` hops, the best ``OPTIMUM_PER_POOL``
through each pool by the float screen) finds through the pools the block changed, sized
exactly on that block's state, net of gas at its gas price; of those, pool-disjoint ones
taken greedily by net profit in native (two trades through one pool cannot both be had).
"That block's state" is the pools as this strategy's own fills left them: what was there
for it to take at each block, so each strategy's optimum is its own (one that leaves gaps
open finds them again later).
A strategy with those very settings (the default one) shares its engine with the optimum:
the exact sizing, most of a block's cost, is done once.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from pathlib import Path
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Iterable, Mapping, Sequence

from arbbot.errors import ArbbotError, ConfigError, RpcError
from arbbot.execution import fees, stage
from arbbot.execution.follow import TxRecord
from arbbot.execution.modes import ZERO_ADDRESS
from arbbot.execution.runner import ExecutionRunner, RiskLimits, call_profit
from arbbot.execution.stage import Unfinished
from arbbot.paths.engine import PathEngine, rank_key
from arbbot.paths.gas import GasModel
from arbbot.paths.resize import Sized, resize
from arbbot.paths.stage import PathStage
from arbbot.replay import fills
from arbbot.replay.chain import AnvilChain
from arbbot.replay.recording import RecordedBlock, Recording, RecordingError
from arbbot.scoring.rule import MAX_SENDS_PER_BLOCK, RuleScorer
from arbbot.types import ExecutionResult, Opportunity, PoolDelta, PoolState, ScoredOpportunity, norm_address

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]  # blocks done, blocks in all
OPTIMUM_PER_POOL = 3  # cycles per pool the optimum's engine sizes exactly (the path stage's default)
#: a trade re-validated ahead of the anvil is given this many times the path stage's gas
#: estimate (the anvil's, about 1.2x it here, is checked to be no more)
AHEAD_GAS_FACTOR = 3


@dataclass(frozen=True)
class BacktestStrategy:
    """What a backtest trades with: the strategy's settings (``Strategy`` rows, a
    configuration file's ``strategy``) and the fleet settings that shape trading
    (``ARBBOT_PATH_MAX_PER_POOL``, the input cap of other tokens)."""

    start_tokens: tuple[str, ...] = ()
    max_hops: int = 3
    margin: Fraction = Fraction(3, 2)
    min_profit_wei: int = 0
    max_amount_in: Mapping[str, int] = field(default_factory=dict)
    default_max_amount_in: int | None = None
    max_fee_per_gas_wei: int | None = None
    max_per_pool: int | None = 3
    #: the strategy's ``max_sends_per_block`` (a recording made before it existed: the default)
    max_sends_per_block: int = MAX_SENDS_PER_BLOCK
    model: str = "rule"
    name: str = "recorded"

    def tokens(self) -> set[str]:
        """Every token the strategy names."""
        return {t.lower() for t in self.start_tokens} | {t.lower() for t in self.max_amount_in}

    def to_wire(self) -> dict[str, Any]:
        return {
            "start_tokens": list(self.start_tokens),
            "max_hops": self.max_hops,
            "margin": f"{self.margin.numerator}/{self.margin.denominator}",
            "min_profit_wei": str(self.min_profit_wei),
            "max_amount_in": {t: str(v) for t, v in self.max_amount_in.items()},
            "default_max_amount_in": None if self.default_max_amount_in is None else str(self.default_max_amount_in),
            "max_fee_per_gas_wei": None if self.max_fee_per_gas_wei is None else str(self.max_fee_per_gas_wei),
            "max_per_pool": self.max_per_pool,
            "max_sends_per_block": self.max_sends_per_block,
            "model": self.model,
            "name": self.name,
        }

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> BacktestStrategy:
        try:
            def opt(v: Any) -> int | None:
                return None if v is None else int(v)

            return cls(
                start_tokens=tuple(norm_address(t) for t in d.get("start_tokens", ())),
                max_hops=int(d.get("max_hops", 3)),
                margin=Fraction(str(d.get("margin", "3/2"))),
                min_profit_wei=int(d.get("min_profit_wei", 0)),
                max_amount_in={norm_address(t): int(v) for t, v in (d.get("max_amount_in") or {}).items()},
                default_max_amount_in=opt(d.get("default_max_amount_in")),
                max_fee_per_gas_wei=opt(d.get("max_fee_per_gas_wei")),
                max_per_pool=opt(d.get("max_per_pool", 3)),
                max_sends_per_block=int(d.get("max_sends_per_block", MAX_SENDS_PER_BLOCK)),
                model=str(d.get("model", "rule")),
                name=str(d.get("name", "recorded")),
            )
        except (ArbbotError, ValueError, TypeError, ZeroDivisionError) as exc:
            raise RecordingError(f"the recorded strategy is malformed: {exc}") from None


class ReplayState:
    """The pools as of the block being replayed, standing in for the hot state (the path
    stage's ``PoolSource`` and the runner's ``pools``) and for the node (``revalidate``).

    Paper fills move the pools (``fill``; the rule in ``arbbot.replay.fills``): at once, and
    published with the next block's delta unless the recording changes the pool itself. With
    a ``chain`` (an anvil loaded from the recording's state dump) the pools are also written
    there and the executor's calls are answered by it."""

    def __init__(self, chain: AnvilChain | None = None, *, ahead: bool = False) -> None:
        self.pools: dict[str, PoolState] = {}
        self.block: RecordedBlock | None = None
        self.chain = chain
        self.ahead = ahead  # answer the anvil's part ahead of it (``revalidate``)
        #: the simulation last answered ahead, and the gas estimate it was answered with
        self.asked: tuple[list[tuple[str, list[Any]]], str] | None = None
        self.moved: dict[str, PoolState] = {}  # by paper fills, not published yet
        self.recorded: dict[str, PoolState] = {}  # as the recording has them (no paper fill)

    def apply(self, block: RecordedBlock) -> PoolDelta:
        """Step to ``block``; the delta the path stage gets: the recorded states and the
        pools paper fills moved since the last block that the recording does not change."""
        recorded = block.delta.states
        mentioned = {s.address.lower() for s in recorded}
        carried = tuple(dataclasses.replace(s, block_number=block.number)
                        for a, s in self.moved.items() if a not in mentioned)
        self.moved = {}
        for s in recorded:
            self.pools[s.address.lower()] = s
            self.recorded[s.address.lower()] = s
        for s in carried:
            self.pools[s.address.lower()] = s
        if self.chain is not None and recorded:
            self.chain.write(recorded)
        self.block = block
        return dataclasses.replace(block.delta, states=recorded + carried,
                                   observed_at=0.0)  # no arrival to measure latency from

    def fill(self, opp: Opportunity, amount_in: int) -> None:
        """A paper trade of ``amount_in`` round ``opp``'s cycle: its pools move."""
        assert self.block is not None
        moved = fills.fill([self.pools[p.lower()] for p in opp.pools], opp.tokens, amount_in, self.block.number)
        for s in moved:
            self.pools[s.address.lower()] = s
            self.moved[s.address.lower()] = s
        if self.chain is not None:
            self.chain.write(moved)

    def snapshot(self) -> tuple[dict[str, PoolState], tuple[int, str] | None]:
        head = None if self.block is None else (self.block.number, self.block.delta.block_hash)
        return dict(self.pools), head

    def changed_since(self, after_block: int, after_hash: str = "") -> None:
        return None  # blocks come one by one here; a stage that asks reads the snapshot

    def excluded_tokens(self, addresses: set[str] | None = None) -> dict[str, str]:
        return {}  # the scan stage's token flags are not recorded; the meta's exclusions are

    def get(self, addresses: list[str]) -> dict[str, PoolState]:
        return {a: self.pools[a.lower()] for a in addresses if a.lower() in self.pools}

    def revalidate(self, requests: list[tuple[str, list[Any]]], sized: Sized, opp: Opportunity) -> list[Any]:
        """The replies the node would give at the recorded block: ``eth_call`` of the exact
        calldata returns the profit the pools pay and ``eth_estimateGas`` its gas, from the
        anvil when there is one (the genuine contracts on these states), else the exact pool
        math and the path stage's estimate; then the block and its fee data."""
        block = self.block
        assert block is not None
        header, history, gas_price = fee_replies(block)
        answers = {
            "eth_call": hex(sized.profit), "eth_estimateGas": hex(opp.gas_estimate),
            "eth_blockNumber": hex(block.number), "eth_getBlockByNumber": header, "eth_feeHistory": history,
            "eth_gasPrice": gas_price,
            "eth_getTransactionCount": "0x0",  # a backtest has no trade of its own in flight
        }
        try:
            replies = [answers[method] for method, _ in requests]
        except KeyError as exc:
            raise ArbbotError(f"a backtest cannot answer {exc.args[0]} from a recording") from None
        if self.chain is not None:
            (call_method, (call, _)), (est_method, _) = requests[0], requests[1]
            assert (call_method, est_method) == ("eth_call", "eth_estimateGas"), requests[:2]
            if self.ahead:
                # ahead of the anvil: the profit the math says the contracts pay, and a gas
                # estimate well above the path stage's (``AHEAD_GAS_FACTOR``); ``run`` has
                # the anvil verify both later, or asks it now if the trade drops
                replies[:2] = [hex(sized.profit), hex(AHEAD_GAS_FACTOR * opp.gas_estimate)]
                self.asked = (self.chain.simulation(call, opp.pools), replies[1])
            else:
                replies[:2] = self.chain.simulate(call, opp.pools)
        return replies


def fee_replies(block: RecordedBlock) -> list[Any]:
    """The replies to ``fees.fee_requests`` as recorded with ``block``; without recorded fee
    data, the delta's base fee (an EIP-1559 block) or gas price (legacy)."""
    delta = block.delta
    header = dict(block.header) if block.header else None
    if header is None and delta.base_fee_wei:
        header = {"baseFeePerGas": hex(delta.base_fee_wei), "gasUsed": "0x0", "gasLimit": "0x0"}
    elif header is None:
        header = {}
    gas_price = block.gas_price if block.gas_price is not None else hex(delta.gas_price_wei)
    return [header, dict(block.fee_history) if block.fee_history else None, gas_price]


class MemoryJournal:
    """The execute stage's ``Journal`` for a backtest: claims and outcomes in memory. Paper
    mode signs nothing, so a transaction record here is a bug."""

    def __init__(self) -> None:
        self.claimed: set[str] = set()
        self.results: list[ExecutionResult] = []

    def claim(self, scored: ScoredOpportunity) -> bool:
        key = scored.opportunity.key
        if key in self.claimed:
            return False
        self.claimed.add(key)
        return True

    def claim_all(self, batch: Sequence[ScoredOpportunity]) -> list[bool]:
        return [self.claim(s) for s in batch]

    def stale_pending(self, older_than_s: float) -> list[Unfinished]:
        return []

    def decided(self, result: ExecutionResult) -> None:
        pass

    def finished(self, result: ExecutionResult) -> None:
        self.results.append(result)

    def finished_all(self, results: Sequence[ExecutionResult]) -> None:
        self.results.extend(results)

    def _no_tx(self, *args: Any, **kwargs: Any) -> Any:
        raise ArbbotError("a backtest runs in paper mode: no transaction is signed or sent")

    tx_signed = tx_refused = tx_sent = tx_mined = tx_reopened = tx_state = tx_confirmed = _no_tx

    def txs_open(self, chain_id: int) -> list[TxRecord]:
        return []

    def txs_of_nonce(self, chain_id: int, sender: str, nonce: int) -> list[TxRecord]:
        return []


class _NoNode:
    """The runner's node in a backtest: re-validation is answered by ``ReplayState``."""

    def __getattr__(self, name: str) -> Any:
        raise ArbbotError(f"a backtest has no node (the runner asked for {name})")


@dataclass(frozen=True, slots=True)
class BlockOutcome:
    number: int
    found: int
    executed: int
    captured_native: int  # net of gas, native wei: what the strategy's paper trades made
    optimum_native: int  # the hindsight optimum, net of gas, native wei
    optimum_cycles: int


@dataclass
class BacktestResult:
    chain_id: int
    strategy: BacktestStrategy
    recording: str
    blocks: list[BlockOutcome] = field(default_factory=list)
    executions: list[ExecutionResult] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # the ml stage's reasons
    elapsed_s: float = 0.0
    replayed_blocks: int = 0  # every block read, those before ``from`` too
    fills: str = "math"  # "anvil": executed on an anvil loaded from the state dump
    #: with ``labels``: every opportunity the scorer decided (traded blocks), and for each
    #: (by key) the gross profit its cycle pays re-sized 1 and 2 blocks later (``later``)
    scored: list[ScoredOpportunity] = field(default_factory=list)
    later: dict[str, list[int | None]] = field(default_factory=dict)


def open_chain(recording: Recording, *, log_path: Path | None = None) -> AnvilChain | None:
    """An anvil loaded from ``recording``'s state dump, for exact fills; None when the
    recording has no dump (not a devnet, or the dump failed). The caller closes it."""
    dump = recording.meta.get("state_dump")
    if not isinstance(dump, Mapping) or not dump.get("file"):
        return None
    executor = (recording.meta.get("chain") or {}).get("executor")
    if not executor or int(str(executor), 16) == 0:
        return None  # nothing to simulate the calls with
    return AnvilChain.start(recording.path.parent / str(dump["file"]), recording.chain_id, str(executor),
                            log_path=log_path)


def unknown_tokens(recording: Recording, strategy: BacktestStrategy, to_block: int | None = None) -> set[str]:
    """The tokens the strategy names that no pool of the recording (up to ``to_block``) holds."""
    wanted = strategy.tokens()
    if not wanted:
        return set()
    for block in recording.blocks(to_block):
        for s in block.delta.states:
            wanted -= {s.token0.lower(), s.token1.lower()}
        if not wanted:
            break
    return wanted


def run(
    recording: Recording,
    strategy: BacktestStrategy,
    *,
    from_block: int | None = None,
    to_block: int | None = None,
    optimum_max_hops: int = 3,
    exclusions: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    chain: AnvilChain | None = None,
    move_pools: bool = True,
    labels: bool = False,
    ahead: bool = True,
) -> BacktestResult:
    """Replay ``recording`` (through ``to_block``) with ``strategy``; trade from ``from_block``
    on. ``exclusions`` (token and pool address -> why): the recorded ones unless given.
    ``chain``: fills on an anvil loaded from the recording's state dump (``open_chain``),
    else by the exact pool math. ``move_pools=False``: paper fills leave the pools as
    recorded (the first version's rule, kept for comparison). ``labels``: keep what
    ``arbbot.replay.labels.outcomes`` needs (each decided opportunity, its profit later).

    With a ``chain`` and ``ahead`` (the default), the replay does not wait for the anvil:
    a trade re-validated by the math's profit with the gas cap (the dearest gas it can be
    given: if it pays then, it pays at any estimate) goes on at once while the anvil runs
    the same simulation in the background; at the end each trade's profit is checked
    against the anvil's, to the wei, and its gas limit set from the anvil's estimate. A
    trade that does not pay at the gas cap waits for the anvil's answer, as every trade
    does with ``ahead=False`` (the previous path, kept for comparison). Should the anvil
    ever pay other than the math (a revert, a wei apart), the replay is run again waiting
    for every answer: exact either way."""
    kw: dict[str, Any] = dict(from_block=from_block, to_block=to_block, optimum_max_hops=optimum_max_hops,
                              exclusions=exclusions, progress=progress, chain=chain, move_pools=move_pools,
                              labels=labels)
    result = _replay(recording, strategy, ahead=ahead and chain is not None, **kw)
    if result is None:
        assert chain is not None
        log.warning("%s: the anvil paid other than the pool math; replaying again, waiting for each fill",
                    recording.path)
        chain.reset()
        result = _replay(recording, strategy, ahead=False, **kw)
        assert result is not None
    return result


def _replay(
    recording: Recording,
    strategy: BacktestStrategy,
    *,
    from_block: int | None,
    to_block: int | None,
    optimum_max_hops: int,
    exclusions: Mapping[str, str] | None,
    progress: Progress | None,
    chain: AnvilChain | None,
    move_pools: bool,
    labels: bool,
    ahead: bool,
) -> BacktestResult | None:
    """``run``'s replay; None: ``ahead``, the anvil paid a trade other than the math did."""
    meta = recording.meta
    chain_meta = meta.get("chain") or {}
    weth = chain_meta.get("weth")
    if not isinstance(weth, str):
        raise RecordingError(f"{recording.path}: the meta names no native token (chain.weth)")
    if from_block is not None and to_block is not None and from_block > to_block:
        raise ConfigError(f"--from {from_block} is after --to {to_block}")
    for edge, name in ((from_block, "--from"), (to_block, "--to")):
        first, last = recording.first_block, recording.last_block
        if edge is not None and (first is None or last is None or not first <= edge <= last):
            raise ConfigError(f"{name} {edge} is outside the recording's blocks {first}..{last}")
    if exclusions is None:
        exclusions = meta.get("exclusions") or {}
    excluded_now = {a.lower(): str(r) for a, r in exclusions.items()}
    policy = meta.get("fee_policy") or {}
    fee_policy = fees.FeePolicy(
        max_fee_per_gas_wei=strategy.max_fee_per_gas_wei,
        inclusion_blocks=int(policy.get("inclusion_blocks", 3)),
        priority_percentile=float(policy.get("priority_percentile", 50.0)),
        history_blocks=int(policy.get("history_blocks", 10)),
        min_priority_fee_wei=int(policy.get("min_priority_fee_wei", 0)),
    )
    state = ReplayState(chain, ahead=ahead)
    path = PathStage(PathEngine(base_tokens=list(strategy.start_tokens), weth=weth, max_hops=strategy.max_hops,
                                gas_model=GasModel(), max_per_pool=strategy.max_per_pool))
    shared = (not strategy.start_tokens and strategy.max_hops == optimum_max_hops
              and strategy.max_per_pool == OPTIMUM_PER_POOL)
    hindsight = None if shared else PathStage(PathEngine(
        base_tokens=[], weth=weth, max_hops=optimum_max_hops, gas_model=GasModel(), max_per_pool=OPTIMUM_PER_POOL,
    ))
    scorer = RuleScorer(margin=strategy.margin, min_net_profit=strategy.min_profit_wei,
                        max_sends=strategy.max_sends_per_block)
    runner = ExecutionRunner(
        rpc=_NoNode(),  # type: ignore[arg-type]
        executor=str(chain_meta.get("executor") or ZERO_ADDRESS),
        mode="paper",
        pools=state.get,
        limits=RiskLimits(max_amount_in=dict(strategy.max_amount_in),
                          default_max_amount_in=strategy.default_max_amount_in),
        fee_policy=fee_policy,
        native_token=weth,
        chain_id=recording.chain_id,
        revalidate=state.revalidate,
    )
    journal = MemoryJournal()
    out = BacktestResult(recording.chain_id, strategy, str(recording.path), fills="math" if chain is None else "anvil")
    total = recording.count(to_block)
    started = time.perf_counter()

    def excluded(chain_id: int) -> Mapping[str, str]:
        return excluded_now

    ahead_gas: dict[int, str] = {}  # execution answered ahead -> the gas estimate it was given
    recent: list[list[Opportunity]] = []  # with labels: the opportunities of the last two traded blocks
    for i, block in enumerate(recording.blocks(to_block), 1):
        delta = state.apply(block)
        if labels:
            for k, opps in enumerate(reversed(recent)):
                for opp in opps:
                    out.later[opp.key][k] = _profit_on(state.recorded, opp, runner.limits)
        found = path.process(delta, state, excluded).opportunities
        possible = found if hindsight is None else hindsight.process(delta, state, excluded).opportunities
        out.replayed_blocks += 1
        if from_block is None or block.number >= from_block:
            decided = scorer.decide(found)
            if labels:
                out.scored.extend(decided)
                out.later.update((s.opportunity.key, [None, None]) for s in decided)
                recent = [*recent[-1:], [s.opportunity for s in decided]]
            out.skipped.update(_reason(s.reason) for s in decided if s.decision != "execute")
            done: list[ExecutionResult] = []
            for s in decided:
                if s.decision != "execute":
                    continue
                # one at a time: a paper fill moves its pools before the next is re-sized
                for r in _execute(s, runner, journal, state):
                    r = dataclasses.replace(r, extra={**r.extra, "gas_cost_native": s.opportunity.gas_cost_native})
                    if r.status == "simulated" and move_pools:
                        state.fill(s.opportunity, int(r.extra["final_amount_in"]))
                    if state.asked is not None:  # answered ahead: the anvil verifies it
                        assert chain is not None
                        simulation, ahead_gas[len(out.executions) + len(done)] = state.asked
                        chain.verify_later(len(out.executions) + len(done), simulation)
                    done.append(r)
            out.executions.extend(done)
            optimum, cycles = hindsight_optimum(possible)
            out.blocks.append(BlockOutcome(
                number=block.number, found=len(found),
                executed=sum(1 for r in done if r.status == "simulated"),
                captured_native=sum(net_native(r) for r in done if r.status == "simulated"),
                optimum_native=optimum, optimum_cycles=cycles,
            ))
        if progress is not None:
            progress(i, total)
    if ahead:
        assert chain is not None
        for ticket, (sim, est) in chain.drain().items():
            assert isinstance(ticket, int)
            r = out.executions[ticket]
            if (isinstance(sim, RpcError) or call_profit(sim) != r.realised_profit
                    or runner.limits.gas_limit(est) > runner.limits.gas_limit(ahead_gas[ticket])):
                return None  # at more gas it might not have paid
            out.executions[ticket] = dataclasses.replace(r, extra={**r.extra, "gas_limit": runner.limits.gas_limit(est)})
    out.elapsed_s = time.perf_counter() - started
    return out


def _execute(s: ScoredOpportunity, runner: ExecutionRunner, journal: MemoryJournal,
             state: ReplayState) -> list[ExecutionResult]:
    """The execute stage on ``s``; answered ahead of the anvil (``state.asked`` then holds
    the simulation for it to verify) only when the trade goes ahead: one that drops may
    have dropped for the gas, so it is claimed and re-validated again, on the anvil's
    answer."""
    state.asked = None
    results = stage.execute([s], lambda chain_id: runner, journal)
    if state.asked is None or all(r.status == "simulated" for r in results):
        return results
    state.asked = None
    journal.claimed.discard(s.opportunity.key)
    del journal.results[-len(results):]
    state.ahead = False
    try:
        return stage.execute([s], lambda chain_id: runner, journal)
    finally:
        state.ahead = True


def _profit_on(pools: Mapping[str, PoolState], opp: Opportunity, limits: RiskLimits) -> int:
    """The gross profit of ``opp``'s cycle re-sized on ``pools`` under the input cap (0:
    it no longer pays, or a pool is gone)."""
    try:
        states = [pools[p.lower()] for p in opp.pools]
        sized = resize(states, opp.tokens, max_amount_in=limits.max_amount_in.get(
            opp.tokens[0].lower(), limits.default_max_amount_in))
    except (KeyError, ArbbotError):
        return 0
    return 0 if sized is None else sized.profit


def net_native(result: ExecutionResult) -> int:
    """A paper trade's profit net of its gas, in native wei (0 when its token has no price)."""
    return int(result.extra.get("profit_native") or 0) - gas_native(result)


def gas_native(result: ExecutionResult) -> int:
    """A paper trade's gas cost in native wei: the path stage's estimate at the block's price."""
    return int(result.extra.get("gas_cost_native") or 0)


def hindsight_optimum(opportunities: Sequence[Opportunity]) -> tuple[int, int]:
    """Net native value and count of the pool-disjoint profitable cycles, best first."""
    taken: set[str] = set()
    value = cycles = 0
    for opp in sorted(opportunities, key=rank_key):
        net = opp.net_profit_native
        if net is None or net <= 0:
            continue
        pools = {p.lower() for p in opp.pools}
        if pools & taken:
            continue
        taken |= pools
        value += net
        cycles += 1
    return value, cycles


def _reason(text: str) -> str:
    """A reason without its numbers and addresses, to count reasons alike together."""
    head = text.split(":", 1)[0] if not text.startswith("overlaps") else "overlaps a better cycle"
    return " ".join(w for w in head.split() if not any(c.isdigit() for c in w)).strip() or text[:40]


def reasons(results: Iterable[ExecutionResult], status: str) -> Counter[str]:
    return Counter(_reason(r.reason) for r in results if r.status == status)
