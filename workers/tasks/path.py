"""path queue: a ``PoolDelta`` in; the profitable cycles through the changed pools found,
then decided here by the ml stage's code (``decide_here``), the chosen ones sent to the
execute queue and every decision to the analytics queue. A block with more screened
candidates than ``ARBBOT_PATH_FIRST_PART`` goes on in two parts (the best-screened first,
decided and sent as soon as it is sized). The stage reads the recorded exclusions
(``runtime.exclusions``, kept a second) and hands back the tokens the scan stage flagged,
which are recorded here.

Why the decision is made here and not behind one more queue: the ml stage's decision
costs ~1-3 ms a block of ~530 with its inputs in memory, while carrying the block's
opportunities to an ml worker cost the fleet ~30 ms of CPU a block (the batch written,
carried by RabbitMQ, read twice in the ml worker, its verdicts written again) and the block
a Celery hop (``bench/pipeline/README.md``, session 41). The ml queue stays: its worker decides what
is handed to it (a decision that failed here, a block of an older path worker) and trains.

``evaluate`` is the path stage's body, without the queue; ``decide_here`` runs it and the
decision on one block: the path task's body, and the block follower's once it scanned a
block itself (``workers.follow_scan``, ``arbbot follow --through ml``)."""

from __future__ import annotations

import functools
import logging
import time
from typing import Any, Callable

from arbbot import obs
from arbbot.config import get_settings
from arbbot.scoring import rule as rule_mod
from arbbot.types import Opportunity, PoolDelta
from workers import heap, runtime, serializer
from workers.celery_app import app
from workers.stage import (
    BATCHES,
    BLOCKS_SINCE_OPPORTUNITY,
    DURATION,
    ERRORS,
    ITEMS,
    OPPORTUNITIES,
    Trace,
    rejects_malformed,
)

log = logging.getLogger(__name__)

#: where ``decide_here`` left a block
DECIDED, NONE_FOUND, TO_PATH_QUEUE, TO_ML_QUEUE, LOST = (
    "decided", "no opportunity", "path queue", "ml queue", "lost")


@app.task(name="workers.tasks.path.find", acks_late=True, reject_on_worker_lost=True, serializer=serializer.NAME)
@rejects_malformed
def find(delta: dict, trace: list | None = None) -> str:
    """One block's delta found and decided here (``decide_here``); where the block went."""
    d = PoolDelta.from_wire(delta)
    went = decide_here(d, Trace(trace), in_task=True)
    after_block(d.chain_id)  # off the block's way
    return went


def decide_here(delta: PoolDelta, trace: Trace, *,
                evaluate: Callable[..., list] | None = None,
                decide: Callable[..., list] | None = None,
                send: Callable[[list, Trace], int] | None = None,
                record: Callable[..., None] | None = None,
                to_path: Callable[[PoolDelta, Trace], None] | None = None,
                to_ml: Callable[..., None] | None = None,
                pause: Callable[[float], None] | None = None,
                in_task: bool = False) -> str:
    """One block through the path stage and the ml decision, here. A big block goes on in
    two parts (``evaluate``, ``ARBBOT_PATH_FIRST_PART``): its first part is decided and
    its chosen opportunities sent (``send``: ``ml.send`` without the records) as soon as it
    is sized, then the rest, each with ``ml.decide_block``, which keeps one cycle a pool
    and the block's sends across the two whichever process decides either part. The
    block's records go once, for both parts, at the end (``record``: ``ml.record``; they
    are written ``ml.RECORD_DELAY_S`` later anyway): one message and one write a block, not
    two. A decision that raises hands its part to the ml queue (its worker retries it and
    records it). Returns where the block went: ``DECIDED``, or where the first of its parts
    not decided here went.

    ``in_task`` (the path task): a path stage that raises, a hand-on or a send that fails
    raise, and the task's own retry and dead-lettering take the block
    (``workers.stage.rejects_malformed``). Else (the block follower) never raises: a path
    stage that raised hands the delta to the path queue, and a queue that cannot take a
    part either is logged, that part ``LOST`` as a failed publish of a scan worker's would
    be. The defaults are the workers' own (``evaluate``, ``workers.tasks.ml``); tests give
    their own.

    ``pause`` (the follower's lane: ``InlineScan``): once the first part sent something to
    execute, ``pause(ARBBOT_LANE_YIELD_MS / 1000)`` before the rest is sized, so the execute
    worker decides on the cores this process would take (the pipeline bench's lane, 2 cores:
    execute start -> decision 14.3-14.7 -> 9.7-9.9 ms p50 with 30 ms, arrival -> decision
    p99 52.7-57.9 -> 44.1-44.8); the lane's wait ends sooner when a newer head arrives. The
    path task pauses never: a worker behind on its queue would only fall further behind."""
    from workers.tasks import ml

    evaluate = evaluate or _evaluate
    decide = decide or ml.decide_block
    send = send or functools.partial(ml.send, records=False)
    record = record or ml.record
    to_path = to_path or to_path_queue
    to_ml = to_ml or to_ml_queue
    first: list[Any] = []  # a block in two parts: its first part's opportunities
    went: list[str] = []  # where each part went
    held: list[Any] = []  # the decisions made here, recorded at the end
    chosen = False  # any of them sent to execute
    deciding_s = 0.0  # the first part's decision, inside the path stage's evaluation

    def decide_and_send(opps: list[Any], part: int | None, tr: Trace) -> str:
        """One part (None: the whole block), its trace marked ``path.sent`` as it is handed on."""
        nonlocal chosen
        handed = Trace(tr.marks)  # what the ml queue would get
        tr.mark("ml.start")
        BATCHES.labels(stage="ml").inc()
        started = time.perf_counter()
        try:
            try:
                decided = decide(opps) if part is None else decide(opps, part, first if part == 2 else None)
            except Exception as exc:
                return _hand_on(delta, "ml", exc, lambda: to_ml(opps, handed) if part is None
                                else to_ml(opps, handed, part, first), TO_ML_QUEUE, in_task)
            try:
                chosen = bool(send(decided, tr)) or chosen
                held.extend(decided)  # recorded only once sent, as the ml task's records
            except Exception as exc:  # the broker: as the ml task's publish failing
                return _not_sent(delta, "decisions", exc, in_task)
            return DECIDED
        finally:
            DURATION.labels(stage="ml").observe(time.perf_counter() - started)

    def first_part(opps: list[Any]) -> None:
        nonlocal deciding_s
        started = time.perf_counter()
        first.extend(opps)
        went.append(decide_and_send(opps, 1, Trace(trace.marks).mark("path.sent")))
        if chosen and pause is not None and (wait_s := get_settings().lane_yield_ms / 1000) > 0:
            pause(wait_s)
        deciding_s += time.perf_counter() - started  # the pause too: not the path stage's time

    handed = Trace(trace.marks)  # what the path queue would get: the marks so far, as sent
    started = time.perf_counter()
    if not in_task:  # the task's own are counted around it (``rejects_malformed``)
        BATCHES.labels(stage="path").inc()
    trace.mark("path.start")
    try:
        opps = evaluate(delta, first_part)
    except Exception as exc:  # a first part decided here is decided again the same way there
        if in_task:
            raise
        return _hand_on(delta, "path", exc, lambda: to_path(delta, handed), TO_PATH_QUEUE)
    finally:
        if not in_task:
            DURATION.labels(stage="path").observe(time.perf_counter() - started - deciding_s)
    if opps:
        went.append(decide_and_send(opps, 2 if first else None, trace.mark("path.sent")))
    if not went:
        return NONE_FOUND
    try:
        if held:
            record(held, chosen=chosen)
    except Exception as exc:
        return _not_sent(delta, "records", exc, in_task)
    return next((w for w in went if w != DECIDED), DECIDED)


