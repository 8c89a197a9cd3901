"""A client of a Flashbots-style bundle relay: ``eth_sendBundle`` and ``eth_callBundle``.

Owns the relay's wire format. Every request carries ``X-Flashbots-Signature:
<address>:<signature>``, where the signature is an EIP-191 ``personal_sign`` of the
0x-prefixed hex text of keccak256(request body) — the text, not the 32 bytes: relays answer
a signature over the raw digest with ``-32025 invalid flashbots signature``. The body is
serialised once and those exact bytes are both signed and sent.

The signing key here is a *reputation* key: it identifies the searcher to the relay and
holds no funds. It must never be the trading key (``arbbot.execution.submit`` refuses
that), so a leaked relay credential cannot move money.

A relay URL can embed an API key: only its ``host:port`` ever appears in an error or a log.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Sequence

import urllib3
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak

from arbbot.chain.rawtx import decode_raw_tx
from arbbot.chain.rpc import Endpoint, HttpPool, endpoint_label, never_sent
from arbbot.errors import ArbbotError, RpcError

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Flashbots-Signature"


class RelayError(RpcError):
    """The relay refused a request (a JSON-RPC error object) or could not be reached. An
    ``RpcError``, so a caller that handles a failed send handles a refused bundle too.

    ``maybe_accepted`` is true when the request may have reached the relay (a read timeout,
    a reset): a bundle sent that way may still land, so it must be followed, not forgotten.
    """

    def __init__(
        self, message: str, *, code: int | None = None, http_status: int | None = None, maybe_accepted: bool = False
    ) -> None:
        super().__init__(message, code=code)
        self.http_status = http_status
        self.maybe_accepted = maybe_accepted


def body_digest_text(body: bytes) -> str:
    """The message a relay signature covers: ``0x`` + hex keccak256 of the body."""
    return "0x" + keccak(body).hex()


def sign_body(body: bytes, key: str) -> str:
    """The ``X-Flashbots-Signature`` header value for ``body``, signed with ``key``."""
    account = Account.from_key(key)
    signed = Account.sign_message(encode_defunct(text=body_digest_text(body)), private_key=key)
    return f"{account.address}:0x{bytes(signed.signature).hex()}"


def bundle_hash(txs: Sequence[str]) -> str:
    """keccak256 of the concatenated transaction hashes, as Flashbots names a bundle."""
    return "0x" + keccak(b"".join(keccak(bytes.fromhex(t[2:])) for t in txs)).hex()


@dataclass(frozen=True)
class Bundle:
    """Signed transactions (0x hex) to be included together, in order, in ``block_number``
    only. A transaction that reverts voids the bundle unless its hash is listed in
    ``reverting_tx_hashes``."""

    txs: tuple[str, ...]
    block_number: int
    reverting_tx_hashes: tuple[str, ...] = ()
    min_timestamp: int | None = None
    max_timestamp: int | None = None

    def params(self) -> dict[str, Any]:
        p: dict[str, Any] = {"txs": list(self.txs), "blockNumber": hex(self.block_number)}
        if self.reverting_tx_hashes:
            p["revertingTxHashes"] = list(self.reverting_tx_hashes)
        if self.min_timestamp is not None:
            p["minTimestamp"] = self.min_timestamp
        if self.max_timestamp is not None:
            p["maxTimestamp"] = self.max_timestamp
        return p


@dataclass(frozen=True)
class SimulatedTx:
    """One transaction's result in ``eth_callBundle``. Amounts in wei."""

    tx_hash: str
    gas_used: int
    from_address: str
    to_address: str | None
    gas_price_wei: int
    gas_fees_wei: int
    coinbase_diff_wei: int
    eth_sent_to_coinbase_wei: int
    error: str | None  # e.g. "execution reverted"
    revert: str | None  # the decoded reason, when the relay gives one
    value: str | None  # return data (hex)

    @property
    def reverted(self) -> bool:
        return self.error is not None


@dataclass(frozen=True)
class CallBundleResult:
    bundle_hash: str
    state_block_number: int
    total_gas_used: int
    coinbase_diff_wei: int
    results: tuple[SimulatedTx, ...]

    @property
    def reverted(self) -> list[SimulatedTx]:
        return [r for r in self.results if r.reverted]


