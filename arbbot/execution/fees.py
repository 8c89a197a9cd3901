"""What a transaction offers to pay for gas, and the hard cap it may never exceed.

EIP-1559 chains (the latest block has ``baseFeePerGas``):

- the base fee of the next block is forecast from the latest block's base fee, gas used
  and gas target, by the EIP-1559 rule itself (``next_base_fee``); the node's own forecast
  (the last entry of ``eth_feeHistory``'s ``baseFeePerGas``) is taken instead when higher
  (chains such as OP Stack use other constants);
- ``maxFeePerGas`` covers that base fee after ``inclusion_blocks`` further full blocks
  (each may raise it by 1/8: x1.125^k), plus the priority fee, so the transaction stays
  includable for that many blocks of delay; the base fee actually charged is the block's,
  so the headroom costs nothing unless the base fee really rises;
- ``maxPriorityFeePerGas`` is the median over the last ``history_blocks`` non-empty blocks
  of the ``priority_percentile`` reward (``eth_feeHistory``), at least
  ``min_priority_fee_wei``.

Legacy chains (no ``baseFeePerGas``): a ``gasPrice`` transaction at the node's
``eth_gasPrice``.

Either way the offer is refused (``FeeCapExceeded``) when its ``maxFeePerGas`` (legacy: its
gas price) exceeds the chain's hard cap. ``FeeQuote.worst_case_cost`` is what a transaction
with a given gas limit can cost at most: the runner's profit check uses it, never the gas
cost an opportunity carried from the path stage.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Literal, Sequence

from arbbot.chain.rpc import RpcClient
from arbbot.errors import ArbbotError, RpcError

ELASTICITY_MULTIPLIER = 2  # EIP-1559: gas target = gas limit / 2
BASE_FEE_MAX_CHANGE_DENOMINATOR = 8  # EIP-1559: at most 1/8 change per block


class FeeError(ArbbotError):
    """No fee can be offered: the node's fee data is missing or malformed."""


class FeeCapExceeded(FeeError):
    """The fee needed for inclusion exceeds the chain's hard cap on ``maxFeePerGas``."""


def next_base_fee(base_fee: int, gas_used: int, gas_limit: int) -> int:
    """The base fee of the block after one with ``base_fee``, ``gas_used`` and
    ``gas_limit``: EIP-1559's reference rule, in integers as clients compute it
    (Python's ``//`` floors; every operand is >= 0, so it matches the spec's truncation)."""
    target = gas_limit // ELASTICITY_MULTIPLIER
    if target == 0 or gas_used == target:
        return base_fee
    if gas_used > target:
        delta = base_fee * (gas_used - target) // target // BASE_FEE_MAX_CHANGE_DENOMINATOR
        return base_fee + max(delta, 1)
    delta = base_fee * (target - gas_used) // target // BASE_FEE_MAX_CHANGE_DENOMINATOR
    return base_fee - delta


def base_fee_after_full_blocks(base_fee: int, blocks: int) -> int:
    """The highest base fee ``blocks`` blocks later: every block full (gas used = limit),
    so each step is +max(base/8, 1), exactly as ``next_base_fee`` gives it."""
    for _ in range(blocks):
        base_fee = next_base_fee(base_fee, 2, 2)  # any full block: gas_used == gas_limit
    return base_fee


@dataclass(frozen=True)
class FeePolicy:
    """How a chain's fees are chosen. ``max_fee_per_gas_wei`` is the hard cap (None: none)."""

    max_fee_per_gas_wei: int | None = None
    inclusion_blocks: int = 3
    priority_percentile: float = 50.0
    history_blocks: int = 10
    min_priority_fee_wei: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.priority_percentile <= 100:
            raise ValueError(f"priority_percentile must be within 0..100, got {self.priority_percentile}")
        if self.inclusion_blocks < 0 or self.history_blocks < 1:
            raise ValueError("inclusion_blocks must be >= 0 and history_blocks >= 1")


