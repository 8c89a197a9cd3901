"""What the API tests share: a seeded chain (DEX, tokens, a pool, an opportunity and an
execution) and a logged-in client per role."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.test import Client
from django.utils import timezone

from webapp.core import services
from webapp.core.models import Chain, Dex, Execution, Opportunity, Pool, Token

CHAIN_ID = 4343
WETH, USDC = "0x" + "11" * 20, "0x" + "22" * 20
FACTORY = "0x" + "44" * 20
POOL = "0x" + "a1" * 20
ROLES = ("viewer", "operator", "admin")
#: a uint256 beyond every float's exact range: it must cross the API as its exact digits
BIG = 2**255 + 12345


def seed() -> Chain:
    services.config_apply({"chains": [{
        "chain_id": CHAIN_ID, "name": "apitest", "rpc_urls": ["http://127.0.0.1:9"], "weth": WETH,
        "dexes": [{"name": "uni", "kind": "v2", "factory": FACTORY}],
        "tokens": [{"address": WETH, "symbol": "WETH", "decimals": 18}, {"address": USDC, "symbol": "USDC", "decimals": 6}],
    }]})
    chain = Chain.objects.get(chain_id=CHAIN_ID)
    Pool.objects.create(
        chain=chain, dex=Dex.objects.get(chain=chain, name="uni"), address=POOL,
        token0=Token.objects.get(chain=chain, address=WETH), token1=Token.objects.get(chain=chain, address=USDC),
    )
    now = timezone.now()
    Opportunity.objects.create(
        created_at=now, chain_id=CHAIN_ID, block_number=7, block_hash="0x" + "00" * 32, path_id="p1",
        pools=[POOL], tokens=[WETH, USDC], profit_token=WETH, amount_in=Decimal(BIG), amount_out=Decimal(BIG + 1),
        gas_cost=Decimal(1), net_profit=Decimal(-5), score=0.5, decision="execute",
    )
    Execution.objects.create(
        created_at=now, chain_id=CHAIN_ID, block_number=7, path_id="p1", status="success", mode="live",
        profit_token=WETH, amount_in=Decimal(BIG), realised_profit=Decimal(10**18),
    )
    return chain


def role_client(role: str | None) -> Client:
    """A client logged in as a fresh user of ``role`` ("none": a login without a role;
    ``None``: anonymous)."""
    client = Client()
    if role is None:
        return client
    from django.contrib.auth.models import User

    if role == "none":
        user = User.objects.create_user("nobody")
    else:
        user, _ = services.user_set_role(f"{role}-user", role)
    client.force_login(user)
    return client


def request(client: Client, method: str, path: str, body: Any = None, **extra: Any) -> Any:
    if body is None:
        return getattr(client, method)(path, **extra)
    return getattr(client, method)(path, body, content_type="application/json", **extra)
