"""Exclusions go one way, database -> engine, on real PostgreSQL and Redis: a token or pool
excluded in the admin (or by a service) leaves the path stage's next evaluation, clearing
it brings its cycles back, and a token the scan stage flagged is recorded by the path task
and then read back like any other exclusion."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from arbbot.chain.token_registry import TokenInfo
from arbbot.chain.token_checks import TransferCheck
from arbbot.hotstate import HotState
from arbbot.paths.engine import PathEngine
from arbbot.paths.stage import PathStage
from arbbot.types import PoolDelta, V2PoolState
from webapp.core import selectors, services
from webapp.core.models import Pool, Token

CHAIN_ID = 4242
WETH, USDC, X = "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20
A, B, C, D = ("0x" + f"{i:040x}" for i in (0xA1, 0xB2, 0xC3, 0xD4))
H = "0x" + "00" * 32
AB, CD = frozenset({A, B}), frozenset({C, D})


@pytest.fixture()
def chain(db: Any) -> None:
    services.chain_register_deployment({
        "chain_id": CHAIN_ID, "name": "exclusions", "rpc_url": "http://127.0.0.1:8545", "weth": WETH,
        "dexes": [{"name": "uni", "kind": "v2", "factory": "0x" + "44" * 20}],
        "tokens": [{"address": t, "symbol": s, "decimals": 18} for t, s in ((WETH, "WETH"), (USDC, "USDC"), (X, "X"))],
        "pools": [{"address": p, "dex": "uni", "token0": WETH, "token1": t} for p, t in ((A, USDC), (B, USDC), (C, X), (D, X))],
    })


@pytest.fixture()
def hot() -> Iterator[HotState]:
    # the services' own hot state (they clear the scan stage's flag of a token an operator includes)
    h = services._hotstate(CHAIN_ID)
    yield h
    h.clear()


class Chain:
    """A small profitable V2 market in the hot state, one block at a time: two WETH/USDC
    pools and two WETH/X pools with a price gap each, every pool's state new each block (as
    if trades touched them), so each delta's evaluation covers every cycle."""

    def __init__(self, hot: HotState) -> None:
        self.hot, self.block = hot, 0
        self.stage = PathStage(PathEngine(base_tokens=[WETH], weth=WETH))

    def next_block(self) -> set[frozenset[str]]:
        """Scan one block, run the path stage as the path task does (exclusions read from
        the database, newly flagged ones written back), return the cycles found."""
        self.block += 1
        n = self.block
        states = (
            V2PoolState(A, WETH, USDC, 10**21, 3 * 10**24 + n), V2PoolState(B, WETH, USDC, 10**21, 33 * 10**23 + n),
            V2PoolState(C, WETH, X, 10**21, 10**21 + n), V2PoolState(D, WETH, X, 10**21, 2 * 10**21 + n),
        )
        self.hot.put_pools(states, n, H)
        delta = PoolDelta(CHAIN_ID, n, H, states, gas_price_wei=10**9)
        result = self.stage.process(delta, self.hot, selectors.exclusions)
        for token, reason in result.exclusions.items():
            services.token_exclude(CHAIN_ID, token, reason)
        return {frozenset(o.pools) for o in result.opportunities}


@pytest.mark.django_db
def test_pool_excluded_and_included_by_services(chain: None, hot: HotState) -> None:
    market = Chain(hot)
    assert market.next_block() == {AB, CD}
    services.pool_exclude(CHAIN_ID, B, "operator: pool paused")
    assert selectors.exclusions(CHAIN_ID) == {B: "operator: pool paused"}
    assert market.next_block() == {CD}
    services.pool_include(CHAIN_ID, B)
    assert selectors.exclusions(CHAIN_ID) == {}
    assert market.next_block() == {AB, CD}


@pytest.mark.django_db
def test_token_excluded_and_included_by_services(chain: None, hot: HotState) -> None:
    market = Chain(hot)
    assert market.next_block() == {AB, CD}
    services.token_exclude(CHAIN_ID, X, "operator: transfers paused")
    assert selectors.exclusions(CHAIN_ID) == {
        X: "operator: transfers paused", C: f"token {X}: operator: transfers paused",
        D: f"token {X}: operator: transfers paused",
    }
    assert market.next_block() == {AB}
    services.token_include(CHAIN_ID, X)
    assert selectors.exclusions(CHAIN_ID) == {}
    assert market.next_block() == {AB, CD}


