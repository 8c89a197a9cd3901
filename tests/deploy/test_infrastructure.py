"""The config files the compose services load say what the issue asks: RabbitMQ loads its
definitions at boot, Redis persists with AOF, TimescaleDB gets its extension, nginx limits
100 r/s per client with a burst and sets proxy headers, Prometheus scrapes every part and
carries the required alerts, Grafana is provisioned with the dashboards."""

from __future__ import annotations

import json
import re

import yaml

from tests.deploy.support import REPO

INFRA = REPO / "infrastructure"


def test_rabbitmq_loads_definitions_at_boot() -> None:
    conf = (INFRA / "rabbitmq/rabbitmq.conf").read_text()
    assert re.search(r"^load_definitions\s*=\s*/tmp/arbbot-definitions.json$", conf, flags=re.M)
    plugins = (INFRA / "rabbitmq/enabled_plugins").read_text()
    assert "rabbitmq_management" in plugins and "rabbitmq_prometheus" in plugins


def test_redis_aof() -> None:
    conf = (INFRA / "redis/redis.conf").read_text()
    assert re.search(r"^appendonly yes$", conf, flags=re.M)
    assert re.search(r"^appendfsync (everysec|always)$", conf, flags=re.M)


def test_timescaledb_init_enables_extension() -> None:
    sql = " ".join(p.read_text() for p in sorted((INFRA / "timescaledb").glob("*.sql")))
    assert "CREATE EXTENSION IF NOT EXISTS timescaledb" in sql


def test_nginx_rate_limit_and_proxy_headers() -> None:
    conf = (INFRA / "nginx/nginx.conf").read_text()
    assert re.search(r"limit_req_zone \$binary_remote_addr zone=(\w+):\w+ rate=100r/s;", conf)
    assert re.search(r"limit_req zone=\w+ burst=\d+", conf)
    # both limits refuse with 429, never a 5xx (nginx's limit_conn default is 503)
    assert re.search(r"^\s*limit_req_status 429;", conf, re.M) and re.search(r"^\s*limit_conn_status 429;", conf, re.M)
    for header in ("Host", "X-Real-IP", "X-Forwarded-For", "X-Forwarded-Proto"):
        assert re.search(rf"proxy_set_header {header}\s", conf), header
    assert "server web:8000" in conf


def test_prometheus_scrapes_every_part() -> None:
    prom = yaml.safe_load((INFRA / "prometheus/prometheus.yml").read_text())
    jobs = {j["job_name"] for j in prom["scrape_configs"]}
    assert {"arbbot-web", "arbbot-workers", "flower", "rabbitmq", "redis"} <= jobs
    targets = {t for j in prom["scrape_configs"] for sc in j["static_configs"] for t in sc["targets"]}
    assert "web:8000" in targets and all(t.endswith(":9808") for t in targets if t.startswith("worker-"))
    assert prom["rule_files"]


def test_alert_rules() -> None:
    rules = yaml.safe_load((INFRA / "prometheus/rules/arbbot.yml").read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    required = {"QueueDepthGrowing", "WorkerDown", "ExecutionFailureRateHigh", "RpcErrorRateHigh",
                "NoOpportunitiesForBlocks", "DailyLossNearLimit", "ModelFeatureDrift"}
    assert required <= set(alerts), required - set(alerts)
    for name, rule in alerts.items():
        assert rule["expr"].strip() and "for" in rule, name
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"], name
        assert rule["expr"].count("(") == rule["expr"].count(")"), name


def test_grafana_provisioning_and_dashboards() -> None:
    ds = yaml.safe_load((INFRA / "grafana/provisioning/datasources/datasources.yml").read_text())
    uids = {d["uid"] for d in ds["datasources"]}
    assert "prometheus" in uids
    prov = yaml.safe_load((INFRA / "grafana/provisioning/dashboards/dashboards.yml").read_text())
    assert prov["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboards = {p.stem: json.loads(p.read_text()) for p in (INFRA / "grafana/dashboards").glob("*.json")}
    assert {"pipeline", "queues", "executions", "rpc", "workers"} <= set(dashboards)
    seen_uids = set()
    for name, dash in dashboards.items():
        assert dash["uid"] not in seen_uids
        seen_uids.add(dash["uid"])
        assert dash["panels"], name
        for panel in dash["panels"]:
            assert panel["datasource"]["uid"] in uids
            assert all(t["expr"] for t in panel["targets"]), (name, panel["title"])


def test_alerts_route_to_a_configurable_receiver() -> None:
    prom = yaml.safe_load((INFRA / "prometheus/prometheus.yml").read_text())
    targets = [t for am in prom["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]]
    assert targets == ["alertmanager:9093"]
    am = yaml.safe_load((INFRA / "alertmanager/alertmanager.yml").read_text())
    receivers = {r["name"]: r for r in am["receivers"]}
    assert am["route"]["receiver"] in receivers
    assert all(r["receiver"] in receivers for r in am["route"].get("routes", []))
    # the URL comes from a file the operator mounts (compose: ALERTMANAGER_WEBHOOK_URL_FILE)
    assert receivers["webhook"]["webhook_configs"][0]["url_file"] == "/etc/alertmanager/webhook-url"
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["alertmanager"]
    assert any(v.startswith("${ALERTMANAGER_WEBHOOK_URL_FILE") and v.endswith(":/etc/alertmanager/webhook-url:ro")
               for v in compose["volumes"])
