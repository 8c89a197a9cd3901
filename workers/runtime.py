"""Per-process resources the tasks share: the Redis client, and per chain the hot state,
the scanner, the path engine and the execution runner. Built on first use from the
database configuration and kept for the life of the worker process (a Scanner or a
PathEngine is expensive to build and cheap to keep up to date)."""

from __future__ import annotations

import functools
import logging
from typing import Any

import redis

from arbbot.chain.rpc import RpcClient
from arbbot.chain.scanner import Scanner, ScannerConfig
from arbbot.chain.tx import LocalSigner
from arbbot.config import get_settings
from arbbot.execution.fees import FeePolicy
from arbbot.execution.nonces import NonceManager
from arbbot.execution.runner import ExecutionRunner, RiskLimits
from arbbot.hotstate import HotState
from arbbot.paths.engine import PathEngine
from arbbot.paths.gas import GasModel
from arbbot.paths.stage import PathStage

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url)


def prefix() -> str:
    return get_settings().redis_prefix


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
    # factories with their start block and backfill cursor, and the pools backfilled
    config = ScannerConfig.from_dict(
        {
            "chain_id": chain.chain_id,
            "rpc_urls": chain.rpc_url_list(),
            "multicall": chain.multicall3,
            **selectors.discovery_config(chain_id),
        }
    )
    return Scanner(config, store=hotstate(chain_id))


@functools.lru_cache(maxsize=None)
def path_stage(chain_id: int) -> PathStage:
    chain = _chain(chain_id)
    # GasModel's defaults are the executor contract's measured gas (arbbot.contracts.gas).
    cap = get_settings().path_max_per_pool or None
    return PathStage(
        PathEngine(base_tokens=[chain.weth], weth=chain.weth, max_hops=3, gas_model=GasModel(), max_per_pool=cap)
    )


@functools.lru_cache(maxsize=None)
def runner(chain_id: int) -> ExecutionRunner:
    settings = get_settings()
    chain = _chain(chain_id)
    client = rpc(chain_id)
    signer = LocalSigner(client, settings.signer_key) if settings.signer_key else None
    hot = hotstate(chain_id)
    return ExecutionRunner(
        rpc=client,
        executor=chain.executor,
        mode=settings.mode,
        pools=hot.get_pools,
        signer=signer,
        kill_switch=hot.fleet.kill_switch_engaged,
        is_orphaned=hot.is_orphaned,
        limits=RiskLimits(
            max_amount_in=settings.max_amount_in,
            default_max_amount_in=settings.default_max_amount_in,
            daily_loss_limit_wei=settings.daily_loss_limit_wei,
            max_open_txs=settings.max_open_txs or None,
            pool_cooldown_s=settings.pool_cooldown_s,
        ),
        daily_pnl_wei=lambda: _pnl_today(chain_id, chain.weth),
        nonces=NonceManager(hot, client, signer.address) if signer else None,
        fee_policy=FeePolicy(
            max_fee_per_gas_wei=settings.max_fee_cap(chain_id),
            inclusion_blocks=settings.fee_inclusion_blocks,
            priority_percentile=settings.fee_priority_percentile,
            min_priority_fee_wei=settings.min_priority_fee_wei,
        ),
        native_token=chain.weth,
        hot=hot,
    )


def _pnl_today(chain_id: int, weth: str) -> int:
    from webapp.core import selectors

    return selectors.pnl_today_wei(chain_id, weth)


def reset() -> None:
    """Forget every cached resource (tests; a changed configuration)."""
    for fn in (hotstate, rpc, scanner, path_stage, runner, redis_client):
        fn.cache_clear()
