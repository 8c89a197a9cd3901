"""What the crash-loop guard costs per message (not a timed test): prints a table and one
JSON line.

    .venv/bin/python -m bench.deliveries.run [--calls 20000]

In one process, against the Redis of ``ARBBOT_REDIS_URL``: the receipt check of
``workers.deadletters.bounded`` (Celery's own strategy replaced by a no-op, so only the
checks are timed) with the guard off (``max_deliveries`` 0: the baseline) and on, for a
first delivery and for a redelivery (one ``GET``); and ``StageTask.__call__`` around an
empty task body (with the worker's stack protection installed, as in a worker), ``task.run``
as its baseline (what the worker calls for a task class without ``__call__``), for a first delivery and for a
redelivery (``INCR``+``EXPIRE`` in one round trip, then ``DEL``). One Redis ``PING`` is
the round trip for scale.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import uuid
from typing import Any, Callable

from celery import Celery, Task
from celery.app.trace import _install_stack_protection
from kombu.message import Message

from workers import deadletters, runtime
from bench.timing import per_call_us


def _handler(max_deliveries: int) -> Callable[..., Any]:
    os.environ["ARBBOT_MAX_DELIVERIES"] = str(max_deliveries)
    real = deadletters.default_strategy
    deadletters.default_strategy = lambda *a, **kw: (lambda *a, **kw: None)  # type: ignore[assignment]
    try:
        return deadletters.bounded(type("T", (), {"name": "bench.noop"})(), None, None)
    finally:
        deadletters.default_strategy = real


def _message(redelivered: bool) -> Message:
    return Message(body=b'[[], {}, {}]', delivery_info={"redelivered": redelivered, "routing_key": "analytics"},
                   headers={"id": str(uuid.uuid4()), "task": "bench.noop"}, content_type="application/json",
                   content_encoding="utf-8")


def _noop() -> None:
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000)
    n = ap.parse_args().calls
    fig: dict[str, float] = {}
    off, on = _handler(0), _handler(3)
    for name, handler, redelivered in (("receipt_off_us", off, False), ("receipt_first_us", on, False),
                                       ("receipt_redelivered_us", on, True)):
        m = _message(redelivered)
        fig[name] = per_call_us(lambda: handler(m, ([], {}, {}), None, None, None), n)

    app = Celery("bench", set_as_current=False)
    plain = app.task(name="bench.plain", base=Task, shared=False)(_noop)
    guarded = app.task(name="bench.guarded", base=deadletters.StageTask, shared=False)(_noop)
    _install_stack_protection()  # as the worker does (setup_worker_optimizations)
    for name, task, fn, redelivered in (("call_plain_us", plain, plain.run, False),
                                        ("call_first_us", guarded, guarded, False),
                                        ("call_redelivered_us", guarded, guarded, True)):
        task.push_request(id=str(uuid.uuid4()), delivery_info={"redelivered": redelivered}, called_directly=False)
        req = task.request

        def call(fn: Callable[[], Any] = fn) -> None:
            req._protected = 0  # a fresh request each task, as in the worker
            fn()

        try:
            fig[name] = per_call_us(call, n // 4 if redelivered else n)
        finally:
            task.pop_request()
    r = runtime.redis_client()
    fig["redis_ping_us"] = per_call_us(r.ping, n // 4)

    rows = [
        ("receipt check, guard off (baseline)", fig["receipt_off_us"]),
        ("receipt check, first delivery", fig["receipt_first_us"]),
        ("receipt check, redelivery (GET)", fig["receipt_redelivered_us"]),
        ("task.run, the worker's call without a custom __call__ (baseline)", fig["call_plain_us"]),
        ("StageTask.__call__, first delivery", fig["call_first_us"]),
        ("StageTask.__call__, redelivery (INCR+EXPIRE, DEL)", fig["call_redelivered_us"]),
        ("Redis PING round trip", fig["redis_ping_us"]),
    ]
    w = max(len(r[0]) for r in rows)
    print(f"{'per message':<{w}}  {'us':>8}")
    for label, us in rows:
        print(f"{label:<{w}}  {us:8.2f}")
    load = os.getloadavg()[0]
    print(json.dumps({"bench": "deliveries", "calls": n, "load1": round(load, 2), "python": platform.python_version(),
                      **{k: round(v, 3) for k, v in fig.items()},
                      "first_delivery_added_us": round(fig["receipt_first_us"] - fig["receipt_off_us"]
                                                       + fig["call_first_us"] - fig["call_plain_us"], 3)}))


if __name__ == "__main__":
    main()
