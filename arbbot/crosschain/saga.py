"""Cross-chain sagas: each trade and each rebalance as a persisted state machine.

Owns the states, the steps between them and the compensations. A step runs inside
``SagaStore.step`` (one database transaction holding the saga's row lock and its wallet's
lock): it reads the recorded state, decides, and records the outcome; anything sent to a
chain happens only after that commit, from bytes recorded before. So a worker killed at any
point resumes from the last recorded state and never executes a leg twice:

* a leg is signed (raw bytes, hash, nonce) and recorded before it is broadcast; a resumed
  saga broadcasts the same bytes again (same nonce: at most one of them can ever be mined);
* a leg whose nonce the chain has passed without its hash is ``dropped`` (it can never run);
* a bridge transfer carries the saga's idempotency key, which the source bridge takes once;
* a leg still not mined ``stall_blocks`` after it was sent is cancelled by a 0-value
  transfer at its nonce (a ``cancel`` leg, recorded before it is sent): one of the two is
  mined, and a cancelled leg counts as ``dropped``.

Trade: ``planned`` -> ``signed`` (both legs) -> ``sent`` (both broadcast at once) ->
``done`` when both legs landed, ``failed`` when neither did, else ``compensating`` (a leg
reverted, or stalled and cancelled): the
landed leg is unwound by the reverse swap on its chain -> ``compensated`` (alert
``leg_failed``), or ``held`` (alert ``unwind_failed``) when the unwind itself fails.
Rebalance: ``planned`` -> ``signed`` -> ``sent`` -> ``in_flight`` -> ``done`` when
delivered; ``compensated`` (alert ``bridge_refunded``) when the bridge refunded it;
``held`` (alert ``bridge_stalled``) when it is still pending ``stall_blocks`` past the
bridge's delay; ``failed`` when the send itself reverted (nothing moved), or when the
bridge's kind is quote-only (nothing signed, the reason in ``error``).
Final states: ``done``, ``failed``, ``compensated``, ``held``.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

from eth_utils import keccak

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import LocalSigner, encode_call
from arbbot.crosschain.bridge import Bridge, BridgeUnsupported, TransferStatus, transfer_key
from arbbot.crosschain.strategy import Rebalance, Trade
from arbbot.errors import ArbbotError, RpcError
from arbbot.math.v2 import get_amount_out

TRADE, REBALANCE = "trade", "rebalance"
FINAL = frozenset({"done", "failed", "compensated", "held"})
TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
SWAP_GAS = 250_000
BRIDGE_GAS = 200_000
MAX_UINT256 = 2**256 - 1
#: ``ARBBOT_XCHAIN_CRASH_AT=<point>`` SIGKILLs the process at that point (the crash tests);
#: with ``ARBBOT_XCHAIN_CRASH_PARENT=1`` its parent first (a Celery worker's main process)
CRASH_ENV = "ARBBOT_XCHAIN_CRASH_AT"
CRASH_PARENT_ENV = "ARBBOT_XCHAIN_CRASH_PARENT"


@dataclass
class Leg:
    index: int
    role: str  # buy | sell | unwind | bridge
    chain_id: int
    token_in: str
    token_out: str
    amount_in: int
    predicted_out: int
    min_out: int = 0
    pool: str = ""
    router: str = ""
    state: str = "planned"  # planned | signed | ok | reverted | dropped
    nonce: int | None = None
    tx_hash: str = ""
    raw_tx: str = ""
    realised_out: int | None = None
    gas_used: int = 0
    gas_price_wei: int = 0
    id: int | None = None


@dataclass
class Saga:
    kind: str
    key: str  # the idempotency key: unique, and the bridge transfer's key
    state: str = "planned"
    plan: dict[str, Any] = field(default_factory=dict)
    legs: list[Leg] = field(default_factory=list)
    predicted_profit: int = 0
    realised_profit: int | None = None
    alert: str = ""
    error: str = ""
    wallet: str = ""
    id: int | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL


class SagaStore(Protocol):
    """Persistence of sagas (``webapp.core.services.DbSagaStore``)."""

    def create(self, saga: Saga) -> Saga:
        """Insert, or return the saga already recorded under ``saga.key``."""

    def get(self, saga_id: int) -> Saga: ...

    def step(self, saga_id: int) -> contextlib.AbstractContextManager[Saga]:
        """One transaction: the saga locked (and its wallet), committed on exit."""

    def save(self, saga: Saga) -> None:
        """Write the saga and its legs (inside ``step``)."""

    def next_nonce(self, chain_id: int, wallet: str) -> int:
        """One past the highest nonce recorded on any leg of ``wallet`` on ``chain_id``."""


@dataclass
class Chains:
    """What the saga driver needs of both chains: nodes, the wallet's key, the bridge."""

    rpcs: Mapping[int, RpcClient]
    key: str = field(repr=False)
    bridge: Bridge
    symbols: Mapping[str, Mapping[int, str]]  # symbol -> chain id -> token address
    stall_blocks: int = 20
    priority_fee_wei: int = 10**9

    def signer(self, chain_id: int) -> LocalSigner:
        return LocalSigner(self.rpcs[chain_id], self.key, chain_id)

    @property
    def wallet(self) -> str:
        return self.signer(next(iter(self.rpcs))).address

    def fees(self, chain_id: int) -> dict[str, int]:
        block = self.rpcs[chain_id].call("eth_getBlockByNumber", ["latest", False])
        base = int(block.get("baseFeePerGas") or "0x0", 16)
        return {"max_fee_per_gas": 2 * base + self.priority_fee_wei, "max_priority_fee_per_gas": self.priority_fee_wei}


