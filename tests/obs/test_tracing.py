"""Tracing is switched by the standard OTEL_* variables only (off by default), and a
JSON-RPC call's span says what was called and where, never with what."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from arbbot.config import trace_exporter
from arbbot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://jaeger:4318/v1/traces"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318"}, None),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://j:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, "otlp"),
        # the traces-specific protocol wins over the general one
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://j:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
          "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, "otlp"),
    ],
)
def test_tracing_is_off_unless_otel_variables_ask(monkeypatch: pytest.MonkeyPatch, env: dict, expected: str) -> None:
    for name in ("OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
                 "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
                 "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert trace_exporter() == expected


@pytest.mark.parametrize(("name", "value"), [("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), ("OTEL_TRACES_EXPORTER", "zipkin")])
def test_an_exporter_not_installed_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4317")
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        trace_exporter()


# Run in a process of its own: the SDK's tracer provider is global and once per process.
_SCRIPT = r'''
import json, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from arbbot.chain.rpc import RpcClient
from arbbot.errors import RpcError
from arbbot.obs import tracing

class Node(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if isinstance(body, list):
            reply = [{"jsonrpc": "2.0", "id": r["id"], "result": "0x1"} for r in body]
        else:  # a node's error message may quote the parameters
            reply = {"jsonrpc": "2.0", "id": body["id"],
                     "error": {"code": -32000, "message": "rejected " + json.dumps(body["params"])}}
        data = json.dumps(reply).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(data))); self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a): pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Node)
threading.Thread(target=server.serve_forever, daemon=True).start()
exporter = InMemorySpanExporter()
assert tracing.configure("test", exporter=exporter)
rpc = RpcClient(["http://127.0.0.1:1", f"http://127.0.0.1:{server.server_address[1]}"], retries=0)
rpc.batch([("eth_call", [{"to": "0x" + "11" * 20}, "latest"])] * 3)
try:
    rpc.call("eth_sendRawTransaction", ["0x02f8" + "ab" * 150])
except RpcError:
    pass
tracing.flush()
print(json.dumps([{"name": s.name, "attributes": dict(s.attributes), "status": s.status.status_code.name,
                   "description": s.status.description, "events": [(e.name, dict(e.attributes)) for e in s.events]}
                  for s in exporter.get_finished_spans()]))
'''


def test_a_json_rpc_span_names_the_method_and_endpoint_never_the_params() -> None:
    out = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    batch, send = json.loads(out.stdout.strip().splitlines()[-1])
    assert batch["name"] == "rpc batch:eth_call" and batch["status"] == "UNSET"
    assert batch["attributes"]["arbbot.rpc.batch_size"] == 3 and batch["attributes"]["rpc.system"] == "jsonrpc"
    assert batch["attributes"]["server.address"].startswith("127.0.0.1:")
    assert batch["events"][0][0] == "endpoint failed" and batch["events"][0][1]["endpoint"] == "127.0.0.1:1"
    assert send["name"] == "rpc eth_sendRawTransaction" and send["status"] == "ERROR"
    assert send["description"] == "RpcError code=-32000"
    assert "abab" not in json.dumps(send)
