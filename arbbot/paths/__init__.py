"""The path stage's core: token graph, cycle index, vectorised sizing, exact re-check.

Public API (the Celery path task depends on it; keep it stable)::

    engine = PathEngine(base_tokens=[weth, usdc], weth=weth, max_hops=3)
    changed = engine.upsert(delta.states)
    opps = engine.evaluate(changed, chain_id=..., block_number=..., block_hash=...,
                           gas_price_wei=...)
    hop_amounts(opps[0], engine.states)   # exact per-hop outputs for the executor
"""

from arbbot.paths.engine import PathEngine, hop_amounts, path_id_for
from arbbot.paths.gas import GasModel

__all__ = ["GasModel", "PathEngine", "hop_amounts", "path_id_for"]
