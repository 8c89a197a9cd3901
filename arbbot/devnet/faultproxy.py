"""A fault-injecting JSON-RPC proxy: its own process on 127.0.0.1, in front of one node.

Owns the RPC faults the chaos suite injects (``tests/chaos``), for the faults to be real
ones (refused connections, sockets that answer late, bytes that are not JSON) seen by the
real ``RpcClient`` over real TCP, never a mock. The proxy forwards every POST to the
upstream node unchanged in mode ``pass``; the other modes:

- ``down``: the listening socket is closed (connections refused), reopened on the same
  port by the next mode change;
- ``slow``: each request is forwarded after ``delay_s`` seconds;
- ``garbage``: HTTP 200 with a body that is not JSON (a broken load balancer);
- ``error``: HTTP 502 without a JSON-RPC body.

A mode may be limited to requests for some ``methods`` (say ``eth_sendRawTransaction``
only); the others pass. ``spare``: that many of the requests it applies to pass first (the
second of a batch of sends fails). ``counts`` says how many requests each mode took.

Run it as ``python -m arbbot.devnet.faultproxy --upstream URL``: it prints one JSON line,
``{"port": ..., "control_port": ...}``, then serves until killed. The control port takes
``POST /mode`` with ``{"mode": ..., "delay_s": ..., "methods": [...], "spare": N}`` and answers ``GET /stats`` with the
requests seen per mode. ``FaultProxy`` starts, steers and stops one from Python.
``PostServer`` is the HTTP server under it (also under the in-process proxies of the chain
tests): every POST answered by a callback, closed and reopened on the same port.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import requests

MODES = ("pass", "down", "slow", "garbage", "error")


class PostServer:
    """An HTTP server on 127.0.0.1 answering every POST with ``handle(body) -> (status,
    body)``, as JSON. ``close()`` closes the port (connections refused); ``open()`` opens
    it again, the same port."""

    def __init__(self, handle: Callable[[bytes], tuple[int, bytes]], port: int = 0) -> None:
        self.handle = handle
        self.port = port
        self.server: ThreadingHTTPServer | None = None
        self.open()

    @property
    def is_open(self) -> bool:
        return self.server is not None

    def open(self) -> None:
        handle = self.handle

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, out = handle(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class _Proxy:
    def __init__(self, upstream: str, port: int = 0) -> None:
        self.upstream = upstream
        self.mode = "pass"
        self.delay_s = 0.0
        self.methods: frozenset[str] = frozenset()  # empty: every request
        self.spare = 0  # requests the mode applies to that still pass
        self.counts: dict[str, int] = {m: 0 for m in MODES}
        self.lock = threading.Lock()
        self.server = PostServer(self.handle, port)

    @property
    def port(self) -> int:
        return self.server.port

    def set_mode(self, mode: str, delay_s: float = 0.0, methods: frozenset[str] = frozenset(),
                 spare: int = 0) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        if spare < 0 or (spare and mode == "down"):
            raise ValueError(f"spare must be >= 0, and 0 for mode down: {spare}")
        with self.lock:
            self.mode, self.delay_s, self.methods, self.spare = mode, delay_s, methods, spare
        if mode == "down":
            self.server.close()
        elif not self.server.is_open:
            self.server.open()

    def handle(self, body: bytes) -> tuple[int, bytes]:
        with self.lock:
            mode, delay, methods = self.mode, self.delay_s, self.methods
            if methods and not methods & _methods_of(body):
                mode = "pass"
            elif mode != "pass" and self.spare > 0:
                self.spare -= 1
                mode = "pass"
            self.counts[mode] += 1
        if mode == "garbage":
            return 200, b"<html>\x00\xff not json"
        if mode == "error":
            return 502, b"Bad Gateway"
        if mode == "slow":
            time.sleep(delay)
        r = requests.post(self.upstream, data=body, headers={"Content-Type": "application/json"}, timeout=60)
        return r.status_code, r.content


def _methods_of(body: bytes) -> set[str]:
    try:
        req = json.loads(body)
    except ValueError:
        return set()
    reqs = req if isinstance(req, list) else [req]
    return {str(r.get("method")) for r in reqs if isinstance(r, dict)}


def _serve_control(proxy: _Proxy) -> ThreadingHTTPServer:
    class Control(BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def _reply(self, status: int, obj: Any) -> None:
            out = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def do_GET(self) -> None:  # noqa: N802
            with proxy.lock:
                self._reply(200, {"mode": proxy.mode, "delay_s": proxy.delay_s, "counts": dict(proxy.counts)})

        def do_POST(self) -> None:  # noqa: N802
            req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            try:
                proxy.set_mode(str(req.get("mode")), float(req.get("delay_s", 0.0)),
                               frozenset(req.get("methods") or ()), int(req.get("spare", 0)))
            except (TypeError, ValueError) as exc:
                self._reply(400, {"error": str(exc)})
                return
            self._reply(200, {"mode": proxy.mode})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Control)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class FaultProxy:
    """One proxy process in front of ``upstream``; ``url`` is what clients use."""

    def __init__(self, upstream: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "arbbot.devnet.faultproxy", "--upstream", upstream],
            stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"fault proxy did not start (exit {self.proc.wait()})")
        ports = json.loads(line)
        self.port, self.control_port = int(ports["port"]), int(ports["control_port"])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set(self, mode: str, delay_s: float = 0.0, methods: tuple[str, ...] = (), spare: int = 0) -> None:
        r = requests.post(f"http://127.0.0.1:{self.control_port}/mode",
                          json={"mode": mode, "delay_s": delay_s, "methods": list(methods), "spare": spare},
                          timeout=10)
        r.raise_for_status()

    def stats(self) -> dict[str, Any]:
        return dict(requests.get(f"http://127.0.0.1:{self.control_port}/stats", timeout=10).json())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--upstream", required=True, help="the node's JSON-RPC URL")
    ap.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    args = ap.parse_args(argv)
    proxy = _Proxy(args.upstream, args.port)
    control = _serve_control(proxy)
    print(json.dumps({"port": proxy.port, "control_port": control.server_address[1]}), flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
