"""Observability of the core: traces (``tracing``), log lines (``logs``) and the calls that
put a piece of work's identity (chain, block, path id) on both: ``bind`` for the rest of a
task, ``scope`` for one step (a span of its own), ``note`` for the current span only.

Metrics stay with the modules that count (``prometheus_client`` objects beside the code);
infrastructure/README.md lists their names, and tests/obs checks the dashboards and alert
rules against the registry."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from opentelemetry import trace

from arbbot.obs import logs, tracing


def _attributes(fields: dict[str, Any]) -> dict[str, Any]:
    return {f"arbbot.{k}": v for k, v in fields.items() if isinstance(v, (str, int, float, bool))}


def bind(**fields: Any) -> None:
    """Name the work at hand: ``chain``, ``block``, ``path_id`` (None: unknown, left out).
    Every later log line of this task carries them, and so does the current span (as
    ``arbbot.<name>`` attributes)."""
    logs.bind(**fields)
    note(**fields)


def note(**fields: Any) -> None:
    """Attributes of the current span only (an outcome, a count)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(_attributes(fields))


@contextlib.contextmanager
def scope(name: str, **fields: Any) -> Iterator[None]:
    """One step as a span of its own, its log lines carrying ``fields``."""
    with logs.bound(**fields):
        if not tracing.enabled():  # not even the API's no-op span
            yield
            return
        with tracing.tracer.start_as_current_span(name, attributes=_attributes(fields)):
            yield
