"""Bad configuration input gives a clear validation error and writes nothing."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from webapp.core import services
from webapp.core.models import Chain, Dex

GOOD_CHAIN = {"chain_id": 31337, "name": "devnet", "rpc_urls": ["http://127.0.0.1:8545"]}
FACTORY = "0x5C69bEe701ef814a2B6a3EDD4B1652CB9cc5aA6f"


@pytest.mark.django_db
def test_valid_config_is_applied() -> None:
    counts = services.config_apply(
        {
            "chains": [GOOD_CHAIN],
            "dexes": [{"chain_id": 31337, "name": "uniswap", "kind": "v2", "factory": FACTORY}],
            "tokens": [{"chain_id": 31337, "address": "0x" + "ab" * 20, "symbol": "AB", "decimals": 18}],
        }
    )
    assert counts == {"chains": 1, "dexes": 1, "tokens": 1, "pool_filters": 0, "strategies": 0}
    assert Dex.objects.get(name="uniswap").factory == FACTORY.lower()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "bad_factory", ["0x123", "5C69bEe701ef814a2B6a3EDD4B1652CB9cc5aA6f00", "0xZZ69bEe701ef814a2B6a3EDD4B1652CB9cc5aA6f", ""]
)
def test_invalid_address_is_rejected_with_its_location(bad_factory: str) -> None:
    with pytest.raises(ValidationError) as err:
        services.config_apply(
            {"chains": [GOOD_CHAIN], "dexes": [{"chain_id": 31337, "name": "uniswap", "factory": bad_factory}]}
        )
    message = " ".join(err.value.messages)
    assert "dexes[0]" in message and "factory" in message
    assert not Chain.objects.exists(), "nothing is written when any entry is invalid"


@pytest.mark.django_db
def test_unknown_chain_is_named() -> None:
    with pytest.raises(ValidationError) as err:
        services.config_apply({"dexes": [{"chain_id": 999, "name": "x", "factory": FACTORY}]})
    assert "unknown chain 999" in " ".join(err.value.messages)


@pytest.mark.django_db
def test_bad_rpc_url_is_rejected() -> None:
    with pytest.raises(ValidationError) as err:
        services.config_apply({"chains": [{**GOOD_CHAIN, "rpc_urls": ["not a url"]}]})
    assert "rpc_urls" in " ".join(err.value.messages)


@pytest.mark.django_db
def test_admin_form_rejects_invalid_address(admin_client) -> None:  # type: ignore[no-untyped-def]
    chain = Chain.objects.create(chain_id=1, name="main", rpc_urls="http://127.0.0.1:8545")
    resp = admin_client.post(
        "/admin/core/dex/add/",
        {"chain": chain.pk, "name": "bad", "kind": "v2", "factory": "0xnothex", "fee_pips": 3000},
    )
    assert resp.status_code == 200  # the form is shown again with the error
    assert b"is not a valid EVM address" in resp.content
    assert not Dex.objects.exists()
    ok = admin_client.post(
        "/admin/core/dex/add/",
        {"chain": chain.pk, "name": "good", "kind": "v2", "factory": FACTORY, "fee_pips": 3000, "start_block": 0},
    )
    assert ok.status_code == 302
    assert Dex.objects.get().factory == FACTORY.lower()


@pytest.mark.django_db
def test_healthz_reports_each_dependency(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"db": "ok", "redis": "ok", "broker": "ok"}
