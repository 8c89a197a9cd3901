"""arbbot/types.py: the wire codecs of the pipeline's records.

Every record survives ``to_wire`` -> JSON -> ``from_wire`` unchanged, and every malformed
field is refused with ``WireFormatError`` (the tasks dead-letter on it), never with a
``ValueError``/``TypeError``/``OverflowError`` that would be retried, nor with a value the
database would refuse later (``DataError``: a 100-character ``path_id``, a block number past
bigint)."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from arbbot.errors import WireFormatError
from arbbot.types import (
    FeatureRow,
    FeatureTable,
    Opportunity,
    PoolDelta,
    ScoredOpportunity,
    V2PoolState,
    V3PoolState,
    opportunities_from_wire,
    opportunities_to_wire,
    pool_from_wire,
    scored_from_wire,
    scored_to_wire,
    sint,
    uint,
)

BIGINT_MAX = 2**63 - 1
A = "0x" + "aa" * 20
B = "0x" + "bb" * 20
C = "0x" + "cc" * 20
P1 = "0x" + "11" * 20
P2 = "0x" + "22" * 20
HASH = "0x" + "ab" * 32

# --------------------------------------------------------------------------- strategies

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
hashes = st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex())
uint256 = st.integers(0, 2**256 - 1)
block_numbers = st.integers(0, BIGINT_MAX)
fees = st.integers(0, 999_999)
int24 = st.integers(-(2**23), 2**23 - 1)
times = st.floats(min_value=0, max_value=4e9, allow_nan=False, allow_infinity=False)

v2_states = st.builds(
    V2PoolState,
    address=addresses, token0=addresses, token1=addresses,
    reserve0=st.integers(0, 2**112 - 1), reserve1=st.integers(0, 2**112 - 1),
    fee_pips=fees, block_number=block_numbers,
)
v3_states = st.builds(
    V3PoolState,
    address=addresses, token0=addresses, token1=addresses,
    fee_pips=fees, tick_spacing=st.integers(1, 16383),
    sqrt_price_x96=st.integers(0, 2**160 - 1), tick=int24, liquidity=st.integers(0, 2**128 - 1),
    ticks=st.lists(st.tuples(int24, st.integers(-(2**127), 2**127 - 1)), max_size=6).map(lambda t: tuple(sorted(t))),
    block_number=block_numbers,
)
pool_states = st.one_of(v2_states, v3_states)
deltas = st.builds(
    PoolDelta,
    chain_id=block_numbers, block_number=block_numbers, block_hash=hashes,
    states=st.lists(pool_states, max_size=4).map(tuple), reorg=st.booleans(),
    orphaned_hashes=st.lists(hashes, max_size=3).map(tuple), observed_at=times,
    base_fee_wei=uint256, gas_price_wei=uint256,
)


@st.composite
def opportunities(draw: st.DrawFn) -> Opportunity:
    hops = draw(st.integers(1, 4))
    tokens = draw(st.lists(addresses, min_size=hops, max_size=hops))
    kinds = draw(st.one_of(st.just(()), st.lists(st.sampled_from(["v2", "v3"]), min_size=hops, max_size=hops)))
    return Opportunity(
        chain_id=draw(block_numbers), block_number=draw(block_numbers), block_hash=draw(hashes),
        path_id=draw(st.text(min_size=1, max_size=64)),
        pools=tuple(draw(st.lists(addresses, min_size=hops, max_size=hops))),
        tokens=(*tokens, tokens[0]),
        amount_in=draw(uint256), amount_out=draw(uint256), gas_estimate=draw(st.integers(0, 2**64 - 1)),
        gas_price_wei=draw(uint256), gas_cost=draw(uint256), hop_kinds=tuple(kinds), observed_at=draw(times),
    )


scored = st.builds(
    ScoredOpportunity,
    opportunity=opportunities(),
    score=st.floats(allow_nan=False, allow_infinity=False),
    decision=st.sampled_from(["execute", "skip"]),
    reason=st.text(max_size=40), model=st.text(max_size=10),
)


def via_json(wire: dict[str, Any]) -> Any:
    """What a Celery JSON message turns the dict into."""
    return json.loads(json.dumps(wire))


# --------------------------------------------------------------------------- round trips


@settings(max_examples=200)
@given(pool_states)
def test_pool_state_round_trip(state: V2PoolState | V3PoolState) -> None:
    assert pool_from_wire(via_json(state.to_wire())) == state


@settings(max_examples=100)
@given(deltas)
def test_pool_delta_round_trip(delta: PoolDelta) -> None:
    assert PoolDelta.from_wire(via_json(delta.to_wire())) == delta


def test_pool_delta_fees_are_decimal_strings_on_the_wire() -> None:
    delta = PoolDelta(1, 2, HASH, (), base_fee_wei=7 * 10**9, gas_price_wei=2**255)
    wire = delta.to_wire()
    assert (wire["base_fee_wei"], wire["gas_price_wei"]) == ("7000000000", str(2**255))
    assert PoolDelta.from_wire(wire) == delta
    old = {k: v for k, v in wire.items() if k not in ("base_fee_wei", "gas_price_wei")}
    assert (PoolDelta.from_wire(old).base_fee_wei, PoolDelta.from_wire(old).gas_price_wei) == (0, 0)


@settings(max_examples=200)
@given(opportunities())
def test_opportunity_round_trip(opp: Opportunity) -> None:
    assert Opportunity.from_wire(via_json(opp.to_wire())) == opp


@settings(max_examples=100)
@given(scored)
def test_scored_opportunity_round_trip(s: ScoredOpportunity) -> None:
    assert ScoredOpportunity.from_wire(via_json(s.to_wire())) == s


def test_addresses_and_hashes_are_lower_cased() -> None:
    wire = V2PoolState(P1, A, B, 1, 2).to_wire()
    wire.update(address=P1.upper().replace("0X", "0x"), token0="0x" + "aA" * 20)
    state = pool_from_wire(wire)
    assert (state.address, state.token0) == (P1, A)
    dwire = PoolDelta(1, 2, HASH, ()).to_wire()
    dwire["block_hash"] = HASH.upper().replace("0X", "0x")
    assert PoolDelta.from_wire(dwire).block_hash == HASH


def test_v3_ticks_are_sorted_on_decode() -> None:
    wire = V3PoolState(P1, A, B, 3000, 60, 2**96, 0, 10, ((60, -5), (-60, 5))).to_wire()
    assert pool_from_wire(wire).ticks == ((-60, 5), (60, -5))  # type: ignore[union-attr]


# --------------------------------------------------------------------------- malformed input


def v2_wire() -> dict[str, Any]:
    return V2PoolState(P1, A, B, 10**18, 2 * 10**18, 3000, 5).to_wire()


def v3_wire() -> dict[str, Any]:
    return V3PoolState(P2, A, B, 500, 10, 2**96, 0, 10**20, ((-10, 10**20), (10, -(10**20))), 5).to_wire()


def delta_wire() -> dict[str, Any]:
    return PoolDelta(31337, 5, HASH, (pool_from_wire(v2_wire()), pool_from_wire(v3_wire())),
                     orphaned_hashes=(HASH,), observed_at=1.7e9, base_fee_wei=1, gas_price_wei=2).to_wire()


def opportunity_wire() -> dict[str, Any]:
    return Opportunity(31337, 5, HASH, "c0ffee", (P1, P2), (A, B, A), 10**18, 10**18 + 5, 200_000, 10**9, 2,
                       ("v2", "v3"), 1.7e9).to_wire()


def scored_wire() -> dict[str, Any]:
    return ScoredOpportunity(Opportunity.from_wire(opportunity_wire()), 2.5, "execute", "ok", "rule").to_wire()


DECODERS: dict[str, tuple[Callable[[], dict[str, Any]], Callable[[Any], object]]] = {
    "v2": (v2_wire, pool_from_wire),
    "v3": (v3_wire, pool_from_wire),
    "delta": (delta_wire, PoolDelta.from_wire),
    "opportunity": (opportunity_wire, Opportunity.from_wire),
    "scored": (scored_wire, ScoredOpportunity.from_wire),
    "opportunity batch": (lambda: opportunities_to_wire([Opportunity.from_wire(opportunity_wire())] * 2),
                          opportunities_from_wire),
    "scored batch": (lambda: scored_to_wire([ScoredOpportunity(Opportunity.from_wire(opportunity_wire()), 2.5,
                                                               "skip", "low", "rule", {"pool_age": 3.0})] * 2),
                     scored_from_wire),
}

DROP = object()  # the field is missing
HUGE = "9" * 5000  # int() refuses a string past 4300 digits with ValueError
NOT_TIMES = ["abc", None, [], {}, "nan", "inf", float("nan"), float("inf"), -1.0, True, 10**400, "1700000000.5"]
NOT_UINTS = [HUGE, "0" * 5000 + "1" + "0" * 100, -1, "-1", True, False, None, 1.0, "1.5", "", " 1", "1_000", "²",
             "0x10", [1], {"v": 1}, 10**5000]

MALFORMED: list[tuple[str, tuple[Any, ...], Any]] = [
    *[("delta", ("observed_at",), v) for v in NOT_TIMES],
    *[("opportunity", ("observed_at",), v) for v in NOT_TIMES],
    *[("opportunity", ("amount_in",), v) for v in NOT_UINTS],
    *[("delta", ("base_fee_wei",), v) for v in NOT_UINTS],
    *[("v2", ("reserve0",), v) for v in [*NOT_UINTS, str(2**112)]],
    *[("v3", ("liquidity",), v) for v in [*NOT_UINTS, 2**128]],
    *[("v3", ("sqrt_price_x96",), v) for v in [*NOT_UINTS, str(2**160)]],
    # path_id: the column is varchar(64)
    ("opportunity", ("path_id",), "p" * 65),
    ("opportunity", ("path_id",), "p" * 100),
    ("opportunity", ("path_id",), ""),
    ("opportunity", ("path_id",), 7),
    ("opportunity", ("path_id",), None),
    # ids and block numbers are stored in bigint columns
    ("opportunity", ("block_number",), 2**63),
    ("opportunity", ("chain_id",), str(2**64 - 1)),
    ("delta", ("block_number",), -5),
    ("delta", ("chain_id",), "31337.0"),
    ("v2", ("block_number",), 2**63),
    ("opportunity", ("gas_estimate",), 2**64),
    # bools are not ints, and not strings
    ("opportunity", ("gas_estimate",), True),
    ("v3", ("tick",), False),
    ("delta", ("reorg",), "false"),
    ("delta", ("reorg",), 0),
    # ticks: int24, and entries are [tick, liquidity_net] pairs
    ("v3", ("tick",), 2**23),
    ("v3", ("tick",), -(2**23) - 1),
    ("v3", ("tick",), "1e3"),
    ("v3", ("tick",), "-" + HUGE),
    ("v3", ("ticks", 0, 0), 2**23),
    ("v3", ("ticks", 0, 1), str(2**127)),
    ("v3", ("ticks", 0, 1), "-" + HUGE),
    ("v3", ("ticks", 0), [1, 2, 3]),
    ("v3", ("ticks", 0), "10:5"),
    ("v3", ("ticks",), "[]"),
    ("v3", ("ticks",), {"0": 1}),
    ("v3", ("tick_spacing",), 0),
    ("v3", ("tick_spacing",), -10),
    ("v3", ("tick_spacing",), 16384),
    ("v3", ("fee_pips",), 1_000_000),
    ("v2", ("fee_pips",), 2**24),
    ("v2", ("fee_pips",), "3000.0"),
    # addresses and hashes: exact length, hex, 0x, no trailing newline
    ("v2", ("address",), A[:-2]),
    ("v2", ("token0",), A + "aa"),
    ("v2", ("token1",), A + "\n"),
    ("v2", ("token1",), "aa" * 21),
    ("v3", ("token0",), "0x" + "zz" * 20),
    ("v3", ("address",), int(A, 16)),
    ("delta", ("block_hash",), HASH[:-2]),
    ("delta", ("block_hash",), HASH + "\n"),
    ("delta", ("orphaned_hashes", 0), "0x"),
    ("opportunity", ("pools", 0), None),
    ("opportunity", ("tokens", 1), B.encode()),
    # wrong containers
    ("delta", ("states",), {"0": v2_wire()}),
    ("delta", ("states",), "[]"),
    ("delta", ("states", 0), [v2_wire()]),
    ("delta", ("states", 0, "kind"), "v4"),
    ("delta", ("states", 0, "kind"), ["v2"]),
    ("delta", ("orphaned_hashes",), HASH),
    ("delta", ("orphaned_hashes",), 5),
    ("opportunity", ("pools",), P1),
    ("opportunity", ("pools",), 5),
    ("opportunity", ("tokens",), {"a": A}),
    ("opportunity", ("hop_kinds",), "v2v3"),
    ("opportunity", ("hop_kinds",), 2),
    ("opportunity", ("hop_kinds",), ["v2"]),  # one kind for two pools
    ("opportunity", ("hop_kinds",), ["v2", "v4"]),
    ("opportunity", ("hop_kinds",), ["v2", None]),
    ("scored", ("opportunity",), "{}"),
    ("scored", ("opportunity",), [opportunity_wire()]),
    # not a cycle
    ("opportunity", ("tokens",), [A, B, C]),
    ("opportunity", ("tokens",), [A, A]),
    ("opportunity", ("pools",), []),
    # scores are finite numbers, decisions one of two, texts strings
    ("scored", ("score",), "nan"),
    ("scored", ("score",), float("nan")),
    ("scored", ("score",), float("-inf")),
    ("scored", ("score",), None),
    ("scored", ("score",), "2.5"),
    ("scored", ("score",), True),
    ("scored", ("score",), 10**400),
    ("scored", ("decision",), "EXECUTE"),
    ("scored", ("decision",), ["execute"]),
    ("scored", ("decision",), None),
    ("scored", ("reason",), None),
    ("scored", ("reason",), ["ok"]),
    ("scored", ("model",), 3),
    ("scored", ("opportunity", "path_id"), "p" * 100),
    ("scored", ("opportunity", "observed_at"), "abc"),
    ("scored", ("opportunity", "amount_out"), HUGE),
]
for _record, _required in [
    ("v2", ["kind", "address", "token0", "token1", "reserve0", "reserve1"]),
    ("v3", ["kind", "address", "token0", "token1", "fee_pips", "tick_spacing", "sqrt_price_x96", "tick", "liquidity"]),
    ("delta", ["chain_id", "block_number", "block_hash", "states"]),
    ("opportunity", ["chain_id", "block_number", "block_hash", "path_id", "pools", "tokens", "amount_in",
                     "amount_out", "gas_estimate", "gas_price_wei", "gas_cost"]),
    ("scored", ["opportunity", "score", "decision"]),
]:
    MALFORMED += [(_record, (name,), DROP) for name in _required]


def short_id(value: Any) -> str:
    if isinstance(value, int) and value.bit_length() > 1000:
        return f"int-of-{len(str(value.bit_length()))}-digit-bits"
    return "missing" if value is DROP else repr(value)[:40]


def mutated(wire: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(wire)
    parent = out
    for key in path[:-1]:
        parent = parent[key]
    if value is DROP:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return out


@pytest.mark.parametrize(("record", "path", "value"), MALFORMED, ids=short_id)
def test_malformed_field_is_a_wire_format_error(record: str, path: tuple[Any, ...], value: Any) -> None:
    build, decode = DECODERS[record]
    decode(build())  # the untouched message is valid
    with pytest.raises(WireFormatError):
        decode(mutated(build(), path, value))


@pytest.mark.parametrize("record", sorted(DECODERS))
@pytest.mark.parametrize("message", [None, [], "{}", 5, b"{}", ["kind", "v2"]], ids=short_id)
def test_a_message_that_is_not_an_object(record: str, message: Any) -> None:
    if record.endswith("batch") and message == []:
        assert DECODERS[record][1](message) == []  # an older producer's (empty) list of records
        return
    with pytest.raises(WireFormatError):
        DECODERS[record][1](message)


def test_accepted_edge_values() -> None:
    """What strictness keeps: ints as well as decimal strings, leading zeros, the extremes of
    each range, integral observed_at, an opportunity with no hop kinds, a negative score."""
    v2 = pool_from_wire(mutated(mutated(v2_wire(), ("reserve0",), "0" * 5000 + "7"), ("reserve1",), 2**112 - 1))
    assert (v2.reserve0, v2.reserve1) == (7, 2**112 - 1)  # type: ignore[union-attr]
    v3 = pool_from_wire(mutated(mutated(v3_wire(), ("tick",), str(-(2**23))), ("tick_spacing",), 16383))
    assert (v3.tick, v3.tick_spacing) == (-(2**23), 16383)  # type: ignore[union-attr]
    opp = Opportunity.from_wire(mutated(mutated(opportunity_wire(), ("observed_at",), 1_700_000_000),
                                        ("block_number",), str(BIGINT_MAX)))
    assert (opp.observed_at, opp.block_number) == (1.7e9, BIGINT_MAX)
    assert Opportunity.from_wire(mutated(opportunity_wire(), ("hop_kinds",), DROP)).hop_kinds == ()
    assert Opportunity.from_wire(mutated(opportunity_wire(), ("path_id",), "p" * 64)).path_id == "p" * 64
    assert ScoredOpportunity.from_wire(mutated(scored_wire(), ("score",), -3)).score == -3.0
    assert uint("0") == 0 and sint("-0") == 0 and sint("-" + "0" * 5000 + "5", bits=24) == -5


# Any JSON value (and a few Python ones: tuples, bytes, huge ints) in any one place.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(-(2**300), 2**300) | st.floats() | st.text()
    | st.from_regex(r"-?[0-9]{1,90}", fullmatch=True) | st.sampled_from([HUGE, "-" + HUGE, "v2", "v3", HASH, A])
    | st.builds(pow, st.just(10), st.just(5000)) | st.binary(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    | st.lists(inner, max_size=2).map(tuple),
    max_leaves=6,
)


def paths_of(wire: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and list index in a message, nested ones too."""
    out = []
    items = wire.items() if isinstance(wire, dict) else enumerate(wire) if isinstance(wire, list) else ()
    for key, value in items:
        out.append((*prefix, key))
        out += paths_of(value, (*prefix, key))
    return out


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(record=st.sampled_from(sorted(DECODERS)), data=st.data())
@example(record="opportunity", data=None)  # type: ignore[arg-type]
def test_any_value_anywhere_decodes_or_is_a_wire_format_error(record: str, data: st.DataObject | None) -> None:
    build, decode = DECODERS[record]
    wire = build()
    if data is None:  # the explicit example: a huge int where a string is expected
        path, value = ("path_id",), 10**5000
    else:
        path = data.draw(st.sampled_from(paths_of(wire)), label="path")
        value = data.draw(st.one_of(st.just(DROP), json_values), label="value")
    try:
        decode(mutated(wire, path, value))
    except WireFormatError:
        pass


