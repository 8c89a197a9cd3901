"""Registering a devnet deployment: a restarted devnet (same chain id, new genesis) starts
with a clean history, so nothing of the chain it replaced blocks or muddles the new one."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from arbbot.types import Opportunity as Opp
from arbbot.types import ScoredOpportunity
from webapp.core import services
from webapp.core.models import Chain, Execution, Opportunity, Pool

CHAIN_ID = 31337
WETH = "0x" + "11" * 20
USDC = "0x" + "22" * 20


def deployment(genesis: str) -> dict[str, Any]:
    return {
        "chain_id": CHAIN_ID,
        "name": "devnet",
        "rpc_url": "http://127.0.0.1:8545",
        "weth": WETH,
        "multicall3": "0xca11bde05977b3631167028862be2a173976ca11",
        "executor": "0x" + "33" * 20,
        "dexes": [{"name": "uniswap", "kind": "v2", "factory": "0x" + "44" * 20, "router": "0x" + "55" * 20}],
        "tokens": [{"address": WETH, "symbol": "WETH", "decimals": 18},
                   {"address": USDC, "symbol": "USDC", "decimals": 6}],
        "pools": [{"address": "0x" + "66" * 20, "dex": "uniswap", "kind": "v2", "token0": WETH, "token1": USDC}],
        "genesis_hash": genesis,
    }


def history(chain_id: int, block: int) -> None:
    now = timezone.now()
    Opportunity.objects.create(
        created_at=now, chain_id=chain_id, block_number=block, block_hash="0x" + "ab" * 32, path_id="p1",
        pools=[], tokens=[WETH], profit_token=WETH, amount_in=Decimal(10**18), amount_out=Decimal(10**18 + 5),
        gas_cost=Decimal(1), net_profit=Decimal(4), score=1.0, decision="execute",
    )
    Execution.objects.create(created_at=now, chain_id=chain_id, block_number=block, path_id="p1", status="success")


G1 = "0x" + "a1" * 32
G2 = "0x" + "b2" * 32


@pytest.mark.django_db
def test_same_devnet_registered_again_keeps_its_history() -> None:
    first = services.chain_register_deployment(deployment(G1))
    assert first.history_removed == 0 and first.chain.genesis_hash == G1
    history(CHAIN_ID, 200)
    again = services.chain_register_deployment(deployment(G1))
    assert again.history_removed == 0
    assert Execution.objects.count() == 1 and Opportunity.objects.count() == 1


@pytest.mark.django_db
def test_restarted_devnet_drops_the_old_chains_history_only() -> None:
    services.chain_register_deployment(deployment(G1))
    history(CHAIN_ID, 200)
    history(1, 200)  # another chain's history stays
    registered = services.chain_register_deployment(deployment(G2))
    assert registered.history_removed == 2
    assert registered.chain.genesis_hash == G2
    assert list(Execution.objects.values_list("chain_id", flat=True)) == [1]
    assert list(Opportunity.objects.values_list("chain_id", flat=True)) == [1]
    # the configuration itself is kept, not duplicated
    assert Chain.objects.count() == 1 and Pool.objects.filter(chain__chain_id=CHAIN_ID).count() == 1
    # the new chain can claim the same (block, path) the old one had executed
    opp = Opp(chain_id=CHAIN_ID, block_number=200, block_hash="0x" + "cd" * 32, path_id="p1",
              pools=("0x" + "66" * 20,), tokens=(WETH, WETH), amount_in=10**18, amount_out=10**18 + 5,
              gas_estimate=200_000, gas_price_wei=1, gas_cost=1)
    claimed = services.execution_claim(ScoredOpportunity(opportunity=opp, score=1.0, decision="execute"))
    assert claimed is not None and claimed.status == "pending"


@pytest.mark.django_db
def test_history_is_kept_when_the_genesis_is_unknown_or_the_chain_is_not_a_devnet() -> None:
    services.chain_register_deployment(deployment(""))  # an older record without a genesis hash
    history(CHAIN_ID, 200)
    assert services.chain_register_deployment(deployment(G1)).history_removed == 0
    Chain.objects.filter(chain_id=CHAIN_ID).update(is_devnet=False)  # configured by hand as a real chain
    with pytest.raises(ValidationError, match="is a chain of your own"):
        services.chain_register_deployment(deployment(G2))  # never overwritten by a devnet
    assert Execution.objects.count() == 1