@pytest.mark.django_db
def test_admin_edits_and_actions_go_through_the_services(chain: None, hot: HotState, admin_client: Any) -> None:
    market = Chain(hot)
    assert market.next_block() == {AB, CD}
    # An operator types a reason on the pool's change form.
    pool = Pool.objects.get(address=A)
    form = {
        "chain": pool.chain_id, "dex": pool.dex_id, "address": A, "kind": "v2", "token0": pool.token0_id,
        "token1": pool.token1_id, "fee_pips": 3000, "tick_spacing": "", "excluded_reason": "router rejects it",
    }
    response = admin_client.post(f"/admin/core/pool/{pool.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert market.next_block() == {CD}
    # ... and clears it again.
    assert admin_client.post(f"/admin/core/pool/{pool.pk}/change/", {**form, "excluded_reason": ""}).status_code == 302
    assert market.next_block() == {AB, CD}
    # The token actions: exclude X (its pools are marked), then include it (the marks go).
    x = Token.objects.get(address=X)
    changelist = "/admin/core/token/"
    admin_client.post(changelist, {"action": "exclude_selected", "_selected_action": [x.pk]})
    assert Token.objects.get(address=X).excluded_reason == "excluded by admin in the admin"
    assert set(Pool.objects.exclude(excluded_reason="").values_list("address", flat=True)) == {C, D}
    assert market.next_block() == {AB}
    admin_client.post(changelist, {"action": "include_selected", "_selected_action": [x.pk]})
    assert selectors.exclusions(CHAIN_ID) == {}
    assert market.next_block() == {AB, CD}


@pytest.mark.django_db
def test_token_flagged_by_the_scan_stage_is_recorded_then_read_back(chain: None, hot: HotState) -> None:
    check = TransferCheck(ok=False, reason="fee-on-transfer: received 98/100", sent=100, received=98, amount=100)
    hot.put_tokens([TokenInfo(X, "X", 18, (), check)])
    market = Chain(hot)
    assert market.next_block() == {AB}
    assert Token.objects.get(address=X).excluded_reason == "fee-on-transfer: received 98/100"
    assert selectors.exclusions(CHAIN_ID)[C] == f"token {X}: fee-on-transfer: received 98/100"
    assert market.next_block() == {AB}
    # The operator knows better (say the fee was switched off): clearing it trades it again,
    # though the scan stage's flag is still in the hot state.
    services.token_include(CHAIN_ID, X)
    assert market.next_block() == {AB, CD}
    assert Token.objects.get(address=X).excluded_reason == ""
    # and the decision holds in a restarted worker: its new stage finds no flag to hand on
    assert hot.excluded_tokens() == {}
    assert Chain(hot).next_block() == {AB, CD}
    assert Token.objects.get(address=X).excluded_reason == ""


@pytest.mark.django_db
def test_a_pool_between_two_excluded_tokens_stays_out_until_both_are_included(chain: None) -> None:
    services.token_exclude(CHAIN_ID, USDC, "paused")
    services.token_exclude(CHAIN_ID, WETH, "paused too")
    services.token_include(CHAIN_ID, WETH)
    assert Pool.objects.get(address=A).excluded_reason == f"token {USDC}: paused"
    assert Pool.objects.get(address=C).excluded_reason == ""
    services.token_include(CHAIN_ID, USDC)
    assert set(Pool.objects.values_list("excluded_reason", flat=True)) == {""}


@pytest.mark.django_db
def test_an_exclusion_needs_a_reason(chain: None) -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        services.pool_exclude(CHAIN_ID, A, "  ")
    with pytest.raises(ValidationError):
        services.token_exclude(CHAIN_ID, X, "")
    assert selectors.exclusions(CHAIN_ID) == {}


@pytest.mark.django_db
def test_the_path_task_records_what_the_stage_hands_back(chain: None) -> None:
    """The task itself (called in-process, no broker involved: nothing is profitable here):
    the stage's flagged token reaches the database through ``services.token_exclude``."""
    from workers import runtime
    from workers.tasks import path

    runtime.reset()
    hot = runtime.hotstate(CHAIN_ID)
    try:
        states = (V2PoolState(C, WETH, X, 10**21, 10**21), V2PoolState(D, WETH, X, 10**21, 2 * 10**21))
        hot.put_pools(states, 1, H)
        check = TransferCheck(ok=False, reason="transfer reverted: paused", sent=100, received=0, amount=100)
        hot.put_tokens([TokenInfo(X, "X", 18, (), check)])
        assert path.find(PoolDelta(CHAIN_ID, 1, H, states, gas_price_wei=10**9).to_wire()) == path.NONE_FOUND
        assert Token.objects.get(address=X).excluded_reason == "transfer reverted: paused"
        assert runtime.path_stage(CHAIN_ID).engine.excluded == {X: "transfer reverted: paused"}
    finally:
        hot.clear()
        runtime.reset()


def _records(chain_id: int, queue: Any, n: int) -> list[list[Any]]:
    """The next ``n`` batches of records of ``chain_id`` off the real analytics queue
    (``queue``: a ``StageQueue``), decoded; other tests' messages passed over."""
    from arbbot.types import scored_from_wire

    got = []
    while len(got) < n:
        args, _ = queue.next_message()
        batch = scored_from_wire(args[0])
        if {s.opportunity.chain_id for s in batch} == {chain_id}:
            got.append(batch)
    return got


@pytest.mark.django_db
def test_the_path_task_decides_a_big_block_in_two_parts(chain: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """More screened candidates than ``ARBBOT_PATH_FIRST_PART``: the task decides the first
    part's opportunities and sends the chosen ones first, then the rest's, then the block's
    records once; nothing goes to the ml queue (the decision is made in the task:
    ``path.decide_here``). Read off the real queues."""
    import dataclasses

    from arbbot.config import get_settings
    from tests.chain.test_follower import StageQueue
    from workers import runtime
    from workers.tasks import path

    monkeypatch.setattr(path, "get_settings", lambda: dataclasses.replace(get_settings(), path_first_part=1))
    runtime.reset()
    hot = runtime.hotstate(CHAIN_ID)
    records = StageQueue(CHAIN_ID, "analytics", "workers.tasks.analytics.record_opportunities")
    chosen = StageQueue(CHAIN_ID, "execute", "workers.tasks.execute.execute")
    ml_queue = StageQueue(CHAIN_ID, "ml", "workers.tasks.ml.score")
    try:
        states = (
            V2PoolState(A, WETH, USDC, 10**21, 3 * 10**24), V2PoolState(B, WETH, USDC, 10**21, 33 * 10**23),
            V2PoolState(C, WETH, X, 10**21, 10**21), V2PoolState(D, WETH, X, 10**21, 2 * 10**21),
        )
        hot.put_pools(states, 1, H)
        assert path.find(PoolDelta(CHAIN_ID, 1, H, states, gas_price_wei=10**9).to_wire()) == path.DECIDED
        # both pay: each part's choice goes to the execute queue on its own, the first first;
        # the block's records once, both parts' in that order
        sent = [s.opportunity.pools for batch in _records(CHAIN_ID, chosen, 2) for s in batch]
        (recorded,) = _records(CHAIN_ID, records, 1)
        assert [s.opportunity.pools for s in recorded] == sent and {frozenset(p) for p in sent} == {AB, CD}
        assert {s.decision for s in recorded} == {"execute"}
        assert ml_queue.empty()
    finally:
        records.close()
        chosen.close()
        ml_queue.close()
        hot.clear()
        runtime.reset()


@pytest.mark.django_db
def test_a_first_part_short_of_the_blocks_sends_grows_before_it_goes(chain: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three profitable cycles, ``ARBBOT_PATH_FIRST_PART`` 1: with the strategy's 8 sends a
    block, one candidate's opportunity cannot fill them, so the first part grows to two
    candidates (the third is the last: it is the second part); with 1 send a block the first
    candidate's fills it and goes alone (``path.evaluate``, as the path task and the
    follower run it)."""
    import dataclasses

    from arbbot.config import get_settings
    from webapp.core.models import Chain, Strategy
    from workers import runtime
    from workers.tasks import path

    Y, E, F = "0x" + "55" * 20, "0x" + f"{0xE5:040x}", "0x" + f"{0xF6:040x}"
    monkeypatch.setattr(path, "get_settings", lambda: dataclasses.replace(get_settings(), path_first_part=1))
    states = (
        V2PoolState(A, WETH, USDC, 10**21, 3 * 10**24), V2PoolState(B, WETH, USDC, 10**21, 33 * 10**23),
        V2PoolState(C, WETH, X, 10**21, 10**21), V2PoolState(D, WETH, X, 10**21, 2 * 10**21),
        V2PoolState(E, WETH, Y, 10**21, 10**21), V2PoolState(F, WETH, Y, 10**21, 15 * 10**20),
    )

    def parts(block: int) -> list[int]:
        runtime.reset()
        hot = runtime.hotstate(CHAIN_ID)
        hot.put_pools(states, block, H)
        try:
            sent: list[int] = []
            rest = path.evaluate(PoolDelta(CHAIN_ID, block, H, states, gas_price_wei=10**9),
                                 lambda opps: sent.append(len(opps)))
            return [*sent, len(rest)]
        finally:
            hot.clear()

    try:
        assert parts(1) == [2, 1]
        Strategy.objects.create(chain=Chain.objects.get(chain_id=CHAIN_ID), version=1, max_sends_per_block=1,
                                source="test")
        assert parts(2) == [1, 2]
    finally:
        runtime.reset()


@pytest.mark.django_db
def test_the_follower_lane_decides_a_big_block_in_two_parts(chain: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """``decide_here`` (``arbbot follow --through ml``) with the real path stage, decision
    and queues: the first part is decided and its chosen opportunities sent before the
    rest's, each part's on their own; the block's records go once, both parts' in order. A
    part handed to the ml queue goes as ``ml.score`` takes a block's part."""
    import dataclasses

    from arbbot.config import get_settings
    from arbbot.types import opportunities_from_wire, scored_from_wire
    from tests.chain.test_follower import StageQueue
    from workers import runtime
    from workers.tasks.path import DECIDED, decide_here
    from workers.tasks.path import to_ml_queue as _to_ml_queue
    from workers.stage import Trace
    from workers.tasks import path

    monkeypatch.setattr(path, "get_settings", lambda: dataclasses.replace(get_settings(), path_first_part=1))
    runtime.reset()
    hot = runtime.hotstate(CHAIN_ID)
    queues = {q: StageQueue(CHAIN_ID, q, t) for q, t in (
        ("ml", "workers.tasks.ml.score"), ("execute", "workers.tasks.execute.execute"),
        ("analytics", "workers.tasks.analytics.record_opportunities"))}

    def mine(q: str, n: int) -> list[tuple[list, dict]]:
        got = []
        while len(got) < n:  # the queue may hold other tests' messages: this chain's only
            args, kwargs = queues[q].next_message()
            batch = scored_from_wire(args[0]) if q != "ml" else opportunities_from_wire(args[0])
            if {getattr(o, "opportunity", o).chain_id for o in batch} == {CHAIN_ID}:
                got.append((batch, kwargs))
        return got

    try:
        states = (
            V2PoolState(A, WETH, USDC, 10**21, 3 * 10**24), V2PoolState(B, WETH, USDC, 10**21, 33 * 10**23),
            V2PoolState(C, WETH, X, 10**21, 10**21), V2PoolState(D, WETH, X, 10**21, 2 * 10**21),
        )
        hot.put_pools(states, 1, H)
        trace = Trace.start(1.0)
        assert decide_here(PoolDelta(CHAIN_ID, 1, H, states, gas_price_wei=10**9), trace) == DECIDED
        chosen = mine("execute", 2)  # both pay: one send a part, the first part's first
        ((recorded, _),) = mine("analytics", 1)  # the block's records once, in that order
        assert [s.opportunity.pools for batch, _ in chosen for s in batch] == [s.opportunity.pools for s in recorded]
        assert [len(batch) for batch, _ in chosen] == [1, 1]
        assert {frozenset(s.opportunity.pools) for s in recorded} == {AB, CD}
        first_sent = [m for m in chosen[0][1]["trace"] if m[0] == "ml.sent"][0][1]
        assert first_sent < [m for m in chosen[1][1]["trace"] if m[0] == "path.sent"][0][1]
        assert queues["ml"].empty()

        first = [s.opportunity for s in chosen[0][0]]
        second = [s.opportunity for s in chosen[1][0]]
        _to_ml_queue(second, Trace.start(1.0), 2, first)
        _to_ml_queue(first, Trace.start(1.0), 1, first)
        _to_ml_queue(first, Trace.start(1.0))
        sent = mine("ml", 3)
        assert [(batch, kw.get("part")) for batch, kw in sent] == [(second, 2), (first, 1), (first, None)]
        assert opportunities_from_wire(sent[0][1]["first"]) == first and "first" not in sent[1][1]
    finally:
        for q in queues.values():
            q.close()
        hot.clear()
        runtime.reset()
