"""The permission matrix: every endpoint (every operation of the committed OpenAPI schema,
and every page) for anonymous, a login without a role, viewer, operator and admin: allowed
(2xx) or refused (403); anonymous gets 401 from the API and a redirect to the login from a
page, everywhere but ``/healthz``. A new operation without a row here fails the test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.webapp.api_support import CHAIN_ID, POOL, USDC, WETH, request, role_client, seed

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
RANK = {None: -2, "none": -1, "viewer": 0, "operator": 1, "admin": 2}
C = CHAIN_ID

#: (method, schema path, concrete path, body, the least role allowed)
API: list[tuple[str, str, str, Any, str]] = [
    ("get", "/api/chains/", "/api/chains/", None, "viewer"),
    ("post", "/api/chains/", "/api/chains/",
     {"chain_id": 98765, "name": "new", "rpc_urls": ["http://127.0.0.1:9"], "check_onchain": False}, "admin"),
    ("get", "/api/chains/{chain_id}/", f"/api/chains/{C}/", None, "viewer"),
    ("patch", "/api/chains/{chain_id}/", f"/api/chains/{C}/", {"confirmations": 3, "check_onchain": False}, "admin"),
    ("put", "/api/chains/{chain_id}/mode/", f"/api/chains/{C}/mode/", {"mode": "paper"}, "operator"),
    ("get", "/api/chains/{chain_id}/strategy/", f"/api/chains/{C}/strategy/", None, "viewer"),
    ("put", "/api/chains/{chain_id}/strategy/", f"/api/chains/{C}/strategy/",
     {"max_hops": 2, "max_amount_in": {WETH: "1000"}}, "operator"),
    ("post", "/api/chains/{chain_id}/dexes/", f"/api/chains/{C}/dexes/",
     {"name": "sushi", "kind": "v2", "factory": "0x" + "55" * 20}, "admin"),
    ("post", "/api/chains/{chain_id}/tokens/", f"/api/chains/{C}/tokens/",
     {"address": "0x" + "66" * 20, "symbol": "NEW", "decimals": 8}, "admin"),
    ("put", "/api/chains/{chain_id}/tokens/{address}/exclusion/", f"/api/chains/{C}/tokens/{USDC}/exclusion/",
     {"reason": "fee on transfer"}, "admin"),
    ("put", "/api/chains/{chain_id}/pools/{address}/exclusion/", f"/api/chains/{C}/pools/{POOL}/exclusion/",
     {"reason": "operator's decision"}, "admin"),
    ("get", "/api/dexes/", f"/api/dexes/?chain={C}", None, "viewer"),
    ("get", "/api/tokens/", f"/api/tokens/?chain={C}", None, "viewer"),
    ("get", "/api/pools/", f"/api/pools/?chain={C}", None, "viewer"),
    ("get", "/api/opportunities/", f"/api/opportunities/?chain={C}", None, "viewer"),
    ("get", "/api/executions/", f"/api/executions/?chain={C}", None, "viewer"),
    ("get", "/api/summary/", "/api/summary/", None, "viewer"),
    ("get", "/api/xchain/inventory/", "/api/xchain/inventory/", None, "viewer"),
    ("get", "/api/xchain/sagas/", "/api/xchain/sagas/?open=true", None, "viewer"),
    ("get", "/api/xchain/pnl/", "/api/xchain/pnl/", None, "viewer"),
    ("get", "/api/xchain/pairs/", "/api/xchain/pairs/", None, "viewer"),
    ("get", "/api/killswitch/", "/api/killswitch/", None, "viewer"),
    ("put", "/api/killswitch/", "/api/killswitch/", {"engaged": False}, "operator"),
]
#: routes outside the schema: (method, path, least role, anonymous' answer)
OTHER: list[tuple[str, str, str, int]] = [
    ("get", "/api/schema/", "viewer", 401),
    ("get", "/api/docs/", "viewer", 401),
    ("get", "/metrics", "viewer", 401),
    ("get", "/", "viewer", 302),
    ("get", "/opportunities/", "viewer", 302),
    ("get", "/executions/", "viewer", 302),
    ("get", "/pools/", "viewer", 302),
    ("get", "/model/", "viewer", 302),
    ("get", "/console/series.json", "viewer", 302),
]  # the console's kill-switch button (a POST): tests/webapp/test_console.py


def test_the_matrix_covers_every_operation_of_the_schema() -> None:
    schema = yaml.safe_load(SCHEMA.read_text())
    documented = {(m, p) for p, item in schema["paths"].items() for m in item if m != "parameters"}
    assert documented == {(m, p) for m, p, *_ in API}


@pytest.mark.django_db
@pytest.mark.parametrize("role", [None, "none", "viewer", "operator", "admin"])
def test_every_role_on_every_endpoint(role: str | None) -> None:
    seed()
    client = role_client(role)
    wrong = []
    for method, _, path, body, least in API:
        got = request(client, method, path, body).status_code
        want = 401 if role is None else (200 if RANK[role] >= RANK[least] else 403)
        if got != want:
            wrong.append(f"{method.upper()} {path}: {got}, expected {want}")
    for method, path, least, anonymous in OTHER:
        response = request(client, method, path)
        want = anonymous if role is None else (200 if RANK[role] >= RANK[least] else 403)
        if response.status_code != want:
            wrong.append(f"{method.upper()} {path}: {response.status_code}, expected {want}")
        if role is None and want == 302 and not response["Location"].startswith("/accounts/login/"):
            wrong.append(f"{path}: redirected to {response['Location']}, not the login")
    assert not wrong, "\n".join(wrong)


@pytest.mark.django_db
@pytest.mark.parametrize("role", [None, "none", "viewer", "operator", "admin"])
def test_healthz_is_open_and_the_admin_only_for_admins(role: str | None) -> None:
    client = role_client(role)
    assert client.get("/healthz").status_code == 200  # the real PostgreSQL, Redis and RabbitMQ
    admin = client.get("/admin/")
    if role == "admin":
        assert admin.status_code == 200
    else:  # the admin's own login page (staff only)
        assert admin.status_code == 302 and admin["Location"].startswith("/admin/login/")
    assert client.get("/accounts/login/").status_code == 200


@pytest.mark.django_db
def test_tokens_authenticate_machines() -> None:
    from django.test import Client

    from webapp.core import services

    seed()
    services.user_set_role("bot", "viewer")
    key = services.user_token("bot")
    client = Client()
    assert client.get("/api/summary/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    refused = client.put("/api/killswitch/", {"engaged": True}, content_type="application/json",
                         HTTP_AUTHORIZATION=f"Token {key}")
    assert refused.status_code == 403 and "operate_fleet" in refused.json()["detail"]
    bad = client.get("/api/summary/", HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert bad.status_code == 401 and bad["WWW-Authenticate"] == "Token"
    assert services.user_token("bot", rotate=True) != key
    assert client.get("/api/summary/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 401


@pytest.mark.django_db
def test_a_session_write_needs_the_csrf_token() -> None:
    from django.contrib.auth.models import User
    from django.test import Client

    from webapp.core import services

    services.user_set_role("op", "operator")
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.get(username="op"))
    refused = client.put("/api/killswitch/", {"engaged": False}, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    client.get("/accounts/login/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    ok = client.put("/api/killswitch/", {"engaged": False}, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert ok.status_code == 200, ok.content
    form = Client(enforce_csrf_checks=True).post("/accounts/login/", {"username": "op", "password": "x"})
    assert form.status_code == 403  # the login form too


@pytest.mark.django_db
def test_login_is_throttled_after_failures() -> None:
    from django.conf import settings
    from django.test import Client

    from webapp.core import services

    _, password = services.user_set_role("op", "operator")
    client = Client()
    assert client.post("/accounts/login/", {"username": "op", "password": password}).status_code == 302
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post("/accounts/login/", {"username": "op", "password": "wrong"}).status_code == 200
    assert client.post("/accounts/login/", {"username": "op", "password": "wrong"}).status_code == 429
    locked = client.post("/accounts/login/", {"username": "op", "password": password})
    assert locked.status_code == 429  # even the right password, until the cool-off
    assert client.get("/").status_code == 302  # not logged in
    other = Client().post("/accounts/login/", {"username": "viewer-x", "password": "wrong"})
    assert other.status_code == 200  # another user is not locked out by op's failures


@pytest.mark.django_db
def test_prometheus_scrapes_metrics_with_its_bearer_token_only(settings: Any) -> None:
    from django.test import Client

    settings.METRICS_TOKEN = "m" * 40
    client = Client()
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer " + "m" * 40)
    assert ok.status_code == 200 and b"arbbot_kill_switch_engaged" in ok.content
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer " + "x" * 40)
    assert wrong.status_code == 401
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"] == "Bearer"
    # the scrape token reads the metrics and nothing else
    assert client.get("/api/summary/", HTTP_AUTHORIZATION="Bearer " + "m" * 40).status_code == 401
    assert client.get("/", HTTP_AUTHORIZATION="Bearer " + "m" * 40).status_code == 302
