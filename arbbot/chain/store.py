"""What the scanner writes its results through: the ``Store`` protocol.

Owns the interface only. ``arbbot.hotstate.HotState`` (Redis) is the implementation the
workers use; a ``Scanner`` without a store keeps everything in memory (tests, benchmarks).
Every block's pool states, the head, the cursor (last block + recent hashes) and the hashes
a reorg orphaned go in one ``put_pools`` call, which the store applies atomically.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Protocol, Sequence, runtime_checkable

from arbbot.types import PoolState

Cursor = tuple[int, Sequence[tuple[int, str]]]  # (last block, [(number, hash), ...] oldest first)


@runtime_checkable
class Store(Protocol):
    def put_pools(
        self,
        states: Iterable[PoolState],
        block_number: int,
        block_hash: str,
        *,
        cursor: Cursor | None = None,
        orphaned: Sequence[str] = (),
        removed: Iterable[str] = (),
    ) -> None:
        """Write ``states`` as current at the block, forget the ``removed`` pools (noting
        them among the block's changes), move the head (and the cursor) there and record
        the ``orphaned`` block hashes, in one transaction."""

    def delete_pools(self, addresses: Iterable[str]) -> None:
        """Forget pools (created on a branch a reorg orphaned)."""

    def get_pools(self) -> Mapping[str, PoolState]:
        """Every stored pool state by address."""

    def changed_since(
        self, after_block: int, after_hash: str = ""
    ) -> tuple[Mapping[str, PoolState], tuple[int, str] | None, frozenset[str]] | None:
        """The states written with the blocks after ``after_block`` (seen with hash
        ``after_hash``), the head, and the pools removed meanwhile; None when the store
        cannot tell (then ``get_pools``)."""

    def load_cursor(self) -> tuple[int, list[tuple[int, str]]] | None:
        """The cursor the last ``put_pools`` wrote, or None before the first."""

    def put_tokens(self, tokens: Iterable[Any]) -> None:
        """Token metadata (``arbbot.chain.token_registry.TokenInfo``) by address."""


__all__ = ["Cursor", "Store"]
