"""``arbbot.chain.abi``: selectors and topics against published vectors, and the word
decoders against ``eth_abi``'s encoding (negative ticks included)."""

from __future__ import annotations

import pytest
from eth_abi import encode

from arbbot.chain.abi import (
    address_word,
    event_topic,
    hex_bytes,
    int_arg,
    int_word,
    selector,
    uint_at,
    uint_word,
)


@pytest.mark.parametrize(
    "signature, expected",
    [
        ("transfer(address,uint256)", "a9059cbb"),
        ("balanceOf(address)", "70a08231"),
        ("approve(address,uint256)", "095ea7b3"),
        ("getReserves()", "0902f1ac"),
        ("slot0()", "3850c7bd"),
        ("aggregate3((address,bool,bytes)[])", "82ad56cb"),
        ("Error(string)", "08c379a0"),
    ],
)
def test_selector(signature: str, expected: str) -> None:
    assert selector(signature) == bytes.fromhex(expected)


@pytest.mark.parametrize(
    "signature, expected",
    [
        ("Sync(uint112,uint112)", "0x1c411e9a96e071241c2f21f7726b17ae89e3cab4c78be50e062b03a9fffbbad1"),
        ("Transfer(address,address,uint256)", "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"),
        (
            "Swap(address,address,int256,int256,uint160,uint128,int24)",
            "0xc42079f94a6350d7e6235f29174924f928cc2ac818eb64fed8004e115fbcca67",
        ),
    ],
)
def test_event_topic(signature: str, expected: str) -> None:
    assert event_topic(signature) == expected


@pytest.mark.parametrize("tick", [-887272, -60, -1, 0, 1, 887272])
def test_int24_words_decode_signed(tick: int) -> None:
    data = encode(["uint256", "int24"], [2**160 - 1, tick])
    assert int_word(data, 1) == tick
    assert uint_word(data, 0) == 2**160 - 1
    assert int_arg(tick) == data[32:64]


def test_negative_tick_word_is_twos_complement() -> None:
    word = bytes.fromhex("ff" * 29 + "f27618")  # -887272 sign-extended to 256 bits
    assert int_word(word, 0) == -887272
    assert uint_word(word, 0) == 2**256 - 887272
    assert int_arg(-887272) == word


def test_address_and_offsets() -> None:
    addr = "0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f"
    data = encode(["uint256", "address", "bytes"], [7, addr, b"\x01\x02"])
    assert address_word(data, 1) == addr
    dyn = uint_word(data, 2)  # offset of the bytes
    assert dyn == 96 and uint_at(data, dyn) == 2 and data[dyn + 32 : dyn + 34] == b"\x01\x02"
    assert hex_bytes("0x" + data.hex()) == data == hex_bytes(data.hex())
    assert uint_word(data, 9) == 0  # past the end reads as 0
