"""Nonces of one account on one chain, shared by any number of execute workers (threads,
processes, hosts) through the hot state (``HotState.nonce_*``: the keys and the scripts).

A send happens inside a ``NonceManager.session()``: the account's nonce lock held (it
expires ``lock_ttl_s`` after its holder dies: the process's renewal thread extends it while
the holder lives, for at most ``max_hold_s``; a sender waits for it a bounded time), and every write to the stored nonce
fenced by that lock's token, so a holder whose lock expired cannot move it. Inside:

- ``take()`` hands out the stored next nonce and notes it *in flight*. When nothing is
  stored (first use, an expired key) or a nonce is still in flight (the last holder died
  between taking one and knowing its fate), the next nonce is first re-read from the node:
  ``eth_getTransactionCount(address, "pending")``;
- ``send_many()`` takes as many consecutive nonces as it has transactions (the first noted
  in flight: it stands for them all), signs each, hands them all to ``before_send`` (the
  journal persists them in one commit: nothing is sent unrecorded; if that raises, nothing
  is sent and the nonces are released by a resync) and sends them in nonce order
  (``broadcast``: the public node by default, or a private relay), stopping at the first
  that fails: none after it leaves. Sent: out of flight, each transaction *open* until
  settled (``closed``). An ``RpcError``: the count is re-read from the node under the lock
  (``resync``). That is the only safe release of a nonce: the node alone knows whether the
  failed send reached it. Pending count > nonce and our hash known to the node: it was sent
  after all (kept, reported as sent). Pending count == nonce: the send never arrived, and
  the next sender reuses it and the unsent ones after it, so no gap remains. Any other
  failure leaves the first nonce in flight, so the next holder re-reads the count from the
  node first. A nonce that was handed out and reached the node is thus never handed out
  again. ``send()`` is ``send_many()`` of one transaction, its failure raised.

``send_at()`` signs and sends at a given nonce: a replacement or cancellation of an open
transaction (``arbbot.execution.follow``), under the same lock, so no sender takes that
nonce meanwhile. ``resync()`` never goes below an open transaction's nonce + 1: a private
transaction is not counted by any node's pending count until it is mined.

``LocalNonces`` is the single-process stand-in (the signer's own counter, re-read under a
caller-given lock before each send): tests and tools without a hot state.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Iterator, Mapping, Protocol, Sequence

from prometheus_client import Counter
from redis.exceptions import LockNotOwnedError

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import LocalSigner
from arbbot.errors import ArbbotError, RpcError
from arbbot.hotstate import NONCE_LOCK_MAX_HOLD_S, NONCE_LOCK_TTL_S, NONCE_LOCK_WAIT_S, HotState, renewals

log = logging.getLogger(__name__)

#: A resync that found the stored next nonce differing from the node's: ``ours_ahead``
#: (nonces handed out never reached the node: a hole every later transaction would wait
#: behind, closed by reusing them) or ``node_ahead`` (the account sent from elsewhere, or a
#: lost note of our own send).
NONCE_GAPS = Counter(
    "arbbot_nonce_gaps_total", "Resyncs that found our next nonce differing from the node's", ["chain", "direction"]
)


class NonceLockBusy(ArbbotError):
    """The nonce lock was not free within the wait; nothing was sent."""


@dataclass(frozen=True)
class Signed:
    """A signed transaction before it is sent."""

    raw: str = field(repr=False)
    tx_hash: str
    nonce: int
    sender: str
    worst_gas_wei: int


BeforeSend = Callable[[Signed], None]
BeforeSendAll = Callable[[Sequence[Signed]], None]
Broadcast = Callable[[Signed], None]


#: How the reason of a send that never left begins (one before it in its turn failed): the
#: row's error, which the follow pass's final reason gives as it is.
NOT_SENT = "not sent: "


@dataclass(frozen=True)
class SentMany:
    """What ``send_many`` did: every transaction it signed and recorded, in nonce order; how
    many of them, from the first, reached the node; the failure that stopped the rest (None:
    nothing stopped them); and which one's send failed (``failed``: at ``sent``; None when
    none did, or when the node had it all the same and ``sent`` counts it). The ones after
    were never tried."""

    signed: list[Signed]
    sent: int
    error: Exception | None = None
    failed: int | None = None


class Session(Protocol):
    def open_txs(self) -> dict[str, tuple[int, int]]: ...

    def prune_open(self) -> None: ...

    def resync(self) -> int: ...

    def note_sent(self, nonce: int, tx_hash: str, worst_gas_wei: int) -> None: ...

    def send_at(
        self, signer: LocalSigner, nonce: int, *, worst_gas_wei: int, before_send: BeforeSend | None = None,
        broadcast: Broadcast | None = None, **tx: Any,
    ) -> str: ...

    def send(
        self, signer: LocalSigner, *, worst_gas_wei: int, before_send: BeforeSend | None = None,
        broadcast: Broadcast | None = None, **tx: Any,
    ) -> str: ...

    def send_many(
        self, signer: LocalSigner, txs: Sequence[tuple[int, Mapping[str, Any]]], *,
        before_send: BeforeSendAll | None = None, broadcast: Broadcast | None = None,
    ) -> SentMany: ...


class Nonces(Protocol):
    def session(self) -> ContextManager[Session]: ...

    def closed(self, tx_hash: str) -> None: ...


class NonceSession:
    """One holder's turn at the account's nonce (see the module docstring)."""

    def __init__(self, hot: HotState, rpc: RpcClient, address: str, token: bytes) -> None:
        self.hot, self.rpc, self.address, self.token = hot, rpc, address, token

    def resync(self) -> int:
        """Store the next nonce: the node's pending transaction count, or past the highest
        open transaction's nonce when that is higher (a private one, unseen by the node)."""
        pending = int(self.rpc.call("eth_getTransactionCount", [self.address, "pending"]), 16)
        opened = [nonce for nonce, _ in self.hot.open_txs(self.address).values()]
        nxt = max([pending, *(n + 1 for n in opened)])
        stored, _ = self.hot.nonce_peek(self.address)
        self.hot.nonce_reset(self.address, self.token, nxt)
        if stored is not None and stored != nxt:
            direction = "ours_ahead" if stored > nxt else "node_ahead"
            NONCE_GAPS.labels(chain=str(self.hot.chain_id), direction=direction).inc()
            log.warning("nonce gap on %s: stored next %s, node says %s (%s); resynced", self.address, stored, nxt,
                        direction)
        return nxt

    def note_sent(self, nonce: int, tx_hash: str, worst_gas_wei: int) -> None:
        """A transaction found on the node after its sender died: open, its nonce used."""
        self.hot.nonce_sent(self.address, nonce, tx_hash, worst_gas_wei)

    def take(self, count: int = 1) -> int:
        """The first of the next ``count`` nonces, handed out together."""
        nonce = self.hot.nonce_take(self.address, self.token, count)
        if nonce is None:
            self.resync()
            nonce = self.hot.nonce_take(self.address, self.token, count)
            if nonce is None:  # cannot happen under our own lock: resync just stored one
                raise ArbbotError(f"nonce of {self.address} vanished under its lock")
        return nonce

    def send(
        self, signer: LocalSigner, *, worst_gas_wei: int, before_send: BeforeSend | None = None,
        broadcast: Broadcast | None = None, **tx: Any,
    ) -> str:
        """Sign with the next nonce, record (``before_send``), send; the hash. An
        ``RpcError`` means not sent; so does any error of ``before_send``."""
        return _one(self.send_many(signer, [(worst_gas_wei, tx)], before_send=_all(before_send), broadcast=broadcast))

    def send_many(
        self, signer: LocalSigner, txs: Sequence[tuple[int, Mapping[str, Any]]], *,
        before_send: BeforeSendAll | None = None, broadcast: Broadcast | None = None,
    ) -> SentMany:
        """Sign each of ``txs`` (its worst-case gas in wei, its fields) at the next nonces,
        record them all (``before_send``: if it raises, nothing is sent and it raises), send
        them in order until one fails (see the module docstring)."""
        first = self.take(len(txs))
        signed = [_sign(signer, first + k, worst, tx, self.address) for k, (worst, tx) in enumerate(txs)]
        if before_send is not None:
            try:
                before_send(signed)
            except BaseException:
                self.resync()  # nothing was sent: the nonces go back
                raise
        done: list[Signed] = []
        error: Exception | None = None
        failed: int | None = None
        noted = 0
        for k, s in enumerate(signed):
            try:
                _broadcast(self.rpc, s, broadcast)
            except RpcError as exc:
                error, failed = exc, k
                self._note(done, clear=None)  # open before the count is re-read (a private one is not in it)
                noted = len(done)
                if self._reached(s.nonce, s.tx_hash):
                    log.warning("send of nonce %s reported %s, but the node has the transaction %s", s.nonce, exc,
                                s.tx_hash)
                    done.append(s)
                    failed = None
                break
            except Exception as exc:  # a relay: the first nonce stays in flight, re-read by the next holder
                error, failed = exc, k
                break
            done.append(s)
        self._note(done[noted:], clear=first if error is None else None)
        return SentMany(signed, len(done), error, failed)

    def _note(self, sent: Sequence[Signed], *, clear: int | None) -> None:
        if not sent and clear is None:
            return
        try:
            self.hot.nonces_sent(self.address, [(s.nonce, s.tx_hash, s.worst_gas_wei) for s in sent], clear=clear)
        except Exception:  # sent all the same: the hashes must reach the caller. The nonce
            # stays in flight, so the next holder re-reads the count from the node.
            log.exception("sent %s but could not note it in the hot state", [s.tx_hash for s in sent])

    def send_at(
        self, signer: LocalSigner, nonce: int, *, worst_gas_wei: int, before_send: BeforeSend | None = None,
        broadcast: Broadcast | None = None, **tx: Any,
    ) -> str:
        """Sign and send at ``nonce``, which an open transaction holds: its replacement
        (nothing is handed out or released: the nonce stays the open transaction's)."""
        signed = _sign(signer, nonce, worst_gas_wei, tx, self.address)
        if before_send is not None:
            before_send(signed)
        try:
            _broadcast(self.rpc, signed, broadcast)
        except RpcError as exc:
            if not self._reached(nonce, signed.tx_hash):
                raise
            log.warning("send of nonce %s reported %s, but the node has the transaction %s", nonce, exc,
                        signed.tx_hash)
        self._note([signed], clear=nonce)
        return signed.tx_hash

    def _reached(self, nonce: int, tx_hash: str) -> bool:
        """After a failed send: re-read the count (releasing the nonce when it never arrived)
        and tell whether this very transaction reached the node anyway."""
        if self.resync() <= nonce:
            return False
        try:
            return self.rpc.call("eth_getTransactionByHash", [tx_hash]) is not None
        except RpcError:
            return False  # the count moved past it, but by which transaction is unknown

    def open_txs(self) -> dict[str, tuple[int, int]]:
        return self.hot.open_txs(self.address)

    def prune_open(self) -> None:
        """Forget open transactions whose nonce was mined (theirs or a replacement's): a
        receipt that timed out is not settled, but once its nonce is used it is not open."""
        mined = int(self.rpc.call("eth_getTransactionCount", [self.address, "latest"]), 16)
        done = [h for h, (nonce, _) in self.open_txs().items() if nonce < mined]
        self.hot.open_close(self.address, *done)


