"""Per-process resources the tasks share: the Redis client, the tracer (``start_tracing``),
and per chain the hot state, the scanner, the path engine, the execution runner and the ml
stage's window of recent outcomes (``outcome_history``). Built on first use from the
database configuration and kept for the life of the worker process (a Scanner or a
PathEngine is expensive to build and cheap to keep up to date, the window cheap to move)."""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Sequence

import redis

from arbbot.chain.create2 import Factory, PoolGuard
from arbbot.chain.rpc import RpcClient
from arbbot.chain.scanner import Scanner, ScannerConfig
from arbbot.chain.tx import LocalSigner
from arbbot.config import get_settings
from arbbot.execution.fees import FeePolicy
from arbbot.execution.follow import FollowPolicy
from arbbot.execution.nonces import NonceManager
from arbbot.execution.runner import ExecutionRunner, RiskLimits
from arbbot.execution.submit import SubmissionConfig, Submitter, make_submitter
from arbbot.hotstate import Fleet, HotState
from arbbot.obs import tracing
from arbbot.paths import resize
from arbbot.paths.engine import PathEngine
from arbbot.paths.gas import GasModel
from arbbot.paths.stage import PathStage
from arbbot.replay.backtest import BacktestStrategy
from arbbot.replay.recorder import Recorder
from arbbot.replay.recording import RecordingWriter
from arbbot.types import PoolDelta, PoolState
from workers import heap, kept

log = logging.getLogger(__name__)


def start_tracing(service_name: str) -> bool:
    """Install the SDK (if ``OTEL_*`` asks for it, ``arbbot.obs.tracing``) and Celery's
    instrumentation in this process: its publishes carry the trace context in their
    message headers, and its tasks continue the trace they were sent from."""
    if not tracing.configure(service_name):
        return False
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    instrumentor = CeleryInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
    return True


@functools.lru_cache(maxsize=1)
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url)


def prefix() -> str:
    return get_settings().redis_prefix


@functools.lru_cache(maxsize=1)
def fleet() -> Fleet:
    return Fleet(redis_client(), prefix())


@functools.lru_cache(maxsize=None)
def hotstate(chain_id: int) -> HotState:
    return HotState(redis_client(), prefix(), chain_id)


def _chain(chain_id: int) -> Any:
    from webapp.core import selectors

    return selectors.chain_get(chain_id)


@functools.lru_cache(maxsize=None)
def rpc(chain_id: int) -> RpcClient:
    return RpcClient(_chain(chain_id).rpc_url_list(), timeout_s=10.0)


@functools.lru_cache(maxsize=None)
def scanner(chain_id: int) -> Scanner:
    from webapp.core import selectors

    chain = _chain(chain_id)
    # factories with their start block and backfill cursor, the pools backfilled, and
    # the pool filter (which of them are watched)
    config = ScannerConfig.from_dict(
        {
            "chain_id": chain.chain_id,
            "rpc_urls": chain.rpc_url_list(),
            "multicall": chain.multicall3,
            **selectors.discovery_config(chain_id),
            "pool_filter": selectors.pool_filter_of(chain_id),
        }
    )
    # the pool filter in force, kept a second (``pool_filters``): an edit (config apply, admin,
    # API) is in force within it, without a restart, and no block waits on reading it
    return Scanner(config, store=hotstate(chain_id), filter_source=lambda: pool_filters.get(chain_id))


def _read_pool_filter(chain_id: int, _: Any) -> dict[str, Any]:
    from webapp.core import selectors

    return selectors.pool_filter_of(chain_id)


_path_stages: dict[int, tuple[int, PathStage]] = {}


