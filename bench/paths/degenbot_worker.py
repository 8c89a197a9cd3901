"""Run inside a degenbot venv only (bench/.venv-degenbot: 0.3.0 on Python 3.11;
bench/.venv-degenbot-0.5: 0.5.0, with its compiled core, on Python 3.12): size V2 cycles
with degenbot, offline.

Reads JSON on stdin: ``{"cycles": [{"input": addr, "max_input": int-str,
"pools": [{"address", "token0", "token1", "reserve0", "reserve1", "fee_pips"}, ...]}]}``
and writes one JSON object: per cycle the optimal input, profit and seconds spent in
``UniswapLpCycle.calculate()``.

No chain is needed: tokens are ``Erc20Token`` objects made without their RPC-reading
constructor, pools are degenbot's own disconnected ``UnregisteredLiquidityPool`` with the
reserves set as its state, and the arbitrage helper is the stock ``UniswapLpCycle``
(bounded Brent over the exact integer quote).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import logging
import sys
import time
from fractions import Fraction

from eth_utils.address import to_checksum_address

from degenbot.arbitrage.uniswap_lp_cycle import UniswapLpCycle
from degenbot.uniswap.v2_liquidity_pool import UnregisteredLiquidityPool

try:  # 0.5.0
    from degenbot.exceptions.arbitrage import ArbitrageError
    from degenbot.exceptions.base import DegenbotError
    from degenbot.erc20 import Erc20Token
    from degenbot.uniswap.v2_types import UniswapV2PoolState
except ImportError:  # 0.3.0
    from degenbot.exceptions import ArbitrageError, DegenbotError  # type: ignore[no-redef]
    from degenbot.erc20_token import Erc20Token  # type: ignore[no-redef]
    from degenbot.uniswap.types import UniswapV2PoolState  # type: ignore[no-redef]

logging.disable(logging.WARNING)

_tokens: dict[str, Erc20Token] = {}
VERSION = importlib.metadata.version("degenbot")
# 0.3.0 names a state's pool ``pool``; 0.5.0 ``address`` and adds the ``block`` it is of
_STATE_KEY = (
    (lambda a: {"pool": a})
    if "pool" in {f.name for f in dataclasses.fields(UniswapV2PoolState)}
    else (lambda a: {"address": a, "block": None})
)


def token(address: str) -> Erc20Token:
    if address not in _tokens:
        t = Erc20Token.__new__(Erc20Token)
        t.address = to_checksum_address(address)
        t.name = t.symbol = address[-6:]
        t.decimals = 18
        _tokens[address] = t
    return _tokens[address]


def pool(d: dict) -> UnregisteredLiquidityPool:  # type: ignore[type-arg]
    p = UnregisteredLiquidityPool(
        address=d["address"],
        tokens=[token(d["token0"]), token(d["token1"])],
        fee=Fraction(int(d["fee_pips"]), 1_000_000),
    )
    p.name = d["address"][-6:]  # the disconnected pool skips the constructor that names it
    r0, r1 = int(d["reserve0"]), int(d["reserve1"])
    # degenbot orders a pair's tokens by *checksummed* address (mixed case), which can
    # disagree with the on-chain (numeric) order the JSON carries: keep reserves with
    # their tokens.
    if p.token0.address.lower() != d["token0"].lower():
        r0, r1 = r1, r0
    p._state = UniswapV2PoolState(**_STATE_KEY(p.address), reserves_token0=r0, reserves_token1=r1)
    return p


def main() -> None:
    req = json.load(sys.stdin)
    results = []
    for i, c in enumerate(req["cycles"]):
        pools = [pool(d) for d in c["pools"]]
        arb = UniswapLpCycle(
            input_token=token(c["input"]), swap_pools=pools, id=str(i), max_input=int(c["max_input"])
        )
        t0 = time.perf_counter()
        try:
            r = arb.calculate()
            amount_in, profit = int(r.input_amount), int(r.profit_amount)
        except (ArbitrageError, DegenbotError) as exc:
            amount_in, profit = 0, 0
            err = type(exc).__name__
        else:
            err = ""
        dt = time.perf_counter() - t0
        results.append({"amount_in": str(amount_in), "profit": str(profit), "seconds": dt, "error": err})
    json.dump({"version": VERSION, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
