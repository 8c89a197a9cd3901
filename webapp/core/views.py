"""Thin views: the dashboard, the health endpoint and Prometheus metrics. Every one needs a
login but ``/healthz`` (``webapp.core.roles``)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_not_required, permission_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from webapp.core import roles, selectors
from webapp.core.health import check_dependencies


@permission_required(roles.VIEW, raise_exception=True)
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "core/dashboard.html", {**selectors.dashboard_summary(), "scoring": selectors.model_summary()})


@login_not_required
def healthz(request: HttpRequest) -> JsonResponse:
    checks = check_dependencies()
    ok = all(v == "ok" for v in checks.values())
    return JsonResponse(checks, status=200 if ok else 503)


class _PrometheusText(BaseRenderer):
    media_type = "text/plain"
    format = "txt"

    def render(self, data: Any, accepted_media_type: Any = None, renderer_context: Any = None) -> Any:
        if isinstance(data, dict):  # an error: 401, 403
            return "".join(f"{k}: {v}\n" for k, v in data.items())
        return data


class _AlwaysText(BaseContentNegotiation):
    """Whatever the client accepts: the exposition format (and 401/403 before it)."""

    def select_parser(self, request: Any, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        return renderers[0], renderers[0].media_type


class Metrics(APIView):
    """Prometheus' scrape (``Authorization: Bearer <ARBBOT_METRICS_TOKEN>``), or a viewer's
    session or API token; not routed at the edge (nginx, the ingress)."""

    authentication_classes = [roles.ScrapeToken, TokenAuthentication, SessionAuthentication]
    permission_classes = [roles.ViewOrScrape]
    renderer_classes = [_PrometheusText]
    content_negotiation_class = _AlwaysText
    schema = None  # not part of the API's schema

    def get(self, request: Request) -> HttpResponse:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        from webapp.core.health import refresh_gauges

        refresh_gauges()
        return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404: the API's as JSON naming the path (a path parameter of the wrong form, such as
    a chain id that is not a whole number, matches no route); a page's as Django's."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"no API route matches {request.path!r} (see /api/schema/)"}, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)