def path_stage(chain_id: int) -> PathStage:
    """The chain's path stage, built from its strategy in force (start tokens, max hops;
    ``strategy``): a new version builds a new stage, which re-reads every pool from the hot
    state on its first block, so an edited strategy applies within ``STRATEGY_TTL_S``."""
    strategy = strategy_in_force(chain_id)
    cached = _path_stages.get(chain_id)
    if cached is not None and cached[0] == strategy.version:
        return cached[1]
    if cached is not None:
        heap.forget()  # the old stage's engine must be collectable again
    chain = _chain(chain_id)
    # GasModel's defaults are the executor contract's measured gas (arbbot.contracts.gas).
    cap = get_settings().path_max_per_pool or None
    stage = PathStage(
        PathEngine(
            base_tokens=list(strategy.start_tokens),  # none: every token liquid against WETH
            weth=chain.weth,
            max_hops=strategy.max_hops,
            gas_model=GasModel(),
            max_per_pool=cap,
            max_cycles=get_settings().path_max_cycles,
        )
    )
    if cached is not None:
        log.info("chain %s: strategy v%d in force, path stage rebuilt", chain_id, strategy.version)
    _path_stages[chain_id] = (strategy.version, stage)
    return stage


path_stage.cache_clear = _path_stages.clear  # type: ignore[attr-defined]  # reset() forgets it too


#: The strategy and limits in force, and the champion model, are read again at most this
#: often per process: an edit (file, admin, API) or a promotion reaches the running workers
#: within it (a block on the devnet), and the path, ml and execute stages do not each spend
#: a database round trip per block on a row that almost never changes; in a worker the
#: refresher (``workers.kept``) reads them again in the background, off the stages' way.
STRATEGY_TTL_S = 1.0


def _read_strategy(chain_id: int, _: Any) -> Any:
    from webapp.core import selectors

    return selectors.strategy_for(chain_id)


strategies = kept.PerKey("strategy", _read_strategy, STRATEGY_TTL_S)


def strategy_in_force(chain_id: int) -> Any:
    """The chain's strategy in force (``selectors.strategy_for``), at most ``STRATEGY_TTL_S`` old."""
    return strategies.get(chain_id)


def _read_exclusions(chain_id: int, _: Any) -> dict[str, str]:
    from webapp.core import selectors

    return selectors.exclusions(chain_id)


exclusions_kept = kept.PerKey("exclusions", _read_exclusions, STRATEGY_TTL_S)
pool_filters = kept.PerKey("pool filter", _read_pool_filter, STRATEGY_TTL_S)


def exclusions(chain_id: int) -> dict[str, str]:
    """The chain's recorded exclusions (``selectors.exclusions``: tokens and pools, address
    -> why), at most ``STRATEGY_TTL_S`` old: an operator's exclusion reaches the path stage
    within it, as an edited strategy does. A token the scan stage flags is kept out by the
    path stage itself from the block it sees the flag until the record holds it."""
    return exclusions_kept.get(chain_id)


#: The recent outcomes the ml stage's features count are brought up to date at most this
#: often per chain, or when the batches' block has moved ``LAG_BLOCKS`` on (or back): one
#: move of the window per block or two at most, not one per batch, whatever the batch rate.
HISTORY_TTL_S = 1.0

_windows: dict[int, Any] = {}  # chain id -> its OutcomeWindow


def _read_history(chain_id: int, block: int) -> Any:
    window = _windows.get(chain_id)
    if window is None:
        from arbbot.scoring.history import OutcomeWindow
        from webapp.core import selectors

        window = _windows.setdefault(chain_id, OutcomeWindow(functools.partial(selectors.ml_outcomes_in, chain_id)))
    return window.at(block)


def _history_fits(held_block: int, block: int) -> bool:
    from arbbot.scoring.features import LAG_BLOCKS

    return held_block <= block < held_block + LAG_BLOCKS


histories = kept.PerKey("outcome history", _read_history, HISTORY_TTL_S, _history_fits)


def outcome_history(chain_id: int, block: int) -> Any:
    """The chain's ``OutcomeHistory`` for a batch at ``block``: its recent outcomes as of
    the block they were last brought up to date for, a snapshot of the chain's
    ``OutcomeWindow`` (``arbbot.scoring.history``), moved again after ``HISTORY_TTL_S`` (by
    the refresher, off the task's way) or once the block is ``LAG_BLOCKS`` past that one or
    before it. A move reads only the blocks the window lacks, a margin of recent ones and a
    few of its sweep (``selectors.ml_outcomes_in``), not the whole window; a read that fails
    raises here (the ml stage fails closed) and leaves the window as it was."""
    return histories.get(chain_id, block)


