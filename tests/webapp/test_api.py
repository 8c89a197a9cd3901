"""The REST API on real PostgreSQL and Redis: uint256 as exact decimal strings, cursor pages
with a hard size limit, filters, writes through the services the command line uses (so
the same errors, naming the field), and the committed schema equal to the generated one."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.webapp.api_support import BIG, CHAIN_ID, POOL, USDC, WETH, request, role_client, seed
from webapp.core import selectors, services
from webapp.core.api.pagination import MAX_PAGE_SIZE
from webapp.core.models import Chain, Execution, Pool, Token

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


@pytest.fixture()
def admin(db: Any) -> Any:
    seed()
    return role_client("admin")


def test_the_committed_schema_is_the_generated_one(db: Any) -> None:
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    assert out.getvalue() == SCHEMA.read_text(), (
        "docs/openapi.yaml differs from the API: regenerate it with "
        "ARBBOT_DEVNET=1 python manage.py spectacular --validate --fail-on-warn --file docs/openapi.yaml"
    )


def test_uint256_amounts_cross_as_exact_decimal_strings(admin: Any) -> None:
    row = admin.get(f"/api/opportunities/?chain={CHAIN_ID}").json()["results"][0]
    assert row["amount_in"] == str(BIG) and row["amount_out"] == str(BIG + 1) and row["net_profit"] == "-5"
    execution = admin.get("/api/executions/?status=success").json()["results"][0]
    assert execution["amount_in"] == str(BIG) and execution["realised_profit"] == str(10**18)


def test_cursor_pages_have_a_hard_size_limit(admin: Any) -> None:
    now = timezone.now()
    Execution.objects.bulk_create([
        Execution(created_at=now, chain_id=CHAIN_ID, block_number=1000 + i, path_id="p", status="dropped")
        for i in range(MAX_PAGE_SIZE + 20)
    ])
    first = admin.get("/api/executions/?page_size=100000").json()
    assert len(first["results"]) == MAX_PAGE_SIZE and first["next"]
    second = admin.get(first["next"]).json()
    assert len(second["results"]) == 21  # the seeded execution too
    seen = {r["id"] for r in first["results"]} | {r["id"] for r in second["results"]}
    assert len(seen) == MAX_PAGE_SIZE + 21
    assert admin.get("/api/executions/?cursor=garbage").status_code == 404


def test_filters_by_chain_dex_token_status_and_time(admin: Any) -> None:
    def ids(path: str) -> list[Any]:
        response = admin.get(path)
        assert response.status_code == 200, response.content
        return [r.get("address", r.get("id")) for r in response.json()["results"]]

    assert ids(f"/api/pools/?chain={CHAIN_ID}&dex=uni&token={USDC.upper().replace('0X', '0x')}") == [POOL]
    assert ids("/api/pools/?dex=other") == []
    assert sorted(ids(f"/api/tokens/?chain={CHAIN_ID}&excluded=false")) == sorted([WETH, USDC])
    assert len(ids(f"/api/executions/?status=success&status=failed&token={WETH}")) == 1
    assert ids("/api/executions/?status=reverted") == []
    assert ids("/api/executions/?since=2999-01-01T00:00:00Z") == []
    assert len(ids("/api/opportunities/?until=2999-01-01T00:00:00Z&decision=execute&block_min=7&block_max=7")) == 1
    bad = admin.get("/api/executions/?since=yesterday")
    assert bad.status_code == 400 and "since" in bad.json()
    bad = admin.get(f"/api/executions/?chain={2**64}")
    assert bad.status_code == 400 and "chain" in bad.json()
    bad = admin.get("/api/executions/?status=exploded")
    assert bad.status_code == 400 and "status" in bad.json()


def test_the_kill_switch_is_the_fleets(admin: Any) -> None:
    operator = role_client("operator")
    fleet = services.fleet_hotstate()
    try:
        on = request(operator, "put", "/api/killswitch/", {"engaged": True})
        assert on.status_code == 200 and on.json() == {"engaged": True}
        assert fleet.kill_switch_engaged()  # what the execute stage reads before every send
        assert admin.get("/api/killswitch/").json() == {"engaged": True}
        bad = request(operator, "put", "/api/killswitch/", {"engaged": "maybe"})
        assert bad.status_code == 400 and "engaged" in bad.json()
        assert fleet.kill_switch_engaged()
    finally:
        fleet.set_kill_switch(False)


def test_mode_live_needs_the_explicit_yes_and_an_executor(admin: Any) -> None:
    operator = role_client("operator")
    path = f"/api/chains/{CHAIN_ID}/mode/"
    refused = request(operator, "put", path, {"mode": "live"})
    assert refused.status_code == 400 and "confirm_live" in refused.json()["detail"]
    no_executor = request(operator, "put", path, {"mode": "live", "confirm_live": True})
    assert no_executor.status_code == 400 and "executor" in no_executor.json()["detail"]
    assert Chain.objects.get(chain_id=CHAIN_ID).mode == ""
    ok = request(operator, "put", path, {"mode": "paper"})
    assert ok.status_code == 200 and ok.json()["mode"] == "paper" and ok.json()["mode_from"] == "chain"
    bad = request(operator, "put", path, {"mode": "yolo"})
    assert bad.status_code == 400 and "mode" in bad.json()
    assert request(operator, "put", "/api/chains/1234567/mode/", {"mode": "paper"}).status_code == 404


def test_risk_limits_go_through_the_configuration_schema(admin: Any) -> None:
    operator = role_client("operator")
    path = f"/api/chains/{CHAIN_ID}/strategy/"
    ok = request(operator, "put", path, {"max_hops": 2, "max_amount_in": {WETH.upper().replace("0X", "0x"): str(BIG)},
                                         "max_fee_per_gas_wei": "100000000000", "margin": "1.25",
                                         "max_sends_per_block": 3})
    assert ok.status_code == 200, ok.content
    assert ok.json()["version"] == 1 and ok.json()["max_amount_in"] == {WETH: str(BIG)}
    assert ok.json()["max_sends_per_block"] == 3
    strategy = selectors.strategy_for(CHAIN_ID)  # what the path and ml stages read next block
    assert strategy.max_hops == 2 and strategy.max_amount_in == {WETH: BIG} and strategy.max_sends_per_block == 3
    for body, named in [
        ({"max_hops": 7}, f"chain {CHAIN_ID} (apitest).strategy: max_hops: 7 is above the maximum 4"),
        ({"margin": "0.5"}, "margin"),
        ({"max_amount_in": {"0x12": "1"}}, "max_amount_in"),
        ({"start_tokens": ["nope"]}, "start_tokens"),
        ({"min_profit_wei": str(2**256)}, "min_profit_wei"),
        ({"max_sends_per_block": 0}, "max_sends_per_block: 0 is below the minimum 1"),
    ]:
        bad = request(operator, "put", path, body)
        assert bad.status_code == 400, body
        assert named in str(bad.json()), (body, bad.json())
    assert selectors.strategy_for(CHAIN_ID).version == 1  # nothing written by a refused body


def test_configuration_writes_name_the_bad_field_and_write_nothing(admin: Any) -> None:
    base = f"/api/chains/{CHAIN_ID}"
    bad = request(admin, "patch", f"{base}/", {"rpc_urls": ["wss://node.example"], "check_onchain": False})
    assert bad.status_code == 400 and "rpc_urls" in bad.json()["detail"]
    bad = request(admin, "post", f"{base}/dexes/", {"name": "x", "factory": "0x12"})
    assert bad.status_code == 400 and bad.json()["detail"].startswith("dex (x): factory: '0x12' is not a valid")
    bad = request(admin, "post", f"{base}/dexes/", {"name": "x", "factory": "0x" + "44" * 20})
    assert bad.status_code == 400 and "already the factory of dex 'uni'" in bad.json()["detail"]
    bad = request(admin, "post", f"{base}/tokens/", {"address": "0x" + "77" * 20, "decimals": 300})
    assert bad.status_code == 400 and "decimals" in bad.json()["detail"]
    renamed = request(admin, "patch", f"{base}/", {"confirmations": 5, "check_onchain": False})
    assert renamed.status_code == 200 and renamed.json()["name"] == "apitest"  # the name kept
    assert renamed.json()["confirmations"] == 5
    assert request(admin, "patch", "/api/chains/999999/", {"check_onchain": False}).status_code == 404


def test_a_devnet_keeps_its_identity(admin: Any) -> None:
    services.chain_register_deployment({
        "chain_id": 31337, "name": "devnet", "rpc_url": "http://127.0.0.1:8545", "weth": WETH, "dexes": [],
        "tokens": [], "pools": [],
    })
    bad = request(admin, "post", "/api/chains/31337/dexes/", {"name": "x", "factory": "0x" + "99" * 20})
    assert bad.status_code == 400 and "devnet" in bad.json()["detail"]


def test_exclusions_through_the_api(admin: Any) -> None:
    base = f"/api/chains/{CHAIN_ID}"
    out = request(admin, "put", f"{base}/tokens/{USDC}/exclusion/", {"reason": "fee on transfer"})
    assert out.status_code == 200 and out.json()["excluded_reason"] == "fee on transfer"
    assert Pool.objects.get(address=POOL).excluded_reason.startswith(f"token {USDC}")
    back = request(admin, "put", f"{base}/tokens/{USDC}/exclusion/", {"reason": ""})
    assert back.status_code == 200 and Token.objects.get(address=USDC).excluded_reason == ""
    assert request(admin, "put", f"{base}/pools/{'0x' + 'ee' * 20}/exclusion/", {"reason": "x"}).status_code == 404
    assert request(admin, "put", f"{base}/tokens/nope/exclusion/", {"reason": "x"}).status_code == 400
