"""The token registry: every token of a known pool, its metadata and its transfer check.

Owns ``TokenInfo`` (``symbol``/``decimals`` read on-chain through Multicall3, tolerating
``bytes32`` symbols, reverting calls and non-contracts, and the outcome of the transfer
check), the tokens registered so far, and the bookkeeping of the checks still to make
(``unchecked``: token -> attempts left). A token is registered when a pool holding it is;
its ``transfer`` is probed (``arbbot.chain.token_checks``: fee-on-transfer, rebasing,
reverting) as soon as a pool that visibly holds it shows up in a block, and the outcome
goes to the store's ``tokens`` (``excluded_reason``). Only tokens still awaiting a check
cost anything per block, and only when a block touches a funded pool of theirs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Iterable, Sequence

from arbbot.chain.multicall import SEL_DECIMALS, SEL_SYMBOL, SubCall, SubCallRunner, decode_decimals, decode_symbol
from arbbot.chain.rpc import RpcClient
from arbbot.chain.store import Store
from arbbot.chain.token_checks import TransferCheck, check_transfers, holders_for
from arbbot.errors import RpcError
from arbbot.types import PoolState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An ERC20's metadata. ``symbol`` is ``"UNKNOWN"`` and ``decimals`` None when the
    token does not answer in a standard way; ``problems`` says why. ``transfer_check`` is
    the outcome of probing its ``transfer`` (None until a pool holding it was seen)."""

    address: str
    symbol: str
    decimals: int | None
    problems: tuple[str, ...] = ()
    transfer_check: TransferCheck | None = None

    @property
    def excluded_reason(self) -> str | None:
        """Why the path stage must not route through this token (e.g. ``"fee-on-transfer:
        received 98/100"``), or None when it may (clean, or not checked yet)."""
        return None if self.transfer_check is None else self.transfer_check.excluded_reason


def read_tokens(mc: SubCallRunner, addresses: Iterable[str], block: int | str = "latest") -> dict[str, TokenInfo]:
    """``symbol()``/``decimals()`` of each token in one batched Multicall3 pass. Never
    raises for a misbehaving token: it gets ``UNKNOWN``/None and a reason."""
    addrs = sorted({a.lower() for a in addresses})
    calls: list[SubCall] = []
    for a in addrs:
        calls.append(SubCall.make(a, SEL_SYMBOL))
        calls.append(SubCall.make(a, SEL_DECIMALS))
    res = mc.run(calls, block)
    out: dict[str, TokenInfo] = {}
    for i, a in enumerate(addrs):
        (ok_s, d_s), (ok_d, d_d) = res[2 * i], res[2 * i + 1]
        problems: list[str] = []
        symbol = decode_symbol(ok_s, d_s)
        if symbol is None:
            problems.append("symbol() reverted" if not ok_s else f"symbol() returned {len(d_s)} undecodable bytes")
            symbol = "UNKNOWN"
        elif len(d_s) == 32:
            problems.append("symbol() returns bytes32")
        decimals = decode_decimals(ok_d, d_d)
        if decimals is None:
            problems.append("decimals() reverted" if not ok_d else f"decimals() returned {len(d_d)} bad bytes")
        out[a] = TokenInfo(a, symbol, decimals, tuple(problems))
    return out


class TokenRegistry:
    """One chain's tokens. ``read_metadata`` off: tokens are not registered at all;
    ``check_transfers`` off: registered tokens are never probed."""

    def __init__(
        self,
        rpc: RpcClient,
        mc: SubCallRunner,
        store: Store | None = None,
        *,
        chain_id: int = 0,
        read_metadata: bool = True,
        check_transfers: bool = True,
        check_attempts: int = 3,
    ) -> None:
        self.rpc = rpc
        self.mc = mc
        self.store = store
        self.chain_id = chain_id
        self.read_metadata = read_metadata
        self.check_transfers = check_transfers
        self.check_attempts = max(1, check_attempts)
        self.tokens: dict[str, TokenInfo] = {}
        self.unchecked: dict[str, int] = {}  # token -> transfer-check attempts left
        self.probes = 0  # transfer checks sent so far

    def register(self, addresses: Iterable[str], block: int | str) -> dict[str, TokenInfo]:
        """Read the metadata of those of ``addresses`` not known yet, at ``block``, queue
        them for a transfer check and store them. Returns the new ones."""
        if not self.read_metadata:
            return {}
        unknown = set(addresses) - set(self.tokens)
        if not unknown:
            return {}
        toks = read_tokens(self.mc, unknown, block)
        self.tokens.update(toks)
        if self.check_transfers:
            for t in toks:
                self.unchecked.setdefault(t, self.check_attempts)
        if self.store is not None:
            self.store.put_tokens(toks.values())
        return toks

    def check(self, states: Sequence[PoolState], block: int | str) -> list[TokenInfo]:
        """Probe the transfer of every token still awaiting a check that one of ``states``
        holds (positive reserve / liquidity), at ``block``, in one JSON-RPC batch; record the
        outcome in ``tokens`` and the store. Returns the tokens whose check concluded.
        Never raises for node trouble: the tokens stay pending for a later block."""
        if not self.unchecked:
            return []
        holders = holders_for(self.unchecked, states)
        if not holders:
            return []
        pairs = sorted(holders.items())
        try:
            results = check_transfers(self.rpc, pairs, block)
        except RpcError as exc:
            log.warning("chain %s: transfer checks of %d tokens failed: %s", self.chain_id, len(pairs), exc)
            return []
        self.probes += len(pairs)
        done: list[TokenInfo] = []
        for (token, holder), res in zip(pairs, results):
            if not res.conclusive:
                left = self.unchecked[token] - 1
                if left > 0:
                    self.unchecked[token] = left
                    continue
                log.warning("chain %s: giving up the transfer check of %s: %s", self.chain_id, token, res.reason)
            self.unchecked.pop(token, None)
            base = self.tokens.get(token) or TokenInfo(token, "UNKNOWN", None)
            info = replace(base, transfer_check=res)
            self.tokens[token] = info
            done.append(info)
            if info.excluded_reason:
                log.warning("chain %s: token %s excluded (%s, probed from %s)", self.chain_id, token,
                            info.excluded_reason, holder)
        if done and self.store is not None:
            self.store.put_tokens(done)
        return done


__all__ = ["TokenInfo", "TokenRegistry", "read_tokens"]
