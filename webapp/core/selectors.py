"""Reads for views, the API and tasks."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from sys import intern
from typing import Any, Sequence

from django.db import connection
from django.db.models import Aggregate, Count, FloatField, Q, Sum
from django.utils import timezone

from arbbot.chain.discovery import PoolInfo
from arbbot.scoring.rule import MAX_SENDS_PER_BLOCK
from webapp.core.models import (
    BackfillCursor,
    Chain,
    Dex,
    Execution,
    ModelVersion,
    Opportunity,
    Pool,
    PoolFilter,
    Strategy,
    Token,
    Transaction,
)
from webapp.core.validators import redact_url


def chain_get(chain_id: int) -> Chain:
    return Chain.objects.get(chain_id=chain_id)


def chains_all() -> list[Chain]:
    return list(Chain.objects.order_by("chain_id"))


def chains_active() -> list[Chain]:
    return list(Chain.objects.filter(is_active=True).order_by("chain_id"))


@dataclass(frozen=True)
class StrategySettings:
    """The strategy in force on a chain (the newest ``Strategy`` row, or the defaults when
    none was set: version 0). Workers rebuild what depends on it when ``version`` changes."""

    version: int = 0
    #: where cycles may start; empty: the chain's WETH only (the path engine always adds WETH)
    start_tokens: tuple[str, ...] = ()
    max_hops: int = 3
    min_profit_wei: int = 0
    #: gross profit must exceed gas x margin (exact: a Fraction of the stored decimal)
    margin: Fraction = Fraction(3, 2)
    max_amount_in: dict[str, int] = field(default_factory=dict)
    max_fee_per_gas_wei: int | None = None
    #: at most this many of a block's opportunities go to execute (``arbbot.scoring.rule.at_most``)
    max_sends_per_block: int = MAX_SENDS_PER_BLOCK


def strategy_for(chain_id: int) -> StrategySettings:
    """One indexed query; the path and ml stages ask once per batch, that is once per block."""
    row = Strategy.objects.filter(chain__chain_id=chain_id).order_by("-version").first()
    if row is None:
        return StrategySettings()
    return StrategySettings(
        version=row.version,
        start_tokens=tuple(str(t).lower() for t in row.start_tokens),
        max_hops=row.max_hops,
        min_profit_wei=int(row.min_profit_wei),
        margin=Fraction(row.margin),
        max_amount_in={str(t).lower(): int(v) for t, v in row.max_amount_in.items()},
        max_fee_per_gas_wei=None if row.max_fee_per_gas_wei is None else int(row.max_fee_per_gas_wei),
        max_sends_per_block=row.max_sends_per_block,
    )


def config_effective(chain_id: int | None = None, *, fleet_mode: str = "dry-run") -> dict[str, Any]:
    """The configuration in force, in the shape of the configuration file, for ``config
    show``: chains with their DEXes, tokens, pool filter and strategy. No secrets: every URL
    is shown as scheme and host only (RPC and relay URLs often carry API keys). A chain
    whose mode is blank shows the fleet's (``fleet_mode``) with ``mode_from: fleet``.
    ``Chain.DoesNotExist`` for an unknown ``chain_id``."""
    chains = Chain.objects.order_by("chain_id")
    if chain_id is not None:
        chains = chains.filter(chain_id=chain_id)
        if not chains.exists():
            raise Chain.DoesNotExist(f"unknown chain {chain_id}")
    out = []
    for chain in chains.prefetch_related("dexes", "tokens"):
        strategy = strategy_for(chain.chain_id)
        pool_filter = PoolFilter.objects.filter(chain=chain).first()
        tokens: Any = "discover" if pool_filter is None or pool_filter.discover_tokens else []
        listed = [
            {"address": t.address, "symbol": t.symbol, "decimals": t.decimals}
            | ({"excluded": t.excluded_reason} if t.excluded_reason else {})
            for t in chain.tokens.order_by("symbol", "address")
        ]
        entry: dict[str, Any] = {
            "chain_id": chain.chain_id,
            "name": chain.name,
            "rpc_urls": [redact_url(u) for u in chain.rpc_url_list()],
            "ws_urls": [redact_url(u) for u in chain.ws_url_list()],
            "multicall3": chain.multicall3,
            "weth": chain.weth,
            "executor": chain.executor,
            "is_active": chain.is_active,
            "mode": chain.mode_in_force(fleet_mode),
            "mode_from": "fleet (ARBBOT_MODE)" if chain.mode_from() == "fleet" else "chain",
            "confirmations": chain.confirmations,
            "replace_after_blocks": chain.replace_after_blocks,
            "max_replacements": chain.max_replacements,
            "submission_route": chain.submission_route,
            "relay_urls": [redact_url(u) for u in chain.relay_urls.replace("\n", ",").split(",") if u.strip()],
            "public_fallback": chain.public_fallback,
            "explorer_url": redact_url(chain.explorer_url) if chain.explorer_url else "",
            "dexes": [
                {
                    "name": d.name,
                    "kind": d.kind,
                    "factory": d.factory,
                    "init_code_hash": d.init_code_hash,
                    "fee_pips": d.fee_pips,
                    "start_block": d.start_block,
                }
                | ({"router": d.router} if d.router else {})
                | ({"quoter": d.quoter} if d.quoter else {})
                for d in chain.dexes.order_by("name")
            ],
            "tokens": tokens if tokens == "discover" else listed,
            "known_tokens": len(listed),
            "pool_filter": _pool_filter_dict(pool_filter),
            "strategy": strategy_as_dict(strategy) | {"start_tokens": list(strategy.start_tokens) or [chain.weth]},
        }
        out.append(entry)
    pairs = xchain_config(chain_id)
    return {"chains": out} | ({"xchain": {"pairs": pairs}} if pairs else {})


def xchain_config(chain_id: int | None = None) -> list[dict[str, Any]]:
    """The cross-chain pairs in force (of ``chain_id`` if given) in the configuration file's
    shape; the bridge's endpoint as scheme and host only."""
    from webapp.core.models import XChainPair

    pairs = XChainPair.objects.select_related("chain_a", "chain_b").prefetch_related("tokens", "targets")
    out = []
    for p in pairs:
        if chain_id is not None and chain_id not in (p.chain_a.chain_id, p.chain_b.chain_id):
            continue
        out.append({
            "name": p.name,
            "chains": [p.chain_a.chain_id, p.chain_b.chain_id],
            "dex": p.dex, "quote": p.quote, "base": p.base,
            "slippage_bps": p.slippage_bps, "stall_blocks": p.stall_blocks,
            "bridge": {
                "kind": p.bridge_kind,
                "sends": p.bridge_kind == "devnet",
                "contracts": {int(k): v for k, v in p.bridge_contracts.items()},
                "endpoint": redact_url(p.bridge_endpoint) if p.bridge_endpoint else "",
                "fee_bps": p.bridge_fee_bps,
                "fixed_fee": dict(p.bridge_fixed_fee),
                "delay_blocks": p.bridge_delay_blocks,
                "delay_s": p.bridge_delay_s,
            },
            "tokens": [{"symbol": t.symbol, "canonical": {"chain_id": t.canonical_chain_id, "address": t.canonical_address},
                        "bridged": {"chain_id": t.bridged_chain_id, "address": t.bridged_address}}
                       for t in p.tokens.all()],
            "inventory": [{"symbol": t.symbol, "chain_id": t.chain_id, "target_bps": t.target_bps,
                           "tolerance_bps": t.tolerance_bps, "min_transfer": str(t.min_transfer)}
                          for t in p.targets.all()],
            "costs": dict(p.costs),
        })
    return out