def test_norm_address_remembers_only_checked_addresses() -> None:
    from arbbot import types

    good = "0x" + "aB" * 20
    for _ in range(2):  # the second call answers from the cache, identically
        assert types.norm_address(good) == good.lower()
    for bad in ("0x" + "zz" * 20, "0x" + "ab" * 19, "0X" + "ab" * 20):
        for _ in range(2):
            with pytest.raises(WireFormatError):
                types.norm_address(bad)
        assert bad not in types._ADDRESSES
    for i in range(types._ADDRESSES_MAX + 10):  # bounded: cleared when full
        types.norm_address("0x" + f"{i:040x}")
    assert len(types._ADDRESSES) <= types._ADDRESSES_MAX


@pytest.mark.parametrize("record", ["delta", "opportunity", "scored"])
def test_another_wire_version_is_refused_this_one_accepted(record: str) -> None:
    build, decode = DECODERS[record]
    assert decode({**build(), "wire": 1}) == decode(build())
    for other in (0, 2, "1", None):
        with pytest.raises(WireFormatError, match="wire version .* not understood"):
            decode({**build(), "wire": other})


def test_scored_opportunity_features_are_named_numbers_sent_only_when_present() -> None:
    base = ScoredOpportunity(Opportunity.from_wire(opportunity_wire()), 2.5, "execute", "ok", "rule")
    assert "features" not in base.to_wire()
    with_features = ScoredOpportunity(base.opportunity, 0.9, "execute", "", "model:x", {"hops": 2.0, "edge": 0.01})
    assert ScoredOpportunity.from_wire(json.loads(json.dumps(with_features.to_wire()))) == with_features
    for bad in ({"0x" + "ab" * 20: 1.0}, {"Hops": 1.0}, {"hops": "2"}, {"hops": float("nan")}, ["hops"]):
        wire = {**base.to_wire(), "features": bad}
        with pytest.raises(WireFormatError):
            ScoredOpportunity.from_wire(wire)


