"""ml queue: ``score`` a batch of opportunities and decide: the promoted model when there is
one (expected value over the chain's strategy minimum), else the rule (the strategy's
margin and minimum net profit, in the native token); ``arbbot.scoring.stage`` owns both and
the fallback. Every decision is recorded with its features; exactly those decided
``execute`` go on to the execute queue; a block that comes in two parts keeps one cycle a
pool and the block's sends across both (``decide_part``). ``train`` (beat, hourly) trains a challenger on
the labelled outcomes of the last ``TRAIN_WINDOW`` (``ARBBOT_ML_LABELS``: the fleet's
executions, paper labels from backtesting the window's recordings, or both) and promotes
it only if it beats the champion."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import replace

from arbbot import obs
from arbbot.errors import WireFormatError
from arbbot.scoring import rule as rule_mod
from arbbot.scoring.model import ModelScorer
from arbbot.scoring.rule import RuleScorer
from arbbot.scoring.stage import score_batch
from arbbot.types import Opportunity, ScoredOpportunity, opportunities_from_wire, scored_to_wire
from workers import runtime, serializer
from workers.celery_app import app
from workers.stage import ITEMS, MODEL_SCORE, Trace, bind_batch, rejects_malformed

log = logging.getLogger(__name__)
TRAIN_WINDOW = dt.timedelta(days=7)
#: How long the records of a batch with opportunities chosen for execution wait (a Celery
#: countdown) before the analytics worker writes them: written at once, their decoding,
#: ``COPY`` and commit ran on the fleet's two cores beside the execute stage's decisions on
#: the same block. Live, same run: execute start -> 1st decision 14.9 -> 13.0 ms p50, block
#: arrival -> decision 32.4 / 44.7 / 52.8 -> 30.5 / 43.1 / 51.8 p50 / p95 / p99
#: (``bench/latency/README.md``, session 33). The message is in the broker meanwhile, then
#: held unacknowledged by the worker: nothing is lost to a crash of either side.
RECORD_DELAY_S = 0.3


def scorer(chain_id: int) -> RuleScorer:
    """The rule scorer with the chain's strategy in force (``runtime.strategy_in_force``)."""
    strategy = runtime.strategy_in_force(chain_id)
    return RuleScorer(margin=strategy.margin, min_net_profit=strategy.min_profit_wei,
                      max_sends=strategy.max_sends_per_block)


def decide(chain_id: int, batch: list[Opportunity]) -> list[ScoredOpportunity]:
    """One chain's batch: its strategy and the champion (read again at most every
    ``runtime.STRATEGY_TTL_S``) and its pools' recent outcomes (``runtime.outcome_history``:
    at most every ``HISTORY_TTL_S`` or two blocks)."""
    rule = scorer(chain_id)
    current = runtime.champion().current()
    model = None if current is None else ModelScorer(current[1], f"model:{current[0].name}", rule.min_net_profit)
    history = runtime.outcome_history(chain_id, max(o.block_number for o in batch))
    return score_batch(batch, rule=rule, model=model, history=history, now=time.time())


def warm(chain_id: int) -> None:
    """What a chain's first decision reads, read now (a process's start): its strategy, the
    champion (its artefact loaded) and its pools' recent outcomes at the hot state's head."""
    scorer(chain_id)
    runtime.champion().current()
    head = runtime.hotstate(chain_id).head()
    if head is not None:
        runtime.outcome_history(chain_id, head[0])


@app.task(name="workers.tasks.ml.score", acks_late=True, reject_on_worker_lost=True, serializer=serializer.NAME)
@rejects_malformed
def score(opportunities: dict | list[dict], trace: list | None = None, part: int | None = None,
          first: dict | None = None) -> int:
    """One block's batch; or one of its two parts (``part``: 1 or 2, ``first``: the second
    part's copy of the first), from a block the path stage sized in two
    (``workers.tasks.path.find``)."""
    tr = Trace(trace).mark("ml.start")
    opps = opportunities_from_wire(opportunities)  # a columnar batch (or an older producer's list)
    return send(decide_block(opps, part, None if first is None else opportunities_from_wire(first)), tr)


def decide_block(opps: list[Opportunity], part: int | None = None,
                 first: list[Opportunity] | None = None) -> list[ScoredOpportunity]:
    """A block's batch decided whole (``part`` None: ``decide_all``), or one of its two parts
    (1, or 2 with ``first``, a copy of the first part: ``decide_part``). The ml task's
    decision, and the block follower's when it decides a block itself
    (``workers.follow_scan.decide_here``)."""
    if part is None or not opps:
        return decide_all(opps)
    if part not in (1, 2) or (part == 2 and first is None):
        raise WireFormatError(f"part {part!r}: a block's part is 1, or 2 with its first part")
    return decide_part(opps, part, first or [])