def _pool_filter_dict(row: PoolFilter | None) -> dict[str, Any]:
    """A ``PoolFilter`` row in the configuration file's shape (none: admits every pool)."""
    return {
        "allow_tokens": list(row.allow_tokens) if row else [],
        "deny_tokens": list(row.deny_tokens) if row else [],
        "min_liquidity": (
            {"token": row.min_liquidity_token, "amount": str(row.min_liquidity)}
            if row and row.min_liquidity_token else None
        ),
    }


def pool_filter_of(chain_id: int) -> dict[str, Any]:
    """The chain's pool filter in the configuration file's shape: what the scanner watches
    (``arbbot.chain.pool_filter.PoolFilter.from_dict``)."""
    return _pool_filter_dict(PoolFilter.objects.filter(chain__chain_id=chain_id).first())


def strategy_as_dict(strategy: StrategySettings) -> dict[str, Any]:
    """A strategy as plain JSON values (amounts as decimal strings, the margin as written)."""
    return {
        "version": strategy.version,
        "start_tokens": list(strategy.start_tokens),
        "max_hops": strategy.max_hops,
        "min_profit_wei": str(strategy.min_profit_wei),
        "margin": _fraction_text(strategy.margin),
        "max_amount_in": {t: str(v) for t, v in strategy.max_amount_in.items()},
        "max_fee_per_gas_wei": None if strategy.max_fee_per_gas_wei is None else str(strategy.max_fee_per_gas_wei),
        "max_sends_per_block": strategy.max_sends_per_block,
    }


def _fraction_text(value: Fraction) -> str:
    """A margin as the decimal it was written as (it came from a 4-decimal column)."""
    return str(Decimal(value.numerator) / Decimal(value.denominator)).rstrip("0").rstrip(".") if value else "0"


def chain_dexes(chain_id: int) -> list[Dex]:
    """The chain's DEXes, by name: one query (the execute stage's pool guard reads them
    again every few seconds)."""
    return list(Dex.objects.filter(chain__chain_id=chain_id).order_by("name"))


def chain_dexes_with_sample(chain_id: int) -> list[tuple[Dex, Pool | None]]:
    """The chain's DEXes, each with one of its pools (or None): the executor's deploy checks
    a DEX's init-code hash by recomputing that pool's CREATE2 address."""
    out = []
    for dex in chain_dexes(chain_id):
        pool = Pool.objects.filter(dex=dex).select_related("token0", "token1").order_by("id").first()
        out.append((dex, pool))
    return out


def chain_tokens(chain_id: int) -> list[Token]:
    """The chain's tokens, by symbol then address."""
    return list(Token.objects.filter(chain__chain_id=chain_id).order_by("symbol", "address"))


def exclusions(chain_id: int) -> dict[str, str]:
    """The chain's excluded tokens and pools, address -> why: what the path stage must not
    route through (``arbbot.paths.stage.ExclusionSource``). One query; the path stage keeps
    it a second (``workers.runtime.exclusions``)."""
    tokens = Token.objects.filter(chain__chain_id=chain_id).exclude(excluded_reason="")
    pools = Pool.objects.filter(chain__chain_id=chain_id).exclude(excluded_reason="")
    rows = tokens.values_list("address", "excluded_reason").union(
        pools.values_list("address", "excluded_reason"), all=True
    )
    return dict(rows)


def token_map(chain_id: int | None = None) -> dict[str, Token]:
    qs = Token.objects.select_related("chain")
    if chain_id is not None:
        qs = qs.filter(chain__chain_id=chain_id)
    return {t.address: t for t in qs}


def pnl_today_wei(chain_id: int, weth: str) -> int:
    """Realised PnL since 00:00 UTC in native wei: the realised profit of every execution,
    whatever its token, converted to native when it was recorded (``realised_profit_native``;
    one with no price counts nothing, a row recorded before the conversion existed counts
    its WETH profit only), minus the gas of every transaction sent (successful or reverted).

    A live send asks twice (before its re-validation and again under the nonce lock), so this
    is on each send's way. Only executions that sent a transaction count (a success has one):
    they alone are read, through their partial index (``execution_sent_by_day``), so the cost
    follows the day's sends, not its dropped and simulated decisions (at 100k of those: 25.6 ->
    0.43 ms). The SQL is written out: the ORM's aggregate took 1.04 ms of which 0.3 is the
    query (``bench/execution/pnl.py``); ``tests/webapp/test_pnl_today.py`` checks the sums and
    that the index serves it."""
    start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    with connection.cursor() as cur:
        cur.execute(_PNL_SQL, [weth.lower(), chain_id, start])
        native, legacy, gas = cur.fetchone()
    return int(native or 0) + int(legacy or 0) - int(gas or 0)


# the literal '' is the partial index's own predicate, so the planner matches it as written
_PNL_SQL = (
    "SELECT SUM(realised_profit_native) FILTER (WHERE status = 'success'),"
    " SUM(realised_profit) FILTER (WHERE status = 'success' AND realised_profit_native IS NULL"
    " AND profit_token = %s),"
    " SUM(gas_used * gas_price_wei)"
    f" FROM {Execution._meta.db_table} WHERE chain_id = %s AND created_at >= %s AND NOT (tx_hash = '')"
)


def format_amount(amount: Decimal | int, decimals: int | None) -> str:
    """A base-unit integer shown in token units, exactly (no float rounding)."""
    value = Decimal(amount)
    if not decimals:
        return f"{value:,.0f}"
    scaled = value.scaleb(-decimals)
    return f"{scaled:,.6f}"


def executions_stale_pending(older_than_s: float = 120.0) -> list[Execution]:
    """Claimed executions whose worker never recorded an outcome nor signed a transaction
    (it crashed or was killed before signing)."""
    from django.db.models import Exists, OuterRef

    cutoff = timezone.now() - dt.timedelta(seconds=older_than_s)
    signed = Transaction.objects.filter(
        chain_id=OuterRef("chain_id"), block_number=OuterRef("block_number"), path_id=OuterRef("path_id")
    )
    return list(
        Execution.objects.filter(status="pending", created_at__lt=cutoff)
        .exclude(Exists(signed))
        .order_by("id")[:500]
    )


def transactions_open(chain_id: int) -> list[Transaction]:
    """The chain's transactions that are not final (``Transaction.OPEN_STATES``)."""
    return list(
        Transaction.objects.filter(chain_id=chain_id, state__in=Transaction.OPEN_STATES).order_by("nonce", "id")[:1000]
    )


def transactions_of_nonce(chain_id: int, sender: str, nonce: int) -> list[Transaction]:
    return list(Transaction.objects.filter(chain_id=chain_id, sender=sender.lower(), nonce=nonce).order_by("id"))


def chains_following() -> list[int]:
    """Chains with transactions to follow."""
    return sorted(
        Transaction.objects.filter(state__in=Transaction.OPEN_STATES).values_list("chain_id", flat=True).distinct()
    )