# --------------------------------------------------------------------------- columnar batches


@settings(max_examples=100)
@given(st.lists(opportunities(), max_size=5))
def test_opportunity_batch_round_trip_mixed_blocks_too(opps: list[Opportunity]) -> None:
    assert opportunities_from_wire(via_json(opportunities_to_wire(opps))) == opps


@settings(max_examples=60)
@given(st.lists(scored, max_size=4))
def test_scored_batch_round_trip(batch: list[ScoredOpportunity]) -> None:
    assert scored_from_wire(via_json(scored_to_wire(batch))) == batch


def test_a_block_batch_names_the_block_once_and_each_address_once() -> None:
    o = Opportunity.from_wire(opportunity_wire())
    wire = scored_to_wire([ScoredOpportunity(o, 1.0, "skip", features={"a": 1.0}),
                           ScoredOpportunity(o, 2.0, "execute")])
    assert wire["block_number"] == 5 and wire["addresses"] == [P1, P2, A, B]
    assert wire["pools"] == [[0, 1], [0, 1]] and wire["features"] == [[1.0], None]
    assert scored_from_wire(wire)[0].features == {"a": 1.0} and scored_from_wire(wire)[1].features == {}
    # the per-item list of an older producer still decodes
    assert scored_from_wire([s.to_wire() for s in scored_from_wire(wire)]) == scored_from_wire(wire)


