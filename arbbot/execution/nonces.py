"""Nonces of one account on one chain, shared by any number of execute workers (threads,
processes, hosts) through the hot state (``HotState.nonce_*``: the keys and the scripts).

A send happens inside a ``NonceManager.session()``: the account's nonce lock held (it
expires, and a sender waits for it a bounded time), and every write to the stored nonce
fenced by that lock's token, so a holder whose lock expired cannot move it. Inside:

- ``take()`` hands out the stored next nonce and notes it *in flight*. When nothing is
  stored (first use, an expired key) or a nonce is still in flight (the last holder died
  between taking one and knowing its fate), the next nonce is first re-read from the node:
  ``eth_getTransactionCount(address, "pending")``;
- ``send()`` signs with that nonce and sends. Sent: the nonce leaves flight and the
  transaction is *open* until settled (``closed``). Failed: the count is re-read from the
  node under the lock (``resync``). That is the only safe release of a nonce: the node
  alone knows whether the failed send reached it. Pending count > nonce and our hash known
  to the node: it was sent after all (kept, reported as sent). Pending count == nonce: the
  send never arrived, and the next sender reuses the nonce, so no gap remains. A nonce
  that was handed out and reached the node is thus never handed out again.

``LocalNonces`` is the single-process stand-in (the signer's own counter, re-read under a
caller-given lock before each send): tests and tools without a hot state.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Iterator, Protocol

from redis.exceptions import LockNotOwnedError

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import LocalSigner
from arbbot.errors import ArbbotError, RpcError
from arbbot.hotstate import NONCE_LOCK_TTL_S, NONCE_LOCK_WAIT_S, HotState

log = logging.getLogger(__name__)


class NonceLockBusy(ArbbotError):
    """The nonce lock was not free within the wait; nothing was sent."""


class Session(Protocol):
    def open_txs(self) -> dict[str, tuple[int, int]]: ...

    def prune_open(self) -> None: ...

    def send(self, signer: LocalSigner, *, worst_gas_wei: int, **tx: Any) -> str: ...


class Nonces(Protocol):
    def session(self) -> ContextManager[Session]: ...

    def closed(self, tx_hash: str) -> None: ...


class NonceSession:
    """One holder's turn at the account's nonce (see the module docstring)."""

    def __init__(self, hot: HotState, rpc: RpcClient, address: str, token: bytes) -> None:
        self.hot, self.rpc, self.address, self.token = hot, rpc, address, token

    def resync(self) -> int:
        """Store the node's pending transaction count as the next nonce; returns it."""
        pending = int(self.rpc.call("eth_getTransactionCount", [self.address, "pending"]), 16)
        self.hot.nonce_reset(self.address, self.token, pending)
        return pending

    def take(self) -> int:
        nonce = self.hot.nonce_take(self.address, self.token)
        if nonce is None:
            self.resync()
            nonce = self.hot.nonce_take(self.address, self.token)
            if nonce is None:  # cannot happen under our own lock: resync just stored one
                raise ArbbotError(f"nonce of {self.address} vanished under its lock")
        return nonce

    def send(self, signer: LocalSigner, *, worst_gas_wei: int, **tx: Any) -> str:
        """Sign with the next nonce and send; the hash. An ``RpcError`` means not sent."""
        nonce = self.take()
        raw, tx_hash, _ = signer.sign(nonce=nonce, **tx)
        try:
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

    def __post_init__(self) -> None:
        self.address = self.address.lower()

    @contextlib.contextmanager
    def session(self) -> Iterator[NonceSession]:
        lock = self.hot.nonce_lock(self.address, self.lock_ttl_s, self.lock_wait_s)
        if not lock.acquire():
            raise NonceLockBusy(f"nonce lock of {self.address} not free within {self.lock_wait_s}s")
        try:
            yield NonceSession(self.hot, self.rpc, self.address, lock.local.token)
        finally:
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

    def send(self, signer: LocalSigner, *, worst_gas_wei: int, **tx: Any) -> str:
        raw, tx_hash, _ = signer.sign(nonce=signer.resync_nonce(), **tx)
        self.rpc.call("eth_sendRawTransaction", [raw])
        return tx_hash


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
