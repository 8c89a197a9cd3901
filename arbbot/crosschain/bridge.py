"""The ``Bridge`` interface (quote, send with an idempotency key, status) and one adapter
per bridge kind.

Owns how a transfer between chains is priced, requested and observed. ``DevnetBridge``
drives the project's ``DevBridge`` contracts of the two-chain devnet (the only adapter
exercised here). The production kinds (``AcrossBridge``, ``StargateBridge``,
``CctpBridge``) quote from configuration (fee in bps, a fixed fee per token, a delay) so
the strategy can price a real route; their send and status are not wired in this round and
raise ``BridgeUnsupported``.

Exactly-once: a transfer is named by its idempotency key (``transfer_key``: keccak of the
saga's key), which the source bridge accepts once; ``send`` first asks ``status`` and sends
nothing for a key already known.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping

from eth_abi import decode
from eth_utils import keccak

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import LocalSigner, encode_call
from arbbot.errors import ArbbotError

MAX_BPS = 10_000


class BridgeUnsupported(ArbbotError):
    """The adapter cannot do this (a production kind whose sending is not wired here)."""


class TransferStatus:
    UNKNOWN = "unknown"  # the source bridge never accepted the key
    PENDING = "pending"  # accepted on the source, not delivered yet
    DELIVERED = "delivered"
    REFUNDED = "refunded"  # failed by the bridge: the sender got the full amount back


@dataclass(frozen=True)
class BridgeQuote:
    symbol: str
    src_chain: int
    dst_chain: int
    amount_in: int  # taken on the source chain, base units
    amount_out: int  # delivered on the destination chain
    fee: int  # amount_in - amount_out
    delay_blocks: int  # of the source chain, before delivery
    delay_s: float


@dataclass(frozen=True)
class BridgeCall:
    """A transaction the sender signs to start a transfer."""

    chain_id: int
    to: str
    data: str
    gas: int = 200_000


def transfer_key(idempotency_key: str) -> bytes:
    """The bytes32 a bridge knows a transfer by: keccak of the saga's idempotency key."""
    return bytes(keccak(text=idempotency_key))


def fee_of(amount: int, fee_bps: int) -> int:
    """The bridge's fee, rounded down as ``DevBridge.send`` does."""
    return amount * fee_bps // MAX_BPS


class Bridge(ABC):
    kind: str = ""

    @abstractmethod
    def quote(self, symbol: str, amount: int, src_chain: int, dst_chain: int) -> BridgeQuote: ...

    @abstractmethod
    def send_call(self, key: bytes, symbol: str, amount: int, src_chain: int, dst_chain: int,
                  recipient: str) -> BridgeCall: ...

    @abstractmethod
    def status(self, key: bytes, src_chain: int, dst_chain: int) -> str: ...

    def send(self, signer: LocalSigner, key: bytes, symbol: str, amount: int, src_chain: int, dst_chain: int,
             recipient: str, **fees: Any) -> str | None:
        """Sign and send the transfer; ``None`` (nothing sent) when the key is already known."""
        if self.status(key, src_chain, dst_chain) != TransferStatus.UNKNOWN:
            return None
        call = self.send_call(key, symbol, amount, src_chain, dst_chain, recipient)
        return signer.send(to=call.to, data=call.data, gas=call.gas, **fees)


@dataclass
class DevnetBridge(Bridge):
    """The two-chain devnet's ``DevBridge`` pair. ``bridges``/``tokens`` as in
    ``arbbot.devnet.twochain.TwoChain``; ``delay_blocks`` is the relayer's setting."""

    rpcs: Mapping[int, RpcClient]
    bridges: Mapping[int, str]
    tokens: Mapping[str, Mapping[int, str]]
    delay_blocks: int = 2
    block_time_s: Mapping[int, float] = field(default_factory=dict)
    kind: str = "devnet"

    def _fee_bps(self, chain_id: int) -> int:
        return int(self.rpcs[chain_id].eth_call(self.bridges[chain_id], encode_call("feeBps()")), 16)

    def quote(self, symbol: str, amount: int, src_chain: int, dst_chain: int) -> BridgeQuote:
        fee = fee_of(amount, self._fee_bps(src_chain))
        return BridgeQuote(symbol, src_chain, dst_chain, amount, amount - fee, fee, self.delay_blocks,
                           self.delay_blocks * self.block_time_s.get(src_chain, 1.0))

    def send_call(self, key: bytes, symbol: str, amount: int, src_chain: int, dst_chain: int,
                  recipient: str) -> BridgeCall:
        data = encode_call("send(bytes32,address,uint256,address,uint256)",
                           [key, self.tokens[symbol][src_chain], amount, recipient, dst_chain])
        return BridgeCall(src_chain, self.bridges[src_chain], data)

    def status(self, key: bytes, src_chain: int, dst_chain: int) -> str:
        raw = self.rpcs[src_chain].eth_call(self.bridges[src_chain], encode_call("outbound(bytes32)", [key]))
        _sender, _token, _amount, state = decode(["address", "address", "uint256", "uint8"], bytes.fromhex(raw[2:]))
        if state == 0:
            return TransferStatus.UNKNOWN
        if state == 2:
            return TransferStatus.REFUNDED
        done = self.rpcs[dst_chain].eth_call(self.bridges[dst_chain], encode_call("completed(bytes32)", [key]))
        return TransferStatus.DELIVERED if int(done, 16) else TransferStatus.PENDING


@dataclass
class ConfiguredQuoteBridge(Bridge):
    """A production bridge priced from configuration: ``{"fee_bps": 5, "fixed_fee":
    {"USDC": 1000000}, "delay_s": 900, "block_time_s": {"1": 12}}``. Quotes only."""

    config: Mapping[str, Any]

    def quote(self, symbol: str, amount: int, src_chain: int, dst_chain: int) -> BridgeQuote:
        try:
            fee_bps = int(self.config["fee_bps"])
            delay_s = float(self.config["delay_s"])
        except (KeyError, TypeError, ValueError):
            raise ArbbotError(f"bridge {self.kind}: configuration needs fee_bps and delay_s") from None
        fee = fee_of(amount, fee_bps) + int(self.config.get("fixed_fee", {}).get(symbol, 0))
        block_time = float(self.config.get("block_time_s", {}).get(str(src_chain), 12.0))
        return BridgeQuote(symbol, src_chain, dst_chain, amount, max(amount - fee, 0), min(fee, amount),
                           int(delay_s // block_time) + 1, delay_s)

    def send_call(self, key: bytes, symbol: str, amount: int, src_chain: int, dst_chain: int,
                  recipient: str) -> BridgeCall:
        raise BridgeUnsupported(f"bridge {self.kind}: sending is not wired in this version (quotes only)")

    def status(self, key: bytes, src_chain: int, dst_chain: int) -> str:
        raise BridgeUnsupported(f"bridge {self.kind}: status is not wired in this version (quotes only)")


class AcrossBridge(ConfiguredQuoteBridge):
    kind = "across"


class StargateBridge(ConfiguredQuoteBridge):
    kind = "stargate"


class CctpBridge(ConfiguredQuoteBridge):
    kind = "cctp"


PRODUCTION_KINDS: dict[str, type[ConfiguredQuoteBridge]] = {
    c.kind: c for c in (AcrossBridge, StargateBridge, CctpBridge)
}


def production_bridge(kind: str, config: Mapping[str, Any]) -> ConfiguredQuoteBridge:
    try:
        return PRODUCTION_KINDS[kind](config)
    except KeyError:
        raise ArbbotError(f"unknown bridge kind {kind!r} (known: {', '.join(sorted(PRODUCTION_KINDS))})") from None
