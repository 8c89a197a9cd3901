"""Nonces of one account on one chain, shared by any number of execute workers (threads,
processes, hosts) through the hot state (``HotState.nonce_*``: the keys and the scripts).

A send happens inside a ``NonceManager.session()``: the account's nonce lock held (it
expires ``lock_ttl_s`` after its holder dies: a thread renews it while the holder lives,
for at most ``max_hold_s``; a sender waits for it a bounded time), and every write to the stored nonce
fenced by that lock's token, so a holder whose lock expired cannot move it. Inside:

- ``take()`` hands out the stored next nonce and notes it *in flight*. When nothing is
  stored (first use, an expired key) or a nonce is still in flight (the last holder died
  between taking one and knowing its fate), the next nonce is first re-read from the node:
  ``eth_getTransactionCount(address, "pending")``;
- ``send()`` signs with that nonce, hands the signed transaction to ``before_send`` (the
  journal persists it: nothing is sent unrecorded; if that raises, nothing is sent and the
  nonce is released by a resync) and sends it (``broadcast``: the public node by default,
  or a private relay). Sent: the nonce leaves flight and the transaction is *open* until
  settled (``closed``). Failed: the count is re-read from the
  node under the lock (``resync``). That is the only safe release of a nonce: the node
  alone knows whether the failed send reached it. Pending count > nonce and our hash known
  to the node: it was sent after all (kept, reported as sent). Pending count == nonce: the
  send never arrived, and the next sender reuses the nonce, so no gap remains. A nonce
  that was handed out and reached the node is thus never handed out again.

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
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Iterator, Protocol

from prometheus_client import Counter
from redis.exceptions import LockNotOwnedError

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import LocalSigner
from arbbot.errors import ArbbotError, RpcError
from arbbot.hotstate import NONCE_LOCK_MAX_HOLD_S, NONCE_LOCK_TTL_S, NONCE_LOCK_WAIT_S, HotState

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
Broadcast = Callable[[Signed], None]


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

    def take(self) -> int:
        nonce = self.hot.nonce_take(self.address, self.token)
        if nonce is None:
            self.resync()
            nonce = self.hot.nonce_take(self.address, self.token)
            if nonce is None:  # cannot happen under our own lock: resync just stored one
                raise ArbbotError(f"nonce of {self.address} vanished under its lock")
        return nonce

    def send(
        self, signer: LocalSigner, *, worst_gas_wei: int, before_send: BeforeSend | None = None,
        broadcast: Broadcast | None = None, **tx: Any,
    ) -> str:
        """Sign with the next nonce, record (``before_send``), send; the hash. An
        ``RpcError`` means not sent; so does any error of ``before_send``."""
        return self._send(signer, self.take(), worst_gas_wei, before_send, broadcast, tx, release=True)

    def send_at(
        self, signer: LocalSigner, nonce: int, *, worst_gas_wei: int, before_send: BeforeSend | None = None,
        broadcast: Broadcast | None = None, **tx: Any,
    ) -> str:
        """Sign and send at ``nonce``, which an open transaction holds: its replacement."""
        return self._send(signer, nonce, worst_gas_wei, before_send, broadcast, tx, release=False)

    def _send(
        self, signer: LocalSigner, nonce: int, worst_gas_wei: int, before_send: BeforeSend | None,
        broadcast: Broadcast | None, tx: dict[str, Any], *, release: bool,
    ) -> str:
        raw, tx_hash, _ = signer.sign(nonce=nonce, **tx)
        signed = Signed(raw, tx_hash, nonce, self.address, worst_gas_wei)
        if before_send is not None:
            try:
                before_send(signed)
            except BaseException:
                if release:  # nothing was sent: the nonce goes back
                    self.resync()
                raise
        try:
            if broadcast is not None:
                broadcast(signed)
            else:
                self.rpc.call("eth_sendRawTransaction", [raw])
        except RpcError as exc:
            if not self._reached(nonce, tx_hash):
                raise
            log.warning("send of nonce %s reported %s, but the node has the transaction %s", nonce, exc, tx_hash)
        try:
            self.hot.nonce_sent(self.address, nonce, tx_hash, worst_gas_wei)
        except Exception:  # sent all the same: the hash must reach the caller. The nonce
            # stays in flight, so the next holder re-reads the count from the node.
            log.exception("sent %s with nonce %s but could not note it in the hot state", tx_hash, nonce)
        return tx_hash

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

    def _renew(self, lock: Any, done: threading.Event) -> None:
        """Keep ``lock`` alive while its session runs, up to ``max_hold_s`` in all."""
        deadline = time.monotonic() + self.max_hold_s
        while not done.wait(self.lock_ttl_s / 3):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                lock.extend(min(self.lock_ttl_s, remaining), replace_ttl=True)
            except Exception:  # lost, or Redis gone: the fence refuses the holder's writes
                return

    @contextlib.contextmanager
    def session(self) -> Iterator[NonceSession]:
        lock = self.hot.nonce_lock(self.address, self.lock_ttl_s, self.lock_wait_s)
        if not lock.acquire():
            raise NonceLockBusy(f"nonce lock of {self.address} not free within {self.lock_wait_s}s")
        done = threading.Event()
        threading.Thread(target=self._renew, args=(lock, done), daemon=True, name="nonce-lock-renewal").start()
        try:
            yield NonceSession(self.hot, self.rpc, self.address, lock.local.token)
        finally:
            done.set()
            try:
                lock.release()
            except LockNotOwnedError:
                log.warning("nonce lock of %s expired before its holder finished", self.address)
            except Exception:  # Redis gone: the lock expires by itself; a sent hash must not be lost
                log.exception("could not release the nonce lock of %s", self.address)

    def closed(self, tx_hash: str) -> None:
        """A transaction was settled: no longer open."""
        self.hot.open_close(self.address, tx_hash)


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
        raw, tx_hash, _ = signer.sign(nonce=nonce, **tx)
        signed = Signed(raw, tx_hash, nonce, signer.address, worst_gas_wei)
        if before_send is not None:
            before_send(signed)
        if broadcast is not None:
            broadcast(signed)
        else:
            self.rpc.call("eth_sendRawTransaction", [raw])
        return tx_hash

    def send(
        self, signer: LocalSigner, *, worst_gas_wei: int, before_send: BeforeSend | None = None,
        broadcast: Broadcast | None = None, **tx: Any,
    ) -> str:
        return self.send_at(signer, signer.resync_nonce(), worst_gas_wei=worst_gas_wei, before_send=before_send,
                            broadcast=broadcast, **tx)


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
