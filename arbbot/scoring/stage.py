"""The ml stage's core: features for a batch, the decision (the promoted model when there
is one, else the rule) and the features attached to every verdict so they are recorded
(``features.as_rows``: views of the batch's matrix, made Python floats when recorded).

Owns the fallback too: the rule decides whenever no model is promoted, the champion cannot
be loaded (``ChampionCache``) or the model fails on a batch; each time the reason is logged
and the verdicts name the rule as their model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from arbbot.scoring import features
from arbbot.scoring.model import LearnedModel, ModelError, ModelScorer, load
from arbbot.scoring.rule import RuleScorer, at_most
from arbbot.types import Opportunity, ScoredOpportunity

log = logging.getLogger(__name__)


def score_batch(
    opps: Sequence[Opportunity],
    *,
    rule: RuleScorer,
    model: ModelScorer | None = None,
    history: features.OutcomeHistory | None = None,
    now: float = 0.0,
) -> list[ScoredOpportunity]:
    """Every opportunity with its final decision, best first, each carrying its features
    (the model's: features and both models in one compiled pass, ``arbbot.scoring.kernel``);
    at most ``rule.max_sends`` of them ``execute``, whichever decides."""
    history = history or features.OutcomeHistory()
    c = features.columns(opps)
    if model is not None:
        try:
            return at_most(model.decide(opps, c, history, now, features.as_rows), rule.max_sends)
        except Exception as exc:  # a model that fails must not stop the pipeline: the rule decides
            log.warning("model %s failed on a batch, the rule decides: %s: %s", model.name, type(exc).__name__, exc)
    return rule.decide(opps, features.as_rows(features.from_columns(c, history, now)))


@dataclass(frozen=True)
class Champion:
    """A reference to the promoted model version: its id and its artefact's SHA-256."""

    version_id: int
    sha256: str
    name: str


class ChampionCache:
    """The promoted model of this process, reloaded when a new one is promoted (asked once
    per batch: a new champion is used without a restart). ``current`` returns ``None``
    (the rule decides) when none is promoted or its artefact is missing or corrupt; a
    failed version is remembered so its reason is logged once, not per batch."""

    def __init__(self, champion_ref: Callable[[], Champion | None], artefact: Callable[[int], bytes | None]) -> None:
        self._ref = champion_ref
        self._artefact = artefact
        self._loaded: tuple[Champion, LearnedModel] | None = None
        self._failed: Champion | None = None
        self.reason = "no model promoted"

    def current(self) -> tuple[Champion, LearnedModel] | None:
        ref = self._ref()
        if ref is None:
            if self._loaded is not None:
                log.info("no model promoted any more: the rule decides")
            self._loaded, self.reason = None, "no model promoted"
            return None
        if self._loaded is not None and self._loaded[0] == ref:
            return self._loaded
        if self._failed == ref:
            return None
        try:
            model = load(self._artefact(ref.version_id), ref.sha256)
        except ModelError as exc:
            self._failed, self._loaded = ref, None
            self.reason = f"model {ref.name} (version {ref.version_id}) not loaded: {exc}"
            log.error("%s; the rule decides", self.reason)
            return None
        try:  # compile the scoring loops now (cached on disk), not on the first batch
            model.p_success(np.zeros((1, len(model.features))), model.features)
            ModelScorer(model).score(features.columns([]), features.OutcomeHistory())
        except Exception as exc:
            self._failed, self._loaded = ref, None
            self.reason = f"model {ref.name} (version {ref.version_id}) does not score: {type(exc).__name__}: {exc}"
            log.error("%s; the rule decides", self.reason)
            return None
        self._loaded, self._failed = (ref, model), None
        self.reason = f"model {ref.name} (version {ref.version_id})"
        log.info("model %s (version %s) loaded: it decides from now on", ref.name, ref.version_id)
        return self._loaded
