"""One opportunity's execution: risk checks, re-validation by simulation, signing,
sending, receipt tracking and the measured (realised) profit. Free of Celery and Django;
``arbbot.execution.stage`` runs it over a batch and records what it returns.

Order of checks, cheapest first:

1. risk: orphaned block (reorg), kill switch, mode, daily loss limit, per-token input cap;
2. re-validation: one JSON-RPC batch runs ``eth_call`` of the exact ``execute`` calldata
   (the contract's own profit guard included) and ``eth_estimateGas`` against the latest
   state. A cycle that moved against us comes back reverted (``dropped``, nothing sent);
3. ``dry-run`` stops there (``simulated``, no profit); ``paper`` records the simulated
   profit as if executed; ``live`` signs and sends with ``minProfit`` = the re-validated
   profit, so any further adverse move reverts on-chain instead of losing money;
4. the receipt's ``Executed`` event gives the realised profit, to the wei.

Sends are serialised per signer by the caller-supplied ``nonce_lock`` (``HotState.nonce_lock``
in the fleet) and the nonce is re-read under that lock before each send, so several
execute workers sharing one key never collide; a send is never blindly retried.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Mapping, TypedDict

from eth_utils import keccak

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import LocalSigner, TxFailed, wait_receipt
from arbbot.errors import ArbbotError, RpcError
from arbbot.execution.executor import EncodingError, decode_revert, encode_execute, hops_for_cycle
from arbbot.types import ExecutionResult, Opportunity, PoolState, ScoredOpportunity

log = logging.getLogger(__name__)

EXECUTED_TOPIC = "0x" + keccak(text="Executed(address,uint256,uint256)").hex()


@dataclass(frozen=True)
class RiskLimits:
    """Hard limits checked before anything is sent."""

    max_amount_in: Mapping[str, int] = field(default_factory=dict)  # token -> cap (base units)
    default_max_amount_in: int | None = None
    gas_limit_multiplier: float = 1.25
    max_gas: int = 3_000_000
    daily_loss_limit_wei: int | None = None  # stop once today's PnL <= -limit


class Attempt(TypedDict):
    """An opportunity's execution as it is claimed, before any outcome: the fields every
    ``ExecutionResult`` of it carries."""

    chain_id: int
    block_number: int
    path_id: str
    predicted_profit: int
    profit_token: str
    amount_in: int


def attempt_of(opp: Opportunity) -> Attempt:
    return Attempt(
        chain_id=opp.chain_id,
        block_number=opp.block_number,
        path_id=opp.path_id,
        predicted_profit=opp.profit,
        profit_token=opp.tokens[0],
        amount_in=opp.amount_in,
    )


@dataclass(frozen=True)
class Pending:
    """A transaction that was sent and awaits its receipt."""

    attempt: Attempt
    tx_hash: str
    calldata: str
    simulated_profit: int


@dataclass
class ExecutionRunner:
    rpc: RpcClient
    executor: str  # the ArbExecutor address
    mode: str  # dry-run | paper | live
    pools: Callable[[list[str]], Mapping[str, PoolState]]  # pool addresses -> current states
    signer: LocalSigner | None = None
    limits: RiskLimits = field(default_factory=RiskLimits)
    kill_switch: Callable[[], bool] = lambda: False
    is_orphaned: Callable[[str], bool] = lambda block_hash: False
    nonce_lock: Callable[[], ContextManager[Any]] = contextlib.nullcontext
    daily_pnl_wei: Callable[[], int] = lambda: 0
    receipt_timeout_s: float = 60.0

    def submit(self, scored: ScoredOpportunity) -> ExecutionResult | Pending:
        """Everything up to and including the send; a final result when nothing was sent."""
        opp = scored.opportunity
        attempt = attempt_of(opp)

        def result(status: str, reason: str, **kw: Any) -> ExecutionResult:
            return ExecutionResult(status=status, reason=reason, **attempt, **kw)  # type: ignore[arg-type]

        # 1. risk
        if self.is_orphaned(opp.block_hash):
            return result("dropped", "computed on an orphaned block (reorg)")
        if self.kill_switch():
            return result("dropped", "kill switch engaged")
        if scored.decision != "execute":
            return result("dropped", f"decision was {scored.decision}: {scored.reason}")
        limit = self.limits.daily_loss_limit_wei
        if limit is not None and self.mode == "live":
            pnl = self.daily_pnl_wei()
            if pnl <= -limit:
                return result("dropped", f"daily loss limit reached: PnL today {pnl} wei, limit -{limit} wei")
        cap = self.limits.max_amount_in.get(opp.tokens[0], self.limits.default_max_amount_in)
        if cap is not None and opp.amount_in > cap:
            return result("dropped", f"amount_in {opp.amount_in} above the risk cap {cap}")
        if self.mode == "live" and self.signer is None:
            return ExecutionResult.failed(attempt, "live mode without a signing key")

        # 2. re-validation by simulation of the exact calldata
        try:
            states = self.pools(list(opp.pools))
            hops = hops_for_cycle([states[p] for p in opp.pools], opp.tokens)
            calldata = encode_execute(opp.tokens[0], opp.amount_in, 0, hops, flash=True)
        except (EncodingError, KeyError) as exc:
            return result("dropped", f"cannot encode: {exc}")
        sender = self.signer.address if self.signer else None
        call: dict[str, Any] = {"to": self.executor, "data": calldata}
        if sender:
            call["from"] = sender
        replies = self.rpc.batch(
            [("eth_call", [call, "latest"]), ("eth_estimateGas", [call, "latest"]), ("eth_gasPrice", [])],
            raise_errors=False,
        )
        sim, est, gas_price_raw = replies
        if isinstance(sim, RpcError):
            why = decode_revert(_revert_data(sim))
            if why.startswith("ProfitTooLow"):
                return result("dropped", f"stale: the cycle no longer pays on re-validation ({why})")
            return result("dropped", f"re-validation reverted: {why}")
        simulated_profit = int(sim, 16) if sim not in ("0x", None) else 0
        gas_price = int(gas_price_raw, 16) if isinstance(gas_price_raw, str) else opp.gas_price_wei
        if simulated_profit <= opp.gas_cost:
            return result(
                "dropped",
                f"stale: re-validated profit {simulated_profit} does not cover gas {opp.gas_cost}",
                extra={"simulated_profit": simulated_profit},
            )
        if self.mode == "dry-run":
            return result("simulated", f"dry-run: simulated profit {simulated_profit}")
        if self.mode == "paper":
            return result("simulated", "paper trade", realised_profit=simulated_profit)

        # 3. live: sign and send with the guard at the re-validated profit
        assert self.signer is not None
        gas_limit = min(int(int(est, 16) * self.limits.gas_limit_multiplier), self.limits.max_gas) if isinstance(
            est, str
        ) else self.limits.max_gas
        guarded = encode_execute(opp.tokens[0], opp.amount_in, simulated_profit, hops, flash=True)
        try:
            with self.nonce_lock():
                self.signer.resync_nonce()
                tx_hash = self.signer.send(
                    to=self.executor,
                    data=guarded,
                    gas=gas_limit,
                    max_fee_per_gas=gas_price * 2,
                    max_priority_fee_per_gas=max(gas_price // 10, 1),
                )
        except RpcError as exc:
            return ExecutionResult.failed(attempt, f"send failed: {exc}")
        return Pending(attempt, tx_hash, guarded, simulated_profit)

    def settle(self, pending: Pending, *, timeout_s: float | None = None) -> ExecutionResult:
        """Wait for a sent transaction's receipt and measure what it realised."""

        def result(status: str, reason: str, **kw: Any) -> ExecutionResult:
            return ExecutionResult(status=status, reason=reason, tx_hash=pending.tx_hash, **pending.attempt, **kw)  # type: ignore[arg-type]

        try:
            receipt = wait_receipt(self.rpc, pending.tx_hash, timeout_s=timeout_s or self.receipt_timeout_s)
        except TxFailed as exc:
            return ExecutionResult.failed(pending.attempt, str(exc), tx_hash=pending.tx_hash)
        gas_used = int(receipt["gasUsed"], 16)
        effective = int(receipt.get("effectiveGasPrice", "0x0"), 16)
        mined = int(receipt["blockNumber"], 16)
        if int(receipt["status"], 16) != 1:
            reason = self._revert_reason(pending.calldata, mined) if pending.calldata else "reverted on-chain"
            return result("reverted", reason, gas_used=gas_used, gas_price_wei=effective, mined_block=mined)
        realised = _executed_profit(receipt, self.executor)
        return result(
            "success",
            f"re-validated profit {pending.simulated_profit}" if pending.simulated_profit else "reconciled from receipt",
            gas_used=gas_used,
            gas_price_wei=effective,
            mined_block=mined,
            realised_profit=realised,
        )

    def _revert_reason(self, calldata: str, block: int) -> str:
        """Replay the call at the block it was mined in to read the revert reason."""
        try:
            call = {"to": self.executor, "data": calldata, "from": self.signer.address if self.signer else None}
            self.rpc.call("eth_call", [call, hex(block)])
        except RpcError as exc:
            return f"reverted on-chain: {decode_revert(_revert_data(exc))}"
        except ArbbotError as exc:
            return f"reverted on-chain: {exc}"
        return "reverted on-chain (state differed inside the block)"


def _revert_data(exc: RpcError) -> str | None:
    data = exc.data
    if isinstance(data, dict):
        data = data.get("data")
    return data if isinstance(data, str) else None


def _executed_profit(receipt: Mapping[str, Any], executor: str) -> int:
    for entry in receipt.get("logs", []):
        if entry["address"].lower() == executor.lower() and entry["topics"][0] == EXECUTED_TOPIC:
            data = bytes.fromhex(entry["data"][2:])
            return int.from_bytes(data[32:64], "big")  # (amountIn, profit); token is indexed
    raise ArbbotError("receipt has no Executed event from the executor")
