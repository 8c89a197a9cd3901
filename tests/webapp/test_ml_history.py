"""The ml stage's recent outcomes on the real database: the window kept block by block
(``arbbot.scoring.history.OutcomeWindow`` over ``selectors.ml_outcomes_in``, as
``workers.runtime.outcome_history`` keeps it) equals a fresh ``OutcomeHistory`` over
``selectors.ml_outcomes`` at every block, bit for bit, as the chain goes on: executions
claimed and made final blocks later (within the margin; later than it, once the sweep has
passed), blocks leaving the window, a block asked twice, blocks asked backwards; the same
cycle recorded under two block hashes counts once whichever way it is read; a read that
fails fails the stage and changes nothing."""

from __future__ import annotations

import functools
import random
from dataclasses import replace
from typing import Iterator

import pytest

from arbbot.scoring.features import LAG_BLOCKS, WINDOW_BLOCKS, OutcomeHistory, columns
from arbbot.scoring.history import MARGIN_BLOCKS, SWEEP_S, OutcomeWindow
from arbbot.scoring.synthetic import GAS, GAS_PRICE, WETH, make_opp
from arbbot.types import ExecutionResult, ScoredOpportunity
from webapp.core import selectors, services
from webapp.core.models import Chain, Execution
from workers import runtime

CHAIN = 31337
POOLS = ["0x" + random.Random(7).randbytes(20).hex() for _ in range(12)]


@pytest.fixture(autouse=True)
def fresh_runtime() -> Iterator[None]:
    runtime.reset()
    yield
    runtime.reset()


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


def fresh(block: int) -> OutcomeHistory:
    return OutcomeHistory(selectors.ml_outcomes(CHAIN, block))


def same(kept: OutcomeHistory, want: OutcomeHistory) -> bool:
    """The same counts, and the same tables for a batch naming every pool and path."""
    if kept.pool != want.pool or kept.path != want.path:
        return False
    paths = sorted(want.path) or ["none"]
    opps = [replace(make_opp(1, 0, 1, 10**16), path_id=paths[i % len(paths)],
                    pools=(POOLS[i % len(POOLS)], POOLS[(i + 1) % len(POOLS)])) for i in range(len(paths))]
    c = columns(opps)
    return all((a == b).all() for a, b in zip(kept.tables(c), want.tables(c)))


def window(now: list[float]) -> OutcomeWindow:
    return OutcomeWindow(functools.partial(selectors.ml_outcomes_in, CHAIN), clock=lambda: now[0])


@pytest.mark.django_db
def test_the_window_equals_a_fresh_read_at_every_block_as_the_chain_goes(chain: Chain) -> None:
    fleet = Fleet(seed=3)
    first = 1000
    for b in range(first, first + 200):
        fleet.block(b)
        fleet.finish(b)
    now = [0.0]
    kept = window(now)
    head = first + 199
    # forward a block or two at a time, once the same block twice, twice a few blocks back,
    # then well past the first blocks (they leave the window); finals land up to the
    # margin after they start to count
    steps = [1, 2, 1, 0, 1, 2, -3, 1, 1, 2, -1, 2] * 14 + [1] * 60
    block = head
    for step in steps:
        if block + step > head:
            for b in range(head + 1, block + step + 1):
                fleet.block(b, delays=(0, 1, LAG_BLOCKS, LAG_BLOCKS + MARGIN_BLOCKS // 2, LAG_BLOCKS + MARGIN_BLOCKS))
                fleet.finish(b)
            head = block + step
        block += step
        now[0] += 0.3
        want = fresh(block)
        assert same(kept.at(block), want), (block, kept.last_read)
    assert block - WINDOW_BLOCKS > first + 50, "the first blocks left the window"
    assert Execution.objects.filter(status="pending").exists(), "some not final yet at the last block"
    assert len(want.path) > 20 and any(s[4] > 1 for s in want.pool.values())


@pytest.mark.django_db
def test_an_outcome_made_final_after_the_margin_counts_once_the_sweep_has_passed(chain: Chain) -> None:
    fleet = Fleet(seed=4)
    for b in range(1000, 1200):
        fleet.block(b, delays=(0, 60))  # some made final 60 blocks later: past the margin
        fleet.finish(b)
    now = [0.0]
    kept = window(now)
    kept.at(1200)
    for b in range(1200, 1270):
        fleet.block(b)
        fleet.finish(b)
        now[0] += 0.2
        kept.at(b + 1)
    assert not same(kept.at(1270), fresh(1270)), "the late ones are not in the margin's blocks"
    now[0] += SWEEP_S
    assert same(kept.at(1270), fresh(1270))


@pytest.mark.django_db
def test_the_ml_stage_keeps_its_history_block_by_block_and_fails_closed(
    chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = Fleet(seed=5)
    for b in range(1000, 1320):
        fleet.block(b, delays=(0, 2, 5))
        fleet.finish(b)
    monkeypatch.setattr(runtime.histories, "ttl", 3600.0)  # the blocks alone decide
    assert same(runtime.outcome_history(CHAIN, 1300), fresh(1300))
    kept = runtime._windows[CHAIN]
    assert kept.last_read == ((1300 - WINDOW_BLOCKS, 1300 - LAG_BLOCKS),), "the first read: all of the window"
    assert same(runtime.outcome_history(CHAIN, 1302), fresh(1302))
    assert kept.as_of == 1302 and sum(z - a + 1 for a, z in kept.last_read) < 20, \
        ("the new blocks, the margin, a few of the sweep", kept.last_read)
    assert runtime.outcome_history(CHAIN, 1303) is runtime.outcome_history(CHAIN, 1302), "1302's fits 1303"
    monkeypatch.setattr(selectors, "_rows", lambda *a: (_ for _ in ()).throw(ConnectionError("database down")))
    with pytest.raises(ConnectionError):
        runtime.outcome_history(CHAIN, 1304)
    monkeypatch.undo()
    runtime.histories.ttl = 3600.0
    assert same(runtime.outcome_history(CHAIN, 1304), fresh(1304)), "read again, right, once it can be"


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
