"""The RPC client's transport over real TCP on 127.0.0.1 (urllib3's pools): what may have
reached a node is never sent again, what cannot have is failed over; a URL's credentials go
as basic auth and never into labels; a connection the node closed while idle is reopened.
A small HTTP server of the test's own plays the misbehaving node; anvil the real one."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from arbbot.chain.rpc import RpcClient
from arbbot.devnet.anvil import Anvil
from arbbot.errors import RpcError


class Node:
    """Answers JSON-RPC POSTs: ``mode`` "ok" (result 0x1), "hangup" (reads the request,
    closes the socket without a reply) or "close" (answers, then closes the connection)."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[tuple[str, str | None]] = []  # (method, Authorization header)
        node = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                node.requests.append((body["method"], self.headers.get("Authorization")))
                if node.mode == "hangup":
                    self.close_connection = True
                    return
                out = json.dumps({"jsonrpc": "2.0", "id": body["id"], "result": "0x1"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                if node.mode == "close":
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def node() -> Iterator[Node]:
    n = Node()
    yield n
    n.stop()


def test_a_send_whose_reply_was_lost_is_never_sent_again(node: Node, anvil: Anvil) -> None:
    """The node read the request and hung up: it may have the transaction, so the send is not
    retried, neither on it nor on the next endpoint; a read is retried on the next one."""
    node.mode = "hangup"
    rpc = RpcClient([node.url, anvil.url], retries=1, backoff_s=0.001)
    with pytest.raises(RpcError, match="not retried: not idempotent"):
        rpc.call("eth_sendRawTransaction", ["0x02"])
    assert node.requests == [("eth_sendRawTransaction", None)]
    assert rpc.call("eth_chainId") == RpcClient(anvil.url).call("eth_chainId")  # the read went on to anvil
    assert [m for m, _ in node.requests] == ["eth_sendRawTransaction", "eth_chainId"]


def test_a_node_that_refuses_the_connection_cannot_have_the_request(node: Node, anvil: Anvil) -> None:
    """Connection refused: nothing was sent, so even a state-changing call goes on to the next
    endpoint, once."""
    port = node.server.server_address[1]
    node.stop()
    rpc = RpcClient([f"http://127.0.0.1:{port}", anvil.url], retries=0)
    before = rpc.block_number()
    rpc.call("evm_mine")
    assert rpc.block_number() == before + 1
    assert rpc.health()["endpoints"][0]["failures"] == 3  # each of the three calls tried it first


def test_a_urls_credentials_go_as_basic_auth_and_stay_out_of_labels(node: Node) -> None:
    url = node.url.replace("http://", "http://alice:s%40cret@") + "/v1/key?x=1"
    rpc = RpcClient(url)
    assert rpc.call("eth_chainId") == "0x1"
    assert node.requests[0][1] == "Basic " + base64.b64encode(b"alice:s@cret").decode()
    assert "alice" not in str(rpc.health()) and "cret" not in str(rpc.health())


def test_a_connection_the_node_closed_is_reopened(node: Node) -> None:
    node.mode = "close"
    rpc = RpcClient(node.url, retries=0)
    assert [rpc.call("eth_chainId") for _ in range(5)] == ["0x1"] * 5
    assert len(node.requests) == 5 and rpc.health()["endpoints"][0]["failures"] == 0