@dataclass
class Advance:
    state: str
    alerts: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)  # tx hashes broadcast by this call

    @property
    def final(self) -> bool:
        return self.state in FINAL


def crash_point(name: str) -> None:
    """The crash tests' hook: die like a SIGKILLed worker at ``name``."""
    if os.environ.get(CRASH_ENV) == name:
        if os.environ.get(CRASH_PARENT_ENV) == "1":
            os.kill(os.getppid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)


# --------------------------------------------------------------------------- creation


def trade_saga(trade: Trade, chains: Chains, pair: tuple[str, str], key: str, routers: Mapping[int, str],
               slippage_bps: int = 0) -> Saga:
    """A trade saga from a sized ``Trade``; ``pair`` is ``(quote symbol, base symbol)``.
    ``slippage_bps`` = 0 makes each leg demand exactly its predicted output."""
    quote, base = pair
    sym = chains.symbols

    def floor(x: int) -> int:
        return x * (10_000 - slippage_bps) // 10_000

    legs = [
        Leg(0, "buy", trade.buy_chain, sym[quote][trade.buy_chain], sym[base][trade.buy_chain], trade.quote_in,
            trade.base_out, floor(trade.base_out), trade.buy_pool, routers[trade.buy_chain]),
        Leg(1, "sell", trade.sell_chain, sym[base][trade.sell_chain], sym[quote][trade.sell_chain], trade.base_out,
            trade.quote_out, floor(trade.quote_out), trade.sell_pool, routers[trade.sell_chain]),
    ]
    plan = {"quote": quote, "base": base, "gross_profit": str(trade.gross_profit), "gas": str(trade.gas),
            "rebalance_cost": str(trade.rebalance_cost), "price_risk": str(trade.price_risk),
            "slippage_bps": slippage_bps}
    return Saga(TRADE, key, plan=plan, legs=legs, predicted_profit=trade.net_profit, wallet=chains.wallet)


def rebalance_saga(r: Rebalance, chains: Chains, key: str) -> Saga:
    quote = chains.bridge.quote(r.symbol, r.amount, r.src_chain, r.dst_chain)
    token_src, token_dst = chains.symbols[r.symbol][r.src_chain], chains.symbols[r.symbol][r.dst_chain]
    leg = Leg(0, "bridge", r.src_chain, token_src, token_dst, r.amount, quote.amount_out, quote.amount_out)
    plan = {"symbol": r.symbol, "src_chain": r.src_chain, "dst_chain": r.dst_chain, "fee": str(quote.fee),
            "delay_blocks": quote.delay_blocks, "transfer_key": "0x" + transfer_key(key).hex()}
    return Saga(REBALANCE, key, plan=plan, legs=[leg], predicted_profit=-quote.fee, wallet=chains.wallet)


# --------------------------------------------------------------------------- the driver


