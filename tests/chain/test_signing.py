"""Signing runs on libsecp256k1 (``coincurve``, eth-keys' fast backend), and signs exactly as
the pure-Python backend eth-keys falls back to without it: same (v, r, s) for the same key
and hash (both take the nonce from RFC 6979 and give the low-s form). A transaction it signed
is accepted by anvil from the key's address: tests/execution/test_nonces.py and the live e2e."""

from __future__ import annotations

import random

import eth_keys
from eth_keys.backends import CoinCurveECCBackend, NativeECCBackend

from arbbot.chain.tx import LocalSigner

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
