"""path queue: a ``PoolDelta`` in, the profitable cycles through the changed pools out (to
the ml queue) as one batch, or as two for a block with more screened candidates than
``ARBBOT_PATH_FIRST_PART`` (the best-screened first, as soon as they are sized). The stage reads the recorded exclusions (``runtime.exclusions``,
kept a second) and hands back the tokens the scan stage flagged, which are recorded here.

``evaluate`` is the stage's body, without the queue: the task runs it on a delta it
decoded, and the block follower runs it on a delta it scanned itself
(``workers.follow_scan``, ``arbbot follow --through ml``), deciding each part itself."""

from __future__ import annotations

import functools
from typing import Callable

from arbbot import obs
from arbbot.config import get_settings
from arbbot.scoring import rule as rule_mod
from arbbot.types import Opportunity, PoolDelta, opportunities_to_wire
from workers import heap, runtime, serializer
from workers.celery_app import app
from workers.stage import BLOCKS_SINCE_OPPORTUNITY, ITEMS, OPPORTUNITIES, Trace, rejects_malformed


@app.task(name="workers.tasks.path.find", acks_late=True, reject_on_worker_lost=True, serializer=serializer.NAME)
@rejects_malformed
def find(delta: dict, trace: list | None = None) -> int:
    """A big block goes on in two parts (``evaluate``): the first part's message at once,
    the second's after, carrying a copy of the first part (``ml.score``'s ``first``)."""
    from workers.tasks import ml

    tr = Trace(trace).mark("path.start")
    d = PoolDelta.from_wire(delta)
    first: list[dict] = []
    sent = 0

    def send_first_part(opps: list[Opportunity]) -> None:
        nonlocal sent
        first.append(opportunities_to_wire(opps))
        ml.score.delay(first[0], trace=tr.wire("path.sent"), part=1)
        sent += len(opps)

    opps = evaluate(d, send_first_part)
    if opps:
        second = {"part": 2, "first": first[0]} if first else {}
        ml.score.delay(opportunities_to_wire(opps), trace=tr.wire("path.sent"), **second)
    after_block(d.chain_id)  # off the block's way
    return sent + len(opps)


#: chain -> the pools its stage's engine knew after its last block (``after_block``)
_known: dict[int, int] = {}


#: A first part whose opportunities do not fill the block's sends by the chain's rule
#: (``rule.fills_sends``) grows by ``ARBBOT_PATH_FIRST_PART`` candidates, up to this many
#: times that. Measured in-process on the pipeline bench's market (50 blocks of 300 moved
#: pools, 8 sends a block): the first 128 candidates left sends to the second part in 13
#: blocks, 256 in 1, 512 in none, sized in 5.8 / 11.4 / 21.2 ms p50 against 43.9 for the
#: whole block. A send the second part makes waits for the whole block to be sized. The
#: rule only says when the first part goes, never what is decided: a promoted model may
#: choose otherwise, and the ml stage keeps the per-pool and per-block rules either way.
FIRST_PART_GROWTH = 4


def evaluate(d: PoolDelta, send_first_part: Callable[[list[Opportunity]], None] | None = None) -> list[Opportunity]:
    """The opportunities of one delta, best first; the tokens the scan stage flagged are
    recorded, and the stage's counters moved. With ``send_first_part``, a block with more
    than ``ARBBOT_PATH_FIRST_PART`` screened candidates is sized in two parts: the first
    part's opportunities (if any) go to ``send_first_part`` as soon as they are sized, and
    the second part's are returned. A first part that would not fill the block's sends by
    the chain's rule grows first (``FIRST_PART_GROWTH``)."""
    obs.bind(chain=d.chain_id, block=d.block_number)
    from webapp.core import services

    parts: list[int] = []

    def first_part(opps: list[Opportunity]) -> None:
        parts.append(len(opps))
        if opps and send_first_part is not None:
            send_first_part(opps)

    stage = runtime.path_stage(d.chain_id)
    split = (get_settings().path_first_part or None) if send_first_part is not None else None
    enough = None
    if split:
        from workers.tasks import ml

        rule = ml.scorer(d.chain_id)
        enough = functools.partial(rule_mod.fills_sends, rule)
    result = stage.process(d, runtime.hotstate(d.chain_id), runtime.exclusions, first_part=split,
                           on_first_part=first_part, first_part_enough=enough,
                           first_part_most=None if split is None else split * FIRST_PART_GROWTH)
    _known[d.chain_id] = stage.engine.pools_known
    for token, reason in result.exclusions.items():
        services.token_exclude(d.chain_id, token, reason)
    opps = result.opportunities
    found = len(opps) + sum(parts)
    obs.note(pools=len(d.states), opportunities=found, parts=1 + len(parts))
    chain = str(d.chain_id)
    ITEMS.labels(stage="path").inc(len(d.states))
    OPPORTUNITIES.labels(chain=chain).inc(found)
    if found:
        BLOCKS_SINCE_OPPORTUNITY.labels(chain=chain).set(0)
    else:
        BLOCKS_SINCE_OPPORTUNITY.labels(chain=chain).inc()
    return opps


def after_block(chain_id: int) -> None:
    """The heap step (``workers.heap``) after a block's publish, for the engine that just
    evaluated it (not a stage a newer strategy would build now)."""
    if chain_id in _known:
        heap.after_block(chain_id, _known[chain_id])
