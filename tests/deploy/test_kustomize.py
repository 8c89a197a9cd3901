"""Every Kustomize overlay builds, and every object it renders validates offline: built-in
kinds against the Kubernetes schemas (kubernetes-validate, strict), KEDA kinds against the
CRD schemas in k8s/crds/keda/."""

from __future__ import annotations

import copy

import pytest

from tests.deploy.support import (
    by_kind,
    check_workloads,
    kustomize,
    overlays,
    validation_errors,
)

OVERLAYS = overlays()


def test_all_overlays_present() -> None:
    expected = {"k8s/overlays/dev", "k8s/overlays/staging", "k8s/overlays/production",
                "k8s/overlays/regions/us-east-1", "k8s/overlays/regions/eu-west-1",
                "k8s/overlays/regions/ap-southeast-1"}
    assert expected <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", ["k8s/base", *OVERLAYS])
def test_overlay_builds_and_validates(overlay: str) -> None:
    objs = kustomize(overlay)
    assert objs, f"{overlay} rendered nothing"
    errors = [e for o in objs for e in validation_errors(o)]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("overlay", ["k8s/base", *OVERLAYS])
def test_overlay_workload_rules(overlay: str) -> None:
    problems = check_workloads(list(kustomize(overlay)), keda=True)
    assert not problems, "\n".join(problems)


def test_name_prefix_rewrites_keda_references() -> None:
    """dev uses namePrefix; the nameReference config must carry it into KEDA's fields."""
    objs = kustomize("k8s/overlays/dev")
    for s in by_kind(objs, "ScaledObject"):
        assert s["spec"]["scaleTargetRef"]["name"].startswith("dev-arbbot-worker-")
        assert s["spec"]["triggers"][0]["authenticationRef"]["name"] == "dev-arbbot-rabbitmq"
    (auth,) = by_kind(objs, "TriggerAuthentication")
    assert auth["spec"]["secretTargetRef"][0]["name"] == "dev-arbbot-secrets"
    assert "dev-arbbot-secrets" in {s["metadata"]["name"] for s in by_kind(objs, "Secret")}


@pytest.mark.parametrize("overlay", [o for o in OVERLAYS if not o.endswith("/dev")])
def test_non_dev_overlays_ship_no_placeholder_secrets(overlay: str) -> None:
    objs = kustomize(overlay)
    assert not by_kind(objs, "Secret"), "placeholder Secrets must be deleted outside dev"
    assert not [d for d in by_kind(objs, "Deployment") if d["metadata"]["name"].endswith("devnet")]


@pytest.mark.parametrize(("overlay", "mode"), [
    ("k8s/overlays/dev", "dry-run"), ("k8s/overlays/staging", "paper"), ("k8s/overlays/production", "live"),
    ("k8s/overlays/regions/eu-west-1", "live"),
])
def test_overlay_modes(overlay: str, mode: str) -> None:
    cm = next(c for c in by_kind(kustomize(overlay), "ConfigMap") if c["metadata"]["name"].endswith("arbbot-config"))
    assert cm["data"]["ARBBOT_MODE"] == mode


def test_region_overlays_differ_by_region() -> None:
    hosts = {}
    for region in ("us-east-1", "eu-west-1", "ap-southeast-1"):
        objs = kustomize(f"k8s/overlays/regions/{region}")
        (ing,) = by_kind(objs, "Ingress")
        hosts[region] = ing["spec"]["rules"][0]["host"]
        for d in by_kind(objs, "Deployment"):
            assert d["metadata"]["labels"]["topology.arbbot.io/region"] == region
    assert len(set(hosts.values())) == 3


def test_validators_reject_broken_objects() -> None:
    """The validators are live: a misspelt field fails both the Kubernetes and the KEDA path."""
    objs = kustomize("k8s/overlays/production")
    deployment = copy.deepcopy(by_kind(objs, "Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    assert validation_errors(deployment)
    scaled = copy.deepcopy(by_kind(objs, "ScaledObject")[0])
    scaled["spec"]["triggers"][0]["metadata"]["value"] = 20  # must be a string
    assert validation_errors(scaled)
    scaled = copy.deepcopy(by_kind(objs, "ScaledObject")[0])
    scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"] = 5, 2
    assert validation_errors(scaled)
    scaled = copy.deepcopy(by_kind(objs, "ScaledObject")[0])
    scaled["spec"]["pollingIntervall"] = 5
    assert validation_errors(scaled)


def test_dev_devnet_job_points_at_the_devnet_service() -> None:
    objs = kustomize("k8s/overlays/dev")
    (job,) = by_kind(objs, "Job")
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    host = env["DEVNET_RPC_URL"].split("//", 1)[1].split(":", 1)[0]
    assert host in {s["metadata"]["name"] for s in by_kind(objs, "Service")}