def _not_sent(delta: PoolDelta, what: str, exc: Exception, in_task: bool) -> str:
    """A publish of the block's decisions or records that failed: raised ``in_task`` (the
    task's retry), else logged and ``LOST``. Never handed to the ml queue: the decisions
    were made (its worker would publish the chosen ones a second time)."""
    ERRORS.labels(stage="ml").inc()
    if in_task:
        raise exc
    log.error("chain %s: block %d's %s could not be sent (%s: %s)",
              delta.chain_id, delta.block_number, what, type(exc).__name__, str(exc)[:200])
    return LOST


def _hand_on(delta: PoolDelta, stage: str, exc: Exception, hand: Callable[[], None], went: str,
             in_task: bool = False) -> str:
    """A stage that failed here: what it was given goes to the stage's queue (``hand``);
    ``went``, or ``LOST`` when the queue cannot take it either (logged; raised ``in_task``)."""
    ERRORS.labels(stage=stage).inc()
    log.warning("chain %s: block %d's %s stage failed here (%s: %s); the %s queue takes it",
                delta.chain_id, delta.block_number, stage, type(exc).__name__, str(exc)[:200], stage)
    try:
        hand()
        return went
    except Exception as again:
        if in_task:
            raise
        log.error("chain %s: block %d could not go to the %s queue either (%s: %s)",
                  delta.chain_id, delta.block_number, stage, type(again).__name__, str(again)[:200])
        return LOST


def _evaluate(d: PoolDelta, send_first_part: Callable[[list[Opportunity]], None]) -> list[Opportunity]:
    return evaluate(d, send_first_part)  # the module's, which ``decide_here``'s argument hides


def to_path_queue(delta: PoolDelta, trace: Trace) -> None:
    find.delay(delta.to_wire(), trace=trace.marks)


def to_ml_queue(opps: list, trace: Trace, part: int | None = None, first: list | None = None) -> None:
    """A whole block, or one of its two parts (the second with a copy of the first:
    ``ml.score``)."""
    from arbbot.types import opportunities_to_wire
    from workers.tasks import ml

    parts = {} if part is None else {"part": part, **({"first": opportunities_to_wire(first)} if part == 2 else {})}
    ml.score.delay(opportunities_to_wire(opps), trace=trace.marks, **parts)


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


def warm(chain_id: int) -> None:
    """The chain's path stage built and primed with the hot state's pools (a process's
    start: ``PathStage.prime``), its heap frozen, so the first block does not build the
    engine on its way."""
    stage = runtime.path_stage(chain_id)
    stage.prime(runtime.hotstate(chain_id), runtime.exclusions, chain_id)
    _known[chain_id] = stage.engine.pools_known
    after_block(chain_id)


def publishes() -> tuple[Any, ...]:
    """The tasks a block decided here (``decide_here``) publishes: its chosen opportunities
    to execute, its records to analytics, and a part or delta that failed here to ml or path
    (what ``celery_app.warm_publisher`` prepares for)."""
    from workers.tasks import analytics, execute, ml

    return (execute.execute, analytics.record_opportunities, ml.score, find)


def after_block(chain_id: int) -> None:
    """The heap step (``workers.heap``) after a block's publish, for the engine that just
    evaluated it (not a stage a newer strategy would build now)."""
    if chain_id in _known:
        heap.after_block(chain_id, _known[chain_id])
