"""Auth at the edge, in every deployment artefact: /admin and /metrics are never routed from
outside (nginx, the Kustomize and Helm ingresses), Flower needs its basic-auth login
(compose, Kustomize, Helm), Prometheus scrapes the web app's /metrics with the bearer
token, and no configuration lists '*' as an allowed host or ships the development key
outside the devnet."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.deploy.support import REPO, by_kind, helm_objects, helm_render, kustomize, overlays, pod_spec

HIDDEN = ("/admin", "/metrics")


def exposes_hidden(path: str, kind: str) -> bool:
    return (kind == "Prefix" and path == "/") or any(path.startswith(h) for h in HIDDEN)


def ingress_paths(objs: list[dict] | tuple[dict, ...]) -> list[tuple[str, str]]:
    return [(p["path"], p["pathType"]) for i in by_kind(objs, "Ingress") for r in i["spec"]["rules"]
            for p in r["http"]["paths"]]


def test_nginx_refuses_admin_and_metrics() -> None:
    conf = (REPO / "infrastructure/nginx/nginx.conf").read_text()
    for hidden in HIDDEN:
        block = re.search(rf"location \^~ {hidden} \{{\s*return 404;", conf)
        assert block, f"nginx must answer 404 for {hidden}*"


def test_compose_flower_needs_a_login_and_prometheus_a_token() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    assert services["flower"]["environment"]["FLOWER_BASIC_AUTH"].endswith(":?set FLOWER_BASIC_AUTH (user:password) in .env}")
    assert "ARBBOT_METRICS_TOKEN" in services["prometheus"]["environment"]
    prom = yaml.safe_load((REPO / "infrastructure/prometheus/prometheus.yml").read_text())
    (web,) = [j for j in prom["scrape_configs"] if j["job_name"] == "arbbot-web"]
    assert web["authorization"] == {"type": "Bearer", "credentials_file": "/tmp/arbbot-metrics.token"}
    assert "/tmp/arbbot-metrics.token" in " ".join(services["prometheus"]["entrypoint"])


@pytest.mark.parametrize("overlay", overlays())
def test_kustomize_edge_and_flower(overlay: str) -> None:
    objs = kustomize(overlay)
    paths = ingress_paths(objs)
    assert paths and not [p for p in paths if exposes_hidden(*p)], paths
    config = next(c for c in by_kind(objs, "ConfigMap") if c["metadata"]["name"].endswith("arbbot-config"))
    assert "*" not in config["data"]["DJANGO_ALLOWED_HOSTS"].split(",")
    host = by_kind(objs, "Ingress")[0]["spec"]["rules"][0]["host"]
    assert config["data"]["DJANGO_CSRF_TRUSTED_ORIGINS"] == f"https://{host}"
    assert host in config["data"]["DJANGO_ALLOWED_HOSTS"].split(",")
    assert (config["data"].get("ARBBOT_DEVNET") == "1") == overlay.endswith("/dev")
    for deployment in by_kind(objs, "Deployment"):
        containers = pod_spec(deployment)["containers"]
        env = {e["name"]: e for c in containers for e in c.get("env", [])}
        if deployment["metadata"]["name"].endswith("flower"):
            assert env["FLOWER_BASIC_AUTH"]["valueFrom"]["secretKeyRef"]["key"] == "FLOWER_BASIC_AUTH"
        if deployment["metadata"]["name"].endswith("-web"):
            assert env["ARBBOT_POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"


def test_helm_edge_and_flower() -> None:
    objs = helm_objects({"ingress": {"enabled": True}})
    paths = ingress_paths(objs)
    assert paths and not [p for p in paths if exposes_hidden(*p)], paths
    config = next(c for c in by_kind(objs, "ConfigMap") if c["metadata"]["name"].endswith("arbbot-config"))
    assert config["data"]["DJANGO_ALLOWED_HOSTS"] == "localhost,127.0.0.1,arbbot.example.com"
    assert config["data"]["DJANGO_CSRF_TRUSTED_ORIGINS"] == "https://arbbot.example.com"
    assert config["data"]["DJANGO_SECURE_PROXY_SSL_HEADER"] == "X-Forwarded-Proto"
    assert "ARBBOT_DEVNET" not in config["data"]
    flower = [d for d in by_kind(objs, "Deployment") if d["metadata"]["name"].endswith("flower")]
    env = {e["name"]: e for e in pod_spec(flower[0])["containers"][0]["env"]}
    assert env["FLOWER_BASIC_AUTH"]["valueFrom"]["secretKeyRef"]["key"] == "FLOWER_BASIC_AUTH"


@pytest.mark.parametrize("values", [
    {"ingress": {"enabled": True, "prefixPaths": ["/admin/"]}},
    {"ingress": {"enabled": True, "prefixPaths": ["/"]}},
    {"ingress": {"enabled": True, "exactPaths": ["/metrics"]}},
    {"config": {"allowedHosts": "arbbot.example.com,*"}},
])
def test_helm_refuses_to_expose_them(values: dict) -> None:
    with pytest.raises(Exception) as refused:
        helm_render(json.dumps(values))
    assert re.search(r"would expose /admin or /metrics|allowedHosts", str(refused.value))