@dataclass
class NonceManager:
    """The fleet's nonces of ``address`` on ``hot``'s chain."""

    hot: HotState
    rpc: RpcClient
    address: str
    lock_ttl_s: float = NONCE_LOCK_TTL_S
    lock_wait_s: float = NONCE_LOCK_WAIT_S
    max_hold_s: float = NONCE_LOCK_MAX_HOLD_S

    def __post_init__(self) -> None:
        self.address = self.address.lower()

    @contextlib.contextmanager
    def session(self) -> Iterator[NonceSession]:
        lock = self.hot.nonce_lock(self.address, self.lock_ttl_s, self.lock_wait_s)
        if not lock.acquire():
            raise NonceLockBusy(f"nonce lock of {self.address} not free within {self.lock_wait_s}s")
        held = renewals.hold(lock, self.lock_ttl_s, self.max_hold_s)
        try:
            yield NonceSession(self.hot, self.rpc, self.address, lock.local.token)
        finally:
            renewals.drop(held)
            try:
                lock.release()
            except LockNotOwnedError:
                log.warning("nonce lock of %s expired before its holder finished", self.address)
            except Exception:  # Redis gone: the lock expires by itself; a sent hash must not be lost
                log.exception("could not release the nonce lock of %s", self.address)

    def closed(self, tx_hash: str) -> None:
        """A transaction was settled: no longer open."""
        self.hot.open_close(self.address, tx_hash)


