"""The learned scorer: it beats the rule where the rule must lose (rivals always take a
few pools), it is reproducible from its seed, its metrics agree with scikit-learn's, a
worse challenger does not win, the artefact codec refuses bytes that are not the recorded
ones, and the serving decision keeps the rule's one-cycle-per-pool guarantee."""

from __future__ import annotations

import numpy as np
import pytest

from arbbot.scoring import features
from arbbot.scoring.model import (
    ModelError,
    ModelScorer,
    beats,
    calibration_error,
    dump,
    digest,
    evaluate,
    load,
    model_executes,
    precision_at_k,
    roc_auc,
    train,
)
from arbbot.scoring.rule import RuleScorer
from arbbot.scoring.stage import Champion, ChampionCache, score_batch
from arbbot.scoring.synthetic import GAS, GAS_PRICE, make_opp, market


@pytest.fixture(scope="module")
def trained() -> tuple:
    data, rows = market(seed=7)
    tr, ho = data.split(0.3)
    return train(tr, seed=1), tr, ho, rows


def test_the_model_beats_the_rule_where_rivals_take_a_pool(trained: tuple) -> None:
    model, _, holdout, rows = trained
    m = evaluate(model, holdout)
    assert m["rule"]["executed"] == len(holdout)  # every cycle clears 1.5 x gas: the rule takes all
    assert m["model"]["ev_captured_wei"] > m["rule"]["ev_captured_wei"] * 1.02
    assert m["model"]["roc_auc"] > 0.85 > m["rule"]["roc_auc"]
    assert m["model"]["calibration_error"] < 0.1
    execute, _ = model_executes(model, holdout)
    watched = np.array([any(int(p, 16) in (0, 1, 2) for p in o.pools) for o, _, _ in rows[-len(holdout):]])
    assert execute[watched].mean() < 0.3 < 0.6 < execute[~watched].mean()  # it learned which pools are taken


def test_training_is_reproducible_from_its_seed(trained: tuple) -> None:
    model, tr, ho, _ = trained
    again = train(tr, seed=1)
    assert np.array_equal(model.p_success(ho.X), again.p_success(ho.X))


def test_training_needs_both_outcomes() -> None:
    data, _ = market(seed=3, blocks=30)
    only_successes = data.take(data.y)
    with pytest.raises(ModelError, match="both successes and failures"):
        train(only_successes)


def test_metrics_agree_with_scikit_learn() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    y = rng.random(500) < 0.4
    s = np.round(rng.random(500) + y * 0.3, 2)  # ties on purpose
    assert abs(roc_auc(y, s) - roc_auc_score(y, s)) < 1e-12
    assert roc_auc(np.ones(3, bool), s[:3]) is None
    assert calibration_error(np.array([1, 0, 1, 0]), np.full(4, 0.5)) == 0.0
    assert calibration_error(np.array([1, 1]), np.array([0.05, 0.05])) == pytest.approx(0.95)
    assert precision_at_k(np.array([0, 1, 1, 0]), np.array([0.1, 0.9, 0.8, 0.7]), 2) == 1.0


def test_a_worse_challenger_is_not_promoted(trained: tuple) -> None:
    model, tr, ho, _ = trained
    noise = np.random.default_rng(0).permutation(len(tr))
    shuffled = type(tr)(tr.X, tr.y[noise], tr.value[noise], tr.net_native, tr.gas_native, tr.rule_execute, tr.block)
    weak = train(shuffled, seed=1)  # trained on shuffled outcomes: it learned nothing
    good, bad = evaluate(model, ho)["model"], evaluate(weak, ho)["model"]
    assert bad["ev_captured_wei"] < good["ev_captured_wei"]
    assert beats(bad, good)[0] is False
    assert beats(good, good)[0] is False  # a tie keeps the champion
    assert beats(good, evaluate(None, ho)["rule"])[0] is True


