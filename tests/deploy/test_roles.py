"""Every process has its own role's broker and Redis user, in every rendering: a worker the
user of its queue (definitions.json), and the Redis user that may write what it writes
(users.acl): scan pool state, execute the nonce locks, web the kill switch, the rest read
only. No process gets the operators' administrator users, and no shared Secret hands every
pod the same URL."""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

import pytest

from tests.deploy.support import REPO, by_kind, helm_objects, kustomize, overlays, pod_spec, worker_queue

DEFINITIONS = json.loads((REPO / "infrastructure/rabbitmq/definitions.json").read_text())
BROKER_USERS = {u["name"] for u in DEFINITIONS["users"]} - {"arbbot"}
REDIS_USERS = set(re.findall(r"^user (\S+) on ", (REPO / "infrastructure/redis/users.acl").read_text(), re.M)) - {
    "admin", "exporter"}
REDIS_OF_QUEUE = {"scan": "scan", "execute": "execute"}  # the other stages read only


def containers(objs: Iterable[dict[str, Any]]) -> Iterable[tuple[dict[str, Any], dict[str, Any]]]:
    for obj in objs:
        if obj["kind"] in ("Deployment", "Job", "Pod", "CronJob"):
            spec = obj["spec"] if obj["kind"] == "Pod" else (
                obj["spec"]["jobTemplate"]["spec"]["template"]["spec"] if obj["kind"] == "CronJob" else pod_spec(obj))
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                yield obj, c


def role_keys(c: dict[str, Any]) -> dict[str, str]:
    out = {}
    for e in c.get("env") or []:
        ref = (e.get("valueFrom") or {}).get("secretKeyRef")
        if e["name"] in ("ARBBOT_BROKER_URL", "ARBBOT_REDIS_URL") and ref:
            out[e["name"]] = ref["key"]
    return out


def check(objs: list[dict[str, Any]]) -> list[str]:
    problems = []
    for obj, c in containers(objs):
        if not any((e.get("secretRef") or {}).get("name", "").endswith("secrets") for e in c.get("envFrom") or []):
            continue  # not an arbbot process (anvil, nginx ...)
        where = f"{obj['kind']}/{obj['metadata']['name']}/{c['name']}"
        keys = role_keys(c)
        if set(keys) != {"ARBBOT_BROKER_URL", "ARBBOT_REDIS_URL"}:
            problems.append(f"{where}: no role URLs ({keys})")
            continue
        broker = keys["ARBBOT_BROKER_URL"].removeprefix("broker-url-")
        redis = keys["ARBBOT_REDIS_URL"].removeprefix("redis-url-")
        if broker not in BROKER_USERS or redis not in REDIS_USERS:
            problems.append(f"{where}: unknown role {broker}/{redis}")
        queue = worker_queue(obj) if obj["kind"] == "Deployment" else None
        if queue and (broker != queue or redis != REDIS_OF_QUEUE.get(queue, "pipeline")):
            problems.append(f"{where}: the {queue} worker has {broker}/{redis}")
    for secret in by_kind(objs, "Secret"):
        data = {**(secret.get("data") or {}), **(secret.get("stringData") or {})}
        if {"ARBBOT_BROKER_URL", "ARBBOT_REDIS_URL"} & set(data):
            problems.append(f"Secret/{secret['metadata']['name']}: one URL for every pod")
    return problems


@pytest.mark.parametrize("overlay", ["k8s/base", *overlays()])
def test_kustomize_processes_have_their_roles(overlay: str) -> None:
    assert not check(list(kustomize(overlay)))


@pytest.mark.parametrize("values", [{}, {"devnet": {"enabled": True}, "keda": {"enabled": True}}])
def test_helm_processes_have_their_roles(values: dict[str, Any]) -> None:
    assert not check(helm_objects(values))


def test_the_check_catches_a_worker_with_another_role() -> None:
    objs = list(kustomize("k8s/base"))
    execute = next(o for o in by_kind(objs, "Deployment") if worker_queue(o) == "execute")
    role_env = pod_spec(execute)["containers"][0]["env"]
    next(e for e in role_env if e["name"] == "ARBBOT_REDIS_URL")["valueFrom"]["secretKeyRef"]["key"] = "redis-url-scan"
    assert check(objs) == [f"Deployment/{execute['metadata']['name']}/worker: the execute worker has execute/scan"]
