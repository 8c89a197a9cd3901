"""Reads for views, the API and tasks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db.models import Count, Sum
from django.utils import timezone

from webapp.core.models import BackfillCursor, Chain, Dex, Execution, Opportunity, Pool, Token


def chain_get(chain_id: int) -> Chain:
    return Chain.objects.get(chain_id=chain_id)


def chains_active() -> list[Chain]:
    return list(Chain.objects.filter(is_active=True).order_by("chain_id"))


def exclusions(chain_id: int) -> dict[str, str]:
    """The chain's excluded tokens and pools, address -> why: what the path stage must not
    route through (``arbbot.paths.stage.ExclusionSource``). One query; the path stage asks
    once per delta, that is once per block, so there is nothing to cache."""
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
    """Realised PnL since 00:00 UTC in wei: profit of executions whose profit token is WETH,
    minus the gas of every transaction sent (successful or reverted)."""
    from django.db.models import F

    start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    today = Execution.objects.filter(chain_id=chain_id, created_at__gte=start)
    profit = today.filter(status="success", profit_token=weth.lower()).aggregate(s=Sum("realised_profit"))["s"] or 0
    gas = today.exclude(tx_hash="").aggregate(s=Sum(F("gas_used") * F("gas_price_wei")))["s"] or 0
    return int(profit) - int(gas)


def format_amount(amount: Decimal | int, decimals: int | None) -> str:
    """A base-unit integer shown in token units, exactly (no float rounding)."""
    value = Decimal(amount)
    if not decimals:
        return f"{value:,.0f}"
    scaled = value.scaleb(-decimals)
    return f"{scaled:,.6f}"


def executions_stale_pending(older_than_s: float = 120.0) -> list[Execution]:
    """Claimed executions whose worker never recorded an outcome (it crashed or was killed)."""
    cutoff = timezone.now() - dt.timedelta(seconds=older_than_s)
    return list(Execution.objects.filter(status="pending", created_at__lt=cutoff).order_by("id")[:500])


def queue_depths(timeout_s: float = 2.0) -> list[dict[str, Any]]:
    """Ready messages and consumers per queue, read from the broker (passive declares).
    An unreachable broker gives an empty list; /healthz reports the broker itself."""
    from django.conf import settings
    from kombu import Connection

    from workers.queues import DEAD_LETTER_QUEUE, STAGE_QUEUES

    out = []
    try:
        with Connection(settings.ARBBOT.broker_url, connect_timeout=timeout_s) as conn:
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


def dashboard_summary(*, limit: int = 25, since: dt.datetime | None = None) -> dict[str, Any]:
    """Counts, realised profit per token and the latest rows; ``since`` restricts the totals
    to a time window (the demo reports its own run)."""
    now = timezone.now()
    minute_ago = now - dt.timedelta(seconds=60)
    tokens = token_map()
    opportunities = Opportunity.objects.all()
    executions = Execution.objects.all()
    if since is not None:
        opportunities = opportunities.filter(created_at__gte=since)
        executions = executions.filter(created_at__gte=since)
    opp_last_min = opportunities.filter(created_at__gte=minute_ago).count()
    profit_rows = (
        executions.filter(status="success")
        .values("chain_id", "profit_token")
        .annotate(total=Sum("realised_profit"), n=Count("id"))
        .order_by("chain_id", "profit_token")
    )
    profit = []
    for r in profit_rows:
        tok = tokens.get(r["profit_token"])
        profit.append(
            {
                "chain_id": r["chain_id"],
                "token": tok.symbol if tok else r["profit_token"],
                "address": r["profit_token"],
                "executions": r["n"],
                "total_base_units": str(r["total"]),
                "total": format_amount(r["total"], tok.decimals if tok else None),
            }
        )
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
        "recent_opportunities": recent_opps,
        "recent_executions": recent_execs,
        "chains": list(Chain.objects.order_by("chain_id")),
        "queues": queue_depths() if limit else [],
        "generated_at": now,
    }


def backfill_cursors(chain_id: int) -> dict[str, int]:
    """Factory address -> the last block ``arbbot backfill`` has discovered its pools through."""
    rows = BackfillCursor.objects.filter(dex__chain__chain_id=chain_id).values_list("dex__factory", "last_block")
    return {factory: int(last) for factory, last in rows}


def discovery_config(chain_id: int) -> dict[str, list[dict[str, Any]]]:
    """What the scanner's discovery starts from (``ScannerConfig`` ``factories`` and
    ``pools``): each DEX's factory with its start block and backfill cursor
    (``discovered_to``), and every pool the Pool table knows (backfilled or configured)."""
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
        {"address": a, "kind": k, "token0": t0, "token1": t1, "fee_pips": fee, "tick_spacing": ts or 0, "factory": fac}
        for a, k, t0, t1, fee, ts, fac in rows
    ]
    return {"factories": factories, "pools": pools}