def queue_depths(timeout_s: float = 2.0) -> list[dict[str, Any]]:
    """Ready messages and consumers per queue, read from the broker (passive declares).
    An unreachable broker gives an empty list; /healthz reports the broker itself."""
    from django.conf import settings
    from kombu import Connection

    from workers.queues import DEAD_LETTER_QUEUE, STAGE_QUEUES

    out = []
    try:
        with Connection(settings.ARBBOT.broker_url, ssl=settings.ARBBOT.broker_ssl(), connect_timeout=timeout_s) as conn:
            channel = conn.channel()
            for name in (*STAGE_QUEUES, DEAD_LETTER_QUEUE):
                try:
                    _, messages, consumers = channel.queue_declare(queue=name, passive=True)
                except Exception:  # not declared yet: no worker has started
                    channel = conn.channel()
                    messages, consumers = None, 0
                out.append({"queue": name, "messages": messages, "consumers": consumers})
    except Exception:
        return []
    return out


def _profit_by_token(executions: Any, tokens: dict[str, Any]) -> list[dict[str, Any]]:
    rows = (
        executions.values("chain_id", "profit_token")
        .annotate(total=Sum("realised_profit"), n=Count("id"))
        .order_by("chain_id", "profit_token")
    )
    out = []
    for r in rows:
        tok = tokens.get(r["profit_token"])
        out.append(
            {
                "chain_id": r["chain_id"],
                "token": tok.symbol if tok else r["profit_token"],
                "address": r["profit_token"],
                "executions": r["n"],
                "total_base_units": str(r["total"]),
                "total": format_amount(r["total"], tok.decimals if tok else None),
            }
        )
    return out


class _PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(f) WITHIN GROUP (ORDER BY x)``: interpolated, nulls skipped."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: str, fraction: float) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"a percentile fraction is in [0, 1], got {fraction!r}")
        super().__init__(expression, fraction=repr(float(fraction)))


LATENCY_WINDOW = dt.timedelta(hours=1)  # the dashboard's latency figures without ``since``


def _percentiles(rows: Any, column: str) -> dict[str, Any]:
    figures = rows.exclude(**{f"{column}__isnull": True}).aggregate(
        n=Count(column),
        p50=_PercentileCont(column, 0.50),
        p95=_PercentileCont(column, 0.95),
        p99=_PercentileCont(column, 0.99),
    )
    return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in figures.items()}


def latency_percentiles(since: dt.datetime | None = None) -> dict[str, dict[str, Any]]:
    """p50/p95/p99 (ms) and count of rows since ``since`` (default: the last hour) of

    - ``block_to_decision_ms``: the block's arrival (the follower's stamp) to the execute
      stage's decision on each opportunity (``Execution.decision_latency_ms``);
    - ``block_to_recorded_ms``: the block's arrival to the opportunity's row being written by
      the analytics stage, after the ml stage decided (``Opportunity.latency_ms``): the ml
      decision plus a queue hop and a database write, not the ml decision alone; the rows
      of a block with opportunities chosen for execution wait ``workers.tasks.ml.RECORD_DELAY_S``
      first, until the block's decisions are made.

    A figure is None when no row has it."""
    since = since if since is not None else timezone.now() - LATENCY_WINDOW
    return {
        "block_to_decision_ms": _percentiles(Execution.objects.filter(created_at__gte=since), "decision_latency_ms"),
        "block_to_recorded_ms": _percentiles(Opportunity.objects.filter(created_at__gte=since), "latency_ms"),
    }


def dashboard_summary(*, limit: int = 25, since: dt.datetime | None = None) -> dict[str, Any]:
    """Counts, realised profit per token (live), paper profit apart (simulated profit of
    ``paper`` mode), the latency percentiles (``latency_percentiles``) and the latest rows;
    ``since`` restricts the totals and the latencies to a time window (the demo reports its
    own run; without it, latencies are of the last hour)."""
    now = timezone.now()
    minute_ago = now - dt.timedelta(seconds=60)
    tokens = token_map()
    opportunities = Opportunity.objects.all()
    executions = Execution.objects.all()
    if since is not None:
        opportunities = opportunities.filter(created_at__gte=since)
        executions = executions.filter(created_at__gte=since)
    opp_last_min = opportunities.filter(created_at__gte=minute_ago).count()
    profit = _profit_by_token(executions.filter(status="success"), tokens)
    paper = _profit_by_token(executions.filter(status="simulated", mode="paper"), tokens)
    status_counts = dict(executions.values_list("status").annotate(n=Count("id")).order_by())
    recent_opps = list(Opportunity.objects.order_by("-created_at", "-id")[:limit])
    recent_execs = list(Execution.objects.order_by("-created_at", "-id")[:limit])
    for row in recent_opps:
        tok = tokens.get(row.profit_token)
        row.symbol = tok.symbol if tok else row.profit_token[:10]  # type: ignore[attr-defined]
        row.net_display = format_amount(row.net_profit, tok.decimals if tok else None)  # type: ignore[attr-defined]
        row.in_display = format_amount(row.amount_in, tok.decimals if tok else None)  # type: ignore[attr-defined]
    for row in recent_execs:
        tok = tokens.get(row.profit_token)
        row.symbol = tok.symbol if tok else row.profit_token[:10]  # type: ignore[attr-defined]
        row.realised_display = format_amount(row.realised_profit, tok.decimals if tok else None)  # type: ignore[attr-defined]
        row.predicted_display = format_amount(row.predicted_profit, tok.decimals if tok else None)  # type: ignore[attr-defined]
    return {
        "opportunities_total": opportunities.count(),
        "opportunities_per_second": round(opp_last_min / 60.0, 2),
        "executions_by_status": status_counts,
        "profit_by_token": profit,
        "paper_profit_by_token": paper,
        "recent_opportunities": recent_opps,
        "recent_executions": recent_execs,
        "chains": list(Chain.objects.order_by("chain_id")),
        "queues": queue_depths() if limit else [],
        "latency": latency_percentiles(since),
        "generated_at": now,
    }


def backfill_cursors(chain_id: int) -> dict[str, int]:
    """Factory address -> the last block ``arbbot backfill`` has discovered its pools through."""
    rows = BackfillCursor.objects.filter(dex__chain__chain_id=chain_id).values_list("dex__factory", "last_block")
    return {factory: int(last) for factory, last in rows}


def discovery_config(chain_id: int) -> dict[str, list[Any]]:
    """What the scanner's discovery starts from (``ScannerConfig`` ``factories`` and
    ``pools``): each DEX's factory with its start block and backfill cursor
    (``discovered_to``), and every pool the Pool table knows (backfilled or configured), as
    ``PoolInfo``. The Pool rows are streamed in chunks (a chain has 100k+ of them) and
    their repeated token and factory strings interned, so the load holds one copy of each."""
    cursors = backfill_cursors(chain_id)
    factories = [
        {"address": d.factory, "kind": d.kind, "fee_pips": d.fee_pips, "start_block": d.start_block,
         "discovered_to": cursors.get(d.factory)}
        for d in Dex.objects.filter(chain__chain_id=chain_id).order_by("id")
    ]
    rows = Pool.objects.filter(chain__chain_id=chain_id).order_by("id").values_list(
        "address", "kind", "token0__address", "token1__address", "fee_pips", "tick_spacing", "dex__factory"
    )
    pools = [
        PoolInfo(a, k, intern(t0), intern(t1), fee, ts or 0, intern(fac))
        for a, k, t0, t1, fee, ts, fac in rows.iterator(chunk_size=10_000)
    ]
    return {"factories": factories, "pools": pools}


