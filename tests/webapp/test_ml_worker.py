"""A real, running Celery ml worker (its own process, on this run's broker vhost and
database) decides with the rule, then with a model promoted while it runs, without a
restart; a champion whose artefact is corrupt or missing sends it back to the rule, the
reason in its log. Beside it an analytics worker records every verdict, which is what the
test reads: decisions are waited for, never slept on. (Outside ``tests/e2e``: that
package's fleet would consume these queues; this module runs after it has stopped.)"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest
from django.db import connection

from arbbot.scoring.model import beats, evaluate, train
from arbbot.scoring.synthetic import GAS, GAS_PRICE, WETH, make_opp, market
from arbbot.types import ScoredOpportunity
from tests.e2e.fleet import ROOT, wait_for
from tests.webapp.test_ml import finish
from webapp.core import services
from webapp.core.models import Chain, ModelVersion, Opportunity
from workers import runtime
from workers.celery_app import app
from workers.tasks import ml

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
CHAIN = 31337  # the synthetic market's


@contextlib.contextmanager
def workers(logs: Path, queues: tuple[str, ...] = ("ml", "analytics")) -> Iterator[None]:
    celery = str(Path(sys.executable).parent / "celery")
    env = dict(os.environ, ARBBOT_DATABASE_NAME=connection.settings_dict["NAME"], PYTHONUNBUFFERED="1")
    procs = []
    try:
        for q in queues:
            procs.append(subprocess.Popen(
                [celery, "-A", "workers.celery_app", "worker", "-Q", q, "-n", f"{q}-{uuid.uuid4().hex[:6]}@%h",
                 "--pool", "prefork", "--concurrency", "1", "-l", "INFO"],
                cwd=ROOT, env={**env, "ARBBOT_HEARTBEAT_FILE": str(logs / f"hb-{q}")},
                stdout=open(logs / f"{q}.log", "wb"), stderr=subprocess.STDOUT,
            ))
        yield
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        with app.connection_for_write() as conn:  # what the ml worker chose for execution: nobody's
            conn.default_channel.queue_purge("execute")


def probe(block: int) -> dict[str, tuple[str, str]]:
    """A cycle through pool 0, which rivals always take (every recent attempt reverted),
    and one through quiet pools, both worth 6 x gas, sent to the running ml worker; the
    verdicts as recorded: path -> (decision, reason)."""
    opps = [make_opp(block, 0, 9, 6 * GAS * GAS_PRICE), make_opp(block, 10, 11, 6 * GAS * GAS_PRICE)]
    ml.score.delay([o.to_wire() for o in opps])

    def recorded() -> dict[str, tuple[str, str]] | None:
        rows = dict((p, (d, r)) for p, d, r in Opportunity.objects.filter(chain_id=CHAIN, block_number=block)
                    .values_list("path_id", "decision", "reason"))
        return rows if len(rows) == 2 else None

    return wait_for(recorded, 120, f"the verdicts of block {block}")  # a deadline on a loaded machine


def probe_until(first_block: int, wanted: Callable[[dict[str, tuple[str, str]]], bool]) -> dict[str, tuple[str, str]]:
    """Probe block after block until the verdicts are ``wanted``: a worker reads the
    registry again at most every ``runtime.STRATEGY_TTL_S``, so a change shows within a few
    probes; the last verdicts if it never does (the caller's assertion then says so)."""
    verdicts: dict[str, tuple[str, str]] = {}
    for block in range(first_block, first_block + 20):
        verdicts = probe(block)
        if wanted(verdicts):
            break
    return verdicts


def by_rule(verdicts: dict[str, tuple[str, str]]) -> bool:
    return all(reason.startswith("profit/gas") for _, reason in verdicts.values())


def test_a_running_worker_takes_a_new_champion_and_falls_back_from_a_bad_one(tmp_path: Path) -> None:
    runtime.reset()
    Chain.objects.create(chain_id=CHAIN, name="devnet", rpc_urls="http://127.0.0.1:8545", weth=WETH)
    with workers(tmp_path):
        data, _ = market(seed=7, blocks=300)  # meanwhile: a model of the synthetic market, as training makes one
        tr, ho = data.split(0.3)
        model = train(tr, seed=1)
        metrics = evaluate(model, ho)
        wins, why = beats(metrics["model"], metrics["rule"])
        assert wins, why
        good = services.model_version_record(model, metrics=metrics, train=tr, holdout=ho, seed=1)
        rng = random.Random(1)
        for block in range(1380, 1392):  # the fleet's recent attempts through pool 0: reverted
            s = ScoredOpportunity(make_opp(block, 0, 5, 6 * GAS * GAS_PRICE), 6.0, "execute", "profit/gas 6.0")
            services.opportunities_record([s])
            finish(s, rng)
        wait_for(lambda: all((tmp_path / f"hb-{q}").exists() for q in ("ml", "analytics")), 120, "the workers")

        before = probe(1400)
        assert by_rule(before) and before["p0-9"][0] == "execute" == before["p10-11"][0]  # the rule takes both

        services.model_version_promote(good.id, f"a test: beats the rule: {why}")
        after = probe_until(1401, lambda v: not by_rule(v))  # the same worker process, within its cache window
        assert all(reason.startswith("P(success)") for _, reason in after.values()), after
        assert after["p0-9"][0] == "skip" and "EV" in after["p0-9"][1] and after["p10-11"][0] == "execute"

        for i, (artefact, why) in enumerate(((b"garbage", "does not match its recorded SHA-256"), (b"", "the artefact is missing"))):
            bad = ModelVersion.objects.create(
                name=f"bad-{len(artefact)}", features=good.features, metrics=good.metrics, data_sha256=good.data_sha256,
                artefact=artefact, artefact_sha256=good.artefact_sha256,
            )
            services.model_version_promote(bad.id, "a test: an artefact that cannot be used")
            log = tmp_path / "ml.log"

            def reason(version: int = bad.id) -> str | None:
                return next((s for s in log.read_text().splitlines() if f"(version {version}) not loaded" in s), None)

            verdicts = probe_until(1430 + 25 * i, lambda v: by_rule(v) and reason() is not None)
            assert by_rule(verdicts) and verdicts["p0-9"][0] == "execute", verdicts
            line = reason()
            assert line is not None, f"no reason logged for version {bad.id}"
            assert why in line and "the rule decides" in line

        services.model_version_promote(good.id, "a test: the good one again")
        assert not by_rule(probe_until(1500, lambda v: not by_rule(v)))  # back to the model, still without a restart
