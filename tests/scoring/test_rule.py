"""The rule scorer: each opportunity's own verdict (margin over gas, gross and net profit)
and the batch decision (every opportunity recorded; ``execute`` only for the best
non-overlapping ones, at most ``max_sends`` of them, the losers recorded as ``skip`` with
the cycle they lost to or the cap)."""

from __future__ import annotations

import random

import pytest
from decimal import Decimal
from fractions import Fraction

from arbbot.scoring.rule import RuleScorer, after_first, as_chosen, at_most, chosen_of, fills_sends
from arbbot.types import Opportunity

WETH = "0x" + "ee" * 20
H = "0x" + "00" * 32


def pool(i: int) -> str:
    return "0x" + f"{i:040x}"


def opp(path_id: str, pools: tuple[int, ...], profit: int, gas_cost: int = 0) -> Opportunity:
    """A WETH cycle: its profit is its native value; gas_cost wei of gas (gas x 1 wei)."""
    return Opportunity(
        chain_id=1, block_number=7, block_hash=H, path_id=path_id,
        pools=tuple(pool(p) for p in pools), tokens=(WETH,) + ("0x" + "11" * 20,) * (len(pools) - 1) + (WETH,),
        amount_in=10**18, amount_out=10**18 + profit, gas_estimate=gas_cost, gas_price_wei=1, gas_cost=gas_cost,
        profit_native=profit,
    )


def test_margin_over_gas() -> None:
    scorer = RuleScorer(margin=1.5)
    assert scorer.score(opp("a", (1, 2), profit=151, gas_cost=100)).decision == "execute"
    below = scorer.score(opp("b", (1, 2), profit=150, gas_cost=100))  # exactly gas x margin: not above it
    assert (below.decision, below.reason) == ("skip", "profit below gas x 1.5")
    assert below.score == 1.5


