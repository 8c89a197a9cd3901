"""The learned scorer on the real database: the ml stage records the features it decided
on and training reads exactly those; a model trained on the fleet's outcomes is promoted
only when it beats the champion (the rule when none) and a running process decides with
it from its next batch; a corrupt artefact sends the stage back to the rule with a logged
reason; the command line trains, evaluates and promotes; training on paper labels is
built from the backtested recordings (``--labels paper|all``, ``ARBBOT_ML_LABELS``)."""

from __future__ import annotations

import random
import time
from typing import Iterator

import numpy as np
import pytest
from django.core.management import call_command

from arbbot.scoring.drift import DRIFT_ALERT
from arbbot.scoring.features import FEATURES, from_mappings
from arbbot.types import ExecutionResult, ScoredOpportunity
from arbbot.scoring.synthetic import GAS, GAS_PRICE, WETH, make_opp
from tests.webapp.api_support import role_client
from webapp.core import health, selectors, services
from webapp.core.models import Chain, Execution, ModelVersion
from workers import runtime
from workers.tasks import ml

CHAIN = 31337
WATCHED = (0, 1, 2)  # rivals always take these pools' gaps


@pytest.fixture(autouse=True)
def fresh_runtime() -> Iterator[None]:
    runtime.reset()
    yield
    runtime.reset()


def play(blocks: range, seed: int = 5, least: float = 1.6) -> dict[tuple[int, str], dict[str, float]]:
    """The fleet's loop without the chain: the ml stage decides each block's batch (reading
    the outcomes recorded so far), the decisions are recorded, and what it executed gets
    the outcome the rivals allow. Each gross profit is ``least`` to 8 times the gas cost
    (the rule's margin is 1.5). Returns the features served, by (block, path)."""
    rng = random.Random(seed)
    served: dict[tuple[int, str], dict[str, float]] = {}
    for block in blocks:
        opps = []
        pairs: set[tuple[int, int]] = set()
        while len(pairs) < 4:  # one opportunity per cycle and block, as the path stage finds them
            a, b = rng.sample(range(16), 2)
            if (a, b) in pairs:
                continue
            pairs.add((a, b))
            profit = int(rng.uniform(least, 8.0) * GAS * GAS_PRICE)
            opps.append(make_opp(block, a, b, profit, observed_at=time.time() - rng.uniform(0.05, 0.3)))
        decided = ml.decide(CHAIN, opps)
        services.opportunities_record(decided)
        for s in decided:
            served[(block, s.opportunity.path_id)] = dict(s.features)
            if s.decision == "execute":
                finish(s, rng)
    return served


def finish(s: ScoredOpportunity, rng: random.Random) -> None:
    o = s.opportunity
    services.execution_claim(s)
    margin = (o.profit_native or 0) / o.gas_cost_native
    if any(int(p, 16) in WATCHED for p in o.pools):
        status, reason = "reverted", "ProfitTooLow"
    elif rng.random() < 1 - 0.9 * np.exp(-(margin - 1.0) / 1.5):
        status, reason = "success", ""
    else:
        status, reason = "dropped", "stale: the cycle no longer pays on re-validation (ProfitTooLow)"
    services.execution_finish(ExecutionResult(
        chain_id=o.chain_id, block_number=o.block_number, path_id=o.path_id, status=status,  # type: ignore[arg-type]
        predicted_profit=o.profit, realised_profit=o.profit if status == "success" else 0,
        gas_used=GAS if status != "dropped" else 0, gas_price_wei=GAS_PRICE if status != "dropped" else 0,
        reason=reason, profit_token=WETH, amount_in=o.amount_in, extra={"mode": "live"},
    ))


@pytest.fixture
def chain(db: None) -> Chain:
    return Chain.objects.create(chain_id=CHAIN, name="devnet", rpc_urls="http://127.0.0.1:8545", weth=WETH)