@dataclass
class RelayClient:
    """One relay endpoint, signing every request with the reputation key."""

    url: str = field(repr=False)
    reputation_key: str = field(repr=False)
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ArbbotError(f"relay URL must be http(s), got scheme of {endpoint_label(self.url)!r}")
        try:
            self._address = str(Account.from_key(self.reputation_key).address).lower()
        except Exception:
            raise ArbbotError("relay reputation key is not a valid private key") from None
        self.label = endpoint_label(self.url)
        self._endpoint = Endpoint(self.url, self.label)
        self._local = threading.local()  # each thread its own connections (``HttpPool``)
        self._ids = 0

    @property
    def reputation_address(self) -> str:
        return self._address

    def __repr__(self) -> str:
        return f"RelayClient({self.label}, reputation={self._address})"

    def send_bundle(self, bundle: Bundle) -> str:
        """``eth_sendBundle``; returns the relay's ``bundleHash``."""
        for raw in bundle.txs:
            decode_raw_tx(raw)  # refuse malformed bytes before they leave
        result = self.request("eth_sendBundle", [bundle.params()])
        if not isinstance(result, dict) or not isinstance(result.get("bundleHash"), str):
            raise RelayError(f"{self.label}: eth_sendBundle answered without a bundleHash: {str(result)[:200]}")
        return str(result["bundleHash"])

    def call_bundle(
        self, txs: Sequence[str], block_number: int, state_block: int | str = "latest", timestamp: int | None = None
    ) -> CallBundleResult:
        """``eth_callBundle``: simulate ``txs`` in order on ``state_block``'s state as if in
        ``block_number``. A reverting transaction is a result with ``error``, not an exception."""
        params: dict[str, Any] = {
            "txs": list(txs),
            "blockNumber": hex(block_number),
            "stateBlockNumber": hex(state_block) if isinstance(state_block, int) else state_block,
        }
        if timestamp is not None:
            params["timestamp"] = timestamp
        r = self.request("eth_callBundle", [params])
        try:
            return CallBundleResult(
                bundle_hash=str(r["bundleHash"]),
                state_block_number=int(r["stateBlockNumber"]),
                total_gas_used=int(r["totalGasUsed"]),
                coinbase_diff_wei=int(r.get("coinbaseDiff", "0")),
                results=tuple(_simulated(x) for x in r["results"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RelayError(f"{self.label}: malformed eth_callBundle result ({exc!r}): {str(r)[:200]}") from None

    def request(self, method: str, params: list[Any]) -> Any:
        """One signed JSON-RPC request; the ``result``, or ``RelayError``."""
        self._ids += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._ids, "method": method, "params": params},
                          separators=(",", ":")).encode()
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = HttpPool(self._endpoint)
        try:
            status, data = pool.post(body, self.timeout_s, {SIGNATURE_HEADER: sign_body(body, self.reputation_key)})
        except (urllib3.exceptions.HTTPError, OSError, http.client.HTTPException) as exc:
            # refused or never connected: nothing reached the relay; anything later (a read
            # timeout, a reset) may have been read by it
            raise RelayError(f"{self.label}: {method}: {type(exc).__name__}",
                             maybe_accepted=not (never_sent(exc) or isinstance(exc, urllib3.exceptions.ConnectTimeoutError))
                             ) from None
        try:
            reply = json.loads(data)
        except ValueError:
            raise RelayError(f"{self.label}: {method}: HTTP {status}, not JSON", http_status=status) from None
        if isinstance(reply, dict) and reply.get("error"):
            err = reply["error"]
            raise RelayError(f"{self.label}: {method}: {err.get('message')} (code {err.get('code')})",
                             code=err.get("code"), http_status=status)
        if status >= 400 or not isinstance(reply, dict) or "result" not in reply:
            raise RelayError(f"{self.label}: {method}: HTTP {status}: {str(reply)[:200]}", http_status=status)
        return reply["result"]


def _simulated(x: dict[str, Any]) -> SimulatedTx:
    return SimulatedTx(
        tx_hash=str(x["txHash"]),
        gas_used=int(x["gasUsed"]),
        from_address=str(x.get("fromAddress", "")).lower(),
        to_address=str(x["toAddress"]).lower() if x.get("toAddress") else None,
        gas_price_wei=int(x.get("gasPrice", "0")),
        gas_fees_wei=int(x.get("gasFees", "0")),
        coinbase_diff_wei=int(x.get("coinbaseDiff", "0")),
        eth_sent_to_coinbase_wei=int(x.get("ethSentToCoinbase", "0")),
        error=x.get("error"),
        revert=x.get("revert"),
        value=x.get("value"),
    )
