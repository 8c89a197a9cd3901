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
# Issue 14's guards (role and pause reads, a balance snapshot and end check of every cycle
# token, the pool's factory() and the registered init-code hash per hop, callback binding)
# raised the measured use: v2+v2 flash 219,993; v2x3 inventory 290,593; v2+v2+v3 flash
# 358,835; v3+v2+v2 flash 350,109; v2+v3+v2 inventory 333,856; v3+v3 flash 285,767.
# A clean-clone CI run then measured the v2x3 inventory triangle at 301,009, over the
# 300,000 that 75k a V2 hop gave: a balance slot written from zero costs ~17k more, and
# which slots start at zero depends on the run. V2 hops are priced at 85k for that margin.
GAS_BASE = 75_000
# A V3+V3 flash cycle sized on a 4% gap then measured 366,307 (crossing initialised ticks
# costs more per hop than the one-range swaps above): V3 hops are priced at 150k.
GAS_PER_HOP: dict[str, int] = {"v2": 85_000, "v3": 150_000}
# Paying a share of the profit to block.coinbase (coinbaseBps > 0 with WETH profit): the
# WETH withdraw, the native transfer and the CoinbasePaid event. Measured 43,171 over the
# same v2+v2 flash cycle without it (25k of it: value sent to an empty coinbase account).
GAS_COINBASE_PAYMENT = 45_000
