"""Traces: the core's tracer and the one place a process installs the OpenTelemetry SDK.

Off by default: unless the standard ``OTEL_*`` variables ask for an exporter
(``arbbot.config.trace_exporter``), no SDK is installed and every span the code starts is
the API's no-op (no exporter, no thread, next to no cost). On: the SDK's tracer provider
with a batching processor and the OTLP/HTTP exporter, which read their own ``OTEL_*``
settings (endpoint, headers, sampler ``OTEL_TRACES_SAMPLER``, batch delays ``OTEL_BSP_*``,
``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``).

Spans keep their attributes small and public: JSON-RPC method names and batch sizes, never
parameters (a send's parameter is a signed transaction); chain, block, path id.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import trace

log = logging.getLogger(__name__)

#: The core's spans (JSON-RPC calls, stage steps): a no-op until ``configure`` ran.
tracer = trace.get_tracer("arbbot")

_provider: Any = None


def configure(service_name: str, exporter: Any = None) -> bool:
    """Install the SDK in this process when the settings ask for it (or with ``exporter``,
    a ``SpanExporter``: tests); True when spans are now recorded. Once per process: a
    second call keeps the first provider. ``service_name`` is the default of
    ``OTEL_SERVICE_NAME``."""
    global _provider
    if _provider is not None:
        return True
    if exporter is None:
        from arbbot.config import get_settings

        kind = get_settings().trace_exporter
        if kind is None:
            return False
        if kind == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporter = ConsoleSpanExporter()
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
    from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = OTELResourceDetector().detect().attributes.get(SERVICE_NAME) or service_name
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    # Batching: a span costs a queue append on the hot path; a thread exports. The
    # processor restarts its thread in a forked child (Celery's prefork pool).
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _provider = provider
    log.info("tracing on: service %s, exporter %s", name, type(exporter).__name__)
    return True


def enabled() -> bool:
    return _provider is not None


def flush(timeout_ms: int = 5000) -> None:
    """Export what is buffered (a pool child about to exit, a command finishing)."""
    if _provider is not None:
        _provider.force_flush(timeout_ms)