@dataclass(frozen=True)
class FeeQuote:
    """The fees one transaction offers. Legacy: ``max_fee_per_gas`` is the gas price."""

    kind: Literal["eip1559", "legacy"]
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    base_fee_next: int | None = None

    def worst_case_cost(self, gas_limit: int) -> int:
        """The most a transaction with ``gas_limit`` can cost, in wei."""
        return gas_limit * self.max_fee_per_gas

    def signer_fields(self) -> dict[str, int]:
        """Keyword arguments of ``LocalSigner.sign`` for these fees."""
        if self.kind == "legacy":
            return {"gas_price": self.max_fee_per_gas}
        return {"max_fee_per_gas": self.max_fee_per_gas, "max_priority_fee_per_gas": self.max_priority_fee_per_gas}

    def describe(self) -> str:
        if self.kind == "legacy":
            return f"gas price {self.max_fee_per_gas} wei"
        return (
            f"max fee {self.max_fee_per_gas} wei (next base fee {self.base_fee_next}, "
            f"priority {self.max_priority_fee_per_gas})"
        )


def fee_requests(policy: FeePolicy) -> list[tuple[str, Sequence[Any]]]:
    """The JSON-RPC calls ``quote_from_replies`` needs, to put in a caller's batch."""
    return [
        ("eth_getBlockByNumber", ["latest", False]),
        ("eth_feeHistory", [hex(policy.history_blocks), "latest", [policy.priority_percentile]]),
        ("eth_gasPrice", []),
    ]


def quote_from_replies(replies: Sequence[Any], policy: FeePolicy, *, cap: bool = True) -> FeeQuote:
    """The offer, from the replies to ``fee_requests`` (an ``RpcError`` instance for a
    failed item). Raises ``FeeError`` when the data needed is missing, ``FeeCapExceeded``
    when the offer would exceed the cap (unless ``cap`` is False: the caller checks the
    fee it derives from the quote, a replacement's bumped fee)."""
    block, history, gas_price_raw = replies
    if isinstance(block, RpcError) or not isinstance(block, dict):
        raise FeeError(f"no latest block for the fee forecast: {block}")
    base_raw = block.get("baseFeePerGas")
    if base_raw is None:
        if not isinstance(gas_price_raw, str):
            raise FeeError(f"legacy-fee chain and no eth_gasPrice: {gas_price_raw}")
        quote = FeeQuote("legacy", int(gas_price_raw, 16), int(gas_price_raw, 16))
    else:
        base_next = next_base_fee(int(base_raw, 16), int(block["gasUsed"], 16), int(block["gasLimit"], 16))
        priority = policy.min_priority_fee_wei
        if isinstance(history, dict):
            fees = history.get("baseFeePerGas") or []
            if fees:
                base_next = max(base_next, int(fees[-1], 16))
            priority = max(priority, _median_reward(history))
        max_fee = base_fee_after_full_blocks(base_next, policy.inclusion_blocks) + priority
        quote = FeeQuote("eip1559", max_fee, priority, base_next)
    limit = policy.max_fee_per_gas_wei
    if cap and limit is not None and quote.max_fee_per_gas > limit:
        raise FeeCapExceeded(f"fee needed ({quote.describe()}) exceeds the cap of {limit} wei per gas")
    return quote


def quote(rpc: RpcClient, policy: FeePolicy, *, cap: bool = True) -> FeeQuote:
    """The offer for a transaction sent now: one JSON-RPC batch."""
    return quote_from_replies(rpc.batch(fee_requests(policy), raise_errors=False), policy, cap=cap)


def _median_reward(history: dict[str, Any]) -> int:
    """Median of the percentile's reward over the blocks that held transactions (an empty
    block reports a reward of 0, which says nothing about what inclusion costs)."""
    rewards = history.get("reward") or []
    ratios = history.get("gasUsedRatio") or [1.0] * len(rewards)
    seen = [int(r[0], 16) for r, ratio in zip(rewards, ratios) if r and ratio and ratio > 0]
    return int(statistics.median_low(seen)) if seen else 0
