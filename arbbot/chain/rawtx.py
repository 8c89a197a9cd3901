"""Signed raw transactions, both ways: the bytes a key signs, and the facts read back.

``sign_raw_tx`` writes an EIP-1559 (type 2) or a legacy EIP-155 transaction: the RLP of its
fields (pyrlp), keccak256, and libsecp256k1's deterministic (RFC 6979, low-s) signature
through coincurve. It is the same bytes eth-account's ``sign_transaction`` gives
(tests/chain/test_signing.py compares them for random transactions) without that function's
validation and formatting layers: 0.33 against 1.43 ms a signature, each live send waiting
for one (``bench/execution/sign.py``).

A relay and a submitter both hold transactions only as signed bytes; ``decode_raw_tx``
turns them back into facts without trusting anything but the signature: the sender is
recovered from it, the hash is keccak256 of the bytes. EIP-2718 typed transactions (1, 2)
and legacy RLP are read; anything else is a ``WireFormatError``. Bytes this process signed
(a send, a journal row of its own) are read by ``hash_and_nonce`` and ``own_calldata``,
without the ~0.9 ms recovery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import coincurve
import rlp  # type: ignore[import-untyped]
from eth_account import Account
from eth_account.typed_transactions import TypedTransaction
from eth_utils import keccak
from hexbytes import HexBytes

from arbbot.errors import ArbbotError, WireFormatError
from arbbot.math.full_math import UINT256_MAX


@dataclass(frozen=True)
class RawTx:
    """A signed transaction's facts. Amounts in wei, addresses lower-case hex."""

    raw: str  # 0x hex, as signed
    tx_hash: str
    sender: str
    nonce: int
    chain_id: int | None  # None: a legacy transaction without EIP-155 replay protection
    to: str | None  # None: contract creation
    value_wei: int
    data: str
    gas: int
    tx_type: int
    gas_price_wei: int | None  # legacy and type 1
    max_fee_per_gas: int | None  # type 2
    max_priority_fee_per_gas: int | None  # type 2

    def as_call(self) -> dict[str, Any]:
        """The transaction as a JSON-RPC call object (``eth_call``, ``eth_simulateV1``)."""
        call: dict[str, Any] = {
            "from": self.sender,
            "nonce": hex(self.nonce),
            "gas": hex(self.gas),
            "value": hex(self.value_wei),
            "input": self.data,
        }
        if self.to is not None:
            call["to"] = self.to
        if self.max_fee_per_gas is not None:
            call["maxFeePerGas"] = hex(self.max_fee_per_gas)
            call["maxPriorityFeePerGas"] = hex(self.max_priority_fee_per_gas or 0)
        elif self.gas_price_wei is not None:
            call["gasPrice"] = hex(self.gas_price_wei)
        return call


def sign_raw_tx(
    key: coincurve.PrivateKey,
    *,
    chain_id: int,
    nonce: int,
    to: str,
    data: str,
    gas: int,
    value: int = 0,
    max_fee_per_gas: int | None = None,
    max_priority_fee_per_gas: int | None = None,
    gas_price: int | None = None,
) -> tuple[str, str]:
    """``(raw, tx_hash)``, both 0x hex, of a call to ``to`` signed by ``key``: EIP-1559 with
    both fees, or legacy EIP-155 with ``gas_price``. Raises ``ArbbotError`` for a field out
    of range, an address that is not 20 bytes or calldata that is not hex."""
    try:
        to_b = bytes.fromhex(to[2:] if to[:2] in ("0x", "0X") else to)
        data_b = bytes.fromhex(data[2:] if data[:2] in ("0x", "0X") else data)
    except (TypeError, ValueError) as exc:
        raise ArbbotError(f"sign: to and data must be hex: {exc}") from None
    if len(to_b) != 20:
        raise ArbbotError(f"sign: to must be a 20-byte address, got {len(to_b)} bytes")
    ints = {"chain_id": chain_id, "nonce": nonce, "gas": gas, "value": value}
    if gas_price is not None:
        ints["gas_price"] = gas_price
    elif max_fee_per_gas is not None and max_priority_fee_per_gas is not None:
        ints.update(max_fee_per_gas=max_fee_per_gas, max_priority_fee_per_gas=max_priority_fee_per_gas)
    else:
        raise ArbbotError("sign: give gas_price, or max_fee_per_gas and max_priority_fee_per_gas")
    for name, v in ints.items():
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= UINT256_MAX:
            raise ArbbotError(f"sign: {name} must be an integer in [0, 2**256), got {v!r}")
    if chain_id < 1:
        raise ArbbotError(f"sign: chain_id must be positive, got {chain_id}")
    if gas_price is not None:  # legacy, EIP-155: the chain id in the signed hash and in v
        body = [nonce, gas_price, gas, to_b, value, data_b]
        sig = key.sign_recoverable(keccak(rlp.encode([*body, chain_id, 0, 0])), hasher=None)
        raw = rlp.encode([*body, sig[64] + 35 + 2 * chain_id, *_rs(sig)])
    else:
        body = [chain_id, nonce, max_priority_fee_per_gas, max_fee_per_gas, gas, to_b, value, data_b, []]
        sig = key.sign_recoverable(keccak(b"\x02" + rlp.encode(body)), hasher=None)
        raw = b"\x02" + rlp.encode([*body, sig[64], *_rs(sig)])
    return "0x" + raw.hex(), "0x" + keccak(raw).hex()


