"""On-chain checks that a token's ``transfer`` moves exactly what it says.

Owns the detection of fee-on-transfer, rebasing and otherwise non-standard tokens, which
the path stage must exclude: its exact math assumes the amount a pool is sent is the amount
it receives. Nothing is deployed and nothing is sent: the ``TransferProbe`` runtime code
(``arbbot/contracts/TransferProbe.sol``) is put, by an ``eth_call`` state override, at the
address of an account that already holds the token (a pool), and transfers a small share of
that balance to a fresh address, measuring both balance changes. Many tokens are checked in
one JSON-RPC batch; encoding is ``arbbot.chain.tx.encode_call``, decoding is by slicing
(``arbbot.chain.abi``).

A ``TransferCheck`` is *conclusive* when the token itself answered (a clean transfer, a fee,
a revert, ``false``); it is inconclusive when the holder holds none of the token or the node
failed the call for a reason of its own (no state-override support, a timeout). Callers
exclude only on a conclusive failure and retry an inconclusive one later.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Sequence

from eth_utils import keccak

from arbbot.chain.abi import hex_bytes, selector, uint_word
from arbbot.chain.multicall import block_tag
from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import encode_call
from arbbot.contracts.build import load_artifact
from arbbot.errors import RpcError

# A fresh address nobody holds keys to: no token treats it specially (unlike 0x0 or 0xdead).
PROBE_RECIPIENT = "0x" + keccak(text="arbbot.token_checks.recipient")[12:].hex()
SHARE_DIVISOR = 1000  # probe 0.1% of the holder's balance: under any max-transaction limit...
MIN_PROBE_AMOUNT = 10**6  # ...but at least this many base units, so a 1% fee cannot round to 0
PROBE_GAS = 2_000_000
BATCH_SIZE = 200  # eth_calls per JSON-RPC batch

_SIG_PROBE = "probe(address,address,uint256)"
_SIG_PROBE_SHARE = "probeShare(address,address,uint256,uint256)"
_ERR_TRANSFER_REVERTED = selector("TransferReverted(bytes)")
_ERR_RETURNED_FALSE = selector("TransferReturnedFalse()")
_ERR_BALANCE_OF = selector("BalanceOfFailed(address)")
_ERR_NOT_CONTRACT = selector("NotAContract()")
_ERR_IRREGULAR = selector("IrregularBalanceChange(uint256,uint256,uint256,uint256)")
_ERROR_STRING = selector("Error(string)")

# A shortfall below one basis point is share rounding (stETH-style rebasing tokens lose 1-2
# wei per transfer), not a fee; either way the token is excluded, only the words differ.
_ROUNDING_BPS = 1


@dataclass(frozen=True, slots=True)
class TransferCheck:
    """The outcome of probing one token. ``ok`` means the transfer was clean (``sent ==
    received == amount``); ``reason`` says what was wrong otherwise. ``conclusive`` is False
    when the check could not be made (then ``ok`` is False too, but the token is not to be
    excluded on it)."""

    ok: bool
    reason: str
    sent: int
    received: int
    amount: int = 0
    conclusive: bool = True

    @property
    def excluded_reason(self) -> str | None:
        """The reason to exclude the token, or None (clean, or not checked)."""
        return self.reason if self.conclusive and not self.ok else None

    def to_wire(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "reason": self.reason,
            "conclusive": self.conclusive,
            "amount": str(self.amount),
            "sent": str(self.sent),
            "received": str(self.received),
        }


@lru_cache(maxsize=1)
def probe_runtime_code() -> str:
    """``TransferProbe``'s runtime bytecode from the committed artifact."""
    return str(load_artifact("TransferProbe")["deployedBytecode"])


def classify(amount: int, sent: int, received: int) -> tuple[bool, str]:
    """``(ok, reason)`` for a transfer of ``amount`` that lowered the sender's balance by
    ``sent`` and raised the receiver's by ``received``."""
    if sent == amount and received == amount:
        return True, ""
    if sent == amount and received < amount:
        if (amount - received) * 10_000 < _ROUNDING_BPS * amount:
            return False, f"rebasing/irregular balance change: received {received}/{amount} (rounding)"
        return False, f"fee-on-transfer: received {received}/{amount}"
    if sent > amount and received <= amount:
        return False, f"fee-on-transfer: sender charged {sent} for {amount}, received {received}/{amount}"
    return False, f"rebasing/irregular balance change: sent {sent}, received {received} of {amount}"


def _revert_text(data: bytes) -> str:
    """``Error(string)`` text of a revert payload, else its hex (shortened), else ''."""
    if data[:4] == _ERROR_STRING and len(data) >= 68:
        try:
            n = uint_word(data[4:], 1)
            return data[68 : 68 + n].decode("utf-8", "replace")
        except (ValueError, IndexError):
            pass
    return ("0x" + data.hex())[:74] if data else ""


def decode_probe_revert(data: bytes) -> tuple[bool, str, int, int] | None:
    """``(conclusive, reason, sent, received)`` for the probe's own custom errors, or None
    when the revert data is not one of them."""
    sel, body = data[:4], data[4:]
    if sel == _ERR_TRANSFER_REVERTED:
        inner = b""
        if len(body) >= 64:
            n = uint_word(body, 1)
            inner = body[64 : 64 + n]
        text = _revert_text(inner)
        return True, "transfer reverted" + (f": {text}" if text else ""), 0, 0
    if sel == _ERR_RETURNED_FALSE:
        return True, "transfer returned false", 0, 0
    if sel == _ERR_NOT_CONTRACT:
        return True, "not a contract", 0, 0
    if sel == _ERR_BALANCE_OF:
        return True, "balanceOf reverted or returned malformed data", 0, 0
    if sel == _ERR_IRREGULAR and len(body) >= 128:
        sb, sa, tb, ta = (uint_word(body, i) for i in range(4))
        return (
            True,
            f"rebasing/irregular balance change: sender {sb}->{sa}, receiver {tb}->{ta}",
            max(0, sb - sa),
            max(0, ta - tb),
        )
    return None


