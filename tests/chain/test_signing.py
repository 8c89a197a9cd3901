"""Signing runs on libsecp256k1 (``coincurve``, eth-keys' fast backend), and signs exactly as
the pure-Python backend eth-keys falls back to without it: same (v, r, s) for the same key
and hash (both take the nonce from RFC 6979 and give the low-s form). ``sign_raw_tx`` (the
signer's own encoding) gives the very bytes and hash eth-account's ``sign_transaction`` gives,
EIP-1559 and legacy, for random transactions. A transaction it signed is accepted by anvil from
the key's address: tests/execution/test_nonces.py and the live e2e."""

from __future__ import annotations

import random

import coincurve
import eth_keys
import pytest
from eth_account import Account
from eth_keys.backends import CoinCurveECCBackend, NativeECCBackend
from eth_utils import to_checksum_address
from hypothesis import example, given
from hypothesis import strategies as st

from arbbot.chain.rawtx import decode_raw_tx, hash_and_nonce, own_calldata, sign_raw_tx
from arbbot.chain.tx import LocalSigner
from arbbot.errors import ArbbotError

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141  # the group's order


def test_the_signer_uses_libsecp256k1() -> None:
    assert isinstance(eth_keys.KeyAPI().backend, CoinCurveECCBackend)  # coincurve missing: 8x slower sends


def test_libsecp256k1_signs_as_the_pure_python_backend() -> None:
    rng = random.Random(7)
    fast, slow = eth_keys.KeyAPI(CoinCurveECCBackend), eth_keys.KeyAPI(NativeECCBackend)
    for _ in range(25):
        key = rng.randbytes(32)
        if not 0 < int.from_bytes(key, "big") < SECP256K1_N:
            continue
        digest = rng.randbytes(32)
        a = fast.PrivateKey(key).sign_msg_hash(digest)
        b = slow.PrivateKey(key).sign_msg_hash(digest)
        assert a.vrs == b.vrs
        assert a.recover_public_key_from_msg_hash(digest) == slow.PrivateKey(key).public_key


def test_a_signed_transaction_names_its_signer() -> None:
    from eth_account import Account

    signer = LocalSigner(None, "0x" + "42" * 32, chain_id=31337)  # type: ignore[arg-type]
    raw, tx_hash, nonce = signer.sign(to="0x" + "22" * 20, data="0x" + "ab" * 100, gas=300_000,
                                      max_fee_per_gas=10**10, max_priority_fee_per_gas=10**9, nonce=5)
    assert nonce == 5 and len(tx_hash) == 66
    assert Account.recover_transaction(raw) == Account.from_key("0x" + "42" * 32).address


KEYS = st.integers(1, SECP256K1_N - 1).map(lambda k: k.to_bytes(32, "big"))
U256 = st.integers(0, 2**256 - 1)
SMALL = st.integers(0, 2**64 - 1)


@given(key=KEYS, chain_id=st.integers(1, 2**64 - 1), nonce=SMALL, gas=SMALL, value=U256, tip=U256, fee=U256,
       to=st.binary(min_size=20, max_size=20), data=st.binary(max_size=600), legacy=st.booleans())
@example(key=b"\x01" * 32, chain_id=1, nonce=0, gas=0, value=0, tip=0, fee=0, to=b"\x00" * 20, data=b"", legacy=False)
@example(key=b"\x01" * 32, chain_id=31337, nonce=0, gas=21_000, value=0, tip=0, fee=1, to=b"\x00" * 20, data=b"",
         legacy=True)
def test_sign_raw_tx_gives_eth_accounts_bytes_and_hash(
    key: bytes, chain_id: int, nonce: int, gas: int, value: int, tip: int, fee: int, to: bytes, data: bytes,
    legacy: bool,
) -> None:
    tx = {"chainId": chain_id, "nonce": nonce, "to": to_checksum_address(to), "data": "0x" + data.hex(),
          "value": value, "gas": gas}
    fees = {"gas_price": fee} if legacy else {"max_fee_per_gas": fee, "max_priority_fee_per_gas": tip}
    tx.update({"gasPrice": fee} if legacy else {"type": 2, "maxFeePerGas": fee, "maxPriorityFeePerGas": tip})
    ref = Account.sign_transaction(tx, key)
    raw, tx_hash = sign_raw_tx(coincurve.PrivateKey(key), chain_id=chain_id, nonce=nonce, to="0x" + to.hex(),
                               data="0x" + data.hex(), gas=gas, value=value, **fees)
    assert (raw, tx_hash) == ("0x" + bytes(ref.raw_transaction).hex(), "0x" + bytes(ref.hash).hex())
    back = decode_raw_tx(raw)
    assert (back.sender, back.nonce, back.chain_id, back.to, back.gas, back.value_wei, back.data) == (
        Account.from_key(key).address.lower(), nonce, chain_id, "0x" + to.hex(), gas, value, "0x" + data.hex())
    # our own bytes read back without the recovery
    assert (hash_and_nonce(raw), own_calldata(raw)) == ((tx_hash, nonce), "0x" + data.hex())


@pytest.mark.parametrize("bad, says", [
    ({"to": "0x" + "22" * 19}, "to must be a 20-byte address"),
    ({"to": "0xzz" + "22" * 19}, "to and data must be hex"),
    ({"data": "0xabc"}, "to and data must be hex"),
    ({"nonce": -1}, "nonce must be an integer"),
    ({"gas": 2**256}, "gas must be an integer"),
    ({"value": 1.5}, "value must be an integer"),
    ({"chain_id": 0}, "chain_id must be positive"),
    ({"max_fee_per_gas": None}, "give gas_price, or max_fee_per_gas"),
])
def test_sign_raw_tx_refuses_a_bad_field_by_name(bad: dict[str, object], says: str) -> None:
    fields: dict[str, object] = {"chain_id": 1, "nonce": 0, "to": "0x" + "22" * 20, "data": "0x", "gas": 21_000,
                                 "value": 0, "max_fee_per_gas": 2, "max_priority_fee_per_gas": 1, **bad}
    with pytest.raises(ArbbotError, match=says):
        sign_raw_tx(coincurve.PrivateKey(b"\x01" * 32), **fields)  # type: ignore[arg-type]
