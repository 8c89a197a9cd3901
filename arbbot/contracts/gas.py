"""Gas of one ``ArbExecutor.execute()``: the measured figures both the path screen
(``arbbot.paths.gas``) and the execute stage (``arbbot.execution.executor``) price a cycle
with, kept beside the contract they measure so the two can never disagree.
"""

from __future__ import annotations

# Measured on anvil (tests/execution/test_executor_contract.py checks the estimate stays
# above the measured use): a fixed part (21k intrinsic, calldata, the two balance reads,
# flash-callback decoding) plus a part per hop kind (cold pool access, getReserves/ticks,
# the swap, the token transfer). Rounded up: an underestimate makes the path stage accept
# cycles that lose money to gas. Change them together with ArbExecutor.sol.
GAS_BASE = 75_000
GAS_PER_HOP: dict[str, int] = {"v2": 70_000, "v3": 125_000}