def _error_data(err: RpcError) -> bytes | None:
    d = err.data
    if isinstance(d, dict):
        d = d.get("data")
    if isinstance(d, str) and d.startswith("0x"):
        try:
            return hex_bytes(d)
        except ValueError:
            return None
    return None


def _probe_request(
    token: str, holder: str, amount: int | None, block: int | str, recipient: str
) -> tuple[str, list[Any]]:
    if amount is None:
        data = encode_call(_SIG_PROBE_SHARE, [token, recipient, SHARE_DIVISOR, MIN_PROBE_AMOUNT])
    else:
        data = encode_call(_SIG_PROBE, [token, recipient, amount])
    call = {"to": holder, "data": data, "gas": hex(PROBE_GAS)}
    return "eth_call", [call, block_tag(block), {holder: {"code": probe_runtime_code()}}]


def _interpret(reply: Any, amount: int | None) -> TransferCheck:
    if isinstance(reply, RpcError):
        data = _error_data(reply)
        decoded = decode_probe_revert(data) if data else None
        if decoded is None:
            return TransferCheck(False, f"unchecked: {str(reply)[:160]}", 0, 0, amount or 0, conclusive=False)
        conclusive, reason, sent, received = decoded
        return TransferCheck(False, reason, sent, received, amount or 0, conclusive)
    try:
        out = hex_bytes(reply) if isinstance(reply, str) and reply.startswith("0x") else None
    except ValueError:
        out = None
    if out is None:
        return TransferCheck(False, f"unchecked: malformed probe reply {str(reply)[:40]}", 0, 0, amount or 0, False)
    if amount is None:
        if len(out) < 96:
            return TransferCheck(False, f"unchecked: short probe reply ({len(out)} bytes)", 0, 0, 0, False)
        amount, sent, received = uint_word(out, 0), uint_word(out, 1), uint_word(out, 2)
    else:
        if len(out) < 64:
            return TransferCheck(False, f"unchecked: short probe reply ({len(out)} bytes)", 0, 0, amount, False)
        sent, received = uint_word(out, 0), uint_word(out, 1)
    if amount == 0:
        return TransferCheck(False, "unchecked: holder holds none of the token", sent, received, 0, False)
    ok, reason = classify(amount, sent, received)
    return TransferCheck(ok, reason, sent, received, amount)


def check_transfers(
    rpc: RpcClient,
    probes: Iterable[tuple[str, str] | tuple[str, str, int | None]],
    block: int | str = "latest",
    *,
    recipient: str = PROBE_RECIPIENT,
    batch_size: int = BATCH_SIZE,
) -> list[TransferCheck]:
    """Check many ``(token, holder[, amount])`` at ``block`` (number, tag or hash), one
    JSON-RPC batch per ``batch_size``; results in the order given. Without an amount (or
    with None) a small share of the holder's balance is probed, read on-chain in the same
    call. A token's misbehaviour never raises; a node that answers no batch at all raises
    ``RpcError`` (as any read would)."""
    items: list[tuple[str, str, int | None]] = []
    for p in probes:
        token, holder = p[0].lower(), p[1].lower()
        amount = p[2] if len(p) > 2 else None  # type: ignore[misc]
        items.append((token, holder, amount))
    out: list[TransferCheck] = []
    for i in range(0, len(items), max(1, batch_size)):
        chunk = items[i : i + batch_size]
        calls = [_probe_request(t, h, a, block, recipient) for t, h, a in chunk]
        replies = rpc.batch(calls, raise_errors=False)
        out.extend(_interpret(r, a) for r, (_, _, a) in zip(replies, chunk))
    return out


def check_transfer(
    rpc: RpcClient,
    token: str,
    holder: str,
    amount: int | None = None,
    block: int | str = "latest",
    *,
    recipient: str = PROBE_RECIPIENT,
) -> TransferCheck:
    """Check one token by transferring ``amount`` (default: a small share of the
    holder's balance) from ``holder`` (an account that holds it, e.g. a pool) to
    ``recipient`` inside an ``eth_call``."""
    return check_transfers(rpc, [(token, holder, amount)], block, recipient=recipient)[0]


def holders_for(tokens: Iterable[str], pools: Sequence[Any]) -> dict[str, str]:
    """A holder for each token that one of ``pools`` (objects with ``address``, ``token0``,
    ``token1`` and V2 ``reserve0/1`` or V3 ``liquidity``) visibly holds: the first pool with
    a positive reserve (V2) or liquidity (V3) of it. Tokens without such a pool are left out."""
    want = {t.lower() for t in tokens}
    out: dict[str, str] = {}
    for p in pools:
        if not want:
            break
        for side, tok in ((0, p.token0), (1, p.token1)):
            if tok not in want:
                continue
            reserve = getattr(p, f"reserve{side}", None)
            funded = reserve > 0 if reserve is not None else getattr(p, "liquidity", 0) > 0
            if funded:
                out[tok] = p.address
                want.discard(tok)
    return out


__all__ = [
    "PROBE_RECIPIENT",
    "TransferCheck",
    "check_transfer",
    "check_transfers",
    "classify",
    "decode_probe_revert",
    "holders_for",
    "probe_runtime_code",
]
