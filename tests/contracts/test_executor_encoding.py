"""Pure encoding of ArbExecutor calls: selectors match the compiled ABI, round-trips, refusals."""

from __future__ import annotations

import dataclasses

import pytest
from eth_abi import decode, encode
from hypothesis import example, given
from hypothesis import strategies as st
from eth_utils import keccak

from arbbot.contracts.build import load_artifact
from arbbot.execution.executor import (
    EXECUTE_SELECTOR,
    EXECUTE_TYPES,
    EncodingError,
    Hop,
    constructor_args,
    decode_execute,
    decode_revert,
    encode_add_factory,
    encode_cycle,
    encode_execute,
    encode_pause,
    encode_remove_factory,
    encode_set_executor,
    encode_unpause,
    encode_withdraw,
    gas_estimate,
    hops_for_cycle,
)
from arbbot.types import V2PoolState

A, B, C = "0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + "cc" * 20
P1, P2 = "0x" + "01" * 20, "0x" + "02" * 20


def _abi_signature(name: str) -> str:
    def t(inp: dict) -> str:  # type: ignore[type-arg]
        if inp["type"].startswith("tuple"):
            return "(" + ",".join(t(c) for c in inp["components"]) + ")" + inp["type"][5:]
        return str(inp["type"])

    fn = next(x for x in load_artifact()["abi"] if x.get("name") == name)
    return f"{name}({','.join(t(i) for i in fn['inputs'])})"


def test_selector_matches_compiled_abi() -> None:
    assert keccak(text=_abi_signature("execute"))[:4] == EXECUTE_SELECTOR


def test_round_trip_and_direction_free_hops() -> None:
    pools = [
        V2PoolState(P1, A, B, 10**21, 10**21),
        {"address": P2, "kind": "v3", "fee_pips": 500, "token0": A, "token1": B},
    ]
    data = encode_cycle(pools, [A, B, A], 1000, [990, 1010], 5, flash=False, strict_hops=True)
    got = decode_execute(data)
    assert got["token_in"] == A and got["amount_in"] == 1000 and got["min_profit"] == 5 and got["flash"] is False
    assert got["hops"] == [Hop(P1, B, "v2", 3000, 990), Hop(P2, A, "v3", 500, 1010)]


def test_refuses_non_cycles_and_impossible_guards() -> None:
    pool = V2PoolState(P1, A, B, 10**21, 10**21)
    with pytest.raises(EncodingError):
        hops_for_cycle([pool], [A, B])  # does not return to A
    with pytest.raises(EncodingError):
        hops_for_cycle([pool, pool], [A, C, A])  # pool does not trade C
    with pytest.raises(EncodingError):
        encode_cycle([pool, pool], [A, B, A], 1000, [990, 1010], 11)  # guard above prediction
    with pytest.raises(EncodingError):
        encode_execute(A, 1000, 0, [Hop(P1, B)])


def test_gas_estimate_and_revert_decoding() -> None:
    assert gas_estimate(["v2", "v2"]) < gas_estimate(["v2", "v3"])
    with pytest.raises(EncodingError):
        gas_estimate(["curve"])
    data = keccak(text="ProfitTooLow(uint256,uint256)")[:4] + (3).to_bytes(32, "big") + (9).to_bytes(32, "big")
    assert decode_revert("0x" + data.hex()) == "ProfitTooLow(3, 9)"
    assert decode_revert(keccak(text="NotOwner()")[:4]) == "NotOwner()"


def _abi(kind: str, name: str | None = None) -> list[dict]:  # type: ignore[type-arg]
    return [x for x in load_artifact()["abi"] if x.get("type") == kind and (name is None or x.get("name") == name)]


def _sig(entry: dict) -> str:  # type: ignore[type-arg]
    def t(inp: dict) -> str:  # type: ignore[type-arg]
        if inp["type"].startswith("tuple"):
            return "(" + ",".join(t(c) for c in inp["components"]) + ")" + inp["type"][5:]
        return str(inp["type"])

    return f"{entry.get('name', '')}({','.join(t(i) for i in entry['inputs'])})"