def decide_part(opps: list[Opportunity], part: int, first: list[Opportunity]) -> list[ScoredOpportunity]:
    """A part of one block (``score``) decided so that the block's two parts keep the
    per-pool and per-block rules together: the first process to decide the first part
    (from the part itself, or from the second part's copy ``first``) keeps its choice in the
    hot state (``HotState.block_sends``); the first part is decided as that choice
    (``rule.as_chosen``), the second around it (``rule.after_first``)."""
    o = opps[0]
    if any((x.chain_id, x.block_number, x.block_hash) != (o.chain_id, o.block_number, o.block_hash)
           for x in (*opps, *first)):
        raise WireFormatError("a block's part holds opportunities of one chain and block only")
    bind_batch(opps)
    hot = runtime.hotstate(o.chain_id)
    if part == 1:
        decided = decide(o.chain_id, opps)
        chosen = hot.block_sends(o.block_number, o.block_hash, rule_mod.chosen_of(decided))
        return decided if chosen is None else rule_mod.as_chosen(decided, chosen)
    chosen = hot.block_sends(o.block_number, o.block_hash)
    if chosen is None:  # the first part is not decided yet (another process has it): decide it here
        chosen = hot.block_sends(o.block_number, o.block_hash, rule_mod.chosen_of(decide(o.chain_id, first)))
    decided = decide(o.chain_id, opps)
    return rule_mod.after_first(decided, chosen or {}, runtime.strategy_in_force(o.chain_id).max_sends_per_block)


def decide_all(opps: list[Opportunity]) -> list[ScoredOpportunity]:
    """Every opportunity of a batch decided, chain by chain (``decide``)."""
    bind_batch(opps)
    by_chain: dict[int, list[Opportunity]] = {}
    for o in opps:
        by_chain.setdefault(o.chain_id, []).append(o)
    return [s for chain_id, batch in by_chain.items() for s in decide(chain_id, batch)]


def send(decided: list[ScoredOpportunity], tr: Trace, *, records: bool = True) -> int:
    """Those decided ``execute`` to the execute queue, then (``records``) every decision to
    the analytics queue (``record``); the number chosen. The task's end; a block decided in
    the path task or the block follower (``workers.tasks.path.decide_here``) sends its
    records once for both its parts."""
    from workers.tasks import execute

    chosen = [replace(s, features={}) for s in decided if s.decision == "execute"]
    if chosen:  # first: the execute decision waits on this publish, the records and metrics do not
        execute.execute.delay(scored_to_wire(chosen), trace=tr.wire("ml.sent"))
    obs.note(opportunities=len(decided), chosen=len(chosen))
    ITEMS.labels(stage="ml").inc(len(decided))
    scores: dict[tuple[int, str, str], list[float]] = {}  # one labels() lookup a kind, not one a verdict
    for s in decided:
        scores.setdefault((s.opportunity.chain_id, s.model, s.decision), []).append(s.score)
    for (chain_id, model, decision), values in scores.items():
        observe = MODEL_SCORE.labels(chain=str(chain_id), model=model, decision=decision).observe
        for value in values:
            observe(value)
    if records:
        record(decided, chosen=bool(chosen))
    return len(chosen)


def record(decided: list[ScoredOpportunity], *, chosen: bool) -> None:
    """Every decision to the analytics queue, to be written ``RECORD_DELAY_S`` later when
    any of them (``chosen``) went to execute, at once when none did."""
    from workers.tasks import analytics

    if decided:
        analytics.record_opportunities.apply_async((scored_to_wire(decided),),
                                                   countdown=RECORD_DELAY_S if chosen else None)


@app.task(name="workers.tasks.ml.train")
def train(seed: int = 0) -> dict:
    """Train on the last ``TRAIN_WINDOW`` of outcomes; too little data is not an error."""
    from django.utils import timezone

    from arbbot.scoring.model import ModelError
    from webapp.core import services

    try:
        result = services.model_train(seed=seed, promote=True, since=timezone.now() - TRAIN_WINDOW,
                                      progress=log.info)
    except ModelError as exc:
        log.info("ml: no model trained: %s", exc)
        return {"trained": False, "reason": str(exc)}
    return {"trained": True, "version": result.version.id if result.version else None, "promoted": result.promoted,
            "labels": result.metrics["labels"]}