def advance(store: SagaStore, chains: Chains, saga_id: int, max_steps: int = 20) -> Advance:
    """Run steps until the saga is final or waits on a chain; safe to call at any time,
    from any number of workers (the row lock serialises them)."""
    out = Advance(state="")
    for _ in range(max_steps):
        with store.step(saga_id) as saga:
            before = saga.state
            if saga.final:
                out.state = saga.state
                return out
            to_send = _step(saga, chains, store)
            store.save(saga)
        out.state = saga.state
        if saga.alert and saga.state in FINAL and saga.alert not in out.alerts:
            out.alerts.append(saga.alert)
        crash_point(saga.state if saga.state != before else f"{saga.state}-wait")
        for i, leg in enumerate(to_send):
            _broadcast(chains, leg)
            out.sent.append(leg.tx_hash)
            if i == 0 and len(to_send) > 1:
                crash_point("between-broadcasts")
        if saga.state == before:
            return out  # waiting on a chain (a signed unwind is broadcast first)
    return out


def _step(saga: Saga, chains: Chains, store: SagaStore) -> list[Leg]:
    """Move ``saga`` one state on; returns the legs to broadcast after the commit."""
    for cancel in saga.legs:
        if cancel.role == "cancel" and cancel.state == "signed":
            _settle(cancel, chains)
    if saga.kind == TRADE:
        return _trade_step(saga, chains, store)
    return _rebalance_step(saga, chains, store)


def _trade_step(saga: Saga, chains: Chains, store: SagaStore) -> list[Leg]:
    legs = [leg for leg in saga.legs if leg.role in ("buy", "sell")]
    if saga.state == "planned":
        for leg in legs:
            _sign_swap(leg, chains, store, saga.wallet)
        saga.state = "signed"
        return []
    if saga.state == "signed":
        saga.state = "sent"
        _mark_sent(saga, legs, chains)
        return legs  # both legs at once
    if saga.state == "sent":
        pending = [leg for leg in legs if not _settle(leg, chains)]
        if pending:
            return _rebroadcast(pending) + _cancel_stalled(saga, pending, chains)
        ok = [leg for leg in legs if leg.state == "ok"]
        if len(ok) == len(legs):
            saga.realised_profit = _trade_realised(legs)
            saga.state = "done"
        elif not ok:
            saga.state, saga.realised_profit = "failed", 0
            saga.error = "neither leg landed: " + ", ".join(f"{leg.role} {leg.state}" for leg in legs)
        else:
            saga.error = "; ".join([*filter(None, [saga.error]),
                                    *(f"{leg.role} leg {leg.state}" for leg in legs if leg.state != "ok")])
            saga.legs.append(_unwind_leg(ok[0], chains, len(saga.legs)))
            saga.state = "compensating"
        return []
    if saga.state == "compensating":
        unwind = next(leg for leg in reversed(saga.legs) if leg.role == "unwind")
        if unwind.state == "planned":
            _refresh_unwind(unwind, chains)
            _sign_swap(unwind, chains, store, saga.wallet)
            _mark_sent(saga, [unwind], chains)
            return [unwind]
        if not _settle(unwind, chains):
            return _rebroadcast([unwind]) + _cancel_stalled(saga, [unwind], chains)
        if unwind.state == "ok":
            saga.state, saga.alert = "compensated", "leg_failed"
        else:
            saga.state, saga.alert = "held", "unwind_failed"
            saga.error += f"; unwind {unwind.state}: inventory held for an operator"
        saga.realised_profit = _compensated_pnl(saga)
        return []
    raise ArbbotError(f"trade saga {saga.id}: unknown state {saga.state!r}")