def test_owner_calls_match_the_compiled_abi() -> None:
    functions = {_sig(f) for f in _abi("function")}
    calls = {
        "withdraw(address,address,uint256)": encode_withdraw(A, B, 1),
        "setExecutor(address,bool)": encode_set_executor(A, True),
        "addFactory(uint8,address,bytes32)": encode_add_factory("v3", A, b"\x11" * 32),
        "removeFactory(uint8,address)": encode_remove_factory("v2", A),
        "pause()": encode_pause(),
        "unpause()": encode_unpause(),
    }
    for signature, data in calls.items():
        assert signature in functions
        assert data[:10] == "0x" + keccak(text=signature)[:4].hex()
    assert decode(["uint8", "address", "bytes32"], bytes.fromhex(calls["addFactory(uint8,address,bytes32)"][10:])) == (
        1, A, b"\x11" * 32)


def test_constructor_arguments_match_the_compiled_abi() -> None:
    (ctor,) = _abi("constructor")
    types, values = constructor_args(A, B, [C], [("v2", P1, b"\x01" * 32), ("v3", P2, b"\x02" * 32)])
    assert _sig({**ctor, "name": ""}) == f"({','.join(types)})"
    assert decode(types, encode(types, values)) == (A, B, (C,), ((0, P1, b"\x01" * 32), (1, P2, b"\x02" * 32)))


def test_coinbase_share_round_trips_and_is_bounded() -> None:
    data = encode_execute(A, 1000, 5, [Hop(P1, B), Hop(P2, A)], coinbase_bps=2500)
    assert decode_execute(data)["coinbase_bps"] == 2500
    assert decode_execute(encode_execute(A, 1000, 5, [Hop(P1, B), Hop(P2, A)]))["coinbase_bps"] == 0
    with pytest.raises(EncodingError):
        encode_execute(A, 1000, 5, [Hop(P1, B), Hop(P2, A)], coinbase_bps=10_001)
    assert gas_estimate(["v2", "v2"], coinbase_share=True) > gas_estimate(["v2", "v2"])


def test_every_custom_error_of_the_contract_is_decoded_by_name() -> None:
    for err in _abi("error"):
        types = [i["type"] for i in err["inputs"]]
        body = encode(types, [A if t == "address" else 7 for t in types])
        reason = decode_revert(keccak(text=_sig(err))[:4] + body)
        assert reason.startswith(f"{err['name']}("), reason
    balance = keccak(text="BalanceDecreased(address,uint256,uint256)")[:4] + encode(
        ["address", "uint256", "uint256"], [A, 10, 3])
    assert decode_revert(balance) == f"BalanceDecreased({A}, 10, 3)"


_address = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
_uint256 = st.integers(min_value=0, max_value=2**256 - 1)
_hop = st.builds(Hop, _address, _address, st.sampled_from(["v2", "v3"]), st.integers(0, 2**24 - 1), _uint256)


@given(token=_address, hops=st.lists(_hop, min_size=1, max_size=4), flash=st.booleans(),
       coinbase_bps=st.integers(0, 10_000), amounts=st.lists(st.tuples(_uint256.filter(bool), _uint256), min_size=2,
                                                              max_size=3))
@example(token=A, hops=[Hop(P1, A, "v2", 3000, 0)], flash=True, coinbase_bps=0,
         amounts=[(2**256 - 1, 2**256 - 1), (1, 0)])
def test_a_cycle_encoded_again_is_eth_abis_encoding_of_its_new_amounts(
    token: str, hops: list[Hop], flash: bool, coinbase_bps: int, amounts: list[tuple[int, int]],
) -> None:
    """The first call of a cycle is eth_abi's encoding; every later one writes its amounts
    into that calldata (``_execute_template``) and must still equal eth_abi's, byte for byte."""
    hops[-1] = dataclasses.replace(hops[-1], token_out=token)
    for amount_in, min_profit in amounts:
        full = encode(EXECUTE_TYPES, [token, amount_in, min_profit, flash, [h.as_tuple() for h in hops], coinbase_bps])
        got = encode_execute(token, amount_in, min_profit, hops, flash=flash, coinbase_bps=coinbase_bps)
        assert got == "0x" + (EXECUTE_SELECTOR + full).hex()
        assert decode_execute(got)["amount_in"] == amount_in and decode_execute(got)["min_profit"] == min_profit


def test_amounts_outside_uint256_are_refused_not_wrapped() -> None:
    hops = [Hop(P1, B, "v2"), Hop(P2, A, "v2")]
    encode_execute(A, 10**18, 0, hops)  # the cycle's template is cached: the refusal must not come from eth_abi
    for amount_in, min_profit in [(2**256, 0), (0, 0), (1, 2**256), (1, -1)]:
        with pytest.raises(EncodingError, match="amount_in must be in"):
            encode_execute(A, amount_in, min_profit, hops)
