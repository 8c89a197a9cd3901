"""What observability costs (not a timed test): prints a table and one JSON line.

    .venv/bin/python -m bench.obs.run [--calls 3000]

In one process, against a local anvil:
* a JSON-RPC call (``eth_blockNumber``) with tracing off: the baseline, then the same with
  the SDK on (batching processor, an exporter that drops the spans: the cost on the hot
  path, not the export's);
* the span alone (``arbbot.chain.rpc._rpc_span``), off and on;
* formatting one log record: the standard ``logging.Formatter`` (the baseline) and
  ``arbbot.obs.logs.formatter`` as JSON, with context fields and redaction.
Tracing cannot be switched off again in a process, so the off figures are taken first.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
from typing import Any, Sequence

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from arbbot.chain import rpc as rpc_module
from arbbot.devnet.anvil import start_anvil
from arbbot.obs import logs, tracing
from bench.timing import per_call_us


class _Drop(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=3000)
    n = ap.parse_args().calls

    def span() -> None:
        with rpc_module._rpc_span("eth_call", 1):
            pass

    record = logging.LogRecord("arbbot.execution.stage", logging.INFO, __file__, 1,
                               "execution %s: %s tx=%s predicted=%s", ("ab12cd", "sent", "0x" + "12" * 32, 10**18),
                               None)
    plain = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    as_json = logs.formatter("json")
    logs.bind(chain=31337, block=123456, path_id="ab12cd")
    fig: dict[str, float] = {}
    with start_anvil() as anvil:
        rpc = anvil.rpc()
        rpc.block_number()
        fig["rpc_call_off_us"] = per_call_us(rpc.block_number, n)
        fig["span_off_us"] = per_call_us(span, n * 10)
        fig["log_plain_us"] = per_call_us(lambda: plain.format(record), n * 3)
        fig["log_json_us"] = per_call_us(lambda: as_json.format(record), n * 3)
        tracing.configure("bench", exporter=_Drop())
        fig["rpc_call_on_us"] = per_call_us(rpc.block_number, n)
        fig["span_on_us"] = per_call_us(span, n * 10)
    rows = [
        ("JSON-RPC call, tracing off (baseline)", fig["rpc_call_off_us"], 1.0),
        ("JSON-RPC call, tracing on", fig["rpc_call_on_us"], fig["rpc_call_on_us"] / fig["rpc_call_off_us"]),
        ("span alone, tracing off", fig["span_off_us"], fig["span_off_us"] / fig["rpc_call_off_us"]),
        ("span alone, tracing on", fig["span_on_us"], fig["span_on_us"] / fig["rpc_call_off_us"]),
        ("log record, logging.Formatter (baseline)", fig["log_plain_us"], 1.0),
        ("log record, JSON with context + redaction", fig["log_json_us"], fig["log_json_us"] / fig["log_plain_us"]),
    ]
    print(f"{'what':45} {'µs each':>9} {'x baseline':>11}")
    for what, us, ratio in rows:
        print(f"{what:45} {us:9.2f} {ratio:11.3f}")
    print(json.dumps({"bench": "obs", "machine": platform.machine(), "calls": n, **{k: round(v, 3) for k, v in fig.items()}}))


if __name__ == "__main__":
    main()