# --------------------------------------------------------------------------- learned scoring


def _ml_worth(kind: str, e: dict[str, Any], predicted_gas: int, predicted_net: int) -> int:
    """What executing was worth, native wei: a live success its realised profit net of the
    gas paid, a paper one its simulated (re-sized) profit net of the predicted gas (its
    prediction without a price), a revert minus the gas paid, a stale drop 0."""
    if kind == "success":
        realised = e["realised_profit_native"]
        if e["status"] == "simulated":
            return predicted_net if realised is None else int(realised) - predicted_gas
        return int(realised or 0) - int(e["gas_used"]) * int(e["gas_price_wei"])
    return -int(e["gas_used"]) * int(e["gas_price_wei"]) if kind == "reverted" else 0


_ML_EXEC_FIELDS = ("chain_id", "block_number", "path_id", "status", "reason", "mode", "gas_used", "gas_price_wei",
                   "realised_profit_native")


def ml_outcomes(chain_id: int, as_of_block: int) -> list[Any]:
    """The outcomes that inform the features of a batch at ``as_of_block``: those of the
    window ``arbbot.scoring.features`` counts (``ml_outcomes_in`` of its blocks). What a
    fresh ``OutcomeHistory`` counts; the ml stage keeps them block by block instead
    (``workers.runtime.outcome_history``)."""
    from arbbot.scoring.features import LAG_BLOCKS, WINDOW_BLOCKS

    return ml_outcomes_in(chain_id, [(as_of_block - WINDOW_BLOCKS, as_of_block - LAG_BLOCKS)])


def ml_outcomes_in(chain_id: int, blocks: Sequence[tuple[int, int]]) -> list[Any]:
    """The outcomes (``arbbot.scoring.features.Outcome``) of the blocks of these ranges
    (first, last; inclusive): final executions, each with its cycle's pools (from its
    opportunity's row, decided ``execute``; none recorded yet: not an outcome yet) and, for
    a success, the share of the predicted net profit it realised. A cycle recorded under
    two block hashes counts once, with the row recorded first (the lower id): the same
    whichever ranges its block is read in.

    Two range reads, each on the leading columns of its table's index, joined here by
    (block, path): a plan that stays right whatever PostgreSQL knows of the tables. Joined
    in SQL, a read of a few blocks scanned every opportunity recorded once the tables were
    analysed (45 ms at 168,000 rows, bench/ml/history.py), or, with the ranges on both
    sides, compared every execution with every opportunity of the range before (a fresh
    database: the pipeline benchmark's first minute)."""
    from arbbot.scoring.features import Outcome, outcome_kind, profit_share

    if not blocks:
        return []
    within = " OR ".join(["block_number BETWEEN %s AND %s"] * len(blocks))
    bounds = [b for r in blocks for b in r]
    executed: dict[tuple[int, str], tuple[int, Any, Any, Any]] = {}
    for block, path, pools, profit, net, oid in _rows(
        "SELECT block_number, path_id, pools, profit_native, net_profit_native, id"
        f" FROM {Opportunity._meta.db_table} WHERE chain_id = %s AND ({within}) AND decision = 'execute'",
        [chain_id, *bounds],
    ):
        seen = executed.get((block, path))
        if seen is None or oid < seen[0]:  # a cycle recorded under two block hashes: its first row
            executed[(block, path)] = (oid, pools, profit, net)
    out = []
    for block, path, status, reason, mode, gas_used, gas_price, realised in _rows(
        "SELECT block_number, path_id, status, reason, mode, gas_used, gas_price_wei, realised_profit_native"
        f" FROM {Execution._meta.db_table} WHERE chain_id = %s AND ({within}) AND status = ANY(%s)",
        [chain_id, *bounds, ["success", "reverted", "dropped", "simulated"]],
    ):
        kind = outcome_kind(status, reason, mode)
        opp = executed.get((block, path))
        if kind is None or opp is None:
            continue
        _, pools, profit, net = opp
        share = 1.0
        if kind == "success" and profit is not None and net is not None:
            ex = {"status": status, "gas_used": gas_used, "gas_price_wei": gas_price,
                  "realised_profit_native": realised}
            share = profit_share(_ml_worth(kind, ex, int(profit) - int(net), int(net)), int(net))
        out.append(Outcome(block, path, tuple(json.loads(pools) if isinstance(pools, str) else pools), kind, share))
    return out


def ml_dataset(chain_id: int | None = None, *, since: dt.datetime | None = None) -> Any:
    """The labelled opportunities (``arbbot.scoring.model.Dataset``) in time order: each
    executed opportunity whose features were recorded and whose execution taught something
    (``outcome_kind``), with what executing it was worth in native wei (``_ml_worth``) and
    the rule's verdict under its chain's strategy."""
    import numpy as np

    from arbbot.scoring.features import FEATURES, from_mappings, outcome_kind
    from arbbot.scoring.model import Dataset
    from arbbot.scoring.rule import RuleScorer

    execs = Execution.objects.filter(status__in=("success", "reverted", "dropped", "simulated"))
    opps = Opportunity.objects.filter(features__isnull=False, decision="execute")
    if chain_id is not None:
        execs, opps = execs.filter(chain_id=chain_id), opps.filter(chain_id=chain_id)
    if since is not None:
        execs, opps = execs.filter(created_at__gte=since), opps.filter(created_at__gte=since)
    taught = {}
    for e in execs.values(*_ML_EXEC_FIELDS):
        kind = outcome_kind(e["status"], e["reason"], e["mode"])
        if kind is not None:
            taught[(e["chain_id"], e["block_number"], e["path_id"])] = (kind, e)
    rules: dict[int, RuleScorer] = {}
    rows, y, value, net, gas, rule_exec, block = [], [], [], [], [], [], []
    seen = set()
    for o in opps.order_by("block_number", "created_at", "id").values(
        "chain_id", "block_number", "path_id", "features", "profit_native", "net_profit_native",
    ):
        key = (o["chain_id"], o["block_number"], o["path_id"])
        if key not in taught or key in seen or o["profit_native"] is None:
            continue
        seen.add(key)
        kind, e = taught[key]
        profit, net_native = int(o["profit_native"]), int(o["net_profit_native"])
        worth = _ml_worth(kind, e, profit - net_native, net_native)
        if o["chain_id"] not in rules:
            st = strategy_for(o["chain_id"])
            rules[o["chain_id"]] = RuleScorer(margin=st.margin, min_net_profit=st.min_profit_wei)
        rows.append(o["features"])
        y.append(kind == "success")
        value.append(float(worth))
        net.append(float(net_native))
        gas.append(float(profit - net_native))
        rule_exec.append(rules[o["chain_id"]].refusal(profit, profit - net_native) is None)
        block.append(o["block_number"])
    return Dataset(
        X=from_mappings(rows, FEATURES), y=np.array(y, dtype=bool), value=np.array(value),
        net_native=np.array(net), gas_native=np.array(gas), rule_execute=np.array(rule_exec, dtype=bool),
        block=np.array(block, dtype=np.int64), features=FEATURES,
    )


