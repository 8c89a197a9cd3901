"""Raw JSON-RPC over HTTP: single calls and batches, no web3 contract layer.

web3's contract ``.call()`` manages ~250 calls/s here; a raw batch of pre-encoded
``eth_call``s 16-32k/s. So the hot paths build requests themselves and decode by slicing.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any, Sequence

import requests

from arbbot.errors import RpcError


class RpcClient:
    """A JSON-RPC client for one chain. ``urls`` are tried in order (failover is layered
    on by the scan stage); a reply carrying an ``error`` object raises ``RpcError``."""

    def __init__(self, urls: str | Sequence[str], *, timeout_s: float = 10.0) -> None:
        self.urls: list[str] = [urls] if isinstance(urls, str) else list(urls)
        if not self.urls:
            raise RpcError("no RPC URL given")
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)
        self._local = threading.local()

    @property
    def url(self) -> str:
        return self.urls[0]

    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            self._local.session = s
        return s

    def _post(self, payload: Any) -> Any:
        last: Exception | None = None
        for url in self.urls:
            try:
                resp = self._session().post(url, json=payload, timeout=self.timeout_s)
                resp.raise_for_status()
                return resp.json()
            except (requests.RequestException, ValueError) as exc:
                last = exc
        raise RpcError(f"all RPC endpoints failed: {last}")

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        reply = self._post({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)})
        if "error" in reply:
            err = reply["error"]
            raise RpcError(f"{method}: {err.get('message')}", code=err.get("code"), data=err.get("data"))
        return reply["result"]

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]], *, raise_errors: bool = True) -> list[Any]:
        """One HTTP request for many calls; results in the order given. With
        ``raise_errors=False`` a failed item is returned as an ``RpcError`` instance."""
        if not calls:
            return []
        first = next(self._ids)
        for _ in range(len(calls) - 1):
            next(self._ids)
        payload = [
            {"jsonrpc": "2.0", "id": first + i, "method": m, "params": list(p)} for i, (m, p) in enumerate(calls)
        ]
        replies = self._post(payload)
        if not isinstance(replies, list):
            raise RpcError(f"batch reply is not a list: {str(replies)[:200]}")
        by_id = {r.get("id"): r for r in replies}
        out: list[Any] = []
        for i, (method, _) in enumerate(calls):
            r = by_id.get(first + i)
            if r is None:
                err: Any = RpcError(f"{method}: no reply in batch")
            elif "error" in r:
                e = r["error"]
                err = RpcError(f"{method}: {e.get('message')}", code=e.get("code"), data=e.get("data"))
            else:
                out.append(r["result"])
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
