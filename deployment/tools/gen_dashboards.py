#!/usr/bin/env python3
"""Write the Grafana dashboards in infrastructure/grafana/dashboards/ (re-run after editing).

Dashboards are plain JSON so Grafana's file provisioning loads them and the Helm chart can
ship the same files; this script only keeps them consistent (ids, grid, datasource uid).
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "infrastructure" / "grafana" / "dashboards"
DS = {"type": "prometheus", "uid": "prometheus"}
STAGES = "scan|path|ml|execute|bridge|analytics"


def panel(pid: int, title: str, exprs: list[tuple[str, str]], unit: str = "short",
          kind: str = "timeseries", *, x: int, y: int, w: int = 12, h: int = 8) -> dict:
    return {
        "id": pid,
        "type": kind,
        "title": title,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DS, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(exprs)
        ],
    }


def dashboard(uid: str, title: str, panels: list[dict]) -> dict:
    return {
        "uid": uid,
        "title": title,
        "tags": ["arbbot"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "editable": True,
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": panels,
    }


def grid(specs: list[tuple]) -> list[dict]:
    return [panel(i + 1, *spec, x=(i % 2) * 12, y=(i // 2) * 8) for i, spec in enumerate(specs)]


DASHBOARDS = {
    "pipeline": dashboard("arbbot-pipeline", "arbbot / Pipeline throughput and latency", grid([
        ("Items processed per second, by stage",
         [("sum by (stage) (rate(arbbot_stage_items_total[1m]))", "{{stage}}")], "ops"),
        ("Batches per second, by stage",
         [("sum by (stage) (rate(arbbot_stage_batches_total[1m]))", "{{stage}}")], "ops"),
        ("Batch latency p50, by stage",
         [("histogram_quantile(0.5, sum by (stage, le) (rate(arbbot_stage_batch_seconds_bucket[5m])))", "{{stage}}")], "s"),
        ("Batch latency p99, by stage",
         [("histogram_quantile(0.99, sum by (stage, le) (rate(arbbot_stage_batch_seconds_bucket[5m])))", "{{stage}}")], "s"),
        ("Opportunities per second",
         [("sum by (chain) (rate(arbbot_opportunities_total[1m]))", "{{chain}}")], "ops"),
        ("Stage errors per second",
         [("sum by (stage) (rate(arbbot_stage_errors_total[5m]))", "{{stage}}")], "ops"),
        ("Block arrival to decision, p50 / p95 / p99, by chain",
         [(f"histogram_quantile({q}, sum by (chain, le) (rate(arbbot_block_to_decision_seconds_bucket[5m])))",
           f"p{round(q * 100)} {{{{chain}}}}") for q in (0.5, 0.95, 0.99)], "s"),
        ("Model score p50 / p90, by decision",
         [(f"histogram_quantile({q}, sum by (decision, le) (rate(arbbot_model_score_bucket[5m])))",
           f"p{round(q * 100)} {{{{decision}}}}") for q in (0.5, 0.9)]),
        ("Decisions per second, by model and decision",
         [("sum by (model, decision) (rate(arbbot_model_score_count[1m]))", "{{model}} {{decision}}")], "ops"),
    ])),
    "queues": dashboard("arbbot-queues", "arbbot / Queue depths", grid([
        ("Messages ready, by queue",
         [(f'sum by (queue) (rabbitmq_queue_messages_ready{{vhost="arbbot", queue=~"{STAGES}|dead_letter"}})', "{{queue}}")]),
        ("Messages unacked, by queue",
         [(f'sum by (queue) (rabbitmq_queue_messages_unacked{{vhost="arbbot", queue=~"{STAGES}"}})', "{{queue}}")]),
        ("Consumers, by queue",
         [(f'sum by (queue) (rabbitmq_queue_consumers{{vhost="arbbot", queue=~"{STAGES}"}})', "{{queue}}")]),
        ("Dead-lettered messages",
         [('sum(rabbitmq_queue_messages{vhost="arbbot", queue="dead_letter"})', "dead_letter")]),
        ("Publish / deliver rate",
         [("sum(rate(rabbitmq_global_messages_received_total[1m]))", "published"),
          ("sum(rate(rabbitmq_global_messages_delivered_total[1m]))", "delivered")], "ops"),
        ("Redis memory used",
         [("redis_memory_used_bytes", "{{instance}}")], "bytes"),
    ])),
    "executions": dashboard("arbbot-executions", "arbbot / Executions and PnL", grid([
        ("Executions per minute, by status",
         [("sum by (status) (increase(arbbot_executions_total[1m]))", "{{status}}")]),
        ("Execution failure ratio",
         [('sum(rate(arbbot_executions_total{status="failed"}[15m])) / clamp_min(sum(rate(arbbot_executions_total[15m])), 1e-9)', "failed")], "percentunit"),
        ("Realised PnL today (wei), by chain",
         [("sum by (chain) (arbbot_pnl_daily_wei)", "{{chain}}")]),
        ("Daily loss limit used",
         [("(- sum by (chain) (arbbot_pnl_daily_wei)) / max by (chain) (arbbot_risk_daily_loss_limit_wei)", "{{chain}}")], "percentunit"),
        ("Gas spent per minute (wei)",
         [("sum by (chain) (increase(arbbot_gas_spent_wei_total[1m]))", "{{chain}}")]),
        ("Kill switch",
         [("max(arbbot_kill_switch_engaged)", "engaged")], "short", "stat"),
        ("Nonce gaps found per hour, by chain and direction",
         [("sum by (chain, direction) (increase(arbbot_nonce_gaps_total[1h]))", "{{chain}} {{direction}}")]),
    ])),
    "rpc": dashboard("arbbot-rpc", "arbbot / RPC health", grid([
        # the RPC client knows its endpoints, not the chain: endpoint (host:port) is the label
        ("RPC requests per second, by endpoint",
         [("sum by (endpoint) (rate(arbbot_rpc_requests_total[1m]))", "{{endpoint}}")], "reqps"),
        ("RPC error ratio, by endpoint",
         [("sum by (endpoint) (rate(arbbot_rpc_errors_total[5m])) / clamp_min(sum by (endpoint) (rate(arbbot_rpc_requests_total[5m])), 1e-9)", "{{endpoint}}")], "percentunit"),
        ("RPC latency p99, by endpoint",
         [("histogram_quantile(0.99, sum by (endpoint, le) (rate(arbbot_rpc_request_seconds_bucket[5m])))", "{{endpoint}}")], "s"),
        ("Head block lag (blocks), by chain",
         [("max by (chain) (arbbot_chain_head_lag_blocks)", "{{chain}}")]),
        ("Blocks since last opportunity",
         [("max by (chain) (arbbot_blocks_since_last_opportunity)", "{{chain}}")]),
        ("Reorgs detected",
         [("sum by (chain) (increase(arbbot_reorgs_total[1h]))", "{{chain}}")]),
    ])),
    "workers": dashboard("arbbot-workers", "arbbot / Worker resources", grid([
        ("Workers up, by queue",
         [('sum by (queue) (up{job="arbbot-workers"})', "{{queue}}")]),
        ("CPU seconds per second, by queue",
         [('sum by (queue) (rate(process_cpu_seconds_total{job="arbbot-workers"}[1m]))', "{{queue}}")], "percentunit"),
        ("Resident memory, by worker",
         [('process_resident_memory_bytes{job="arbbot-workers"}', "{{queue}} {{instance}}")], "bytes"),
        ("Open file descriptors, by worker",
         [('process_open_fds{job="arbbot-workers"}', "{{queue}} {{instance}}")]),
        ("Celery tasks succeeded/failed (Flower)",
         [("sum by (task) (rate(flower_events_total{type=~\"task-succeeded|task-failed\"}[5m]))", "{{task}}")], "ops"),
        ("Web request rate",
         [('sum(rate(django_http_requests_total_by_view_transport_method_total[1m]))', "requests")], "reqps"),
    ])),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, dash in DASHBOARDS.items():
        (OUT / f"{name}.json").write_text(json.dumps(dash, indent=2) + "\n")


if __name__ == "__main__":
    main()