@pytest.mark.parametrize("row, decoded", [
    ([1.5, 0.25], {"hops": 1.5, "edge": 0.25}),  # every value a finite float: the batch's table
    ([2, 0.25], {"hops": 2.0, "edge": 0.25}),  # an int (another producer's): row by row
    ([None, 0.25], {"edge": 0.25}),  # a missing value is left out
])
def test_a_decoded_batch_s_features_equal_its_dictionaries(row: list[Any], decoded: dict[str, float]) -> None:
    o = Opportunity.from_wire(opportunity_wire())
    wire = via_json(scored_to_wire([ScoredOpportunity(o, 1.0, "skip", features={"hops": 3.0, "edge": 0.5}),
                                    ScoredOpportunity(o, 2.0, "skip", features={"hops": 4.0, "edge": 1e-300})]))
    wire["features"][1] = row
    first, second = scored_from_wire(wire)
    assert first.features == {"hops": 3.0, "edge": 0.5} and second.features == decoded
    assert dict(second.features) == decoded and all(type(v) is float for v in second.features.values())


@pytest.mark.parametrize("value, says", [
    ("NaN", "feature edge must be finite"), ("Infinity", "feature edge must be finite"),
    (True, "feature edge must be a number"), ("0.5", "feature edge must be a number"), ([0.5], "must be a number"),
])
def test_a_bad_feature_value_in_a_batch_is_refused_by_name(value: Any, says: str) -> None:
    o = Opportunity.from_wire(opportunity_wire())
    text = json.dumps(scored_to_wire([ScoredOpportunity(o, 1.0, "skip", features={"hops": 3.0, "edge": 0.5})] * 2))
    wire = json.loads(text)  # json.loads takes NaN and Infinity: a producer could send them
    wire["features"][1][1] = float(value) if value in ("NaN", "Infinity") else value
    with pytest.raises(WireFormatError, match=says):
        scored_from_wire(wire)


