"""Raw JSON-RPC over HTTP with failover: single calls and batches, no web3 contract layer.

Owns the transport to the nodes of one chain: several endpoints tried in order, per-call
timeouts, retries with exponential backoff and full jitter, a circuit breaker per endpoint
(open after ``breaker_threshold`` consecutive transport failures, half-open after
``breaker_cooldown_s``: one probe decides), Prometheus metrics per endpoint and method, and
a ``health()`` summary. When every breaker is open a call makes one probe of the
longest-open endpoint (no retries) and otherwise raises ``RpcUnavailable`` (an
``RpcError``) at once instead of hanging on dead hosts; a recovered node is thus picked up
on the next call.

A JSON-RPC ``error`` object in a reply is the node's answer, not an endpoint failure: it is
raised as ``RpcError`` with ``code``/``data`` and never trips a breaker or fails over.

web3's contract ``.call()`` manages ~250 calls/s here; a raw batch of pre-encoded
``eth_call``s 16-32k/s. So the hot paths build requests themselves and decode by slicing.
The requests go out on urllib3's connection pools (one per endpoint and thread), not through
``requests``: a call to a local anvil takes 0.55 ms against 1.2 ms through a ``requests``
session (``bench/chain/rpc_call.py``), and each live send waits for several. The environment is read
once per endpoint: its proxy (``HTTP(S)_PROXY``, ``NO_PROXY``) and CA bundle
(``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``, else certifi's); credentials in a URL's user
part go as HTTP basic auth.

Each ``call``/``batch`` is a client span (``arbbot.obs.tracing``; a no-op while tracing is
off): the method (a batch: ``batch:<method>`` or ``batch:mixed``), the batch size, the
endpoint that answered, the endpoints that failed; never the parameters.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence
from urllib.parse import unquote, urlsplit

import requests
import urllib3
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import Counter, Gauge, Histogram

from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError

from arbbot.errors import RpcError
from arbbot.obs import tracing

RPC_LATENCY = Histogram(
    "arbbot_rpc_request_seconds",
    "JSON-RPC request latency per endpoint and method (a batch is labelled batch:<method>)",
    ["endpoint", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RPC_REQUESTS = Counter(
    "arbbot_rpc_requests_total", "JSON-RPC HTTP requests per endpoint and method", ["endpoint", "method"]
)
RPC_ERRORS = Counter(
    "arbbot_rpc_errors_total",
    "JSON-RPC failures per endpoint, method and kind (timeout, connection, http, decode, rpc)",
    ["endpoint", "method", "kind"],
)
RPC_ENDPOINT_UP = Gauge("arbbot_rpc_endpoint_up", "1 when the endpoint's circuit breaker is not open", ["endpoint"])


class RpcUnavailable(RpcError):
    """Every endpoint of the chain failed or has its circuit breaker open."""


def endpoint_label(url: str) -> str:
    """``host:port`` of a URL: never the path, query or user info (they may carry API keys)."""
    parts = urlsplit(url)
    host = parts.hostname or "unknown"
    port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
    return f"{host}:{port}"


@dataclass
class Endpoint:
    """One node URL and its circuit breaker. ``url`` is private (it may hold a key)."""

    url: str = field(repr=False)
    label: str
    consecutive_failures: int = 0
    opened_at: float | None = None  # monotonic time the breaker opened; None = closed
    last_error: str = ""
    last_ok_at: float = 0.0  # unix time
    calls: int = 0
    failures: int = 0
    # the environment's proxy for this URL (HTTP(S)_PROXY, NO_PROXY), resolved once: the
    # sessions do not look the environment up again on every request (~0.2 ms each)
    proxies: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.proxies:
            self.proxies = dict(requests.utils.get_environ_proxies(self.url))

    def state(self, cooldown_s: float, now: float) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if now - self.opened_at >= cooldown_s else "open"


class RpcClient:
    """A JSON-RPC client for one chain over one or more endpoint URLs.

    ``call``/``batch`` try the endpoints whose breaker is not open, in order (the first
    healthy one is preferred, so a recovered primary takes traffic back); a full pass that
    fails is retried up to ``retries`` times after an exponential backoff with full jitter.
    Thread-safe: a connection pool per endpoint and thread, breaker state under a lock.
    """

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        timeout_s: float = 10.0,
        retries: int = 2,
        backoff_s: float = 0.05,
        backoff_max_s: float = 1.0,
        breaker_threshold: int = 3,
        breaker_cooldown_s: float = 5.0,
    ) -> None:
        self.urls: list[str] = [urls] if isinstance(urls, str) else list(urls)
        if not self.urls:
            raise RpcError("no RPC URL given")
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.breaker_threshold = breaker_threshold
        self.breaker_cooldown_s = breaker_cooldown_s
        self.endpoints = [Endpoint(u, endpoint_label(u)) for u in self.urls]
        self._ids = itertools.count(1)
        self._id_lock = threading.Lock()
        self._lock = threading.Lock()
        self._local = threading.local()
        for ep in self.endpoints:
            RPC_ENDPOINT_UP.labels(ep.label).set(1)

    @property
    def url(self) -> str:
        return self.urls[0]

    def _pool(self, ep: Endpoint) -> HttpPool:
        pools = getattr(self._local, "pools", None)
        if pools is None:
            pools = self._local.pools = {}
        pool = pools.get(ep.url)
        if pool is None:
            pool = pools[ep.url] = HttpPool(ep)
        return pool

    # ------------------------------------------------------------------ breaker

    def _candidates(self) -> list[Endpoint]:
        now = time.monotonic()
        with self._lock:
            return [ep for ep in self.endpoints if ep.state(self.breaker_cooldown_s, now) != "open"]

    def _ok(self, ep: Endpoint) -> None:
        with self._lock:
            ep.consecutive_failures = 0
            ep.calls += 1
            ep.last_ok_at = time.time()
            if ep.opened_at is not None:
                ep.opened_at = None
                RPC_ENDPOINT_UP.labels(ep.label).set(1)

    def _fail(self, ep: Endpoint, error: str) -> None:
        now = time.monotonic()
        with self._lock:
            ep.calls += 1
            ep.failures += 1
            ep.last_error = error[:200]
            ep.consecutive_failures += 1
            half_open = ep.opened_at is not None
            # a failed half-open probe re-opens at once; a closed breaker opens at threshold
            if half_open or ep.consecutive_failures >= self.breaker_threshold:
                ep.opened_at = now
                RPC_ENDPOINT_UP.labels(ep.label).set(0)

    def health(self) -> dict[str, Any]:
        """``{"healthy": bool, "endpoints": [{endpoint, state, consecutive_failures, ...}]}``;
        healthy while at least one endpoint's breaker is not open."""
        now = time.monotonic()
        with self._lock:
            eps = [
                {
                    "endpoint": ep.label,
                    "state": ep.state(self.breaker_cooldown_s, now),
                    "consecutive_failures": ep.consecutive_failures,
                    "calls": ep.calls,
                    "failures": ep.failures,
                    "last_error": ep.last_error,
                    "last_ok_at": ep.last_ok_at,
                }
                for ep in self.endpoints
            ]
        return {"healthy": any(e["state"] != "open" for e in eps), "endpoints": eps}

    @property
    def healthy(self) -> bool:
        return bool(self.health()["healthy"])

    # ------------------------------------------------------------------ transport

    def _post_one(self, ep: Endpoint, payload: Any, method: str) -> Any:
        t0 = time.perf_counter()
        RPC_REQUESTS.labels(ep.label, method).inc()
        try:
            status, data = self._pool(ep).post(json.dumps(payload).encode(), self.timeout_s)
        except NewConnectionError as exc:  # refused, unreachable, no such host: nothing was sent
            RPC_ERRORS.labels(ep.label, method, "connection").inc()
            raise _Transport(f"{ep.label}: {type(exc).__name__}") from exc
        except ConnectTimeoutError as exc:
            RPC_ERRORS.labels(ep.label, method, "timeout").inc()
            raise _Transport(f"{ep.label}: connect timeout after {self.timeout_s}s") from exc
        except ReadTimeoutError as exc:
            RPC_ERRORS.labels(ep.label, method, "timeout").inc()
            raise _Transport(f"{ep.label}: timeout after {self.timeout_s}s", maybe_sent=True) from exc
        except (urllib3.exceptions.HTTPError, OSError, http.client.HTTPException) as exc:  # reset, TLS, proxy
            RPC_ERRORS.labels(ep.label, method, "connection").inc()
            raise _Transport(f"{ep.label}: {type(exc).__name__}", maybe_sent=not never_sent(exc)) from exc
        finally:
            RPC_LATENCY.labels(ep.label, method).observe(time.perf_counter() - t0)
        # Providers answer range limits etc. with 4xx + a JSON-RPC error body: that is an
        # answer. 429 and 5xx without a JSON-RPC body are endpoint trouble.
        try:
            body = json.loads(data)
        except ValueError as exc:
            RPC_ERRORS.labels(ep.label, method, "http" if status >= 400 else "decode").inc()
            raise _Transport(f"{ep.label}: HTTP {status}, not JSON") from exc
        if status == 429 or (status >= 500 and not _is_rpc_body(body)):
            RPC_ERRORS.labels(ep.label, method, "http").inc()
            raise _Transport(f"{ep.label}: HTTP {status}")
        if status >= 400 and not _is_rpc_body(body):
            RPC_ERRORS.labels(ep.label, method, "http").inc()
            raise _Transport(f"{ep.label}: HTTP {status}")
        return body

    def _post(self, payload: Any, method: str = "call", idempotent: bool | None = None) -> Any:
        span = trace.get_current_span()  # this call's (``_rpc_span``), or a no-op one
        if idempotent is None:
            idempotent = _idempotent(method)
        last = "no endpoint available"
        for attempt in range(self.retries + 1):
            candidates = self._candidates()
            all_open = not candidates
            if all_open:
                # Every breaker is open: never zero endpoints to try, but only one cheap
                # probe (the longest-open endpoint), no retries, then fail clearly.
                with self._lock:
                    candidates = [min(self.endpoints, key=lambda e: e.opened_at or 0.0)]
            for ep in candidates:
                try:
                    body = self._post_one(ep, payload, method)
                except _Transport as exc:
                    last = str(exc)
                    self._fail(ep, last)
                    if span.is_recording():
                        span.add_event("endpoint failed", {"endpoint": ep.label, "error": last[:200]})
                    if exc.maybe_sent and not idempotent:
                        # the node may have executed it (a send, a mine): never repeat blindly
                        raise RpcError(f"{method}: {last} (not retried: not idempotent)") from exc
                    continue
                self._ok(ep)
                if span.is_recording():
                    span.set_attribute("server.address", ep.label)
                return body
            if all_open:
                raise RpcUnavailable(f"all RPC endpoints down ({self._labels()}): {last}")
            if attempt < self.retries:
                delay = min(self.backoff_max_s, self.backoff_s * (2**attempt))
                time.sleep(random.uniform(0, delay))
        raise RpcUnavailable(f"all RPC endpoints failed ({self._labels()}): {last}")

    def _labels(self) -> str:
        return ", ".join(ep.label for ep in self.endpoints)

    def _next_ids(self, n: int) -> int:
        with self._id_lock:
            first = next(self._ids)
            for _ in range(n - 1):
                next(self._ids)
        return first

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        with _rpc_span(method, 1):
            reply = self._post(
                {"jsonrpc": "2.0", "id": self._next_ids(1), "method": method, "params": list(params)}, method
            )
            if not isinstance(reply, dict):
                raise RpcError(f"{method}: reply is not an object: {str(reply)[:200]}")
            if "error" in reply:
                err = reply["error"] or {}
                raise RpcError(f"{method}: {err.get('message')}", code=err.get("code"), data=err.get("data"))
            return reply.get("result")

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]], *, raise_errors: bool = True) -> list[Any]:
        """One HTTP request for many calls; results in the order given. With
        ``raise_errors=False`` a failed item is returned as an ``RpcError`` instance."""
        if not calls:
            return []
        first = self._next_ids(len(calls))
        payload = [
            {"jsonrpc": "2.0", "id": first + i, "method": m, "params": list(p)} for i, (m, p) in enumerate(calls)
        ]
        methods = {m for m, _ in calls}
        label = "batch:" + (methods.pop() if len(methods) == 1 else "mixed")
        with _rpc_span(label, len(calls)):
            return self._batch_replies(calls, first, self._post(payload, label, all(m in _READ_ONLY for m, _ in calls)),
                                       raise_errors)

    def _batch_replies(
        self, calls: Sequence[tuple[str, Sequence[Any]]], first: int, replies: Any, raise_errors: bool
    ) -> list[Any]:
        if isinstance(replies, dict) and "error" in replies:
            e = replies["error"] or {}
            raise RpcError(f"batch: {e.get('message')}", code=e.get("code"), data=e.get("data"))
        if not isinstance(replies, list):
            raise RpcError(f"batch reply is not a list: {str(replies)[:200]}")
        by_id = {r.get("id"): r for r in replies if isinstance(r, dict)}
        out: list[Any] = []
        for i, (method, _) in enumerate(calls):
            r = by_id.get(first + i)
            if r is None:
                err: Any = RpcError(f"{method}: no reply in batch")
            elif "error" in r:
                e = r["error"] or {}
                err = RpcError(f"{method}: {e.get('message')}", code=e.get("code"), data=e.get("data"))
            else:
                out.append(r.get("result"))
                continue
            if raise_errors:
                raise err
            out.append(err)
        return out

    # convenience wrappers used everywhere
    def block_number(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def chain_id(self) -> int:
        return int(self.call("eth_chainId"), 16)

    def eth_call(self, to: str, data: str, block: str | int = "latest") -> str:
        tag = hex(block) if isinstance(block, int) else block
        return str(self.call("eth_call", [{"to": to, "data": data}, tag]))


_UNTRACED = contextlib.nullcontext()


def _rpc_span(method: str, size: int) -> contextlib.AbstractContextManager[None]:
    """The call's span; with tracing off not even the API's no-op one (a call can be ~30 µs)."""
    return _traced(method, size) if tracing.enabled() else _UNTRACED


@contextlib.contextmanager
def _traced(method: str, size: int) -> Iterator[None]:
    with tracing.tracer.start_as_current_span(
        f"rpc {method}", kind=SpanKind.CLIENT, record_exception=False, set_status_on_exception=False
    ) as span:
        if not span.is_recording():
            yield
            return
        span.set_attributes({"rpc.system": "jsonrpc", "rpc.method": method, "arbbot.rpc.batch_size": size})
        try:
            yield
        except RpcError as exc:
            # the kind and the node's code only: a node's message may quote the parameters
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__} code={getattr(exc, 'code', None)}"))
            raise