def test_the_margin_is_compared_exactly_not_through_a_float() -> None:
    # gas x 1.1 is 1.1e18 exactly; as floats it is 1100000000000000128, which would skip a
    # profit of 1100000000000000001 that does exceed it.
    gas = 10**18
    for margin in (Fraction(11, 10), Decimal("1.1")):
        scorer = RuleScorer(margin=Fraction(margin))
        assert scorer.score(opp("x", (1, 2), profit=gas * 11 // 10 + 1, gas_cost=gas)).decision == "execute"
        at = scorer.score(opp("y", (1, 2), profit=gas * 11 // 10, gas_cost=gas))
        assert (at.decision, at.reason) == ("skip", "profit below gas x 1.1")


def test_zero_and_negative_gross_profit_are_skipped() -> None:
    scorer = RuleScorer()
    for profit in (0, -5):
        s = scorer.score(opp("z", (1, 2), profit=profit))
        assert (s.decision, s.reason) == ("skip", "no gross profit")


def test_net_profit_minimum() -> None:
    scorer = RuleScorer(margin=1.0, min_net_profit=50)
    at_min = scorer.score(opp("m", (1, 2), profit=150, gas_cost=100))  # net 50: not above the minimum
    assert (at_min.decision, at_min.reason) == ("skip", "net profit below minimum")
    assert scorer.score(opp("n", (1, 2), profit=151, gas_cost=100)).decision == "execute"


def test_overlap_goes_to_the_higher_net_profit_and_the_loser_says_why() -> None:
    # Gross order and net order disagree: the decision follows net profit.
    high_gross = opp("gross", (1, 2), profit=1000, gas_cost=900)  # net 100
    high_net = opp("net", (2, 3), profit=600, gas_cost=100)  # net 500
    out = RuleScorer(margin=1.0).decide([high_gross, high_net])
    by_path = {s.opportunity.path_id: s for s in out}
    assert by_path["net"].decision == "execute"
    loser = by_path["gross"]
    assert loser.decision == "skip"
    assert loser.reason == f"overlaps a better cycle through pool {pool(2)} (path net)"
    assert [s.opportunity.path_id for s in out] == ["net", "gross"]  # best first


def test_every_opportunity_is_recorded_with_its_final_decision() -> None:
    batch = [
        opp("a", (1, 2), profit=900),
        opp("b", (3, 4), profit=800),
        opp("c", (1, 5), profit=700),  # overlaps a
        opp("d", (6, 7), profit=0),  # no profit
        opp("e", (8, 9), profit=100, gas_cost=90),  # below margin
    ]
    out = RuleScorer().decide(batch)
    assert sorted(s.opportunity.path_id for s in out) == ["a", "b", "c", "d", "e"]
    decisions = {s.opportunity.path_id: (s.decision, s.reason.split(" ")[0]) for s in out}
    assert decisions == {
        "a": ("execute", "profit/gas"), "b": ("execute", "profit/gas"), "c": ("skip", "overlaps"),
        "d": ("skip", "no"), "e": ("skip", "profit"),
    }


def test_ties_are_decided_by_path_id_whatever_the_input_order() -> None:
    batch = [opp(name, (1, i + 2), profit=500) for i, name in enumerate("qmxa")]
    winners = set()
    for seed in range(8):
        shuffled = batch[:]
        random.Random(seed).shuffle(shuffled)
        out = RuleScorer().decide(shuffled)
        winners.add(tuple(s.opportunity.path_id for s in out if s.decision == "execute"))
        assert [s.opportunity.path_id for s in out] == ["a", "m", "q", "x"]
    assert winners == {("a",)}


def test_no_pool_is_used_twice_among_the_executed() -> None:
    rng = random.Random(13)
    batch = [
        opp(f"p{i}", tuple(rng.sample(range(12), rng.choice((2, 3)))), profit=rng.randrange(-100, 10_000),
            gas_cost=rng.randrange(0, 500))
        for i in range(200)
    ]
    scorer = RuleScorer()
    out = scorer.decide(batch)
    assert len(out) == len(batch)
    executed = [s for s in out if s.decision == "execute"]
    pools = [p for s in executed for p in s.opportunity.pools]
    assert executed and len(pools) == len(set(pools))
    # Greedy by net profit: every worthy opportunity left out shares a pool with a better executed one.
    for s in out:
        if s.decision == "skip" and scorer.score(s.opportunity).decision == "execute":
            assert s.reason.startswith("overlaps a better cycle through pool ")
            assert any(
                set(s.opportunity.pools) & set(e.opportunity.pools) and e.opportunity.net_profit >= s.opportunity.net_profit
                for e in executed
            )


CHEAP = "0x" + "cc" * 20  # a token worth 1/1000 wei per base unit


def cheap(path_id: str, pools: tuple[int, ...], profit: int, gas_wei: int, wei_per_1000: int | None = 1) -> Opportunity:
    """A cycle starting at CHEAP, valued as the path stage values it (``None``: no price)."""
    return Opportunity(
        chain_id=1, block_number=7, block_hash=H, path_id=path_id, pools=tuple(pool(p) for p in pools),
        tokens=(CHEAP,) + ("0x" + "11" * 20,) * (len(pools) - 1) + (CHEAP,), amount_in=10**30,
        amount_out=10**30 + profit, gas_estimate=gas_wei, gas_price_wei=1, gas_cost=gas_wei * 1000,
        profit_native=None if wei_per_1000 is None else profit * wei_per_1000 // 1000,
    )


def test_a_cheap_token_with_a_large_raw_profit_ranks_below_a_weth_cycle_worth_more() -> None:
    # 784_000 units of CHEAP are worth 784 wei; the WETH cycle's 5_000 wei is worth more.
    # By raw amounts CHEAP would win the shared pool; in native, WETH does.
    big_raw = cheap("cheap", (1, 2), profit=784_000, gas_wei=100)
    worth_more = opp("weth", (2, 3), profit=5_000, gas_cost=100)
    assert big_raw.net_profit > worth_more.net_profit  # raw: 784_000 - 100_000 > 4_900
    out = RuleScorer(margin=1.0).decide([big_raw, worth_more])
    assert [(s.opportunity.path_id, s.decision) for s in out] == [("weth", "execute"), ("cheap", "skip")]
    assert out[1].reason == f"overlaps a better cycle through pool {pool(2)} (path weth)"
    # The margin is native too: 784 wei of profit does not cover 600 wei of gas x 1.5.
    alone = RuleScorer(margin=1.5).score(cheap("c", (4, 5), profit=784_000, gas_wei=600))
    assert (alone.decision, alone.reason) == ("skip", "profit below gas x 1.5")
    # and the minimum net profit is in native wei
    assert RuleScorer(margin=1.0, min_net_profit=684).score(cheap("c", (4, 5), 784_000, 100)).decision == "skip"
    assert RuleScorer(margin=1.0, min_net_profit=683).score(cheap("c", (4, 5), 784_000, 100)).decision == "execute"


def test_an_opportunity_without_a_native_price_ranks_last_and_is_never_executed() -> None:
    unpriced = cheap("u", (1, 2), profit=10**24, gas_wei=1, wei_per_1000=None)
    small = opp("s", (3, 4), profit=2, gas_cost=1)
    out = RuleScorer(margin=1.0).decide([unpriced, small])
    assert [s.opportunity.path_id for s in out] == ["s", "u"]
    assert (out[1].decision, out[1].reason) == ("skip", f"no price in the native token for {CHEAP}: worth unknown")
    assert out[0].decision == "execute"


def test_only_the_best_max_sends_of_a_block_go_to_execute_the_rest_say_why() -> None:
    # ten disjoint worthy cycles, one overlapping the best, one below the margin
    batch = [opp(f"w{i}", (2 * i + 10, 2 * i + 11), profit=1000 + i) for i in range(10)]
    batch += [opp("over", (28, 40), profit=999), opp("poor", (50, 51), profit=100, gas_cost=90)]
    out = RuleScorer(max_sends=3).decide(batch)
    assert len(out) == len(batch)
    executed = [s.opportunity.path_id for s in out if s.decision == "execute"]
    assert executed == ["w9", "w8", "w7"]  # the best three by net profit, best first
    reasons = {s.opportunity.path_id: s.reason for s in out}
    assert all(reasons[f"w{i}"] == "not among the block's best 3 (max_sends_per_block)" for i in range(7))
    assert reasons["over"].startswith("overlaps a better cycle")  # the pool rule first, as before
    assert reasons["poor"] == "profit below gas x 1.5"
    # no cap, and a cap the batch does not reach, leave every decision as it was
    uncapped = RuleScorer().decide(batch)
    assert [s.decision for s in uncapped].count("execute") == 10
    assert RuleScorer(max_sends=10).decide(batch) == uncapped


def test_the_cap_counts_only_execute_decisions_and_refuses_zero() -> None:
    decided = RuleScorer().decide([opp("a", (1, 2), profit=0), opp("b", (3, 4), profit=900), opp("c", (5, 6), profit=800)])
    assert [s.opportunity.path_id for s in decided] == ["b", "c", "a"]
    capped = at_most(decided, 1)
    assert [(s.opportunity.path_id, s.decision) for s in capped] == [("b", "execute"), ("c", "skip"), ("a", "skip")]
    assert capped[2] is decided[2] and decided[1].decision == "execute"  # the input is not changed
    with pytest.raises(ValueError, match="at least 1"):
        at_most(decided, 0)


def test_a_first_part_fills_the_sends_with_as_many_worthy_cycles_on_distinct_pools() -> None:
    """What the path stage asks before a block's first part goes (``PathEngine.evaluate``'s
    ``first_part_enough``): only ``execute`` decisions count, one a pool."""
    rule = RuleScorer(max_sends=2)
    assert not fills_sends(rule, [opp("a", (1, 2), profit=900)])
    assert not fills_sends(rule, [opp("a", (1, 2), profit=900), opp("b", (2, 3), profit=800)])  # pool 2 twice
    assert not fills_sends(rule, [opp("a", (1, 2), profit=900), opp("poor", (3, 4), profit=100, gas_cost=90)])
    assert fills_sends(rule, [opp("a", (1, 2), profit=900), opp("c", (3, 4), profit=800)])
    assert not fills_sends(RuleScorer(), [opp(f"w{i}", (2 * i, 2 * i + 1), profit=900) for i in range(50)])  # no cap


def test_a_blocks_second_part_is_decided_around_the_first_parts_choice() -> None:
    first = RuleScorer(max_sends=3).decide([opp("a", (1, 2), profit=900), opp("b", (3, 4), profit=800)])
    chosen = chosen_of(first)
    assert chosen == {"a": [pool(1), pool(2)], "b": [pool(3), pool(4)]}
    second = RuleScorer(max_sends=3).decide([
        opp("c", (2, 5), profit=2000),  # better than anything, but through a's pool 2
        opp("d", (6, 7), profit=700),
        opp("e", (8, 9), profit=600),  # a fourth send: past the cap of 3 for the block
        opp("f", (10, 11), profit=100, gas_cost=90),  # below the margin: as decided
    ])
    out = {s.opportunity.path_id: (s.decision, s.reason) for s in after_first(second, chosen, 3)}
    assert out["c"] == ("skip", f"overlaps a cycle of the block's first part through pool {pool(2)} (path a)")
    assert out["d"][0] == "execute"
    assert out["e"] == ("skip", "not among the block's best 3 (max_sends_per_block)")
    assert out["f"] == ("skip", "profit below gas x 1.5")
    assert [s.decision for s in after_first(second, {}, 3)].count("execute") == 3


def test_a_first_part_decided_twice_keeps_the_choice_stored_first() -> None:
    decided = RuleScorer().decide([opp("a", (1, 2), profit=900), opp("b", (3, 4), profit=800)])
    assert as_chosen(decided, chosen_of(decided)) == decided  # its own choice: nothing changes
    other = as_chosen(decided, {"b": [pool(3), pool(4)]})
    assert [(s.opportunity.path_id, s.decision) for s in other] == [("a", "skip"), ("b", "execute")]
    assert other[0].reason == "not chosen with the block's second part"
    flipped = as_chosen(RuleScorer().decide([opp("z", (5, 6), profit=0)]), {"z": [pool(5), pool(6)]})
    assert (flipped[0].decision, flipped[0].reason) == ("execute", "chosen with the block's second part")