MODE_TTL_S = 1.0  # a mode changed by an operator applies within this


def _read_mode(chain_id: int, _: Any) -> str:
    return str(_chain(chain_id).mode_in_force(get_settings().mode))


modes = kept.PerKey("mode", _read_mode, MODE_TTL_S)


def chain_mode(chain_id: int) -> Callable[[], str]:
    """The chain's mode, at most ``MODE_TTL_S`` old: the chain's own setting, else the
    fleet's ARBBOT_MODE (dry-run unless set). Raises when it cannot be read: the runner
    then sends nothing."""
    return lambda: modes.get(chain_id)


def mode_at_start() -> list[tuple[int, str]]:
    """Per active chain, the line the execute worker logs at start: the mode it runs, where
    that came from, and, when live was asked without what it needs
    (``arbbot.execution.modes``), that it is refused and why; with the log level to use.
    A snapshot: the chain's mode may be changed while the worker runs (``chain_mode``)."""
    import os

    from eth_account import Account

    from arbbot.execution.modes import live_missing
    from webapp.core import selectors

    settings = get_settings()
    fleet = (
        f"the fleet's ARBBOT_MODE={settings.mode}" if os.environ.get("ARBBOT_MODE", "").strip()
        else "the default: neither ARBBOT_MODE nor the chain's mode is set"
    )
    lines = []
    for chain in selectors.chains_active():
        mode = chain.mode_in_force(settings.mode)
        source = f"the chain's mode setting '{chain.mode}'" if chain.mode_from() == "chain" else fleet
        where = f"chain {chain.chain_id} ({chain.name})"
        if mode != "live":
            lines.append((logging.INFO, f"{where}: mode {mode}, from {source}; nothing is sent"))
            continue
        missing = live_missing(has_signer=bool(settings.signer_key), executor=chain.executor, chain_id=chain.chain_id)
        if missing:
            lines.append((logging.ERROR, f"{where}: live asked ({source}) but REFUSED, nothing will be sent, "
                                         f"every opportunity dropped: {'; '.join(missing)}"))
        else:
            sender = Account.from_key(settings.signer_key).address  # the address only, never the key
            lines.append((logging.WARNING, f"{where}: mode LIVE, from {source}: signing as {sender}, "
                                           f"executor {chain.executor}; real transactions will be sent"))
    if not lines:
        lines.append((logging.WARNING, "no active chain configured: nothing to execute"))
    return lines


def submitter(chain_id: int, trading_address: str) -> Submitter | None:
    """The chain's private route, or None for public (``arbbot.execution.submit``)."""
    chain = _chain(chain_id)
    if chain.submission_route == "public":
        return None
    config = SubmissionConfig(
        route=chain.submission_route,
        relay_urls=tuple(u.strip() for u in chain.relay_urls.replace("\n", ",").split(",") if u.strip()),
        public_fallback=chain.public_fallback,
    )
    return make_submitter(config, rpc(chain_id), trading_address=trading_address,
                          reputation_key=get_settings().relay_reputation_key or None)


def follow_policy(chain_id: int) -> FollowPolicy:
    chain = _chain(chain_id)
    return FollowPolicy(confirmations=max(1, chain.confirmations),
                        replace_after_blocks=max(1, chain.replace_after_blocks),
                        max_replacements=chain.max_replacements)


POOL_GUARD_TTL_S = 10.0  # a DEX added or removed by `config apply` reaches the guard this fast


def _read_guard(chain_id: int, _: Any) -> PoolGuard:
    """The chain's guard over its DEXes as read now: the one held while they are the same
    (its pools proven stay proven, where a new guard every read, twice a ``POOL_GUARD_TTL_S``,
    made each traded pool's CREATE2 address again: ~50 µs a pool)."""
    from webapp.core import selectors

    factories = tuple(Factory.configured(d.kind, d.factory, d.init_code_hash, d.name)
                      for d in selectors.chain_dexes(chain_id))
    held = _guards_held.get(chain_id)
    if held is not None and held.factories == factories:
        return held
    _guards_held[chain_id] = guard = PoolGuard(factories)
    return guard


