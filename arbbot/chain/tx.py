"""Sending transactions: from a node-unlocked account (devnet deployment only) or signed
locally with a key (the bot's own signer), then waiting for the receipt; and the calldata
they carry (``encode_call``: a selector from ``arbbot.chain.abi`` + ``eth_abi`` arguments).

The key is held in a ``LocalSigner`` whose ``repr`` never shows it. eth-account signs with
eth-keys' libsecp256k1 backend (``coincurve``, a pinned requirement): 0.4 ms a transaction
against 3.4 ms with the pure-Python backend eth-keys falls back to, on each live send's way
to the node (tests/chain/test_signing.py checks both sign alike).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import coincurve
from eth_abi import encode
from eth_account import Account

from arbbot.chain.abi import selector
from arbbot.chain.rawtx import sign_raw_tx
from arbbot.chain.rpc import RpcClient
from arbbot.errors import ArbbotError, RpcError


class TxFailed(ArbbotError):
    """A transaction was mined with status 0 (reverted), or never mined in time."""

    def __init__(self, message: str, receipt: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.receipt = receipt


def encode_call(signature: str, args: Sequence[Any] = ()) -> str:
    """Calldata for ``signature`` with ``args``, as 0x hex (eth_abi, no contract layer)."""
    types = signature[signature.index("(") + 1 : signature.rindex(")")]
    type_list = _split_types(types)
    return "0x" + (selector(signature) + encode(type_list, list(args))).hex()


def _split_types(types: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in types:
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    if cur:
        out.append(cur)
    return out


def wait_receipt(rpc: RpcClient, tx_hash: str, *, timeout_s: float = 60.0, poll_s: float = 0.05) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        receipt = rpc.call("eth_getTransactionReceipt", [tx_hash])
        if receipt is not None:
            return dict(receipt)
        if time.monotonic() > deadline:
            raise TxFailed(f"transaction {tx_hash} not mined within {timeout_s}s")
        time.sleep(poll_s)


def check_receipt(receipt: dict[str, Any], what: str = "transaction") -> dict[str, Any]:
    if int(receipt["status"], 16) != 1:
        raise TxFailed(f"{what} reverted: {receipt['transactionHash']}", receipt)
    return receipt


def send_unlocked(
    rpc: RpcClient,
    sender: str,
    *,
    to: str | None = None,
    data: str = "0x",
    value: int = 0,
    gas: int | None = None,
    wait: bool = True,
    priority_fee_wei: int | None = None,
) -> dict[str, Any] | str:
    """``eth_sendTransaction`` from an account the node holds unlocked (anvil's dev
    accounts). Returns the checked receipt, or the hash when ``wait=False``. A
    ``priority_fee_wei`` orders it ahead of cheaper transactions of the same block."""
    tx: dict[str, Any] = {"from": sender, "data": data, "value": hex(value)}
    if priority_fee_wei is not None:
        tx["maxPriorityFeePerGas"] = hex(priority_fee_wei)
        tx["maxFeePerGas"] = hex(priority_fee_wei + 10**12)
    if to is not None:
        tx["to"] = to
    if gas is not None:
        tx["gas"] = hex(gas)
    tx_hash = rpc.call("eth_sendTransaction", [tx])
    if not wait:
        return str(tx_hash)
    return check_receipt(wait_receipt(rpc, tx_hash), f"tx to {to or 'create'}")


def deploy_unlocked(
    rpc: RpcClient, sender: str, bytecode: str, ctor_types: Sequence[str] = (), ctor_args: Sequence[Any] = ()
) -> str:
    """Deploy creation code (+ ABI-encoded constructor args); returns the lower-case address."""
    data = bytecode + (encode(list(ctor_types), list(ctor_args)).hex() if ctor_types else "")
    receipt = send_unlocked(rpc, sender, data=data, gas=15_000_000)
    assert isinstance(receipt, dict)
    return str(receipt["contractAddress"]).lower()


@dataclass
class LocalSigner:
    """Signs EIP-1559 (or legacy) transactions with a private key held in memory only.

    Nonces are tracked locally after one ``eth_getTransactionCount`` so a burst of sends
    does not race the node; ``resync_nonce`` re-reads it (after a failure, before a retry).
    """

    rpc: RpcClient
    key: str = field(repr=False)
    chain_id: int = 0
    _nonce: int | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.key:
            raise ArbbotError("no signing key configured (ARBBOT_SIGNER_KEY or ARBBOT_SIGNER_KEY_FILE)")
        self._account = Account.from_key(self.key)
        self._key = coincurve.PrivateKey(bytes(self._account.key))
        if not self.chain_id:
            self.chain_id = self.rpc.chain_id()

    @property
    def address(self) -> str:
        return str(self._account.address).lower()

    def warm(self) -> None:
        """The signing's first call (its library's set-up, ~0.5 ms, more beside a busy
        thread) made now, on a transaction no chain includes (nonce 2**64 - 1, past
        EIP-2681's bound; no value, no fee), whose bytes are dropped: nothing leaves."""
        sign_raw_tx(self._key, chain_id=self.chain_id, nonce=2**64 - 1, to="0x" + "00" * 20, data="0x", gas=21_000,
                    value=0, max_fee_per_gas=0, max_priority_fee_per_gas=0, gas_price=None)

    def resync_nonce(self) -> int:
        self._nonce = int(self.rpc.call("eth_getTransactionCount", [self.address, "pending"]), 16)
        return self._nonce

    def sign(
        self,
        *,
        to: str,
        data: str,
        gas: int,
        max_fee_per_gas: int | None = None,
        max_priority_fee_per_gas: int | None = None,
        gas_price: int | None = None,
        value: int = 0,
        nonce: int | None = None,
    ) -> tuple[str, str, int]:
        """Returns ``(raw_tx_hex, tx_hash, nonce)`` without sending: an EIP-1559
        transaction, or with ``gas_price`` a legacy (EIP-155) one for chains without a base
        fee. ``nonce`` is the caller's (``arbbot.execution.nonces`` hands them out across
        workers); without it the signer's own counter is used."""
        if nonce is None:
            nonce = self._nonce if self._nonce is not None else self.resync_nonce()
        raw, tx_hash = sign_raw_tx(
            self._key, chain_id=self.chain_id, nonce=nonce, to=to, data=data, gas=gas, value=value,
            max_fee_per_gas=max_fee_per_gas, max_priority_fee_per_gas=max_priority_fee_per_gas, gas_price=gas_price,
        )
        return raw, tx_hash, nonce

    def send(self, **kwargs: Any) -> str:
        raw, tx_hash, nonce = self.sign(**kwargs)
        try:
            self.rpc.call("eth_sendRawTransaction", [raw])
        except RpcError:
            self._nonce = None  # unknown state: re-read before the next send
            raise
        self._nonce = nonce + 1
        return tx_hash