def model_champion_ref() -> Any:
    """The promoted model's id and artefact digest (``arbbot.scoring.stage.Champion``), or
    ``None``: one small indexed query, asked per batch."""
    from arbbot.scoring.stage import Champion

    row = ModelVersion.objects.filter(is_champion=True).values_list("id", "artefact_sha256", "name").first()
    return None if row is None else Champion(version_id=row[0], sha256=row[1], name=row[2])


def model_artefact(version_id: int) -> bytes | None:
    row = ModelVersion.objects.filter(id=version_id).values_list("artefact", flat=True).first()
    return None if row is None else bytes(row)


def model_versions(limit: int = 20) -> list[ModelVersion]:
    return list(ModelVersion.objects.defer("artefact").order_by("-id")[:limit])


def ml_drift(window: dt.timedelta = dt.timedelta(hours=1), limit: int = 5000) -> dict[str, float]:
    """Per feature, the drift (PSI, ``arbbot.scoring.drift``) of the last ``window``'s
    recorded features (the newest ``limit``, every decision: ``scored_features``) from the
    champion's reference (``ml_reference``: the same population over its training window);
    empty with no champion or nothing recorded."""
    from arbbot.scoring.drift import psi

    champion = ModelVersion.objects.filter(is_champion=True).values_list("metrics", "features").first()
    if champion is None or not champion[0].get("reference"):
        return {}
    names = tuple(champion[1])
    X = scored_features(Q(created_at__gte=timezone.now() - window), names, limit)
    return psi(champion[0]["reference"], X, names) if len(X) else {}


def scored_features(where: Q, names: Sequence[str], limit: int, newest: str = "-id") -> Any:
    """The recorded features (columns ``names``) of the newest ``limit`` opportunities that
    match ``where`` (by ``newest``): every decision, as the ml stage scored them (a model
    trains on the executed ones only, but is asked about all)."""
    from arbbot.scoring.features import from_mappings

    rows = list(Opportunity.objects.filter(where, features__isnull=False)
                .order_by(newest).values_list("features", flat=True)[:limit])
    return from_mappings(rows, names)


#: the most recorded opportunities a model's drift reference is drawn from
REFERENCE_ROWS = 20_000