def test_a_batch_s_feature_table_goes_on_the_wire_as_its_dictionaries_would() -> None:
    o = Opportunity.from_wire(opportunity_wire())
    table = FeatureTable(("hops", "edge"), lambda: [[2.0, 0.5], [3.0, 0.25]])
    lazy = [ScoredOpportunity(o, 1.0, "skip", "r", "m", FeatureRow(table, 1)),
            ScoredOpportunity(o, 2.0, "execute", "", "m", FeatureRow(table, 0))]
    eager = [ScoredOpportunity(o, 1.0, "skip", "r", "m", {"hops": 3.0, "edge": 0.25}),
             ScoredOpportunity(o, 2.0, "execute", "", "m", {"hops": 2.0, "edge": 0.5})]
    assert lazy == eager and lazy[0].features["edge"] == 0.25 and len(lazy[0].features) == 2
    assert scored_to_wire(lazy) == scored_to_wire(eager)
    assert scored_from_wire(via_json(scored_to_wire(lazy))) == eager
    assert lazy[0].to_wire() == eager[0].to_wire()
    mixed = [lazy[0], eager[1], ScoredOpportunity(o, 0.0, "skip")]  # not one table: name by name
    assert scored_to_wire(mixed) == scored_to_wire([eager[0], eager[1], ScoredOpportunity(o, 0.0, "skip")])


