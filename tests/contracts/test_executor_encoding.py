"""Pure encoding of ArbExecutor calls: selectors match the compiled ABI, round-trips, refusals."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from arbbot.contracts.build import load_artifact
from arbbot.execution.executor import (
    EXECUTE_SELECTOR,
    EncodingError,
    Hop,
    decode_execute,
    decode_revert,
    encode_cycle,
    encode_execute,
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
