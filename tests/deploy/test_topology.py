"""One queue topology everywhere: workers/queues.py (Celery) is the source of truth;
definitions.json, the KEDA triggers (Kustomize and Helm), the compose worker services,
the Helm worker pools and the Prometheus worker targets must name the same queues with
the same dead-letter arguments. A mismatch means PRECONDITION_FAILED at the broker or a
pool nobody scales."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.deploy.support import (
    REPO,
    by_kind,
    helm_objects,
    keda_queues,
    kustomize,
    overlays,
    worker_queue,
)
from workers import queues as q

DEFINITIONS = json.loads((REPO / "infrastructure/rabbitmq/definitions.json").read_text())
STAGES = set(q.STAGE_QUEUES)
VHOST = "arbbot"


def test_definitions_queues_equal_celery_queues() -> None:
    declared = {d["name"]: d for d in DEFINITIONS["queues"]}
    assert set(declared) == STAGES | {q.DEAD_LETTER_QUEUE}
    celery = {cq.name: cq for cq in q.celery_queues()}
    assert set(celery) == set(declared)
    for name, cq in celery.items():
        d = declared[name]
        assert d["vhost"] == VHOST
        assert d["durable"] is bool(cq.durable) is True
        assert d["auto_delete"] is bool(cq.auto_delete)
        # The exact arguments: any difference is PRECONDITION_FAILED on re-declare.
        assert d["arguments"] == (cq.queue_arguments or {}), name
    for name in STAGES:
        assert declared[name]["arguments"] == q.queue_arguments() == {
            "x-dead-letter-exchange": "arbbot.dlx", "x-dead-letter-routing-key": "dead_letter"}


def test_definitions_exchanges_and_bindings_equal_celery() -> None:
    exchanges = {e["name"]: e for e in DEFINITIONS["exchanges"]}
    assert exchanges[q.EXCHANGE_NAME]["type"] == q.exchange.type == "direct"
    assert exchanges[q.DLX_NAME]["type"] == q.dlx.type == "direct"
    assert all(e["durable"] for e in exchanges.values())
    bindings = {(b["source"], b["destination"], b["routing_key"]) for b in DEFINITIONS["bindings"]}
    expected = {(cq.exchange.name, cq.name, cq.routing_key) for cq in q.celery_queues()}
    assert bindings == expected
    assert (q.DLX_NAME, q.DEAD_LETTER_QUEUE, q.DEAD_LETTER_QUEUE) in bindings


def test_definitions_vhost_user_and_policies() -> None:
    assert [v["name"] for v in DEFINITIONS["vhosts"]] == [VHOST]
    assert any(p["vhost"] == VHOST and p["user"] == "arbbot" for p in DEFINITIONS["permissions"])
    for policy in DEFINITIONS["policies"]:
        matched = {name for name in STAGES | {q.DEAD_LETTER_QUEUE} if re.search(policy["pattern"], name)}
        assert matched, f"policy {policy['name']} matches no queue"
        # A policy must not override the dead-letter arguments Celery declares.
        assert not {"dead-letter-exchange", "dead-letter-routing-key"} & set(policy["definition"])
    stage_policy = next(p for p in DEFINITIONS["policies"] if p["name"] == "stage-queue-cap")
    assert {n for n in STAGES | {q.DEAD_LETTER_QUEUE} if re.search(stage_policy["pattern"], n)} == STAGES


def test_keda_reads_queue_lengths_as_a_monitoring_user_with_no_queue_rights() -> None:
    """KEDA's management-API URL (the Secret template) names definitions.json's ``keda``: the
    monitoring tag (it reads queue lengths) and ``^$`` for configure, write and read, so a
    leaked autoscaler credential can neither consume, publish nor purge."""
    secret = next(o for o in yaml.safe_load_all((REPO / "k8s/base/secret.yaml").read_text())
                  if o and o["metadata"]["name"] == "arbbot-secrets")
    url = secret["stringData"]["ARBBOT_BROKER_MANAGEMENT_URL"]
    user = url.split("://", 1)[1].split(":", 1)[0]
    users = {u["name"]: u for u in DEFINITIONS["users"]}
    assert user == "keda" and users[user]["tags"] == ["monitoring"]
    rights = [p for p in DEFINITIONS["permissions"] if p["user"] == user]
    assert rights == [{"user": user, "vhost": VHOST, "configure": "^$", "write": "^$", "read": "^$"}]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert "RABBITMQ_PASSWORD_KEDA" in compose["services"]["rabbitmq"]["environment"]  # rendered at start


def test_celery_routing_reaches_every_stage_queue() -> None:
    for name in STAGES:
        assert q.route_for_task(f"workers.tasks.{name}.anything") == name
    assert q.route_for_task("workers.tasks.nope.x") is None


@pytest.mark.parametrize("overlay", ["k8s/base", *overlays()])
def test_kustomize_keda_triggers_and_workers_name_the_stage_queues(overlay: str) -> None:
    objs = kustomize(overlay)
    assert sorted(keda_queues(objs).values()) == sorted(STAGES)
    for s in by_kind(objs, "ScaledObject"):
        assert s["spec"]["triggers"][0]["metadata"]["vhostName"] == VHOST
    assert sorted(filter(None, map(worker_queue, by_kind(objs, "Deployment")))) == sorted(STAGES)
    # Each ScaledObject scales the Deployment that consumes the queue it watches.
    deployments = {d["metadata"]["name"]: worker_queue(d) for d in by_kind(objs, "Deployment")}
    for s in by_kind(objs, "ScaledObject"):
        assert deployments[s["spec"]["scaleTargetRef"]["name"]] == s["spec"]["triggers"][0]["metadata"]["queueName"]


def test_helm_pools_triggers_and_workers_name_the_stage_queues() -> None:
    values = yaml.safe_load((REPO / "helm/arbbot/values.yaml").read_text())
    assert {p["queue"] for p in values["workers"].values()} == STAGES
    assert values["keda"]["vhost"] == VHOST
    objs = helm_objects({"keda": {"enabled": True}})
    assert sorted(keda_queues(objs).values()) == sorted(STAGES)
    deployments = {d["metadata"]["name"]: worker_queue(d) for d in by_kind(objs, "Deployment")}
    assert sorted(filter(None, deployments.values())) == sorted(STAGES)
    for s in by_kind(objs, "ScaledObject"):
        assert deployments[s["spec"]["scaleTargetRef"]["name"]] == s["spec"]["triggers"][0]["metadata"]["queueName"]


def test_compose_worker_services_name_the_stage_queues() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    consumed = {}
    for name, svc in compose["services"].items():
        command = svc.get("command") or []
        if "worker" in command and "-Q" in command:
            consumed[name] = command[command.index("-Q") + 1]
    assert sorted(consumed.values()) == sorted(STAGES)
    assert {f"worker-{v}" for v in consumed.values()} == set(consumed)
    # The broker URL points at the vhost definitions.json creates, as the worker's own user.
    assert compose["x-app-env"]["ARBBOT_BROKER_URL"].endswith(f"/{VHOST}")
    users = {u["name"] for u in DEFINITIONS["users"]}
    for name, queue in consumed.items():
        url = compose["services"][name]["environment"]["ARBBOT_BROKER_URL"]
        assert url.split("://", 1)[1].startswith(f"{queue}:") and url.endswith(f"/{VHOST}"), name
        assert queue in users


#: The Redis user (infrastructure/redis/users.acl) of each compose service that has its own.
REDIS_ROLES = {"worker-scan": "scan", "follower": "scan", "worker-path": "pipeline", "worker-ml": "pipeline",
               "worker-bridge": "pipeline", "worker-analytics": "pipeline", "worker-execute": "execute",
               "web": "web"}


def test_compose_services_use_their_roles() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    acl = (REPO / "infrastructure/redis/users.acl").read_text()
    for name, svc in compose["services"].items():
        env = svc.get("environment") or {}
        url = env.get("ARBBOT_REDIS_URL") if isinstance(env, dict) else None
        if url is None:
            continue
        user = url.split("://", 1)[1].split(":", 1)[0]
        assert user == REDIS_ROLES.get(name, "viewer"), f"{name} has the Redis user {user}"
        assert f"\nuser {user} on " in acl
        broker = env["ARBBOT_BROKER_URL"].split("://", 1)[1].split(":", 1)[0]
        assert broker != "arbbot", f"{name}: the administrator's broker user"


def test_prometheus_and_alerts_cover_the_stage_queues() -> None:
    prom = yaml.safe_load((REPO / "infrastructure/prometheus/prometheus.yml").read_text())
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == "arbbot-workers")
    assert {sc["labels"]["queue"] for sc in job["static_configs"]} == STAGES
    rules = (REPO / "infrastructure/prometheus/rules/arbbot.yml").read_text()
    for regex in set(re.findall(r'queue=~"([^"]+)"', rules)):
        assert set(regex.split("|")) == STAGES, regex
