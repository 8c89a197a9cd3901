"""The ml stage's recent outcomes on the real database (``selectors.ml_outcomes_in``): the
same cycle recorded under two block hashes counts once whichever way it is read."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from arbbot.scoring.synthetic import GAS, GAS_PRICE, WETH, make_opp
from arbbot.types import ExecutionResult, ScoredOpportunity
from webapp.core import selectors, services
from webapp.core.models import Chain

CHAIN = 31337
POOLS = ["0x" + random.Random(7).randbytes(20).hex() for _ in range(12)]


@pytest.fixture
def chain(db: None) -> Chain:
    return Chain.objects.create(chain_id=CHAIN, name="devnet", rpc_urls="http://127.0.0.1:8545", weth=WETH)


class Fleet:
    """What the stages record as the chain goes: at each block a few executed
    opportunities, claimed at once and made final ``delay`` blocks later."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.pending: dict[int, list[ScoredOpportunity]] = {}

    def block(self, number: int, *, delays: tuple[int, ...] = (0,), per_block: int = 3) -> None:
        chosen = []
        for k in self.rng.sample(range(40), per_block):
            hops = 2 + k % 2
            pools = tuple(POOLS[(k + i * 5) % len(POOLS)] for i in range(hops))
            opp = replace(make_opp(number, 0, 1, int(self.rng.uniform(1.2, 6.0) * GAS * GAS_PRICE)),
                          path_id=f"cycle-{k}", pools=pools, tokens=(WETH,) * (hops + 1), hop_kinds=("v2",) * hops)
            chosen.append(ScoredOpportunity(opp, 0.9, "execute"))
        services.opportunities_record(chosen)
        for s in chosen:
            services.execution_claim(s)  # pending: not an outcome yet
            self.pending.setdefault(number + self.rng.choice(delays), []).append(s)

    def finish(self, head: int) -> None:
        """Make final what is due by ``head``."""
        for due in sorted(b for b in self.pending if b <= head):
            for s in self.pending.pop(due):
                o = s.opportunity
                status = self.rng.choice(["success", "success", "reverted", "dropped", "failed"])
                services.execution_finish(ExecutionResult(
                    chain_id=o.chain_id, block_number=o.block_number, path_id=o.path_id, status=status,  # type: ignore[arg-type]
                    predicted_profit=o.profit,
                    realised_profit=int(o.profit * self.rng.uniform(0.3, 1.4)) if status == "success" else 0,
                    gas_used=GAS if status in ("success", "reverted") else 0, gas_price_wei=GAS_PRICE,
                    reason="stale: the cycle no longer pays on re-validation (ProfitTooLow)" if status == "dropped"
                    else "", profit_token=WETH, amount_in=o.amount_in, extra={"mode": "live"},
                ))


@pytest.mark.django_db
def test_a_cycle_recorded_under_two_block_hashes_counts_once_whichever_way_it_is_read(chain: Chain) -> None:
    """Its first row (the lower id) decides the share, in a read of the whole window and in
    a read of its block alone; the ranges of one read are the union of their reads."""
    opp = replace(make_opp(1100, 0, 1, 4 * GAS * GAS_PRICE), pools=(POOLS[0], POOLS[1]))
    richer = replace(opp, block_hash="0x" + "ee" * 32, amount_out=opp.amount_in + 9 * GAS * GAS_PRICE,
                     profit_native=9 * GAS * GAS_PRICE)
    services.opportunities_record([ScoredOpportunity(opp, 0.9, "execute")])
    services.opportunities_record([ScoredOpportunity(richer, 0.9, "execute")])
    services.execution_claim(ScoredOpportunity(opp, 0.9, "execute"))
    services.execution_finish(ExecutionResult(
        chain_id=CHAIN, block_number=1100, path_id=opp.path_id, status="success", predicted_profit=opp.profit,
        realised_profit=opp.profit, gas_used=GAS, gas_price_wei=GAS_PRICE, profit_token=WETH,
        amount_in=opp.amount_in, extra={"mode": "live"},
    ))
    Fleet(seed=6).block(1101)
    whole = selectors.ml_outcomes(CHAIN, 1200)
    alone = selectors.ml_outcomes_in(CHAIN, [(1100, 1100)])
    assert [o for o in whole if o.block_number == 1100] == alone and len(alone) == 1
    assert alone[0].share == 1.0, "the share against the first row's prediction, not the richer one's (3/8)"
    both = selectors.ml_outcomes_in(CHAIN, [(1101, 1101), (1100, 1100)])
    assert sorted(both, key=repr) == sorted(alone + selectors.ml_outcomes_in(CHAIN, [(1101, 1101)]), key=repr)