def _sign(signer: LocalSigner, nonce: int, worst_gas_wei: int, tx: Mapping[str, Any], sender: str) -> Signed:
    raw, tx_hash, _ = signer.sign(nonce=nonce, **tx)
    return Signed(raw, tx_hash, nonce, sender, worst_gas_wei)


def _broadcast(rpc: RpcClient, signed: Signed, broadcast: Broadcast | None) -> None:
    if broadcast is not None:
        broadcast(signed)
    else:
        rpc.call("eth_sendRawTransaction", [signed.raw])


def _all(before_send: BeforeSend | None) -> BeforeSendAll | None:
    """``before_send`` of one transaction, as ``send_many`` calls it."""
    if before_send is None:
        return None
    one = before_send
    return lambda signed: one(*signed)


def _one(out: SentMany) -> str:
    """The hash of ``send_many``'s one transaction, or its failure raised."""
    if out.sent:
        return out.signed[0].tx_hash
    assert out.error is not None
    raise out.error


class _LocalSession:
    def __init__(self, rpc: RpcClient) -> None:
        self.rpc = rpc

    def open_txs(self) -> dict[str, tuple[int, int]]:
        return {}

    def prune_open(self) -> None:
        pass

    def resync(self) -> int:
        return 0  # nothing stored: every send re-reads the count

    def note_sent(self, nonce: int, tx_hash: str, worst_gas_wei: int) -> None:
        pass

    def send_at(
        self, signer: LocalSigner, nonce: int, *, worst_gas_wei: int, before_send: BeforeSend | None = None,
        broadcast: Broadcast | None = None, **tx: Any,
    ) -> str:
        signed = _sign(signer, nonce, worst_gas_wei, tx, signer.address)
        if before_send is not None:
            before_send(signed)
        _broadcast(self.rpc, signed, broadcast)
        return signed.tx_hash

    def send(
        self, signer: LocalSigner, *, worst_gas_wei: int, before_send: BeforeSend | None = None,
        broadcast: Broadcast | None = None, **tx: Any,
    ) -> str:
        return _one(self.send_many(signer, [(worst_gas_wei, tx)], before_send=_all(before_send), broadcast=broadcast))

    def send_many(
        self, signer: LocalSigner, txs: Sequence[tuple[int, Mapping[str, Any]]], *,
        before_send: BeforeSendAll | None = None, broadcast: Broadcast | None = None,
    ) -> SentMany:
        """From the node's pending count, in order until one fails (the next session
        re-reads the count)."""
        first = signer.resync_nonce()
        signed = [_sign(signer, first + k, worst, tx, signer.address) for k, (worst, tx) in enumerate(txs)]
        if before_send is not None:
            before_send(signed)
        for k, s in enumerate(signed):
            try:
                _broadcast(self.rpc, s, broadcast)
            except Exception as exc:
                return SentMany(signed, k, exc, k)
        return SentMany(signed, len(signed))


@dataclass
class LocalNonces:
    """The signer's own count re-read from the node under ``lock`` before each send."""

    rpc: RpcClient
    lock: Callable[[], ContextManager[Any]] = contextlib.nullcontext

    @contextlib.contextmanager
    def session(self) -> Iterator[_LocalSession]:
        with self.lock():
            yield _LocalSession(self.rpc)

    def closed(self, tx_hash: str) -> None:
        pass
