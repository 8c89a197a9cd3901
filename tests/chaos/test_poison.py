"""Poison messages against a real Celery worker on its own vhost: malformed, of another
wire version, 50 MB, undecodable, not a Celery body. Each is dead-lettered once with its
reason, the worker never restarts and goes on with the next good message, and
``manage.py arbbot deadletters list|replay`` shows them without consuming them and puts
one back on its queue once the cause is fixed (here: a size limit raised)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from kombu import Connection

from tests.chaos.procs import ROOT, private_vhost, publish_task, worker
from tests.e2e.fleet import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

CHAIN = 990_001


def scored(n: int) -> dict[str, Any]:
    from arbbot.types import Opportunity, ScoredOpportunity

    return ScoredOpportunity(
        opportunity=Opportunity(
            chain_id=CHAIN, block_number=7, block_hash="0x" + "07" * 32, path_id=f"p-{n}",
            pools=("0x" + "01" * 20, "0x" + "02" * 20), tokens=("0x" + "e0" * 20, "0x" + "c0" * 20, "0x" + "e0" * 20),
            amount_in=10**18, amount_out=10**18 + 10**15, gas_estimate=200_000, gas_price_wei=10**9, gas_cost=10**14,
        ),
        score=1.0, decision="execute",
    ).to_wire()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    from django.db import connection

    with private_vhost() as url:
        yield dict(os.environ, ARBBOT_BROKER_URL=url, ARBBOT_DATABASE_NAME=connection.settings_dict["NAME"])


def _rows() -> int:
    from webapp.core.models import Opportunity

    return Opportunity.objects.filter(chain_id=CHAIN).count()


def _cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([sys.executable, "manage.py", "arbbot", "deadletters", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_poison_is_dead_lettered_with_its_reason_and_replayed(env: dict[str, str], tmp_path: Path) -> None:
    from workers.deadletters import list_dead_letters

    url = env["ARBBOT_BROKER_URL"]
    big = {"chain_id": 1, "block_number": 1, "block_hash": "0x" + "00" * 32, "states": ["x" * (50 * 1024 * 1024)]}
    good = [scored(n) for n in range(40)]  # about 20 kB: over the first worker's limit
    with worker("path,analytics", {**env, "ARBBOT_MAX_MESSAGE_BYTES": "16384"}, tmp_path, name="w1") as w1, \
            Connection(url) as conn:
        ids = {
            "malformed": publish_task(conn, "workers.tasks.path.find", [{"chain_id": "x", "states": "nope"}], "path"),
            "version": publish_task(conn, "workers.tasks.analytics.record_opportunities",
                                    [[{**scored(0), "wire": 2}]], "analytics"),
            "huge": publish_task(conn, "workers.tasks.path.find", [big], "path"),
            "undecodable": publish_task(conn, "workers.tasks.path.find", [], "path", raw_body=b"\xff{not json"),
            "not-celery": publish_task(conn, "workers.tasks.path.find", [], "path", raw_body=b'{"a": 1}'),
            "too-big-now": publish_task(conn, "workers.tasks.analytics.record_opportunities", [good], "analytics"),
        }
        ok = publish_task(conn, "workers.tasks.analytics.record_opportunities", [[scored(100)]], "analytics")
        wait_for(lambda: _rows() == 1, 60, "the good message after the poison to be recorded")
        letters = wait_for(lambda: (ls := list_dead_letters(url)) and len(ls) >= len(ids) and ls, 60,
                           "every poison message in the dead-letter queue")
        assert w1.poll() is None  # the same worker process throughout: no crash, no restart
    by_id = {d.task_id: d for d in letters}
    assert set(by_id) == set(ids.values()) and ok not in by_id  # each once, the good one not at all
    reason = {k: by_id[v].reason for k, v in ids.items()}
    assert reason["malformed"].startswith("malformed: ")
    assert reason["version"] == "malformed: wire version 2 not understood (this worker speaks 1)"
    assert reason["huge"].startswith("too large: ") and by_id[ids["huge"]].size_bytes > 50 * 1024 * 1024
    assert reason["undecodable"].startswith("undecodable body: ")
    assert reason["not-celery"] == "not a Celery protocol-2 body [args, kwargs, embed]"
    assert reason["too-big-now"] == f"too large: {by_id[ids['too-big-now']].size_bytes} bytes, the limit is 16384"
    assert {by_id[v].queue for v in ids.values()} == {"path", "analytics"}

    listed = _cli(env, "list")  # the operator's view; it consumes nothing
    assert listed.splitlines()[0] == f"{len(ids)} dead letter(s)"
    assert all(v in listed for v in ids.values()) and "wire version 2 not understood" in listed
    assert len(list_dead_letters(url)) == len(ids)

    # the limit raised, the batch put back: recorded once, the rest left where they are
    with worker("analytics", env, tmp_path, name="w2"):
        replayed = _cli(env, "replay", "--id", ids["too-big-now"])
        assert f"replayed {ids['too-big-now']}" in replayed
        wait_for(lambda: _rows() == 1 + len(good), 60, "the replayed batch to be recorded")
    assert {d.task_id for d in list_dead_letters(url)} == set(ids.values()) - {ids["too-big-now"]}
    out = subprocess.run([sys.executable, "manage.py", "arbbot", "deadletters", "replay", "--id", str(uuid.uuid4())],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "not in the dead-letter queue" in out.stderr


def test_a_message_that_kills_its_worker_is_dead_lettered_after_max_deliveries(env: dict[str, str],
                                                                               tmp_path: Path) -> None:
    """A message whose run SIGKILLs its pool process comes back (``acks_late``,
    ``reject_on_worker_lost``) until it has killed ``max_deliveries`` (3) of them, then is
    dead-lettered on receipt, unrun; one that kills fewer finishes and is not; the worker
    goes on serving, and no delivery count is left behind."""
    from workers import runtime
    from workers.deadletters import list_dead_letters

    url = env["ARBBOT_BROKER_URL"]
    poison, flaky = tmp_path / "poison.runs", tmp_path / "flaky.runs"
    with worker("analytics", env, tmp_path, name="wk", include="tests.chaos.killer", concurrency=2) as w, \
            Connection(url) as conn:
        bad = publish_task(conn, "tests.chaos.killer.run", [str(poison), 1000], "analytics")
        ok_after_two = publish_task(conn, "tests.chaos.killer.run", [str(flaky), 2], "analytics")
        good = publish_task(conn, "workers.tasks.analytics.record_opportunities", [[scored(200)]], "analytics")
        letters = wait_for(lambda: list_dead_letters(url) or None, 90, "the poison message in the dead-letter queue")
        wait_for(lambda: _rows() == 1, 60, "the good message to be recorded")
        wait_for(lambda: flaky.exists() and len(flaky.read_text().splitlines()) == 3, 60,
                 "the message that killed two workers to run a third time")
        after = publish_task(conn, "workers.tasks.analytics.record_opportunities", [[scored(201)]], "analytics")
        wait_for(lambda: _rows() == 2, 60, "the next good message to be recorded")
        assert w.poll() is None  # the same worker throughout: only its pool processes died
    assert [(d.task_id, d.queue, d.reason) for d in letters] == [(bad, "analytics", "killed its worker 3 times")]
    assert len(poison.read_text().splitlines()) == 3  # run three times, never a fourth
    assert len(set(poison.read_text().splitlines())) == 3  # each in a pool process of its own, killed
    assert {d.task_id for d in list_dead_letters(url)} == {bad}  # neither good nor flaky nor after
    fleet = runtime.fleet()
    assert not any(fleet.redis.exists(fleet.deliveries_key(t)) for t in (bad, ok_after_two, good, after))
