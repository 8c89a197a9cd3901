"""How a signed transaction reaches a block: publicly, privately as a bundle, or privately
with a public fallback. Chosen per chain; public unless configured, fallback off unless set.

A ``Submitter`` takes signed bytes and a target block and returns a ``Submission`` (the
tx hash, how it was sent, which block it aims at). ``poll`` advances it by one step and says
``pending``, ``included`` (with the receipt) or ``stale``; ``wait_receipt`` loops on it.

Private submission sends a one-transaction bundle for the target block to every configured
relay. Each poll that finds the target block mined without the transaction resubmits for
the next block, up to ``max_blocks`` blocks from the first target; then it is ``stale``:
no relay holds a bundle for any later block, so the transaction cannot land any more and
its nonce is free. The head is read *before* the receipt, so a transaction mined in the
block just seen is never mistaken for a miss.

With ``public_fallback`` a stale transaction is then broadcast as it is (the same bytes,
so the same nonce and the same on-chain ``minProfit`` guard) — unless its nonce was already
used by another transaction, in which case it is stale for good. Off by default: a public
broadcast exposes the trade to the mempool, and a revert there costs gas.

Nonces: a privately submitted transaction is not in any node's mempool, so
``eth_getTransactionCount(pending)`` does not count it. Whoever assigns nonces must treat it
as in flight until ``poll`` says ``included`` or ``stale``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Protocol, Sequence

from eth_account import Account

from arbbot.chain.rawtx import decode_raw_tx, hash_and_nonce
from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import TxFailed
from arbbot.errors import ArbbotError, ConfigError, RpcError, WireFormatError
from arbbot.execution.relay import Bundle, RelayClient, RelayError
from arbbot.types import norm_hash, uint

log = logging.getLogger(__name__)

ROUTES = ("public", "private")


class BundleStale(TxFailed):
    """A private transaction was not included in any block of its window: nothing was mined,
    nothing was paid, and its nonce is unused."""


@dataclass(frozen=True)
class Submission:
    """A transaction on its way. ``route`` is ``public``, ``private`` or ``public-fallback``."""

    tx_hash: str
    raw_tx: str = field(repr=False)
    sender: str
    nonce: int
    route: str
    first_target: int  # the block first asked for
    target_block: int  # the block currently aimed at
    last_target: int  # private: stale once this block is mined without the tx
    bundle_hash: str | None = None
    resubmissions: int = 0

    def to_wire(self) -> dict[str, Any]:
        """Plain JSON values, for a journal row or a message; ``from_wire`` reads it back."""
        return {
            "raw_tx": self.raw_tx, "route": self.route, "first_target": self.first_target,
            "target_block": self.target_block, "last_target": self.last_target,
            "bundle_hash": self.bundle_hash, "resubmissions": self.resubmissions,
        }

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Submission:
        """Hash, sender and nonce are read from the signed bytes, never taken on trust."""
        try:
            tx = decode_raw_tx(d["raw_tx"])
            route = d["route"]
            if route not in ("public", "private", "public-fallback"):
                raise WireFormatError(f"unknown route {route!r}")
            bundle = d.get("bundle_hash")
            return cls(
                tx.tx_hash, tx.raw, tx.sender, tx.nonce, route,
                first_target=uint(d["first_target"], bits=64), target_block=uint(d["target_block"], bits=64),
                last_target=uint(d["last_target"], bits=64),
                bundle_hash=norm_hash(bundle) if bundle is not None else None,
                resubmissions=uint(d.get("resubmissions", 0), bits=32),
            )
        except KeyError as exc:
            raise WireFormatError(f"submission lacks {exc}") from None


@dataclass(frozen=True)
class Outcome:
    state: str  # pending | included | stale
    submission: Submission
    receipt: dict[str, Any] | None = None
    reason: str = ""


class Submitter(Protocol):
    def submit(self, raw_tx: str, target_block: int, *, sender: str | None = None) -> Submission:
        """Send ``raw_tx`` for ``target_block``. ``sender``: the caller signed the bytes
        itself, as that account (``_submission``)."""

    def poll(self, submission: Submission) -> Outcome: ...

    def wait_receipt(self, submission: Submission, *, timeout_s: float = 60.0) -> dict[str, Any]: ...


def _wait(submitter: Submitter, sub: Submission, timeout_s: float, poll_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        out = submitter.poll(sub)
        if out.state == "included":
            assert out.receipt is not None
            return out.receipt
        if out.state == "stale":
            raise BundleStale(f"transaction {sub.tx_hash} not included: {out.reason}")
        sub = out.submission
        if time.monotonic() > deadline:
            raise TxFailed(f"transaction {sub.tx_hash} ({sub.route}) not mined within {timeout_s}s")
        time.sleep(poll_s)


def _submission(raw_tx: str, sender: str | None) -> tuple[str, str, int]:
    """(hash, sender, nonce) of ``raw_tx``: read back from the signature (``decode_raw_tx``),
    or, when the caller signed it itself as ``sender``, without recovering it (~0.9 ms off
    each live send: ``rawtx.hash_and_nonce``)."""
    if sender is None:
        tx = decode_raw_tx(raw_tx)
        return tx.tx_hash, tx.sender, tx.nonce
    tx_hash, nonce = hash_and_nonce(raw_tx)
    return tx_hash, sender.lower(), nonce


def _receipt(rpc: RpcClient, tx_hash: str) -> dict[str, Any] | None:
    r = rpc.call("eth_getTransactionReceipt", [tx_hash])
    return dict(r) if r else None


@dataclass
class PublicSubmitter:
    """``eth_sendRawTransaction`` to the chain's node."""

    rpc: RpcClient
    poll_s: float = 0.05

    def submit(self, raw_tx: str, target_block: int, *, sender: str | None = None) -> Submission:
        tx_hash, signer, nonce = _submission(raw_tx, sender)
        self.rpc.call("eth_sendRawTransaction", [raw_tx])
        return Submission(tx_hash, raw_tx, signer, nonce, "public", target_block, target_block, target_block)

    def poll(self, submission: Submission) -> Outcome:
        receipt = _receipt(self.rpc, submission.tx_hash)
        return Outcome("included" if receipt else "pending", submission, receipt)

    def wait_receipt(self, submission: Submission, *, timeout_s: float = 60.0) -> dict[str, Any]:
        return _wait(self, submission, timeout_s, self.poll_s)


