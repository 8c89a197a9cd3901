"""Dependency checks for ``/healthz`` and the gauges ``/metrics`` exposes."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from prometheus_client import Gauge

EXECUTION_ROWS = Gauge("arbbot_db_execution_rows", "Execution rows in the database, by status", ["status"])
OPPORTUNITY_ROWS = Gauge("arbbot_db_opportunity_rows", "Opportunity rows in the database")
KILL_SWITCH = Gauge("arbbot_kill_switch_engaged", "1 while the kill switch is on")
PNL_DAILY = Gauge("arbbot_pnl_daily_wei", "Realised PnL since 00:00 UTC in wei, net of gas", ["chain"])
LOSS_LIMIT = Gauge("arbbot_risk_daily_loss_limit_wei", "The configured daily loss limit, wei", ["chain"])
ML_DRIFT = Gauge(
    "arbbot_ml_feature_drift", "Drift (PSI) of the last hour's features from the champion model's training window",
    ["feature"],
)


def check_dependencies(timeout_s: float = 2.0) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        out["db"] = "ok"
    except Exception as exc:  # any failure means "not ok"; the reason is reported
        out["db"] = f"error: {type(exc).__name__}"
    try:
        import redis

        redis.Redis.from_url(settings.ARBBOT.redis_url, socket_timeout=timeout_s).ping()
        out["redis"] = "ok"
    except Exception as exc:
        out["redis"] = f"error: {type(exc).__name__}"
    try:
        from kombu import Connection

        with Connection(settings.ARBBOT.broker_url, ssl=settings.ARBBOT.broker_ssl(), connect_timeout=timeout_s) as conn:
            conn.ensure_connection(max_retries=1)
        out["broker"] = "ok"
    except Exception as exc:
        out["broker"] = f"error: {type(exc).__name__}"
    return out


def refresh_gauges() -> None:
    from django.db.models import Count

    from webapp.core.models import Execution, Opportunity

    from webapp.core import selectors

    for status, n in Execution.objects.values_list("status").annotate(n=Count("id")).order_by():
        EXECUTION_ROWS.labels(status=status).set(n)
    OPPORTUNITY_ROWS.set(Opportunity.objects.count())
    for chain in selectors.chains_active():
        PNL_DAILY.labels(chain=str(chain.chain_id)).set(selectors.pnl_today_wei(chain.chain_id, chain.weth))
        LOSS_LIMIT.labels(chain=str(chain.chain_id)).set(settings.ARBBOT.daily_loss_limit_wei)
    ML_DRIFT.clear()
    for feature, value in selectors.ml_drift().items():
        ML_DRIFT.labels(feature=feature).set(value)
    try:
        import redis

        from arbbot.hotstate import Fleet

        r = redis.Redis.from_url(settings.ARBBOT.redis_url, socket_timeout=2)
        KILL_SWITCH.set(1 if Fleet(r, settings.ARBBOT.redis_prefix).kill_switch_engaged() else 0)
    except Exception:  # the gauge keeps its last value; /healthz reports Redis itself
        pass