def test_a_block_decided_in_two_parts_goes_on_the_wire_row_by_row_of_each_table(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two parts, two tables of the same names (the path task records them in one message):
    each row taken as it is, no value read by name; tables of other names, name by name."""
    o = Opportunity.from_wire(opportunity_wire())
    first = FeatureTable(("hops", "edge"), lambda: [[2.0, 0.5]])
    second = FeatureTable(("hops", "edge"), lambda: [[3.0, 0.25], [4.0, 0.125]])
    lazy = [ScoredOpportunity(o, 1.0, "execute", "", "m", FeatureRow(first, 0)),
            ScoredOpportunity(o, 2.0, "skip", "r", "m", FeatureRow(second, 1)),
            ScoredOpportunity(o, 3.0, "skip", "r", "m", FeatureRow(second, 0))]
    eager = [ScoredOpportunity(s.opportunity, s.score, s.decision, s.reason, s.model, dict(s.features)) for s in lazy]
    assert eager[1].features == {"hops": 4.0, "edge": 0.125}
    monkeypatch.setattr(FeatureRow, "__getitem__", lambda *_: pytest.fail("a value read by name"))
    assert scored_to_wire(lazy) == scored_to_wire(eager)
    monkeypatch.undo()
    other = FeatureTable(("edge", "hops"), lambda: [[0.5, 2.0]])  # the same values, other names' order
    renamed = [lazy[1], ScoredOpportunity(o, 1.0, "execute", "", "m", FeatureRow(other, 0))]
    assert scored_from_wire(via_json(scored_to_wire(renamed))) == [eager[1], ScoredOpportunity(
        o, 1.0, "execute", "", "m", {"hops": 2.0, "edge": 0.5})]


def test_a_verdict_is_frozen_and_defaults_its_fields() -> None:
    s = ScoredOpportunity(Opportunity.from_wire(opportunity_wire()), 1.0, "skip")
    assert (s.reason, s.model, s.features) == ("", "rule", {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.score = 2.0  # type: ignore[misc]
    assert dataclasses.replace(s, features={"a": 1.0}).features == {"a": 1.0} and s.features == {}


@pytest.mark.parametrize("version", [0, 2, "1", None, True])
def test_another_batch_wire_version_is_refused(version: Any) -> None:
    wire = opportunities_to_wire([Opportunity.from_wire(opportunity_wire())])
    assert len(opportunities_from_wire(wire)) == 1
    with pytest.raises(WireFormatError, match="batch wire version .* not understood"):
        opportunities_from_wire({**wire, "batch_wire": version})


@pytest.mark.parametrize("key, value", [
    ("pools", [[0, 9]]), ("pools", [[0, -1]]), ("pools", [[True, 1]]), ("pools", [[]]), ("tokens", [[2, 3]]),
    ("amount_in", ["1" * 79]), ("amount_in", [str(2**256)]), ("amount_in", ["-1"]), ("amount_in", [1]),
    ("amount_in", ["1,2"]), ("amount_in", []), ("hop_kinds", ["v2,v4"]), ("hop_kinds", ["v2"]),
    ("gas_estimate", [2**64]), ("gas_estimate", ["1"]), ("path_id", [""]), ("path_id", ["x" * 65]),
    ("kind", "scored"), ("n", 2), ("n", -1), ("addresses", ["0x12"]), ("block_number", [5, 6]),
])
def test_a_malformed_column_is_a_wire_format_error(key: str, value: Any) -> None:
    wire = opportunities_to_wire([Opportunity.from_wire(opportunity_wire())])
    with pytest.raises(WireFormatError):
        opportunities_from_wire({**wire, key: value})