def ml_reference(train: Any) -> tuple[Any, str]:
    """What a model's drift is measured against (``arbbot.scoring.drift.reference`` of the
    matrix returned) and what that is: the recorded features of every opportunity scored
    over its training rows' blocks, chain by chain (the newest ``REFERENCE_ROWS`` in all), the
    population ``ml_drift`` reads; the training rows themselves when none was recorded
    there (paper labels: a backtest labels every opportunity it scored, so its rows are
    that population already). A reference of the executed rows alone would count the
    difference between what is executed and what is scored as drift."""
    import numpy as np

    chains = train.X[:, list(train.features).index("chain_id")]
    each = np.unique(chains)
    parts = []
    for chain_id in each:  # each on its (chain, block) index, newest blocks first
        blocks = train.block[chains == chain_id]
        where = Q(chain_id=int(chain_id), block_number__gte=int(blocks.min()), block_number__lte=int(blocks.max()))
        parts.append(scored_features(where, train.features, REFERENCE_ROWS // len(each), newest="-block_number"))
    X = np.concatenate(parts) if parts else np.zeros((0, len(train.features)))
    if len(X):
        return X, f"{len(X)} recorded opportunities, every decision, over the training blocks"
    return train.X, f"the {len(train)} training rows (nothing recorded over their blocks)"


def model_summary() -> dict[str, Any] | None:
    """The champion (else the newest version) for the dashboard: name, when promoted, why,
    its holdout metrics and the rule's, and its EV-against-threshold plot (inline SVG)."""
    from webapp.core.plots import ev_curve_svg

    row = (ModelVersion.objects.defer("artefact").filter(is_champion=True).first()
           or ModelVersion.objects.defer("artefact").order_by("-id").first())
    if row is None:
        return None
    m = row.metrics or {}
    return {
        "id": row.id, "name": row.name, "is_champion": row.is_champion, "promoted_at": row.promoted_at,
        "decision": row.decision, "n_train": row.n_train, "n_holdout": row.n_holdout,
        "model": m.get("model", {}), "rule": m.get("rule", {}), "k": m.get("k"),
        "svg": ev_curve_svg(m.get("ev_curve", {})),
        "versions": ModelVersion.objects.count(),
    }


# --------------------------------------------------------------------------- the console
# Every read of the console's pages (webapp/core/views.py). A page refreshes every second or
# two, so every query here is bounded: a time window on an indexed ``created_at`` (never a
# count of a whole table), a row limit, or both.

#: the console's time windows (a filter's ``window``), newest first
WINDOWS: dict[str, dt.timedelta] = {
    "5m": dt.timedelta(minutes=5),
    "1h": dt.timedelta(hours=1),
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
}
#: the charts' bucket width per window: a few hundred points at most
BUCKETS: dict[str, dt.timedelta] = {
    "5m": dt.timedelta(seconds=5),
    "1h": dt.timedelta(minutes=1),
    "24h": dt.timedelta(minutes=10),
    "7d": dt.timedelta(hours=1),
}
LIST_LIMIT = 100
NATIVE_DECIMALS = 18  # every chain here pays gas in an 18-decimal native token
#: the execution statuses whose transaction was sent and settled (the win rate's base)
SETTLED = ("success", "reverted")


@dataclass(frozen=True)
class ConsoleFilters:
    """A list page's filters, decoded from its query string (``console_filters``)."""

    window: str = "1h"
    chain_id: int | None = None
    dex: str = ""
    token: str = ""
    status: str = ""

    @property
    def since(self) -> dt.datetime:
        return timezone.now() - WINDOWS[self.window]

    def as_query(self) -> dict[str, str]:
        return {k: str(v) for k, v in (("window", self.window), ("chain", self.chain_id), ("dex", self.dex),
                                       ("token", self.token), ("status", self.status)) if v not in (None, "")}


def console_filters(query: Any, *, default_window: str = "1h") -> ConsoleFilters:
    """The filters of a query string (a ``QueryDict`` or a dict): an unknown window is the
    default one, a chain that is not a whole number is ignored (no filter), text is trimmed."""
    window = str(query.get("window") or default_window)
    chain = str(query.get("chain") or "").strip()
    return ConsoleFilters(
        window=window if window in WINDOWS else default_window,
        chain_id=int(chain) if chain.isdigit() else None,
        dex=str(query.get("dex") or "").strip()[:64],
        token=str(query.get("token") or "").strip()[:64],
        status=str(query.get("status") or "").strip()[:16],
    )


def _token_addresses(text: str, chain_id: int | None) -> list[str]:
    """The addresses a token filter names: an address as given, else every token whose
    symbol it is (case-insensitive)."""
    if text.startswith("0x"):
        return [text.lower()]
    qs = Token.objects.filter(symbol__iexact=text)
    if chain_id is not None:
        qs = qs.filter(chain__chain_id=chain_id)
    return list(qs.values_list("address", flat=True))


def _dex_pools(name: str, chain_id: int | None) -> list[str]:
    qs = Pool.objects.filter(dex__name__iexact=name)
    if chain_id is not None:
        qs = qs.filter(chain__chain_id=chain_id)
    return list(qs.values_list("address", flat=True)[:10_000])


def _filtered_opportunities(f: ConsoleFilters) -> Any:
    qs = Opportunity.objects.filter(created_at__gte=f.since)
    if f.chain_id is not None:
        qs = qs.filter(chain_id=f.chain_id)
    if f.status:
        qs = qs.filter(decision=f.status)
    if f.token:
        addrs = _token_addresses(f.token, f.chain_id)
        qs = qs.filter(Q(profit_token__in=addrs) | Q(tokens__has_any_keys=addrs)) if addrs else qs.none()
    if f.dex:
        pools = _dex_pools(f.dex, f.chain_id)
        qs = qs.filter(pools__has_any_keys=pools) if pools else qs.none()
    return qs


def _filtered_executions(f: ConsoleFilters) -> Any:
    from django.db.models import Exists, OuterRef

    qs = Execution.objects.filter(created_at__gte=f.since)
    if f.chain_id is not None:
        qs = qs.filter(chain_id=f.chain_id)
    if f.status:
        qs = qs.filter(status=f.status)
    if f.token:
        qs = qs.filter(profit_token__in=_token_addresses(f.token, f.chain_id))
    if f.dex:
        pools = _dex_pools(f.dex, f.chain_id)
        through = Opportunity.objects.filter(
            chain_id=OuterRef("chain_id"), block_number=OuterRef("block_number"), path_id=OuterRef("path_id"),
            pools__has_any_keys=pools or [""],
        )
        qs = qs.filter(Exists(through))
    return qs


def _explorer_urls() -> dict[int, str]:
    return {c: u.rstrip("/") for c, u in Chain.objects.exclude(explorer_url="").values_list("chain_id", "explorer_url")}


def _symbol(tokens: dict[str, Token], address: str) -> str:
    tok = tokens.get(address)
    return tok.symbol if tok and tok.symbol else address[:10]


def _amount(tokens: dict[str, Token], address: str, amount: Any) -> str:
    tok = tokens.get(address)
    return format_amount(amount, tok.decimals if tok else None)


def _execution_row(e: Execution, tokens: dict[str, Token], explorers: dict[int, str]) -> dict[str, Any]:
    """An execution as the console shows it: amounts in token units, the prediction the
    send was sized on (the re-sized one when the execute stage re-sized it), realised minus
    predicted, the transaction's explorer link."""
    predicted = int(e.final_predicted_profit) or int(e.predicted_profit)
    realised = int(e.realised_profit)
    settled = e.status in SETTLED
    explorer = explorers.get(e.chain_id, "")
    return {
        "id": e.id, "created_at": e.created_at, "chain_id": e.chain_id, "block_number": e.block_number,
        "path_id": e.path_id, "mode": e.mode, "status": e.status, "reason": e.reason,
        "symbol": _symbol(tokens, e.profit_token),
        "predicted": _amount(tokens, e.profit_token, predicted), "predicted_base_units": str(predicted),
        "realised": _amount(tokens, e.profit_token, realised) if settled else "–",
        "difference": _amount(tokens, e.profit_token, realised - predicted) if settled else "–",
        "difference_sign": (realised > predicted) - (realised < predicted) if settled else 0,
        "gas_used": e.gas_used, "tx_hash": e.tx_hash,
        "tx_url": f"{explorer}/tx/{e.tx_hash}" if explorer and e.tx_hash else "",
        "latency_ms": e.decision_latency_ms,
    }


def console_executions(f: ConsoleFilters, limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
    tokens, explorers = token_map(f.chain_id), _explorer_urls()
    rows = _filtered_executions(f).order_by("-created_at", "-id")[:limit]
    return [_execution_row(e, tokens, explorers) for e in rows]


def console_opportunities(f: ConsoleFilters, limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
    tokens = token_map(f.chain_id)
    out = []
    for o in _filtered_opportunities(f).order_by("-created_at", "-id")[:limit]:
        predicted = int(o.net_profit)
        out.append({
            "created_at": o.created_at, "chain_id": o.chain_id, "block_number": o.block_number,
            "path_id": o.path_id, "hops": len(o.pools), "symbol": _symbol(tokens, o.profit_token),
            "route": " → ".join(_symbol(tokens, t) for t in o.tokens),
            "amount_in": _amount(tokens, o.profit_token, o.amount_in),
            "net_profit": _amount(tokens, o.profit_token, predicted),
            "score": o.score, "decision": o.decision, "reason": o.reason, "latency_ms": o.latency_ms,
        })
    return out


def console_execution(execution_id: int) -> dict[str, Any] | None:
    """One execution with its opportunity (the cycle's pools and tokens) and its transactions
    (the journal: every attempt, by nonce), or None."""
    e = Execution.objects.filter(id=execution_id).first()
    if e is None:
        return None
    tokens, explorers = token_map(e.chain_id), _explorer_urls()
    row = _execution_row(e, tokens, explorers)
    explorer = explorers.get(e.chain_id, "")
    opp = (Opportunity.objects.filter(chain_id=e.chain_id, block_number=e.block_number, path_id=e.path_id)
           .order_by("-created_at").first())
    txs = Transaction.objects.filter(chain_id=e.chain_id, block_number=e.block_number, path_id=e.path_id).order_by("id")
    row.update({
        "amount_in": _amount(tokens, e.profit_token, e.amount_in),
        "final_amount_in": _amount(tokens, e.profit_token, e.final_amount_in) if e.final_amount_in else "–",
        "predicted_at_scan": _amount(tokens, e.profit_token, e.predicted_profit),
        "predicted_at_send": _amount(tokens, e.profit_token, e.final_predicted_profit) if e.final_predicted_profit else "–",
        "realised_base_units": str(e.realised_profit),
        "gas_price_wei": str(e.gas_price_wei),
        "gas_paid": format_amount(int(e.gas_used) * int(e.gas_price_wei), NATIVE_DECIMALS),
        "realised_native": format_amount(e.realised_profit_native, NATIVE_DECIMALS)
        if e.realised_profit_native is not None else "–",
        "mined_block": e.mined_block,
        "opportunity": None if opp is None else {
            "route": " → ".join(_symbol(tokens, t) for t in opp.tokens), "pools": list(opp.pools),
            "score": opp.score, "decision": opp.decision, "block_hash": opp.block_hash,
            "gas_cost": format_amount(opp.gas_cost, NATIVE_DECIMALS), "latency_ms": opp.latency_ms,
        },
        "transactions": [
            {"nonce": t.nonce, "kind": t.kind, "state": t.state, "route": t.route, "tx_hash": t.tx_hash,
             "tx_url": f"{explorer}/tx/{t.tx_hash}" if explorer else "", "sent_block": t.sent_block,
             "mined_block": t.mined_block, "max_fee_per_gas": str(t.max_fee_per_gas), "error": t.error}
            for t in txs
        ],
    })
    return row


def kill_switch_state() -> bool | None:
    """The fleet's kill switch: engaged or not, None when Redis cannot be read (the
    workers then treat it as engaged)."""
    import redis
    from django.conf import settings

    from arbbot.hotstate import Fleet

    try:
        client = redis.Redis.from_url(settings.ARBBOT.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        return Fleet(client, settings.ARBBOT.redis_prefix).kill_switch_engaged()
    except redis.RedisError:
        return None


def _hot(chain_id: int) -> Any:
    import redis
    from django.conf import settings

    from arbbot.hotstate import HotState

    client = redis.Redis.from_url(settings.ARBBOT.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
    return HotState(client, settings.ARBBOT.redis_prefix, chain_id)


def console_overview(window: str = "24h") -> dict[str, Any]:
    """The overview's figures over ``window`` (``WINDOWS``): opportunities per second (the
    last minute), executions by outcome, realised profit per token and net in native,
    paper profit apart, win rate, gas spent, block-to-decision latency percentiles (the
    last hour at most), queue depths and consumers (worker health), each chain's head, the
    kill switch, and the latest executions. Bounded: every query is a window on an indexed
    ``created_at``."""
    from django.db.models import F

    window = window if window in WINDOWS else "24h"
    now = timezone.now()
    since = now - WINDOWS[window]
    tokens = token_map()
    executions = Execution.objects.filter(created_at__gte=since)
    opp_last_min = Opportunity.objects.filter(created_at__gte=now - dt.timedelta(seconds=60)).count()
    status_counts = dict(executions.values_list("status").annotate(n=Count("id")).order_by("status"))
    sent = ~Q(tx_hash="")
    native = list(
        executions.values("chain_id").annotate(
            realised=Sum("realised_profit_native", filter=Q(status="success")),
            gas=Sum(F("gas_used") * F("gas_price_wei"), filter=sent),
            paper=Sum("profit_native", filter=Q(status="simulated", mode="paper")),
        ).order_by("chain_id")
    )
    for n in native:
        realised, gas = int(n["realised"] or 0), int(n["gas"] or 0)
        n.update(realised=format_amount(realised, NATIVE_DECIMALS), gas=format_amount(gas, NATIVE_DECIMALS),
                 net=format_amount(realised - gas, NATIVE_DECIMALS), net_sign=(realised > gas) - (realised < gas),
                 paper=format_amount(n["paper"] or 0, NATIVE_DECIMALS))
    won = status_counts.get("success", 0)
    settled = sum(status_counts.get(s, 0) for s in SETTLED)
    chains = chains_all()
    heads = {}
    for c in chains:
        try:
            heads[c.chain_id] = _hot(c.chain_id).head()
        except Exception:  # Redis down: the kill switch says so too
            heads[c.chain_id] = None
    queues = queue_depths(timeout_s=1.0)
    explorers = _explorer_urls()
    return {
        "window": window,
        "windows": list(WINDOWS),
        "generated_at": now,
        "chains": [{"chain": c, "head": (heads.get(c.chain_id) or (None,))[0]} for c in chains],
        "opportunities_per_second": round(opp_last_min / 60.0, 2),
        "executions_by_status": status_counts,
        "executions_total": sum(status_counts.values()),
        "win_rate": None if not settled else round(100.0 * won / settled, 1),
        "settled": settled,
        "profit_by_token": _profit_by_token(executions.filter(status="success"), tokens),
        "paper_profit_by_token": _profit_by_token(executions.filter(status="simulated", mode="paper"), tokens),
        "native": native,
        "latency": latency_percentiles(max(since, now - LATENCY_WINDOW)),
        "queues": queues,
        "workers_up": sum(1 for q in queues if q["consumers"]),
        "kill_switch": kill_switch_state(),
        "recent_executions": [_execution_row(e, tokens, explorers) for e in
                              Execution.objects.order_by("-created_at", "-id")[:10]],
    }


def console_pools(f: ConsoleFilters, *, excluded_only: bool = False, limit: int = LIST_LIMIT * 2) -> dict[str, Any]:
    """Pools with their hot state (Redis): reserves or price, the block of their last change,
    how many blocks behind the chain's head that is, and their exclusion with its reason.
    Filters: chain, DEX (name), token (symbol or address), excluded only."""
    qs = Pool.objects.select_related("chain", "dex", "token0", "token1").order_by("chain__chain_id", "id")
    if f.chain_id is not None:
        qs = qs.filter(chain__chain_id=f.chain_id)
    if f.dex:
        qs = qs.filter(dex__name__iexact=f.dex)
    if f.token:
        addrs = _token_addresses(f.token, f.chain_id)
        qs = qs.filter(Q(token0__address__in=addrs) | Q(token1__address__in=addrs))
    if excluded_only:
        qs = qs.exclude(excluded_reason="")
    pools = list(qs[:limit])
    by_chain: dict[int, list[Pool]] = {}
    for p in pools:
        by_chain.setdefault(p.chain.chain_id, []).append(p)
    states: dict[str, Any] = {}
    heads: dict[int, int | None] = {}
    redis_ok = True
    for chain_id, ps in by_chain.items():
        try:
            hot = _hot(chain_id)
            head = hot.head()
            heads[chain_id] = head[0] if head else None
            states.update(hot.get_pools([p.address for p in ps]))
        except Exception:
            redis_ok, heads[chain_id] = False, None
    rows = []
    for p in pools:
        st = states.get(p.address)
        head = heads.get(p.chain.chain_id)
        if st is None:
            state = "not scanned"
        elif st.kind == "v2":
            state = (f"{format_amount(st.reserve0, p.token0.decimals)} {p.token0.symbol} / "
                     f"{format_amount(st.reserve1, p.token1.decimals)} {p.token1.symbol}")
        else:
            state = f"tick {st.tick}, liquidity {st.liquidity}"
        rows.append({
            "chain_id": p.chain.chain_id, "address": p.address, "dex": p.dex.name if p.dex else "", "kind": p.kind,
            "pair": f"{p.token0.symbol or p.token0.address[:10]}/{p.token1.symbol or p.token1.address[:10]}",
            "fee_pips": p.fee_pips, "state": state,
            "last_change_block": st.block_number if st else None,
            "staleness_blocks": head - st.block_number if st and head is not None else None,
            "excluded_reason": p.excluded_reason,
        })
    return {"pools": rows, "heads": heads, "redis_ok": redis_ok, "limit": limit, "truncated": len(pools) == limit}


EXECUTION_STATUSES = tuple(s for s, _ in Execution.STATUSES)
#: TimescaleDB's continuous aggregate of opportunities per minute (0012_console_aggregates)
OPPORTUNITIES_1M = "console_opportunities_1m"
_EPOCH = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"


def console_filter_options() -> dict[str, list[Any]]:
    """What the list pages' filters offer: chains, DEX names, token symbols (small tables)."""
    return {
        "chains": list(Chain.objects.order_by("chain_id").values_list("chain_id", "name")),
        "dexes": sorted(set(Dex.objects.values_list("name", flat=True))),
        "tokens": sorted({s for s in Token.objects.exclude(symbol="").values_list("symbol", flat=True)}),
    }


def _has_relation(name: str) -> bool:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return bool(cur.fetchone()[0])


def _rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())


def console_series(window: str = "1h") -> dict[str, Any]:
    """The overview's charts over ``window`` in buckets of ``BUCKETS[window]``: opportunities
    per second, realised PnL net of gas (cumulative, native), and block-to-decision latency
    p50/p95/p99. Opportunities come from the TimescaleDB continuous aggregate when it exists
    and the buckets are a minute or wider, else from the table; every query is bounded by
    the window on an indexed ``created_at``. Amounts are summed exactly in SQL and Python;
    the chart's native units are floats for drawing only."""
    window = window if window in WINDOWS else "1h"
    width = BUCKETS[window]
    now = timezone.now()
    start = now - WINDOWS[window]
    step = int(width.total_seconds())
    first = int(start.timestamp()) // step * step
    ticks = list(range(first, int(now.timestamp()) // step * step + 1, step))
    bucket = f"date_bin(%s, {{col}}, {_EPOCH})"
    if step >= 60 and _has_relation(OPPORTUNITIES_1M):
        opp = _rows(f"SELECT {bucket.format(col='bucket')} b, sum(n) FROM {OPPORTUNITIES_1M} "
                    "WHERE bucket >= %s GROUP BY b", [width, start])
        source = "continuous aggregate"
    else:
        opp = _rows(f"SELECT {bucket.format(col='created_at')} b, count(*) FROM core_opportunity "
                    "WHERE created_at >= %s GROUP BY b", [width, start])
        source = "table"
    per_bucket = {int(b.timestamp()): int(n) for b, n in opp}
    ex = _rows(
        f"SELECT {bucket.format(col='created_at')} b, "
        "coalesce(sum(realised_profit_native) FILTER (WHERE status = 'success'), 0), "
        "coalesce(sum(gas_used * gas_price_wei) FILTER (WHERE tx_hash <> ''), 0), "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY decision_latency_ms), "
        "percentile_cont(0.95) WITHIN GROUP (ORDER BY decision_latency_ms), "
        "percentile_cont(0.99) WITHIN GROUP (ORDER BY decision_latency_ms) "
        "FROM core_execution WHERE created_at >= %s GROUP BY b", [width, start])
    by_t = {int(r[0].timestamp()): r[1:] for r in ex}
    pnl, total = [], 0
    lat: dict[str, list[float | None]] = {"p50": [], "p95": [], "p99": []}
    for t in ticks:
        realised, gas, *ps = by_t.get(t, (0, 0, None, None, None))
        total += int(realised) - int(gas)
        pnl.append(total / 10**NATIVE_DECIMALS)
        for k, v in zip(lat, ps):
            lat[k].append(None if v is None else round(float(v), 2))
    return {
        "window": window, "bucket_s": step, "source": source, "t": ticks,
        "opportunities_per_s": [round(per_bucket.get(t, 0) / step, 3) for t in ticks],
        "pnl_native": pnl, "pnl_native_wei": str(total), **lat,
    }

# --------------------------------------------------------------------------- cross-chain


def xchain_open(kind: str | None = None, pair: str | None = None) -> list[int]:
    """Ids of the sagas not in a final state (of ``kind``, of ``pair`` if given), oldest first."""
    from arbbot.crosschain.saga import FINAL
    from webapp.core.models import XChainSaga

    qs = XChainSaga.objects.exclude(state__in=FINAL)
    if kind:
        qs = qs.filter(kind=kind)
    if pair:
        qs = qs.filter(plan__pair=pair)
    return list(qs.order_by("id").values_list("id", flat=True))


def xchain_pairs(name: str | None = None) -> list[Any]:
    """The configured cross-chain pairs (``name``: that one only) as the bridge queue's
    ``arbbot.crosschain.engine.Pair``: each chain's nodes, WETH and the pair's V2 DEX
    there, the token mapping, the bridge and the strategy's settings."""
    from arbbot.crosschain import engine
    from arbbot.crosschain.strategy import Band, Costs
    from webapp.core.models import XChainPair

    pairs = XChainPair.objects.select_related("chain_a", "chain_b").prefetch_related("tokens", "targets")
    if name is not None:
        pairs = pairs.filter(name=name)
    out = []
    for p in pairs:
        sides = []
        for chain in (p.chain_a, p.chain_b):
            dex = Dex.objects.get(chain=chain, name=p.dex)
            sides.append(engine.PairChain(chain.chain_id, tuple(chain.rpc_url_list()), chain.weth.lower(),
                                          dex.router.lower(), dex.factory.lower(), dex.fee_pips))
        a_id = p.chain_a.chain_id
        bands = {}
        for t in p.targets.all():
            # a Band is the first chain's share; a target given on the second chain is its complement
            target = t.target_bps if t.chain_id == a_id else 10_000 - t.target_bps
            bands[t.symbol] = Band(target, t.tolerance_bps, int(t.min_transfer))
        costs = Costs(**{k: int(v) for k, v in p.costs.items()})
        config = engine.Config(quote=p.quote, base=p.base, costs=costs, bands=bands, slippage_bps=p.slippage_bps,
                               stall_blocks=p.stall_blocks)
        bridge = engine.BridgeConfig(
            kind=p.bridge_kind, contracts={int(k): v for k, v in p.bridge_contracts.items()},
            endpoint=p.bridge_endpoint, fee_bps=p.bridge_fee_bps,
            fixed_fee={k: int(v) for k, v in p.bridge_fixed_fee.items()},
            delay_blocks=p.bridge_delay_blocks, delay_s=p.bridge_delay_s,
        )
        tokens = {t.symbol: {t.canonical_chain_id: t.canonical_address, t.bridged_chain_id: t.bridged_address}
                  for t in p.tokens.all()}
        out.append(engine.Pair(p.name, sides[0], sides[1], tokens, bridge, config))
    return out


def xchain_pnl(since: Any = None) -> dict[str, Any]:
    """Cross-chain PnL per token: realised trade profit (in each trade's quote token) less
    the bridge fees paid by rebalances (in the token bridged); saga counts and alerts (of
    the sagas created at or after ``since`` if given)."""
    from arbbot.crosschain.saga import FINAL
    from webapp.core.models import XChainSaga

    rows: dict[str, dict[str, int]] = {}
    states: dict[str, int] = {}
    alerts: dict[str, int] = {}
    sagas = XChainSaga.objects.filter(created_at__gte=since) if since is not None else XChainSaga.objects.all()
    for kind, state, plan, realised, alert in sagas.values_list(
            "kind", "state", "plan", "realised_profit", "alert").iterator():
        states[state] = states.get(state, 0) + 1
        if alert:
            alerts[alert] = alerts.get(alert, 0) + 1
        if state not in FINAL or realised is None:
            continue
        token = str(plan.get("quote") if kind == "trade" else plan.get("symbol"))
        row = rows.setdefault(token, {"trades": 0, "trade_profit": 0, "rebalances": 0, "rebalance_cost": 0})
        if kind == "trade":
            row["trades"] += 1
            row["trade_profit"] += int(realised)
        else:
            row["rebalances"] += 1
            row["rebalance_cost"] -= int(realised)
    by_token = [
        {"token": t, "trades": r["trades"], "trade_profit": str(r["trade_profit"]), "rebalances": r["rebalances"],
         "rebalance_cost": str(r["rebalance_cost"]), "net": str(r["trade_profit"] - r["rebalance_cost"])}
        for t, r in sorted(rows.items())
    ]
    return {"by_token": by_token, "sagas_by_state": states, "alerts": alerts,
            "open": sum(n for s, n in states.items() if s not in FINAL)}