@pytest.mark.django_db
def test_training_reads_exactly_the_features_serving_computed(chain: Chain) -> None:
    served = play(range(1000, 1060))
    data = selectors.ml_dataset(CHAIN)
    assert len(data) > 100 and 0 < data.y.mean() < 1
    rows = [served[(int(b), p)] for b, p in _keys(data)]
    assert np.array_equal(data.X, from_mappings(rows, FEATURES))
    assert data.X[:, FEATURES.index("pool_attempts")].max() > 0  # the recorded outcomes were seen


def _keys(data) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    from webapp.core.models import Opportunity

    taught = set(Execution.objects.filter(status__in=("success", "reverted", "dropped")).values_list(
        "block_number", "path_id"))
    keys = [(b, p) for b, p in Opportunity.objects.filter(decision="execute").order_by(
        "block_number", "created_at", "id").values_list("block_number", "path_id") if (b, p) in taught]
    assert len(keys) == len(data)
    return keys


@pytest.mark.django_db
def test_a_model_that_beats_the_rule_is_promoted_and_used_from_the_next_batch(
    chain: Chain, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a worker asks the registry at most every STRATEGY_TTL_S: with it kept, whether the
    # promotion below is seen on the next batch would depend on how long training took
    monkeypatch.setattr(runtime.champion_ref, "ttl", 0.0)
    play(range(1000, 1300))
    probe = [make_opp(1400, 0, 9, 6 * GAS * GAS_PRICE), make_opp(1400, 10, 11, 6 * GAS * GAS_PRICE)]
    assert {s.model for s in ml.decide(CHAIN, probe)} == {"rule"}  # this process's cache now exists

    lines: list[str] = []
    first = services.model_train(seed=1, promote=True, progress=lines.append)
    assert first.promoted, first.decision
    assert first.metrics["model"]["ev_captured_wei"] > first.metrics["rule"]["ev_captured_wei"]
    assert any("holdout" in line for line in lines)
    by_path = {s.opportunity.path_id: s for s in ml.decide(CHAIN, probe)}  # same process, no restart
    assert by_path["p10-11"].model == f"model:{first.version.name}"  # type: ignore[union-attr]
    assert by_path["p0-9"].decision == "skip" and by_path["p10-11"].decision == "execute"

    # drift: the features served since are those it trained on; then state grows stale
    calm = selectors.ml_drift()
    assert set(calm) <= set(FEATURES) and calm["state_age_s"] < 0.1, calm
    stale = [make_opp(1400 + i, 10 + i % 5, 11 + i % 5, 6 * GAS * GAS_PRICE, observed_at=time.time() - 30)
             for i in range(100)]
    services.opportunities_record(ml.decide(CHAIN, stale))
    moved = selectors.ml_drift(limit=100)
    assert moved["state_age_s"] > DRIFT_ALERT
    health.refresh_gauges()
    exported = health.ML_DRIFT.labels(feature="state_age_s")._value.get()  # the last hour's newest 5000
    assert exported == pytest.approx(selectors.ml_drift()["state_age_s"]) and exported > calm["state_age_s"]

    again = services.model_train(seed=1, promote=True)  # no better than the champion: kept out
    assert not again.promoted and "does not beat champion" in again.decision
    assert ModelVersion.objects.get(is_champion=True).id == first.version.id  # type: ignore[union-attr]

    # a corrupt artefact: the rule decides, and says why once
    ModelVersion.objects.filter(id=first.version.id).update(artefact=b"garbage")  # type: ignore[union-attr]
    runtime.reset()
    with caplog.at_level("ERROR"):
        assert {s.model for s in ml.decide(CHAIN, probe)} == {"rule"}
    assert any("not loaded" in r.getMessage() and "SHA-256" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db
def test_drift_is_measured_against_what_is_scored_not_what_was_executed(chain: Chain) -> None:
    # a fifth of the opportunities pay less than the rule's margin and are skipped: the
    # model trains on the executed ones, the more profitable part, but scores them all
    play(range(1000, 1200), least=0.2)
    first = services.model_train(seed=1)
    services.model_version_promote(first.version.id, "for its drift")
    of = first.metrics["reference_of"]  # the training window's blocks: every decision, not the holdout's
    assert "recorded opportunities, every decision" in of and first.version.n_train < int(of.split()[0]) < 4 * 200, of
    calm = selectors.ml_drift()  # the same hour, the same market: no drift (0.22 against the executed ones)
    assert calm["log_profit_native"] < 0.02 and calm["margin_over_gas"] < 0.02, calm

    # what moved does show: the same market's profits halved
    scored = [make_opp(1300 + i // 4, i % 16, (i + 5) % 16, int((0.1 + i % 40 / 10) * GAS * GAS_PRICE),
                       observed_at=time.time() - 0.1) for i in range(400)]
    services.opportunities_record(ml.decide(CHAIN, scored))
    assert selectors.ml_drift(limit=400)["log_profit_native"] > DRIFT_ALERT


@pytest.mark.django_db
def test_the_command_line_trains_evaluates_and_promotes(
    chain: Chain, capsys: pytest.CaptureFixture[str], tmp_path  # type: ignore[no-untyped-def]
) -> None:
    client = role_client("viewer")
    assert "no model trained yet" in client.get("/").content.decode()
    play(range(1000, 1250))
    call_command("arbbot", "ml", "train", "--seed", "3")
    out = capsys.readouterr().out
    assert "recorded model version" in out and "EV captured" in out
    version = ModelVersion.objects.get()
    assert not version.is_champion and version.features == list(FEATURES)
    assert version.params["seed"] == 3 and len(version.data_sha256) == 64

    call_command("arbbot", "ml", "promote", str(version.id))
    assert ModelVersion.objects.get().is_champion
    call_command("arbbot", "ml", "evaluate", "--svg", str(tmp_path / "ev.svg"), "--png", str(tmp_path / "ev.png"))
    out = capsys.readouterr().out
    png = (tmp_path / "ev.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000 and f"wrote {tmp_path / 'ev.png'}" in out
    svg = (tmp_path / "ev.svg").read_text()
    assert svg.startswith("<svg") and "rule" in svg and "model" in svg
    html = client.get("/").content.decode()
    assert f"champion: model <b>{version.name}</b>" in html and "<svg" in html
    for metric in ("ROC AUC", "calibration error", "precision at", "EV captured", "model", "rule"):
        assert metric in out
    call_command("arbbot", "ml", "list")
    assert "champion" in capsys.readouterr().out
    call_command("arbbot", "ml", "promote", "--rule")
    assert not ModelVersion.objects.filter(is_champion=True).exists()

    done = ml.train(seed=3)  # the beat task: the same model again, promoted over the rule
    assert done["trained"] and done["promoted"] and ModelVersion.objects.filter(is_champion=True).count() == 1


@pytest.mark.django_db
def test_the_beat_task_without_outcomes_trains_nothing(chain: Chain) -> None:
    done = ml.train()
    assert done == {"trained": False, "reason": "too few labelled opportunities to split: 0"}



def paper_recording(directory, blocks: int = 240, seed: int = 3):  # type: ignore[no-untyped-def]
    """A recording whose one moving pool is off par by a random few percent in some blocks
    and back at par in others: an opportunity pays a block later only if the gap is still
    open then (both labels, from the backtest's paper trades)."""
    from arbbot.replay.recording import RecordedBlock, RecordingWriter
    from tests.replay.market import CHAIN_ID, E18, LINK, POOL_A, POOL_B, POOL_C, USDC, WETH as RWETH, delta, meta, pool

    rng = random.Random(seed)
    first, par = 100, 4_000_000 * 10**6
    out = [RecordedBlock(delta(first, [pool(POOL_A, USDC, RWETH, par, 1000 * E18, first),
                                       pool(POOL_B, USDC, RWETH, par, 1000 * E18, first),
                                       pool(POOL_C, LINK, RWETH, 200_000 * E18, 1000 * E18, first)]))]
    for n in range(first + 1, first + blocks):
        off = rng.choice([0, 0, 20, 30, 40, 60]) + rng.randint(0, 9)  # per mille
        out.append(RecordedBlock(delta(n, [pool(POOL_B, USDC, RWETH, par * (1000 + off) // 1000, 1000 * E18, n)])))
    writer = RecordingWriter(directory, CHAIN_ID)
    paths = {writer.append(b, lambda block, p: meta()) for b in out}
    (path,) = paths
    return path


@pytest.mark.django_db
def test_training_on_paper_labels_is_built_from_the_backtested_recording(
    chain: Chain, tmp_path, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    from arbbot.replay.backtest import BacktestStrategy, run
    from arbbot.replay.labels import outcomes
    from arbbot.replay.recording import Recording
    from arbbot.scoring.labels import paper_dataset

    path = paper_recording(tmp_path)
    expected = paper_dataset(outcomes(run(Recording.open(path), BacktestStrategy(), labels=True)))
    assert 50 < len(expected) and 0.2 < expected.y.mean() < 0.8
    play(range(1000, 1100))
    n_live = len(selectors.ml_dataset(CHAIN))

    live = services.model_train(seed=1, labels="live")
    paper = services.model_train(seed=1, labels="paper", recordings=[path])
    both = services.model_train(seed=1, labels="all", recordings=[path])
    for r, n in ((live, n_live), (paper, len(expected)), (both, n_live + len(expected))):
        assert r.version is not None and r.version.n_train + r.version.n_holdout == n
    assert paper.metrics["labels"] == {"labels": "paper", "rows": {"paper": len(expected)}, "recordings": [path.name]}
    assert both.metrics["labels"]["rows"] == {"live": n_live, "paper": len(expected)}
    hashes = {r.version.data_sha256 for r in (live, paper, both)}  # type: ignore[union-attr]
    assert len(hashes) == 3

    # the beat task and the command line: the labels from ARBBOT_ML_LABELS, the recordings under ARBBOT_RECORD_DIR
    monkeypatch.setenv("ARBBOT_RECORD_DIR", str(tmp_path))
    monkeypatch.setenv("ARBBOT_ML_LABELS", "paper")
    done = ml.train(seed=1)
    assert done["trained"] and done["labels"]["rows"] == {"paper": len(expected)}
    assert ModelVersion.objects.order_by("-id").first().data_sha256 == paper.version.data_sha256  # type: ignore[union-attr]
    call_command("arbbot", "ml", "train", "--labels", "live")
    assert ModelVersion.objects.order_by("-id").first().metrics["labels"]["rows"] == {"live": n_live}  # type: ignore[union-attr]
    monkeypatch.setenv("ARBBOT_RECORD_DIR", str(tmp_path / "none"))
    assert ml.train(seed=1) == {"trained": False, "reason": "no paper labels: no recording to back-test "
                                                             "(set ARBBOT_RECORD_DIR, or name one)"}


@pytest.mark.django_db
def test_the_outcomes_are_read_once_per_two_blocks_not_per_batch(chain: Chain) -> None:
    """The ml stage reads the recent outcomes (moves its window: one read of the blocks it
    lacks, tests/webapp/test_ml_history.py) when the batches' block has moved two blocks
    on, or back, or after ``HISTORY_TTL_S``; batches between reuse them. A 10-minute soak
    slowed the stage 4x reading them for every batch."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    play(range(1000, 1012))
    runtime.reset()

    def reads(block: int) -> int:
        with CaptureQueriesContext(connection) as ctx:
            history = runtime.outcome_history(CHAIN, block)
        assert history.pool  # the recorded outcomes are in it
        return sum(f"FROM {Execution._meta.db_table} " in q["sql"] for q in ctx.captured_queries)

    ttl = runtime.histories.ttl
    try:
        runtime.histories.ttl = 3600.0  # blocks alone decide (a slow machine's second must not)
        assert [reads(b) for b in (1012, 1012, 1013, 1014, 1015, 1013)] == [1, 0, 0, 1, 0, 1]
        runtime.histories.ttl = 0.0
        assert reads(1013) == 1
    finally:
        runtime.histories.ttl = ttl


@pytest.mark.django_db
def test_a_block_sends_at_most_the_strategys_max_sends_the_rest_recorded_as_skipped(chain: Chain) -> None:
    """The ml stage reads ``max_sends_per_block`` from the strategy in force: of a block's
    six worthy cycles through six pairs of pools, the best two go to execute; the other four
    are recorded with the reason."""
    services.config_apply({"chains": [{"chain_id": CHAIN, "name": "devnet", "strategy": {"max_sends_per_block": 2}}]})
    runtime.reset()
    opps = [make_opp(1500, 2 * i, 2 * i + 1, (3 + i) * GAS * GAS_PRICE) for i in range(6)]
    decided = ml.decide(CHAIN, opps)
    assert [s.opportunity.path_id for s in decided if s.decision == "execute"] == ["p10-11", "p8-9"]
    skipped = [s for s in decided if s.decision == "skip"]
    assert len(skipped) == 4 and {s.reason for s in skipped} == {"not among the block's best 2 (max_sends_per_block)"}
    assert services.opportunities_record(decided) == 6


@pytest.mark.django_db
def test_a_block_in_two_parts_keeps_one_cycle_a_pool_and_the_cap_across_them(chain: Chain) -> None:
    """``ml.decide_part`` on the real Redis: the first part's choice is kept for the block
    and the second part decided around it, whichever part comes first; a first part decided
    again (a redelivery, or after the second part's process decided it from its copy) makes
    the stored choice."""
    services.config_apply({"chains": [{"chain_id": CHAIN, "name": "devnet", "strategy": {"max_sends_per_block": 3}}]})
    runtime.reset()
    hot = runtime.hotstate(CHAIN)
    g = GAS * GAS_PRICE

    def first(block: int) -> list:  # type: ignore[type-arg]
        return [make_opp(block, 1, 2, 9 * g), make_opp(block, 3, 4, 8 * g)]

    def second(block: int) -> list:  # type: ignore[type-arg]
        return [make_opp(block, 2, 5, 20 * g), make_opp(block, 6, 7, 7 * g), make_opp(block, 8, 9, 6 * g)]

    def executed(decided: list[ScoredOpportunity]) -> list[str]:
        return [s.opportunity.path_id for s in decided if s.decision == "execute"]

    try:
        assert executed(ml.decide_part(first(1700), 1, [])) == ["p1-2", "p3-4"]
        out = {s.opportunity.path_id: s for s in ml.decide_part(second(1700), 2, first(1700))}
        assert out["p2-5"].decision == "skip" and "through pool" in out["p2-5"].reason and "(path p1-2)" in out["p2-5"].reason
        assert out["p6-7"].decision == "execute"
        assert (out["p8-9"].decision, out["p8-9"].reason) == ("skip", "not among the block's best 3 (max_sends_per_block)")
        assert executed(ml.decide_part(first(1700), 1, [])) == ["p1-2", "p3-4"], "a redelivery: the same choice"

        # the second part first: its process decides the first part from the copy, and keeps it
        assert executed(ml.decide_part(second(1701), 2, first(1701))) == ["p6-7"]
        assert executed(ml.decide_part(first(1701), 1, [])) == ["p1-2", "p3-4"]

        # another process kept another choice for the first part: it is the block's
        hot.block_sends(1702, first(1702)[0].block_hash, {"p3-4": [o.lower() for o in first(1702)[1].pools]})
        decided = {s.opportunity.path_id: s for s in ml.decide_part(first(1702), 1, [])}
        assert (decided["p1-2"].decision, decided["p1-2"].reason) == ("skip", "not chosen with the block's second part")
        assert decided["p3-4"].decision == "execute"
        assert executed(ml.decide_part(second(1702), 2, first(1702))) == ["p2-5", "p6-7"]
    finally:
        for block in (1700, 1701, 1702):
            hot.redis.delete(hot.key(f"sends:{block}:{first(block)[0].block_hash.lower()}"))
