"""Thin views: the console's pages (each with the partial HTMX polls to refresh it without a
reload), its chart data, the kill-switch button, the health endpoint and Prometheus
metrics. Every one needs a login but ``/healthz`` (``webapp.core.roles``); reads go
through ``selectors``, the one write (the kill switch) through ``services``."""

from __future__ import annotations

from typing import Any

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_not_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from webapp.core import roles, selectors, services
from webapp.core.health import check_dependencies

log = logging.getLogger(__name__)
viewer = permission_required(roles.VIEW, raise_exception=True)


def _page(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    """The page, or only its live part when HTMX polls for it (``HX-Request``)."""
    partial = request.headers.get("HX-Request") == "true"
    return render(request, f"core/{template}{'_live' if partial else ''}.html", {
        **context, "links": settings.CONSOLE_LINKS, "can_operate": request.user.has_perm(roles.OPERATE),
        "windows_list": list(selectors.WINDOWS),
    })


@viewer
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """The overview: figures, queues, workers, the kill switch, the latest executions, charts."""
    window = request.GET.get("window", "24h")
    context = selectors.console_overview(window)
    if request.headers.get("HX-Request") != "true":
        context["scoring"] = selectors.model_summary()
    return _page(request, "overview", context)


@viewer
@require_GET
def series(request: HttpRequest) -> JsonResponse:
    """The overview's charts: opportunities per second, realised PnL, latency percentiles."""
    return JsonResponse(selectors.console_series(request.GET.get("window", "1h")))


@viewer
@require_GET
def opportunities(request: HttpRequest) -> HttpResponse:
    f = selectors.console_filters(request.GET)
    return _page(request, "opportunities", {"f": f, "rows": selectors.console_opportunities(f),
                                            "options": selectors.console_filter_options(), "decisions": ("execute", "skip")})


@viewer
@require_GET
def executions(request: HttpRequest) -> HttpResponse:
    f = selectors.console_filters(request.GET)
    return _page(request, "executions", {"f": f, "rows": selectors.console_executions(f),
                                         "options": selectors.console_filter_options(),
                                         "statuses": selectors.EXECUTION_STATUSES})


@viewer
@require_GET
def execution(request: HttpRequest, execution_id: int) -> HttpResponse:
    row = selectors.console_execution(execution_id)
    if row is None:
        raise Http404(f"no execution {execution_id}")
    return _page(request, "execution", {"e": row})


@viewer
@require_GET
def pools(request: HttpRequest) -> HttpResponse:
    f = selectors.console_filters(request.GET)
    excluded = request.GET.get("excluded") == "1"
    return _page(request, "pools", {"f": f, "excluded": excluded, **selectors.console_pools(f, excluded_only=excluded),
                                    "options": selectors.console_filter_options()})


@viewer
@require_GET
def model(request: HttpRequest) -> HttpResponse:
    return _page(request, "model", {"scoring": selectors.model_summary(), "versions": selectors.model_versions()})


@permission_required(roles.OPERATE, raise_exception=True)
@require_POST
def kill_switch(request: HttpRequest) -> HttpResponse:
    """Engage (``engaged=1``) or release (``engaged=0``) the fleet's kill switch: operators
    only, with the form's CSRF token; then back to the overview."""
    import redis

    engaged = request.POST.get("engaged") == "1"
    try:
        services.fleet_hotstate().set_kill_switch(engaged)
    except redis.RedisError as exc:
        return HttpResponse(f"Redis unreachable, the kill switch was not changed: {exc}", status=503,
                            content_type="text/plain")
    log.warning("kill switch %s by %s (console)", "engaged" if engaged else "released", request.user)
    return redirect("dashboard")


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
