"""One block's trace through every stage, exported by the real fleet (one worker process per
queue, tests/e2e/fleet.py) over OTLP/HTTP to an in-process collector, exactly as compose
exports to Jaeger: the trace context crosses three queues in the messages' headers (the path
task decides its block itself: ``workers.tasks.path.decide_here``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from arbbot.devnet.scenarios import plant_price_gap
from tests.e2e.fleet import wait_for
from tests.otlp import Span

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

#: From the block's scan to its execution: each stage's run span is the child of the
#: publish span of the stage before, in the worker process of its own queue.
STAGES = [
    ("run/workers.tasks.scan.scan_chain", "arbbot-worker-scan"),
    ("scan.publish", "arbbot-worker-scan"),
    ("apply_async/workers.tasks.path.find", "arbbot-worker-scan"),
    ("run/workers.tasks.path.find", "arbbot-worker-path"),
    ("apply_async/workers.tasks.execute.execute", "arbbot-worker-path"),
    ("run/workers.tasks.execute.execute", "arbbot-worker-execute"),
    ("execute.opportunity", "arbbot-worker-execute"),
]


def _ancestry(span: Span, by_id: dict[str, Span]) -> list[Span]:
    """``span`` and its parents up to the root (or the first parent not exported yet)."""
    chain = [span]
    while chain[-1].parent_id and chain[-1].parent_id in by_id:
        chain.append(by_id[chain[-1].parent_id])
    return chain[::-1]


def test_a_blocks_trace_spans_scan_path_ml_execute(fleet: dict[str, Any], django_db_blocker: Any) -> None:
    from webapp.core.models import Execution

    rpc, dep, traces = fleet["rpc"], fleet["dep"], fleet["traces"]
    before = rpc.block_number()
    plant_price_gap(rpc, dep, "WETH", "LINK", 4.0, dex="sushiswap")

    def executed() -> Any:
        with django_db_blocker.unblock():
            return Execution.objects.filter(chain_id=dep.chain_id, block_number__gt=before).order_by("id").first()

    row = wait_for(executed, 90, "an execution of a block after the plant")

    def traced() -> list[Span] | None:
        spans = traces.snapshot()
        by_id = {s.span_id: s for s in spans}
        for s in spans:
            if (s.name == "execute.opportunity" and s.attributes.get("arbbot.path_id") == row.path_id
                    and s.attributes.get("arbbot.block") == row.block_number):
                path = _ancestry(s, by_id)
                if not path[0].parent_id:  # back to the root: each process exports its spans in its own time
                    return path
        return None

    path = wait_for(traced, 60, f"the trace of execution {row.path_id} back to its root")
    names = [s.name for s in path]
    # the root: beat's tick (or a follower's block arrival) sending the scan
    assert names[0].startswith(("apply_async/workers.tasks.scan", "block arrived")), names
    start = names.index(STAGES[0][0])
    assert [(s.name, s.service) for s in path[start:]] == STAGES, names
    assert len({s.trace_id for s in path}) == 1
    for parent, child in zip(path, path[1:]):
        assert child.parent_id == parent.span_id
    # The block the scan published; the path stage evaluates at the head when it is behind
    # (arbbot.paths.stage), so the opportunity's block may be a later one, never an earlier:
    # the path task's span names the block it decided last.
    publish, run_path = path[start + 1], path[start + 3]
    assert publish.attributes["arbbot.chain"] == dep.chain_id
    assert publish.attributes["arbbot.block"] <= run_path.attributes["arbbot.block"] == row.block_number

    # The same trace holds the stages' JSON-RPC calls: method and batch size, no parameters.
    in_trace = [s for s in traces.snapshot() if s.trace_id == path[0].trace_id]
    rpc_spans = [s for s in in_trace if s.name.startswith("rpc ")]
    assert any(s.attributes["rpc.method"].startswith("batch:") and s.attributes["arbbot.rpc.batch_size"] > 1
               for s in rpc_spans), sorted({s.name for s in rpc_spans})
    by_id = {s.span_id: s for s in in_trace}
    revalidation = [s for s in rpc_spans if path[-1] in _ancestry(s, by_id)]  # the execute stage's own calls
    assert revalidation, sorted({s.name for s in rpc_spans})
    for s in in_trace:
        assert all(len(str(v)) < 200 for v in s.attributes.values()), (s.name, s.attributes)

    # The execute worker's log lines (stderr to a file: JSON, ARBBOT_LOG_FORMAT=auto) are one
    # JSON event a line; the execution's own line names its chain, block, path and trace,
    # and Celery's own lines go through the same formatter.
    events = [json.loads(line) for line in (fleet["logs"] / "execute.log").read_text().splitlines()
              if line.startswith("{")]
    mine = [e for e in events if e.get("path_id") == row.path_id and e["event"].startswith("execution ")]
    assert mine, "no log line of the execution"
    assert mine[0]["chain"] == dep.chain_id and mine[0]["block"] == row.block_number
    assert mine[0]["trace_id"] == path[0].trace_id and mine[0]["level"] == "info"
    assert any(e["logger"].startswith("celery.") for e in events)