_guards_held: dict[int, PoolGuard] = {}  # chain -> the guard last read (``_read_guard``)


guards = kept.PerKey("pool guard", _read_guard, POOL_GUARD_TTL_S)


def pool_guard(chain_id: int) -> Callable[[Sequence[PoolState]], str | None]:
    """The chain's ``PoolGuard`` over its configured DEXes (at most ``POOL_GUARD_TTL_S``
    old): a cycle through a pool no configured (factory, init-code hash) made is dropped
    unsent."""

    def guard(pools: Sequence[PoolState]) -> str | None:
        try:
            checked = guards.get(chain_id)
        except Exception as exc:  # fails closed: DEXes that cannot be read guard nothing through
            log.exception("chain %s: pool guard cannot read the DEXes", chain_id)
            return f"pool guard: the chain's DEXes cannot be read: {exc}"[:300]
        return checked(pools)

    return guard


_runners: dict[int, tuple[int, ExecutionRunner]] = {}


def runner(chain_id: int) -> ExecutionRunner:
    """The chain's execution runner. A new strategy version (``strategy``: its input caps,
    its fee cap) builds a new runner, so limits edited in a file, the admin or the API apply
    without a restart, within ``STRATEGY_TTL_S``. Nonces, open transactions and cooldowns
    live in Redis: a new runner loses none of them."""
    strategy = strategy_in_force(chain_id)
    cached = _runners.get(chain_id)
    if cached is not None and cached[0] == strategy.version:
        return cached[1]
    built = _build_runner(chain_id, strategy.max_amount_in, strategy.max_fee_per_gas_wei)
    if cached is not None:
        log.info("chain %s: strategy v%d in force, execution limits rebuilt", chain_id, strategy.version)
    _runners[chain_id] = (strategy.version, built)
    return built


runner.cache_clear = _runners.clear  # type: ignore[attr-defined]  # reset() forgets it too