def _rs(sig: bytes) -> tuple[int, int]:
    return int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")


def decode_raw_tx(raw: str) -> RawTx:
    """Decode signed bytes (0x hex). Raises ``WireFormatError`` for anything malformed."""
    if not isinstance(raw, str) or not raw.startswith("0x") or len(raw) < 4:
        raise WireFormatError(f"raw transaction must be 0x hex, got {str(raw)[:20]!r}")
    try:
        blob = bytes.fromhex(raw[2:])
    except ValueError:
        raise WireFormatError("raw transaction is not valid hex") from None
    try:
        sender = str(Account.recover_transaction(blob)).lower()
        fields = _fields(blob)
    except WireFormatError:
        raise
    except Exception as exc:  # eth_account/rlp raise many types for bad bytes
        raise WireFormatError(f"raw transaction does not decode: {type(exc).__name__}: {exc}") from None
    to = fields.get("to")
    return RawTx(
        raw="0x" + blob.hex(),
        tx_hash="0x" + keccak(blob).hex(),
        sender=sender,
        nonce=int(fields["nonce"]),
        chain_id=fields.get("chainId"),
        to=("0x" + bytes(to).hex()) if to else None,
        value_wei=int(fields["value"]),
        data="0x" + bytes(fields.get("data", b"")).hex(),
        gas=int(fields["gas"]),
        tx_type=int(fields.get("type", 0)),
        gas_price_wei=fields.get("gasPrice"),
        max_fee_per_gas=fields.get("maxFeePerGas"),
        max_priority_fee_per_gas=fields.get("maxPriorityFeePerGas"),
    )


def hash_and_nonce(raw: str) -> tuple[str, int]:
    """The hash and nonce of signed bytes the caller signed itself: read without recovering
    the sender or checking anything else (24 µs against ``decode_raw_tx``'s ~0.9 ms, most
    of it the recovery). Bytes from anyone else go through ``decode_raw_tx``."""
    blob, items = _own(raw)
    return "0x" + keccak(blob).hex(), _int(items[0] if blob[0] >= 0xC0 else items[1])


def own_calldata(raw: str) -> str:
    """The calldata of signed bytes the caller signed itself (a journal's own rows), read
    as ``hash_and_nonce`` reads: without the sender's recovery."""
    blob, items = _own(raw)
    return "0x" + bytes(items[_DATA_AT.get(blob[0], 5)]).hex()


#: where a typed transaction's calldata lies in its RLP list (type 1: [chainId, nonce,
#: gasPrice, gas, to, value, data, ...]; type 2: [chainId, nonce, tip, maxFee, gas, to,
#: value, data, ...]); a legacy one's: [nonce, gasPrice, gas, to, value, data, v, r, s]
_DATA_AT = {1: 6, 2: 7}


def _own(raw: str) -> tuple[bytes, list[Any]]:
    """The bytes and the RLP list of fields of a transaction (a typed one's after its type)."""
    blob = bytes.fromhex(raw[2:])
    return blob, rlp.decode(blob if blob[0] >= 0xC0 else blob[1:])


def _fields(blob: bytes) -> dict[str, Any]:
    if blob[0] >= 0xC0:  # an RLP list: legacy
        items = rlp.decode(blob)
        if not isinstance(items, list) or len(items) != 9:
            raise WireFormatError("legacy transaction must be an RLP list of 9 items")
        nonce, gas_price, gas, to, value, data, v, _r, _s = items
        v_int = _int(v)
        chain_id = (v_int - 35) // 2 if v_int >= 35 else None
        return {
            "nonce": _int(nonce), "gasPrice": _int(gas_price), "gas": _int(gas), "to": bytes(to),
            "value": _int(value), "data": bytes(data), "chainId": chain_id, "type": 0,
        }
    if blob[0] not in (1, 2):
        raise WireFormatError(f"unsupported transaction type {blob[0]}")
    d = dict(TypedTransaction.from_bytes(HexBytes(blob)).as_dict())
    d["to"] = bytes(d.get("to") or b"")
    d["data"] = bytes(d.get("data") or b"")
    d["type"] = blob[0]
    return d


def _int(b: bytes) -> int:
    return int.from_bytes(bytes(b), "big")
