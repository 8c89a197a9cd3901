"""The API against its committed OpenAPI schema (``docs/openapi.yaml``), property-tested by
schemathesis through the real Django app on the real PostgreSQL and Redis: for every
operation, data that fits the schema and data that does not, as an admin (who may call
every operation). No answer is a 5xx; every status, content type and body is the
documented one; every 4xx body names the problem. Deterministic (derandomized, no example
database), ``EXAMPLES_PER_MODE`` cases per operation and mode: 1,000+ in all."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.webapp.api_support import role_client, seed
from webapp.core import services

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
EXAMPLES_PER_MODE = 28


def four_xx_names_the_problem(ctx: Any, response: Any, case: Any) -> None:
    """A 4xx body is JSON with a non-empty ``detail``, or a message under each bad field."""
    if not 400 <= response.status_code < 500:
        return
    body = json.loads(response.content)
    assert isinstance(body, dict) and body, f"{response.status_code} without a body naming the problem"

    def text(value: Any) -> str:
        if isinstance(value, list):
            return " ".join(text(v) for v in value)
        if isinstance(value, dict):
            return " ".join(f"{k} {text(v)}" for k, v in value.items())
        return str(value)

    assert all(text(v).strip() for v in body.values()), f"{response.status_code} with an empty message: {body}"


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          four_xx_names_the_problem]


@pytest.fixture()
def keep_the_test_connection() -> Any:
    """The WSGI app closes the database connection around each request, as it is inside the
    test's transaction (Django's test client keeps it, as here)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.mark.django_db
def test_the_api_keeps_its_schema_under_generated_requests(keep_the_test_connection: Any) -> None:
    seed()
    role_client("admin")
    key = services.user_token("admin-user")
    schema = schemathesis.openapi.from_path(str(SCHEMA))
    schema.app = get_wsgi_application()
    headers = {"Authorization": f"Token {key}"}
    counts: Counter[str] = Counter()
    timings: list[str] = []

    for label in schema:
        for method in schema[label]:
            operation = schema[label][method]
            modes = [schemathesis.GenerationMode.POSITIVE]
            if len(operation.body) or len(operation.path_parameters) or len(operation.query):
                modes.append(schemathesis.GenerationMode.NEGATIVE)  # else nothing can be made invalid
            for mode in modes:

                @settings(max_examples=EXAMPLES_PER_MODE, derandomize=True, database=None, deadline=None,
                          suppress_health_check=list(HealthCheck))
                @given(case=operation.as_strategy(generation_mode=mode))
                def run(case: Any) -> None:
                    if isinstance(case.body, dict) and "check_onchain" in case.body:
                        # on-chain checks would call the generated RPC URLs: tested in test_config_onchain
                        case.body["check_onchain"] = False
                    response = case.call(headers=headers)
                    case.validate_response(response, checks=CHECKS)
                    counts[f"{response.status_code // 100}xx"] += 1
                    counts["cases"] += 1

                started, before = time.monotonic(), counts["cases"]
                run()
                timings.append(f"{method.upper()} {label} {mode.value}: {counts['cases'] - before} cases, "
                               f"{time.monotonic() - started:.1f} s")
    services.fleet_hotstate().set_kill_switch(False)
    print("\n".join(timings))
    print(f"schemathesis: {dict(counts)}")
    assert counts["cases"] >= 1000, counts
    assert counts["2xx"] >= 100 and counts["4xx"] >= 100, counts  # both sides were reached
    assert counts["5xx"] == 0