@dataclass
class PrivateSubmitter:
    """A one-transaction bundle to each relay, resubmitted block by block; see the module."""

    rpc: RpcClient  # the chain's node: head, receipts, nonces, and the fallback broadcast
    relays: Sequence[RelayClient]
    max_blocks: int = 3
    public_fallback: bool = False
    poll_s: float = 0.05

    def __post_init__(self) -> None:
        if not self.relays:
            raise ConfigError("private submission needs at least one relay")
        if self.max_blocks < 1:
            raise ConfigError(f"max_blocks must be >= 1, got {self.max_blocks}")

    def submit(self, raw_tx: str, target_block: int, *, sender: str | None = None) -> Submission:
        tx_hash, signer, nonce = _submission(raw_tx, sender)
        sub = Submission(tx_hash, raw_tx, signer, nonce, "private", target_block, target_block,
                         target_block + self.max_blocks - 1)
        return replace(sub, bundle_hash=self._send(raw_tx, target_block))

    def _send(self, raw_tx: str, block: int) -> str | None:
        """The bundle for ``block`` to every relay. Raises only when no relay can have it."""
        hashes, errors, maybe = [], [], False
        for relay in self.relays:
            try:
                hashes.append(relay.send_bundle(Bundle((raw_tx,), block)))
            except RelayError as exc:
                errors.append(str(exc))
                maybe = maybe or exc.maybe_accepted
        if not hashes and not maybe:
            raise RelayError("no relay accepted the bundle: " + "; ".join(errors))
        for e in errors:
            log.warning("bundle for block %d: %s", block, e)
        return hashes[0] if hashes else None

    def poll(self, submission: Submission) -> Outcome:
        sub = submission
        head = self.rpc.block_number()  # before the receipt: see the module docstring
        receipt = _receipt(self.rpc, sub.tx_hash)
        if receipt:
            return Outcome("included", sub, receipt)
        if sub.route == "public-fallback" or head < sub.target_block:
            return Outcome("pending", sub)
        if head + 1 <= sub.last_target:
            try:
                bundle = self._send(sub.raw_tx, head + 1)
            except RelayError as exc:
                log.warning("resubmission for block %d failed: %s", head + 1, exc)
                bundle = sub.bundle_hash
            sub = replace(sub, target_block=head + 1, bundle_hash=bundle, resubmissions=sub.resubmissions + 1)
            return Outcome("pending", sub)
        why = f"not included in blocks {sub.first_target}..{sub.last_target}"
        if int(self.rpc.call("eth_getTransactionCount", [sub.sender, "latest"]), 16) > sub.nonce:
            return Outcome("stale", sub, reason=f"{why}; nonce {sub.nonce} was used by another transaction")
        if not self.public_fallback:
            return Outcome("stale", sub, reason=why)
        try:
            self.rpc.call("eth_sendRawTransaction", [sub.raw_tx])
        except RpcError as exc:
            return Outcome("stale", sub, reason=f"{why}; public fallback refused: {exc}")
        log.info("tx %s: %s, sent publicly (fallback)", sub.tx_hash, why)
        return Outcome("pending", replace(sub, route="public-fallback"))

    def wait_receipt(self, submission: Submission, *, timeout_s: float = 60.0) -> dict[str, Any]:
        return _wait(self, submission, timeout_s, self.poll_s)


@dataclass(frozen=True)
class SubmissionConfig:
    """One chain's submission route. ``relay_urls`` may carry API keys: never logged."""

    route: str = "public"
    relay_urls: tuple[str, ...] = field(default=(), repr=False)
    public_fallback: bool = False
    max_blocks: int = 3

    def __post_init__(self) -> None:
        if self.route not in ROUTES:
            raise ConfigError(f"submission route must be one of {ROUTES}, got {self.route!r}")
        if self.route == "private" and not self.relay_urls:
            raise ConfigError("submission route 'private' needs at least one relay URL")
        if self.public_fallback and self.route != "private":
            raise ConfigError("public_fallback applies only to the 'private' route")
        if self.max_blocks < 1:
            raise ConfigError(f"max_blocks must be >= 1, got {self.max_blocks}")


def make_submitter(
    config: SubmissionConfig, rpc: RpcClient, *, trading_address: str, reputation_key: str | None = None
) -> Submitter:
    """The submitter ``config`` asks for. The reputation key must not be the trading key."""
    if config.route == "public":
        return PublicSubmitter(rpc)
    if not reputation_key:
        raise ConfigError("private submission needs a relay reputation key (not the trading key)")
    try:
        reputation = str(Account.from_key(reputation_key).address).lower()
    except Exception:
        raise ConfigError("the relay reputation key is not a valid private key") from None
    if reputation == trading_address.lower():
        raise ConfigError("the relay reputation key must not be the trading key")
    try:
        relays = [RelayClient(url, reputation_key) for url in config.relay_urls]
    except ArbbotError as exc:
        raise ConfigError(str(exc)) from None
    return PrivateSubmitter(rpc, relays, max_blocks=config.max_blocks, public_fallback=config.public_fallback)
