"""When a worker process moves its long-lived objects out of the garbage collector's way.

Owns the path worker's ``gc.freeze`` policy. With the pipeline benchmark's 10,176-pool
engine built, a full collection of the path process takes ~61 ms (154k tracked objects),
every time, and lands inside whichever block's task is running when it comes due; after
``gc.freeze()`` it takes ~0 ms. The engine's objects live as long as the process, so they
are frozen once built: ``after_block`` collects (what is garbage now is freed) and freezes
when the engine has grown by more than ``GROWTH`` since the last freeze (its first block, a
batch of new pools), after the block's batch was published, off its way. Objects freed by
reference counting leave the frozen set as usual; only cyclic garbage among frozen objects
would stay, so ``forget`` unfreezes before a stage is replaced (``runtime.path_stage`` on a
new strategy version, ``runtime.reset``), and the next growth freezes again.
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger(__name__)

GROWTH = 0.01  # freeze again once the engine holds 1% more pools than at the last freeze

_frozen_at: dict[int, int] = {}  # chain -> pools known at its last freeze


def after_block(chain_id: int, pools_known: int) -> bool:
    """Collect and freeze if ``chain_id``'s engine grew past ``GROWTH``; True if it did."""
    last = _frozen_at.get(chain_id, 0)
    if pools_known <= last * (1 + GROWTH) or pools_known == 0:
        return False
    t0 = time.perf_counter()
    gc.collect()
    gc.freeze()
    _frozen_at[chain_id] = pools_known
    log.info("chain %s: %d pools known; heap frozen (%d objects) in %.0f ms", chain_id, pools_known,
             gc.get_freeze_count(), (time.perf_counter() - t0) * 1000)
    return True


def forget() -> None:
    """Unfreeze everything: a stage is being replaced, its engine must be collectable."""
    gc.unfreeze()
    _frozen_at.clear()
