"""Thin views: the dashboard, the health endpoint and Prometheus metrics."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from webapp.core import selectors
from webapp.core.health import check_dependencies


def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "core/dashboard.html", {**selectors.dashboard_summary(), "scoring": selectors.model_summary()})


def healthz(request: HttpRequest) -> JsonResponse:
    checks = check_dependencies()
    ok = all(v == "ok" for v in checks.values())
    return JsonResponse(checks, status=200 if ok else 503)


def metrics(request: HttpRequest) -> HttpResponse:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from webapp.core.health import refresh_gauges

    refresh_gauges()
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)


__all__ = ["dashboard", "healthz", "metrics", "connection"]