class _Transport(Exception):
    """Internal: an endpoint-level failure (counts against the breaker, fails over).
    ``maybe_sent``: the request may have reached the node (a read timeout, a reset)."""

    def __init__(self, message: str, *, maybe_sent: bool = False) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


_READ_ONLY = frozenset(
    {
        "eth_call", "eth_blockNumber", "eth_chainId", "eth_estimateGas", "eth_gasPrice", "eth_feeHistory",
        "eth_maxPriorityFeePerGas", "eth_getBalance", "eth_getCode", "eth_getStorageAt", "eth_getLogs",
        "eth_getTransactionCount", "eth_getTransactionReceipt", "eth_getTransactionByHash",
        "eth_getBlockByNumber", "eth_getBlockByHash", "eth_syncing", "net_version", "web3_clientVersion",
    }
)


def _idempotent(label: str) -> bool:
    """Safe to resend after a possibly-delivered request: read-only methods only."""
    return label.removeprefix("batch:") in _READ_ONLY


class HttpPool:
    """One thread's connections to one endpoint: urllib3's pool for its host (through the
    endpoint's proxy when the environment names one), the path and headers made once.
    ``RpcClient``'s transport, and the private relay client's
    (``arbbot.execution.relay``)."""

    def __init__(self, ep: Endpoint) -> None:
        url = urllib3.util.parse_url(ep.url)
        ca = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or requests.utils.DEFAULT_CA_BUNDLE_PATH
        # as requests asked: a provider may compress a large reply (logs); urllib3 inflates it
        self.headers = {"Content-Type": "application/json", "Accept": "application/json",
                        "Accept-Encoding": "gzip, deflate"}
        if url.auth:
            self.headers.update(urllib3.util.make_headers(basic_auth=unquote(url.auth)))
        proxy = requests.utils.select_proxy(ep.url, ep.proxies)
        manager: urllib3.PoolManager
        if proxy:
            purl = urllib3.util.parse_url(proxy)
            manager = urllib3.ProxyManager(
                proxy, ca_certs=ca, proxy_headers=urllib3.util.make_headers(proxy_basic_auth=unquote(purl.auth))
                if purl.auth else None,
            )
        else:
            manager = urllib3.PoolManager(ca_certs=ca)
        self.manager = manager
        self.pool = manager.connection_from_url(ep.url)
        # through an HTTP proxy the request line names the whole URL; else only the path
        direct = not proxy or url.scheme == "https"
        self.target = (url.request_uri or "/") if direct else url._replace(auth=None).url

    def post(self, body: bytes, timeout_s: float, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """POST ``body``; the status and the whole reply. Raises urllib3's and the socket's
        errors as they are (``NewConnectionError``: nothing was sent)."""
        resp = self.pool.urlopen(
            "POST", self.target, body=body, headers={**self.headers, **headers} if headers else self.headers,
            timeout=urllib3.Timeout(timeout_s),
            retries=False, redirect=False, assert_same_host=False, preload_content=True,
        )
        return resp.status, resp.data


def never_sent(exc: BaseException) -> bool:
    """The connection was never established (nothing was sent)."""
    text = repr(exc)
    return "NewConnectionError" in text or "Connection refused" in text or "Errno 111" in text


def _is_rpc_body(body: Any) -> bool:
    if isinstance(body, list):
        return all(isinstance(r, dict) and "jsonrpc" in r for r in body)
    return isinstance(body, dict) and "jsonrpc" in body and ("error" in body or "result" in body)