def _tighter(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _limits(chain_id: int, strategy_caps: dict[str, int], strategy_fee_cap: int | None) -> tuple[dict[str, int], int | None]:
    """Per-token input caps and the fee cap: the tighter of the environment's and the strategy's."""
    settings = get_settings()
    caps = dict(settings.max_amount_in)
    for token, cap in strategy_caps.items():
        caps[token] = min(cap, caps.get(token, cap))
    return caps, _tighter(settings.max_fee_cap(chain_id), strategy_fee_cap)


def fee_policy(chain_id: int, fee_cap: int | None) -> FeePolicy:
    settings = get_settings()
    return FeePolicy(
        max_fee_per_gas_wei=fee_cap,
        inclusion_blocks=settings.fee_inclusion_blocks,
        priority_percentile=settings.fee_priority_percentile,
        min_priority_fee_wei=settings.min_priority_fee_wei,
    )


def _build_runner(chain_id: int, strategy_caps: dict[str, int], strategy_fee_cap: int | None) -> ExecutionRunner:
    """A runner whose limits are the tighter of the environment's and the strategy's."""
    settings = get_settings()
    chain = _chain(chain_id)
    client = rpc(chain_id)
    signer = LocalSigner(client, settings.signer_key, chain_id=chain_id) if settings.signer_key else None
    hot = hotstate(chain_id)
    resize.warm()  # loads the compiled sizing code now, not inside the first send (~1 s)
    caps, fee_cap = _limits(chain_id, strategy_caps, strategy_fee_cap)
    return ExecutionRunner(
        rpc=client,
        executor=chain.executor,
        mode=chain_mode(chain_id),
        chain_id=chain_id,
        submitter=submitter(chain_id, signer.address) if signer else None,
        pools=hot.get_pools,
        signer=signer,
        kill_switch=hot.fleet.kill_switch_engaged,
        is_orphaned=hot.is_orphaned,
        reads=hot.send_reads,
        limits=RiskLimits(
            max_amount_in=caps,
            default_max_amount_in=settings.default_max_amount_in,
            daily_loss_limit_wei=settings.daily_loss_limit_wei,
            max_open_txs=settings.max_open_txs or None,
            pool_cooldown_s=settings.pool_cooldown_s,
        ),
        daily_pnl_wei=lambda: _pnl_today(chain_id, chain.weth),
        nonces=NonceManager(hot, client, signer.address) if signer else None,
        fee_policy=fee_policy(chain_id, fee_cap),
        native_token=chain.weth,
        hot=hot,
        pool_guard=pool_guard(chain_id),
    )


def _pnl_today(chain_id: int, weth: str) -> int:
    from webapp.core import selectors

    return selectors.pnl_today_wei(chain_id, weth)


@functools.lru_cache(maxsize=None)
def recorder(chain_id: int) -> Recorder | None:
    """The chain's recorder when ``ARBBOT_RECORD_DIR`` is set (None: recording is off)."""
    directory = get_settings().record_dir
    if directory is None:
        return None
    chain = _chain(chain_id)
    return Recorder(RecordingWriter(directory, chain_id), rpc(chain_id), fee_policy(chain_id, None),
                    lambda: recording_meta(chain_id), dump_state=bool(chain.is_devnet))


def recording_meta(chain_id: int) -> dict[str, Any]:
    """What a new recording of the chain says about it: the chain, the strategy and limits in
    force (as a backtest runs them), the fee policy and the exclusions."""
    from webapp.core import selectors

    settings = get_settings()
    chain = _chain(chain_id)
    strategy = selectors.strategy_for(chain_id)
    caps, fee_cap = _limits(chain_id, strategy.max_amount_in, strategy.max_fee_per_gas_wei)
    policy = fee_policy(chain_id, fee_cap)
    return {
        "chain": {"name": chain.name, "weth": chain.weth.lower(), "executor": (chain.executor or "").lower(),
                  "is_devnet": bool(chain.is_devnet)},
        "strategy_version": strategy.version,
        "strategy": BacktestStrategy(
            start_tokens=tuple(strategy.start_tokens), max_hops=strategy.max_hops, margin=strategy.margin,
            min_profit_wei=strategy.min_profit_wei, max_amount_in=caps,
            max_sends_per_block=strategy.max_sends_per_block,
            default_max_amount_in=settings.default_max_amount_in, max_fee_per_gas_wei=fee_cap,
            max_per_pool=settings.path_max_per_pool or None, name=f"recorded (strategy v{strategy.version})",
        ).to_wire(),
        "fee_policy": {"inclusion_blocks": policy.inclusion_blocks, "priority_percentile": policy.priority_percentile,
                       "history_blocks": policy.history_blocks, "min_priority_fee_wei": policy.min_priority_fee_wei},
        "exclusions": dict(selectors.exclusions(chain_id)),
    }


def record_block(chain_id: int, delta: PoolDelta) -> None:
    """Record ``delta`` when recording is on. Never fails the scan: a recording that cannot
    be written is logged (the next block that does not continue it starts a new file)."""
    try:
        rec = recorder(chain_id)
        if rec is not None:
            rec.record(delta)
    except Exception:
        log.exception("chain %s: could not record block %s", chain_id, delta.block_number)


def reset() -> None:
    """Forget every cached resource (tests; a changed configuration)."""
    heap.forget()
    for fn in (hotstate, rpc, scanner, path_stage, runner, recorder, redis_client, champion):
        fn.cache_clear()
    for values in (strategies, exclusions_kept, pool_filters, histories, modes, guards, champion_ref):
        values.forget()
    _windows.clear()
    _guards_held.clear()


def _read_champion_ref(_: Any) -> Any:
    from webapp.core import selectors

    return selectors.model_champion_ref()


champion_ref = kept.Kept("champion", _read_champion_ref, STRATEGY_TTL_S)


@functools.lru_cache(maxsize=1)
def champion() -> Any:
    """The process's ``ChampionCache``: asks the registry at most every ``STRATEGY_TTL_S``,
    reloads on promotion."""
    from arbbot.scoring.stage import ChampionCache
    from webapp.core import selectors

    return ChampionCache(champion_ref.get, selectors.model_artefact)
