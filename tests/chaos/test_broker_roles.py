"""The RabbitMQ users of ``infrastructure/rabbitmq/definitions.json``, on a private node
that imports the file as ``render-definitions.sh`` renders it (the same script the compose
service runs): a worker role consumes its own queue and publishes on, and cannot consume
or purge another stage's queue; no role but the operators' ``arbbot`` is an administrator.
Starting a node takes 20-30 s here, so this runs with ``make chaos``."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
from amqp.exceptions import AccessRefused, NotAllowed
from kombu import Connection, Consumer

from tests.chaos.services import PrivateRabbit
from workers import queues

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.skipif(not os.environ.get("ARBBOT_CHAOS"), reason="the long chaos cases run with `make chaos`"),
]

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "infrastructure" / "rabbitmq" / "definitions.json"
ROLES = [u["name"] for u in json.loads(DEFINITIONS.read_text())["users"]]


@pytest.fixture(scope="module")
def broker() -> Iterator[dict[str, Any]]:
    node = PrivateRabbit()
    try:
        passwords = {r: secrets.token_hex(12) for r in ROLES}
        env = {**os.environ, **{f"RABBITMQ_PASSWORD_{('admin' if r == 'arbbot' else r).upper()}": pw
                                for r, pw in passwords.items()}}
        out = node.dir / "definitions.json"
        subprocess.run(["sh", str(ROOT / "infrastructure/rabbitmq/render-definitions.sh"), str(DEFINITIONS),
                        str(out)], env=env, check=True, timeout=30)
        node._ctl("import_definitions", str(out))
        yield {"node": node, "passwords": passwords}
    finally:
        node.close()


def conn(broker: dict[str, Any], user: str) -> Connection:
    return Connection(f"amqp://{user}:{broker['passwords'][user]}@127.0.0.1:{broker['node'].port}/arbbot",
                      connect_timeout=10)


def test_only_the_operators_are_administrators() -> None:
    users = {u["name"]: u for u in json.loads(DEFINITIONS.read_text())["users"]}
    assert users.pop("arbbot")["tags"] == ["administrator"]
    assert set(queues.STAGE_QUEUES) <= set(users), "one user per stage"
    assert all("administrator" not in u["tags"] and "password_hash" not in u for u in users.values())


def test_a_stage_role_declares_consumes_its_queue_and_publishes_on(broker: dict[str, Any]) -> None:
    with conn(broker, "path") as c:
        queues.declare_topology(c)  # what every worker does at start
        with c.Producer() as p:
            p.publish({"x": 1}, exchange=queues.EXCHANGE_NAME, routing_key="ml", declare=[], retry=False)
            p.publish({"x": 2}, exchange=queues.EXCHANGE_NAME, routing_key="path", declare=[], retry=False)
        got: list[Any] = []
        path_q = next(q for q in queues.celery_queues() if q.name == "path")
        with Consumer(c, [path_q], callbacks=[lambda body, m: (got.append(body), m.ack())], auto_declare=False):
            c.drain_events(timeout=10)
        assert got == [{"x": 2}]
    with conn(broker, "ml") as c:
        assert c.default_channel.queue_declare("ml", passive=True).message_count == 1


@pytest.mark.parametrize(("user", "queue"), [("scan", "execute"), ("path", "execute"), ("beat", "scan"),
                                              ("flower", "execute"), ("ml", "dead_letter"),
                                              ("keda", "scan")])
def test_a_role_cannot_consume_or_purge_another_queue(broker: dict[str, Any], user: str, queue: str) -> None:
    with conn(broker, "arbbot") as c:
        queues.declare_topology(c)
    with conn(broker, user) as c:
        with pytest.raises(AccessRefused):
            c.default_channel.basic_get(queue)
    with conn(broker, user) as c:
        with pytest.raises(AccessRefused):
            c.default_channel.queue_purge(queue)


def test_no_role_reaches_another_vhost_or_the_admin_side(broker: dict[str, Any]) -> None:
    broker["node"]._ctl("add_vhost", "other")
    for user in ("scan", "execute", "web"):
        with pytest.raises((AccessRefused, NotAllowed)):
            with Connection(f"amqp://{user}:{broker['passwords'][user]}@127.0.0.1:{broker['node'].port}/other",
                            connect_timeout=10) as c:
                c.connect()