def test_the_regressor_learns_the_realised_share_of_the_profit() -> None:
    from arbbot.scoring.synthetic import SHAVED_SHARE

    data, rows = market(seed=4, blocks=300, shaved=(5, 6))
    tr, ho = data.split(0.3)
    model = train(tr, seed=1)
    assert model.profit is not None and model.params["regressor"]
    ratio = model.profit_ratio(ho.X)
    shaved = np.array([any(int(p, 16) in (5, 6) for p in o.pools) for o, _, _ in rows[-len(ho):]])
    taken = np.array([any(int(p, 16) in (0, 1, 2) for p in o.pools) for o, _, _ in rows[-len(ho):]])
    clean = ~shaved & ~taken
    assert abs(np.median(ratio[shaved & ~taken]) - SHAVED_SHARE) < 0.15
    assert abs(np.median(ratio[clean]) - 1.0) < 0.1
    # the EV counts the smaller profit: P x net x share - (1 - P) x gas
    p, ev = model.expected_values(ho.X, ho.net_native, ho.gas_native)
    assert np.allclose(ev, p * ho.net_native * ratio - (1 - p) * ho.gas_native)
    X = ho.X.copy()
    X[::4, 3] = np.nan  # the compiled regressor is scikit-learn's, missing values too
    assert np.abs(model.profit.predict(X) - model.regressor.predict(X)).max() < 1e-12
    blob = dump(model)
    back = load(blob, digest(blob))
    assert np.array_equal(back.profit_ratio(ho.X), ratio)  # both models travel in one artefact
    wins = np.flatnonzero(tr.y)
    few = ~tr.y
    few[wins[:: len(wins) // 15 + 1]] = True  # every failure, 15 successes spread out: too few for the regressor
    too_few = train(tr.take(few), seed=1)
    assert too_few.profit is None and np.array_equal(too_few.profit_ratio(ho.X), np.ones(len(ho)))


def test_a_single_model_artefact_still_loads(trained: tuple) -> None:
    model, _, ho, _ = trained
    blob = model.compiled.to_bytes()  # arbbot-trees-v1: the classifier alone
    back = load(blob, digest(blob))
    assert back.profit is None and np.array_equal(back.p_success(ho.X), model.p_success(ho.X))


def test_the_artefact_loads_only_with_its_digest(trained: tuple) -> None:
    model, _, ho, _ = trained
    blob = dump(model)
    back = load(blob, digest(blob))
    assert np.array_equal(back.p_success(ho.X), model.p_success(ho.X))
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(ModelError, match="does not match its recorded SHA-256"):
        load(tampered, digest(blob))
    with pytest.raises(ModelError, match="missing"):
        load(None, digest(blob))
    import pickle

    other = pickle.dumps({"format": "x"})  # a pickle is refused unread, even with its digest
    with pytest.raises(ModelError, match="does not load"):
        load(other, digest(other))


def test_the_compiled_model_is_scikit_learns_to_the_last_bit(trained: tuple) -> None:
    model, _, ho, _ = trained
    X = ho.X.copy()
    X[::3, 4] = np.nan  # missing values follow each node's learned side
    expected = model.classifier.predict_proba(X)[:, 1]
    assert np.abs(model.p_success(X) - expected).max() < 1e-12
    tr = trained[1]
    iso = train(type(tr)(*(np.concatenate([a] * 4) for a in (tr.X, tr.y, tr.value, tr.net_native, tr.gas_native,
                                                               tr.rule_execute)), np.concatenate(
        [tr.block + k * 10_000 for k in range(4)])), seed=2, max_iter=20)
    assert iso.params["calibration"] == "isotonic"
    assert np.abs(iso.p_success(X) - iso.classifier.predict_proba(X)[:, 1]).max() < 1e-12


def test_a_corrupt_or_missing_champion_falls_back_to_the_rule(trained: tuple, caplog: pytest.LogCaptureFixture) -> None:
    model, _, _, _ = trained
    blob = dump(model)
    store = {1: blob, 2: blob[:100]}
    ref: list[Champion | None] = [None]
    cache = ChampionCache(lambda: ref[0], store.get)
    assert cache.current() is None and cache.reason == "no model promoted"
    ref[0] = Champion(1, digest(blob), "good")
    assert cache.current() is not None and cache.current()[0].version_id == 1  # type: ignore[index]
    ref[0] = Champion(2, digest(blob), "corrupt")
    with caplog.at_level("ERROR"):
        assert cache.current() is None
        assert cache.current() is None
    assert "corrupt" in cache.reason and "SHA-256" in cache.reason
    assert sum("not loaded" in r.message for r in caplog.records) == 1  # logged once, not per batch
    ref[0] = Champion(3, digest(blob), "gone")
    assert cache.current() is None and "missing" in cache.reason


def test_serving_decides_by_expected_value_one_cycle_per_pool(trained: tuple) -> None:
    model, _, _, _ = trained
    scorer = ModelScorer(model, "model:t")
    big = 6 * GAS * GAS_PRICE
    opps = [
        make_opp(2000, 10, 11, big),  # good pools
        make_opp(2000, 11, 12, big // 2),  # shares pool 11 with a better one
        make_opp(2000, 0, 13, big),  # a pool rivals take (history below)
    ]
    taken = [features.Outcome(1990 + i, "p0-9", ("0x" + f"{0:040x}", "0x" + f"{9:040x}"), "reverted")
             for i in range(5)]
    out = score_batch(opps, rule=RuleScorer(), model=scorer, history=features.OutcomeHistory(taken, as_of=2000),
                      now=0.0)
    by_path = {s.opportunity.path_id: s for s in out}
    assert by_path["p10-11"].decision == "execute" and by_path["p10-11"].model == "model:t"
    assert by_path["p11-12"].decision == "skip" and "overlaps" in by_path["p11-12"].reason
    assert by_path["p0-13"].decision == "skip" and "EV" in by_path["p0-13"].reason
    assert all(set(s.features) == set(features.FEATURES) for s in out)
    rule_out = score_batch(opps, rule=RuleScorer(), history=features.OutcomeHistory(taken, as_of=2000))
    assert {s.opportunity.path_id for s in rule_out if s.decision == "execute"} == {"p10-11", "p0-13"}
    assert rule_out[0].features == by_path[rule_out[0].opportunity.path_id].features

    # the strategy's send cap binds the model's decisions as the rule's
    capped = score_batch([*opps, make_opp(2000, 20, 21, big)], rule=RuleScorer(max_sends=1), model=scorer,
                         history=features.OutcomeHistory(taken, as_of=2000), now=0.0)
    assert [s.model for s in capped if s.decision == "execute"] == ["model:t"]
    assert [s.reason for s in capped].count("not among the block's best 1 (max_sends_per_block)") == 1


def test_an_artefact_whose_nodes_point_outside_is_refused(trained: tuple) -> None:
    from dataclasses import replace

    from arbbot.errors import ArbbotError
    from arbbot.scoring.trees import CompiledModel

    compiled = trained[0].compiled
    bad_left = compiled.left.copy()
    bad_left[compiled.is_leaf == 0] = len(bad_left) + 5
    with pytest.raises(ArbbotError, match="out of range"):
        CompiledModel.from_bytes(replace(compiled, left=bad_left).to_bytes())
    loop = compiled.left.copy()
    loop[compiled.roots[0]] = compiled.roots[0]  # a node that is its own child: an endless walk
    with pytest.raises(ArbbotError, match="not below it"):
        CompiledModel.from_bytes(replace(compiled, left=loop).to_bytes())


def test_the_serving_kernel_is_scikit_learns_on_the_same_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Features, both models, calibration and EV in one compiled pass: the same features as
    ``features.from_columns``, P(success) scikit-learn's ``predict_proba``, the realised
    share its regressor's ``predict``; a model whose features differ (one missing: NaN)
    and one too deep for complete trees (the separate steps) agree too."""
    from arbbot.scoring import trees
    from arbbot.scoring.model import LearnedModel, expected_value

    data, rows = market(seed=4, blocks=300, shaved=(5, 6))
    model = train(data.split(0.3)[0], seed=1)
    opps = [r[0] for r in rows[-400:]]
    history = features.OutcomeHistory([r[2] for r in rows[:-400]], as_of=opps[0].block_number)
    c = features.columns(opps)
    X, p, ev = ModelScorer(model).score(c, history, now=1e9 + 2000)
    assert np.array_equal(X, features.from_columns(c, history, now=1e9 + 2000))
    assert np.abs(p - model.classifier.predict_proba(X)[:, 1]).max() < 1e-12
    ratio = np.clip(model.regressor.predict(X), -1.0, 2.0)
    net = np.array([float(o.net_profit_native) for o in opps])
    gas = np.array([float(o.gas_cost_native) for o in opps])
    assert np.allclose(ev, expected_value(p, net * ratio, gas), rtol=1e-12, atol=1.0)
    assert (ratio < 0.9).any() and (p < 0.5).any() and (p > 0.5).any()  # the rows exercise both models

    names = tuple(n for n in features.FEATURES if n != "edge") + ("unknown",)
    moved = LearnedModel(features=names, compiled=model.compiled, profit=model.profit)  # columns by name
    _, p_moved, _ = ModelScorer(moved).score(c, history)
    assert np.array_equal(p_moved, moved.p_success(X))

    monkeypatch.setattr(trees, "MAX_COMPLETE_DEPTH", 0)
    deep = LearnedModel(features=model.features, compiled=model.compiled, profit=model.profit)
    assert deep.serving() is None
    X2, p2, ev2 = ModelScorer(deep).score(c, history, now=1e9 + 2000)
    assert np.array_equal(X2, X) and np.abs(p2 - p).max() < 1e-12 and np.allclose(ev2, ev, rtol=1e-12, atol=1.0)