def _rebalance_step(saga: Saga, chains: Chains, store: SagaStore) -> list[Leg]:
    leg = saga.legs[0]
    src, dst = int(saga.plan["src_chain"]), int(saga.plan["dst_chain"])
    key = transfer_key(saga.key)
    if saga.state == "planned":
        try:
            call = chains.bridge.send_call(key, saga.plan["symbol"], leg.amount_in, src, dst, saga.wallet)
        except BridgeUnsupported as exc:  # a quote-only bridge kind: refused before anything is signed
            saga.state, saga.realised_profit, saga.error = "failed", 0, f"refused: {exc}"
            return []
        nonce = max(store.next_nonce(src, saga.wallet), _chain_nonce(chains, src, saga.wallet))
        leg.raw_tx, leg.tx_hash, leg.nonce = chains.signer(src).sign(
            to=call.to, data=call.data, gas=BRIDGE_GAS, nonce=nonce, **chains.fees(src))
        leg.state = "signed"
        saga.state = "signed"
        return []
    if saga.state == "signed":
        saga.state = "sent"
        _mark_sent(saga, [leg], chains)
        return [leg]
    if saga.state == "sent":
        if not _settle(leg, chains):
            return _rebroadcast([leg]) + _cancel_stalled(saga, [leg], chains)
        if leg.state != "ok":
            saga.state, saga.realised_profit = "failed", 0
            saga.error = f"bridge send {leg.state}: nothing moved"
            return []
        saga.plan["sent_block"] = chains.rpcs[src].block_number()
        saga.state = "in_flight"
        return []
    if saga.state == "in_flight":
        status = chains.bridge.status(key, src, dst)
        if status == TransferStatus.DELIVERED:
            leg.realised_out = leg.predicted_out
            saga.state, saga.realised_profit = "done", -int(saga.plan["fee"])
        elif status == TransferStatus.REFUNDED:
            leg.realised_out = 0
            saga.state, saga.alert, saga.realised_profit = "compensated", "bridge_refunded", 0
            saga.error = "the bridge failed the transfer and refunded it on the source chain"
        elif chains.rpcs[src].block_number() > int(saga.plan["sent_block"]) + int(saga.plan["delay_blocks"]) + chains.stall_blocks:
            saga.state, saga.alert = "held", "bridge_stalled"
            saga.error = f"transfer still pending {chains.stall_blocks} blocks past the bridge delay: held for an operator"
        return []
    raise ArbbotError(f"rebalance saga {saga.id}: unknown state {saga.state!r}")


# --------------------------------------------------------------------------- legs


def _chain_nonce(chains: Chains, chain_id: int, wallet: str) -> int:
    return int(chains.rpcs[chain_id].call("eth_getTransactionCount", [wallet, "pending"]), 16)


def _sign_swap(leg: Leg, chains: Chains, store: SagaStore, wallet: str) -> None:
    data = encode_call("swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
                       [leg.amount_in, leg.min_out, [leg.token_in, leg.token_out], wallet, MAX_UINT256])
    nonce = max(store.next_nonce(leg.chain_id, wallet), _chain_nonce(chains, leg.chain_id, wallet))
    leg.raw_tx, leg.tx_hash, leg.nonce = chains.signer(leg.chain_id).sign(
        to=leg.router, data=data, gas=SWAP_GAS, nonce=nonce, **chains.fees(leg.chain_id))
    leg.state = "signed"


def _broadcast(chains: Chains, leg: Leg) -> None:
    try:
        chains.rpcs[leg.chain_id].call("eth_sendRawTransaction", [leg.raw_tx])
    except RpcError:
        pass  # already known, already mined, or its nonce was passed: _settle tells which


def _rebroadcast(legs: list[Leg]) -> list[Leg]:
    # Same bytes again: harmless if the node has them, needed if it lost them (restart).
    return [leg for leg in legs if leg.state == "signed"]


def _settle(leg: Leg, chains: Chains) -> bool:
    """True once the leg's outcome is known (``ok``, ``reverted`` or ``dropped``)."""
    if leg.state in ("ok", "reverted", "dropped"):
        return True
    rpc = chains.rpcs[leg.chain_id]
    receipt = rpc.call("eth_getTransactionReceipt", [leg.tx_hash])
    if receipt is None:
        assert leg.nonce is not None
        wallet = chains.signer(leg.chain_id).address
        mined = int(rpc.call("eth_getTransactionCount", [wallet, "latest"]), 16)
        if mined > leg.nonce and rpc.call("eth_getTransactionReceipt", [leg.tx_hash]) is None:
            leg.state = "dropped"  # another transaction took its nonce: it can never run
            return True
        return False
    leg.gas_used = int(receipt["gasUsed"], 16)
    leg.gas_price_wei = int(receipt.get("effectiveGasPrice") or "0x0", 16)
    if int(receipt["status"], 16) != 1:
        leg.state = "reverted"
        return True
    leg.state = "ok"
    if leg.role != "bridge":
        wallet = chains.signer(leg.chain_id).address
        leg.realised_out = sum(
            int(log["data"], 16) for log in receipt["logs"]
            if log["topics"] and log["topics"][0] == TRANSFER_TOPIC and log["address"].lower() == leg.token_out
            and "0x" + log["topics"][2][-40:] == wallet
        )
    return True


