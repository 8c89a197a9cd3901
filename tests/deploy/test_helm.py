"""The Helm chart lints, its values match values.schema.json, and it renders with the real
Helm engine (helm-python-sdk embeds Helm v4) for the default values and with each toggle;
every rendered object passes the same validation as the Kustomize output."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.support import (
    CHART,
    REPO,
    by_kind,
    check_workloads,
    helm_objects,
    helm_render,
    validation_errors,
)

import helm_python

TOGGLES = {
    "defaults": {},
    "keda": {"keda": {"enabled": True}},
    "ingress": {"ingress": {"enabled": True}},
    "monitoring": {"monitoring": {"enabled": True}},
    "devnet": {"devnet": {"enabled": True}, "secrets": {"create": True, "values": {"DJANGO_SECRET_KEY": "x"}}},
    "xchain": {"xchain": {"enabled": True}},
    "all": {"keda": {"enabled": True}, "ingress": {"enabled": True}, "monitoring": {"enabled": True},
            "devnet": {"enabled": True}, "xchain": {"enabled": True}},
}


def test_chart_lints_clean() -> None:
    for values in TOGGLES.values():
        report = helm_python.lint(CHART, values, strict=True)
        errors = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
        # "icon is recommended" is severity 1 (info) and allowed.
        assert not errors, errors


def test_values_match_schema_and_schema_rejects_bad_values() -> None:
    with helm_python.Chart.load(CHART) as chart:
        chart.validate_schema(chart.values)
        for values in TOGGLES.values():
            chart.validate_schema(chart.merge_values(values))
        for bad in ({"config": {"mode": "yolo"}},
                    {"workers": {"scan": {"queue": "not-a-queue"}}},
                    {"workerDefaults": {"terminationGracePeriodSeconds": 30}},
                    {"keda": {"enabled": "yes"}},
                    {"xchain": {"enabled": "yes"}},
                    {"xchain": {"key": ""}},
                    {"unknownKey": 1}):
            with pytest.raises(helm_python.HelmValuesError):
                chart.validate_schema(chart.merge_values(bad))


@pytest.mark.parametrize("toggle", sorted(TOGGLES))
def test_chart_renders_and_validates(toggle: str) -> None:
    values = TOGGLES[toggle]
    objs = helm_objects(values)
    errors = [e for o in objs for e in validation_errors(o)]
    assert not errors, "\n".join(errors)
    keda = values.get("keda", {}).get("enabled", False)
    problems = check_workloads(objs, keda=keda)
    assert not problems, "\n".join(problems)
    assert bool(by_kind(objs, "ScaledObject")) == keda
    assert bool(by_kind(objs, "Ingress")) == values.get("ingress", {}).get("enabled", False)
    devnet = values.get("devnet", {}).get("enabled", False)
    assert any(d["metadata"]["name"].endswith("-devnet") for d in by_kind(objs, "Deployment")) == devnet
    monitoring = values.get("monitoring", {}).get("enabled", False)
    assert any(c["metadata"]["name"].endswith("-grafana-dashboards") for c in by_kind(objs, "ConfigMap")) == monitoring


def test_release_name_flows_into_keda_targets() -> None:
    objs = helm_objects({"keda": {"enabled": True}}, name="blue", namespace="trading")
    deployments = {d["metadata"]["name"] for d in by_kind(objs, "Deployment")}
    for s in by_kind(objs, "ScaledObject"):
        assert s["spec"]["scaleTargetRef"]["name"] in deployments
        assert s["spec"]["scaleTargetRef"]["name"].startswith("blue-arbbot-worker-")


def test_helm_test_hooks() -> None:
    pods = [o for o in helm_objects() if o["kind"] == "Pod"
            and o["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    scripts = {p["metadata"]["name"]: " ".join(map(str, p["spec"]["containers"][0]["command"])) for p in pods}
    assert any("/healthz" in s for s in scripts.values()), scripts
    assert any("active_queues" in s for s in scripts.values()), scripts
    worker_test = next(p for p in pods if "active_queues" in " ".join(p["spec"]["containers"][0]["command"]))
    env = {e["name"]: e.get("value") for e in worker_test["spec"]["containers"][0]["env"]}
    from workers.queues import STAGE_QUEUES
    assert set(env["EXPECTED_QUEUES"].split(",")) == set(STAGE_QUEUES)


def test_notes_render() -> None:
    notes = helm_render('{"keda": {"enabled": true}}')["arbbot/templates/NOTES.txt"]
    assert "helm test" in notes and "worker-scan" in notes
    assert "Cross-chain: off" in notes
    notes = helm_render('{"xchain": {"enabled": true}}')["arbbot/templates/NOTES.txt"]
    assert "create secret generic arbbot-xchain --from-file=xchain.key=./xchain.key" in notes


@pytest.mark.parametrize(("chart_copy", "source"), [
    ("files/prometheus-rules.yml", "infrastructure/prometheus/rules/arbbot.yml"),
    *[(f"files/dashboards/{p.name}", f"infrastructure/grafana/dashboards/{p.name}")
      for p in sorted((REPO / "infrastructure/grafana/dashboards").glob("*.json"))],
])
def test_chart_monitoring_files_match_infrastructure(chart_copy: str, source: str) -> None:
    """Helm can only read files inside the chart; the copies must not drift."""
    assert (CHART / chart_copy).read_text() == Path(REPO / source).read_text(), (
        f"helm/arbbot/{chart_copy} differs from {source}: copy it again")


def test_observability_values_reach_every_pod() -> None:
    """Traces on toward the configured collector (OTLP/HTTP), JSON log lines; an empty
    endpoint turns tracing off; alerts go to the configured webhook."""
    import yaml

    def config(values: dict) -> dict:
        objs = helm_objects(values)
        return next(c for c in by_kind(objs, "ConfigMap") if c["metadata"]["name"].endswith("-config"))["data"]

    on = config({})
    assert on["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":4318") and on["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    assert on["ARBBOT_LOG_FORMAT"] == "json"
    assert not any(k.startswith("OTEL_") for k in config({"observability": {"otlpEndpoint": ""}}))
    objs = helm_objects({"monitoring": {"enabled": True, "alertmanager": {"webhookUrl": "https://hooks.example/x"}}})
    secret = next(s for s in by_kind(objs, "Secret") if s["metadata"]["name"].endswith("-alertmanager"))
    am = yaml.safe_load(secret["stringData"]["alertmanager.yml"])
    assert am["receivers"][0]["webhook_configs"][0]["url"] == "https://hooks.example/x"
    assert am["route"]["receiver"] == am["receivers"][0]["name"]
