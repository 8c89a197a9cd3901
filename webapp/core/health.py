"""Dependency checks for ``/healthz`` and the gauges ``/metrics`` exposes."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from prometheus_client import Gauge

EXECUTIONS = Gauge("arbbot_executions", "Executions recorded, by status", ["status"])
OPPORTUNITIES = Gauge("arbbot_opportunities_total", "Opportunities recorded")


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

        with Connection(settings.ARBBOT.broker_url, connect_timeout=timeout_s) as conn:
            conn.ensure_connection(max_retries=1)
        out["broker"] = "ok"
    except Exception as exc:
        out["broker"] = f"error: {type(exc).__name__}"
    return out


def refresh_gauges() -> None:
    from django.db.models import Count

    from webapp.core.models import Execution, Opportunity

    for status, n in Execution.objects.values_list("status").annotate(n=Count("id")).order_by():
        EXECUTIONS.labels(status=status).set(n)
    OPPORTUNITIES.set(Opportunity.objects.count())