def _mark_sent(saga: Saga, legs: list[Leg], chains: Chains) -> None:
    saga.plan["sent_blocks"] = {str(leg.chain_id): chains.rpcs[leg.chain_id].block_number() for leg in legs}


CANCEL_FEE_BUMP = 2  # a replacement must pay at least 10 % more; twice is plenty


def _cancel_stalled(saga: Saga, pending: list[Leg], chains: Chains) -> list[Leg]:
    """For each pending leg not mined ``stall_blocks`` after it was sent: a cancel (a
    0-value transfer to itself at the leg's nonce, fees doubled), recorded as a leg of its
    own before it is sent. Whichever of the two is mined settles the leg: its own receipt,
    or ``dropped`` once the nonce is passed without it (then compensation follows)."""
    from arbbot.chain.rawtx import decode_raw_tx

    sent_blocks = saga.plan.get("sent_blocks", {})
    cancelled = {leg.nonce for leg in saga.legs if leg.role == "cancel"}
    out = []
    for leg in pending:
        cancels = [c for c in saga.legs if c.role == "cancel" and c.chain_id == leg.chain_id and c.nonce == leg.nonce]
        for c in cancels:
            _settle(c, chains)
        out += [c for c in cancels if c.state == "signed"]
        since = sent_blocks.get(str(leg.chain_id))
        if leg.nonce in cancelled or since is None:
            continue
        if chains.rpcs[leg.chain_id].block_number() <= int(since) + chains.stall_blocks:
            continue
        original = decode_raw_tx(leg.raw_tx)
        fees = chains.fees(leg.chain_id)
        tip = max(fees["max_priority_fee_per_gas"], (original.max_priority_fee_per_gas or 0) * CANCEL_FEE_BUMP)
        cap = max(fees["max_fee_per_gas"], (original.max_fee_per_gas or 0) * CANCEL_FEE_BUMP, tip)
        cancel = Leg(len(saga.legs), "cancel", leg.chain_id, "", "", 0, 0, pool="", router=saga.wallet)
        cancel.raw_tx, cancel.tx_hash, cancel.nonce = chains.signer(leg.chain_id).sign(
            to=saga.wallet, data="0x", gas=21_000, nonce=leg.nonce, max_fee_per_gas=cap, max_priority_fee_per_gas=tip)
        cancel.state = "signed"
        saga.legs.append(cancel)
        saga.error = f"{leg.role} leg not mined {chains.stall_blocks} blocks after it was sent: cancelled"
        out.append(cancel)
    return out


def _unwind_leg(landed: Leg, chains: Chains, index: int) -> Leg:
    """The reverse swap of a landed leg, on its chain: what it bought is sold back."""
    assert landed.realised_out is not None
    return Leg(index, "unwind", landed.chain_id, landed.token_out, landed.token_in, landed.realised_out, 0, 0,
               landed.pool, landed.router)


UNWIND_SLIPPAGE_BPS = 100


def _refresh_unwind(leg: Leg, chains: Chains) -> None:
    """Price the unwind on the pool as it is now, with a slippage floor."""
    from eth_abi import decode

    raw = chains.rpcs[leg.chain_id].eth_call(leg.pool, encode_call("getReserves()"))
    r0, r1, _ = decode(["uint112", "uint112", "uint32"], bytes.fromhex(raw[2:]))
    token0 = min(leg.token_in, leg.token_out)
    r_in, r_out = (r0, r1) if leg.token_in == token0 else (r1, r0)
    leg.predicted_out = get_amount_out(leg.amount_in, int(r_in), int(r_out))
    leg.min_out = leg.predicted_out * (10_000 - UNWIND_SLIPPAGE_BPS) // 10_000


def _trade_realised(legs: list[Leg]) -> int:
    buy, sell = legs
    assert sell.realised_out is not None
    return sell.realised_out - buy.amount_in


def _compensated_pnl(saga: Saga) -> int:
    """What the unwound trade cost, in the token the landed leg spent (negative: a loss)."""
    unwind = next(leg for leg in reversed(saga.legs) if leg.role == "unwind")
    landed = next(leg for leg in saga.legs if leg.role in ("buy", "sell") and leg.state == "ok")
    return (unwind.realised_out or 0) - landed.amount_in if unwind.state == "ok" else -landed.amount_in

