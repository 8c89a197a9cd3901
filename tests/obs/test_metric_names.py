"""The Grafana dashboards and the Prometheus alert rules read exactly the metrics the code
exports: every ``arbbot_*`` name they use is in the code's registry (with the suffix its
type gives it), every label they group or select by is one of that metric's labels, and
the metrics the issue names exist with their labels."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infrastructure"
HELM_FILES = ROOT / "helm/arbbot/files"
#: Labels Prometheus adds to every scraped series (target labels of prometheus.yml).
TARGET_LABELS = {"job", "instance", "queue"}

#: The metrics issue 17 asks for, with the labels they must have.
REQUIRED = {
    "arbbot_block_to_decision_seconds": ("histogram", {"chain"}),
    "arbbot_executions_total": ("counter", {"chain", "status"}),
    "arbbot_nonce_gaps_total": ("counter", {"chain", "direction"}),
    "arbbot_model_score": ("histogram", {"chain", "model", "decision"}),
}


def _metric_modules() -> list[str]:
    """Every module of arbbot/, workers/, webapp/ that defines a metric."""
    out = []
    for package in ("arbbot", "workers", "webapp"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if re.search(r"^\s*\w+\s*=\s*(Counter|Gauge|Histogram|Summary)\(", path.read_text(), flags=re.M):
                out.append(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return out


def exported() -> dict[str, tuple[str, set[str]]]:
    """Sample name -> (type, label names) of every arbbot metric in the code's registry."""
    for module in _metric_modules():
        importlib.import_module(module)
    out: dict[str, tuple[str, set[str]]] = {}
    for collector in list(REGISTRY._collector_to_names):  # the registry has no public iterator
        if not isinstance(collector, MetricWrapperBase) or not collector._name.startswith("arbbot_"):
            continue
        kind, name, labels = collector._type, collector._name, set(collector._labelnames)
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "summary": ["_sum", "_count"]}
        for suffix in suffixes.get(kind, [""]):
            out[name + suffix] = (kind, labels | ({"le"} if suffix == "_bucket" else set()))
        out.setdefault(name, (kind, labels))  # the family name, as REQUIRED names it
    return out


def _expressions() -> dict[str, str]:
    """Where -> PromQL expression, for every dashboard panel target and alert rule (the
    compose copies and the Helm chart's)."""
    out = {}
    for base in (INFRA / "grafana/dashboards", HELM_FILES / "dashboards"):
        for path in sorted(base.glob("*.json")):
            for panel in json.loads(path.read_text())["panels"]:
                for target in panel["targets"]:
                    out[f"{path.relative_to(ROOT)}: {panel['title']} {target['refId']}"] = target["expr"]
    for path in (INFRA / "prometheus/rules/arbbot.yml", HELM_FILES / "prometheus-rules.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                out[f"{path.relative_to(ROOT)}: {rule.get('alert') or rule.get('record')}"] = rule["expr"]
    return out


def _closing(expr: str, start: int) -> int:
    depth = 0
    for i in range(start, len(expr)):
        depth += {"(": 1, ")": -1}.get(expr[i], 0)
        if depth == 0:
            return i
    raise AssertionError(f"unbalanced parentheses: {expr}")


def labels_used(expr: str) -> list[tuple[str, str]]:
    """(metric, label) pairs an expression relies on: labels in a metric's own selector,
    and the labels of ``by (...)`` for every metric inside the aggregated expression."""
    pairs = []
    for m in re.finditer(r"\b(arbbot_\w+)\s*\{([^}]*)\}", expr):
        pairs += [(m.group(1), label) for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", m.group(2))]
    for m in re.finditer(r"\bby\s*\(([^)]*)\)\s*\(", expr):
        inner = expr[m.end() - 1:_closing(expr, m.end() - 1) + 1]
        labels = [x.strip() for x in m.group(1).split(",") if x.strip()]
        pairs += [(metric, label) for metric in re.findall(r"\b(arbbot_\w+)", inner) for label in labels]
    return pairs


@pytest.mark.django_db
def test_the_metrics_the_issue_names_are_exported() -> None:
    names = exported()
    for name, (kind, labels) in REQUIRED.items():
        assert name in names, f"{name} is not in the code's registry"
        assert names[name][0] == kind and labels <= names[name][1], (name, names[name])


@pytest.mark.django_db
def test_dashboards_and_alert_rules_read_exported_names_and_labels() -> None:
    names = exported()
    problems = []
    for where, expr in _expressions().items():
        for metric in re.findall(r"\b(arbbot_\w+)", expr):
            if metric not in names:
                problems.append(f"{where}: {metric} is not exported")
        for metric, label in labels_used(expr):
            if metric in names and label not in names[metric][1] | TARGET_LABELS:
                problems.append(f"{where}: {metric} has no label {label!r} (it has {sorted(names[metric][1])})")
    assert not problems, "\n".join(problems)


def test_the_checker_catches_a_wrong_name_and_a_wrong_label() -> None:
    """Not vacuous: the extraction finds what a typo would break."""
    expr = "sum by (chain) (rate(arbbot_rpc_requests_total{endpoint=\"a\"}[5m])) / sum(arbbot_x_total)"
    assert ("arbbot_rpc_requests_total", "chain") in labels_used(expr)
    assert ("arbbot_rpc_requests_total", "endpoint") in labels_used(expr)
    assert "arbbot_x_total" in re.findall(r"\b(arbbot_\w+)", expr)


def test_every_metric_the_code_exports_is_documented() -> None:
    documented = set(re.findall(r"`(arbbot_\w+)`", (INFRA / "README.md").read_text()))
    families = {name for name, (kind, _) in exported().items()
                if not re.search(r"_(bucket|sum|count)$", name) or kind not in ("histogram", "summary")}
    families = {n for n in families if not (n + "_total" in families and exported()[n][0] == "counter")}
    missing = sorted(families - documented)
    assert not missing, f"not in infrastructure/README.md's metrics contract: {missing}"

