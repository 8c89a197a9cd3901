"""A Flashbots-style bundle relay and block builder of the project's own, over an anvil.

``python -m arbbot.devnet.relay --anvil URL --port P`` stands in for a public relay on the
devnet and in tests (none can exist here). It speaks the same wire format as
``arbbot.execution.relay``'s client, implemented separately so one cannot hide the other's
mistake:

- every POST must carry ``X-Flashbots-Signature: <address>:<signature>``, an EIP-191
  signature of the 0x hex text of keccak256(body) by that address; otherwise HTTP 403 and
  ``{"code": -32025, "message": "invalid flashbots signature"}`` (or ``missing ...``);
- ``eth_sendBundle`` ({txs, blockNumber, revertingTxHashes?}) answers ``{"bundleHash"}``
  (keccak of the concatenated tx hashes) and queues the bundle for that block only;
- ``eth_callBundle`` ({txs, blockNumber, stateBlockNumber}) simulates the txs in order
  (anvil's ``eth_simulateV1``) and answers per-tx ``gasUsed``, ``gasPrice``, ``gasFees``,
  ``coinbaseDiff``, and ``error``/``revert`` for a reverting one, as Flashbots does;
- test controls, not Flashbots: ``devrelay_missBlocks`` ([[numbers]]) makes the builder
  lose the auction for those blocks (their bundles are dropped); ``devrelay_pause``
  ([true|false]) stops or resumes block building (no build is under way once it answers).

The relay is also the node's block builder (``arbbot.devnet.builder``): it mines a block
every ``--block-time`` seconds with the bundles aimed at it, each in its target block
exactly as simulated or not at all (a reverting one is left out and costs nothing). On
exit the node's automine is restored if it was on.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak

from arbbot.chain.rawtx import RawTx, decode_raw_tx
from arbbot.chain.rpc import RpcClient, endpoint_label
from arbbot.devnet import args as arg_types
from arbbot.devnet.builder import Builder, BundleInvalid, QueuedBundle
from arbbot.errors import ArbbotError, WireFormatError

log = logging.getLogger("arbbot.devnet.relay")

SIGNATURE_HEADER = "X-Flashbots-Signature"
ERR_SIGNATURE = -32025
MAX_BODY = 1_000_000
MAX_TXS = 100


class BadParams(ArbbotError):
    """Malformed parameters (JSON-RPC -32602)."""


class MethodNotFound(ArbbotError):
    """JSON-RPC -32601."""


def signer_of(body: bytes, header: str | None) -> tuple[str | None, str]:
    """(address, "") when ``header`` is a valid signature of ``body``, else (None, why)."""
    if not header:
        return None, "missing flashbots signature header"
    address, _, signature = header.partition(":")
    if not address or not signature:
        return None, "invalid flashbots signature"
    try:
        text = "0x" + keccak(body).hex()
        recovered = Account.recover_message(encode_defunct(text=text), signature=signature)
    except Exception:
        return None, "invalid flashbots signature"
    if recovered.lower() != address.lower():
        return None, "invalid flashbots signature"
    return recovered.lower(), ""


class RelayServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], builder: Builder) -> None:
        super().__init__(address, Handler)
        self.builder = builder


class Handler(BaseHTTPRequestHandler):
    server: RelayServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:  # noqa: N802
        self._reply(405, {"jsonrpc": "2.0", "id": None,
                          "error": {"code": -32600, "message": "POST a signed JSON-RPC request"}})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._reply(413, _error(None, -32600, f"request body over {MAX_BODY} bytes"))
            return
        body = self.rfile.read(length)
        try:
            payload = json.loads(body)
        except ValueError:
            self._reply(400, _error(None, -32700, "parse error"))
            return
        rid = payload.get("id") if isinstance(payload, dict) else None
        signer, why = signer_of(body, self.headers.get(SIGNATURE_HEADER))
        if signer is None:
            self._reply(403, _error(rid, ERR_SIGNATURE, why))
            return
        if not isinstance(payload, dict) or not isinstance(payload.get("method"), str):
            self._reply(400, _error(rid, -32600, "a single JSON-RPC request object is expected"))
            return
        params = payload.get("params") or []
        try:
            result = self._dispatch(payload["method"], params, signer)
        except BadParams as exc:
            self._reply(400, _error(rid, -32602, str(exc)))
        except BundleInvalid as exc:
            self._reply(400, _error(rid, -32000, str(exc)))
        except MethodNotFound as exc:
            self._reply(404, _error(rid, -32601, str(exc)))
        except Exception as exc:  # the relay answers every request, even on its own bug
            log.exception("%s failed", payload["method"])
            self._reply(500, _error(rid, -32603, f"internal error: {type(exc).__name__}: {exc}"))
        else:
            self._reply(200, {"jsonrpc": "2.0", "id": rid, "result": result})

    def _dispatch(self, method: str, params: Any, signer: str) -> Any:
        builder = self.server.builder
        if method == "eth_sendBundle":
            p = _one_object(params)
            block = _block(p, "blockNumber")
            txs = _txs(p)
            reverting = p.get("revertingTxHashes") or []
            if not isinstance(reverting, list) or not all(isinstance(h, str) for h in reverting):
                raise BadParams("revertingTxHashes must be a list of tx hashes")
            bundle = QueuedBundle(txs, block, frozenset(h.lower() for h in reverting), _hash(txs), signer)
            builder.add(bundle)
            log.info("bundle %s: %d tx for block %d from %s", bundle.bundle_hash, len(txs), block, signer)
            return {"bundleHash": bundle.bundle_hash}
        if method == "eth_callBundle":
            p = _one_object(params)
            block = _block(p, "blockNumber")
            txs = _txs(p)
            state = p.get("stateBlockNumber", "latest")
            if not isinstance(state, str) or not (state == "latest" or _is_hex(state)):
                raise BadParams("stateBlockNumber must be a hex block number or 'latest'")
            with builder.chain_lock:
                results, state_block = builder.simulate(txs, block, state)
            gas = sum(r["gasUsed"] for r in results)
            coinbase = sum(int(r["coinbaseDiff"]) for r in results)
            return {
                "bundleGasPrice": str(coinbase // gas if gas else 0),
                "bundleHash": _hash(txs),
                "coinbaseDiff": str(coinbase),
                "ethSentToCoinbase": str(sum(int(r["ethSentToCoinbase"]) for r in results)),
                "gasFees": str(sum(int(r["gasFees"]) for r in results)),
                "results": results,
                "stateBlockNumber": state_block,
                "totalGasUsed": gas,
            }
        if method == "devrelay_missBlocks":
            if not isinstance(params, list) or len(params) != 1 or not isinstance(params[0], list):
                raise BadParams("devrelay_missBlocks takes one list of block numbers")
            numbers = [_to_int(x) for x in params[0]]
            builder.miss_blocks(numbers)
            return {"missing": numbers}
        if method == "devrelay_pause":
            if not isinstance(params, list) or len(params) != 1 or not isinstance(params[0], bool):
                raise BadParams("devrelay_pause takes one boolean")
            builder.pause(params[0])
            return {"paused": params[0]}
        raise MethodNotFound(f"the method {method} does not exist/is not available")

    def _reply(self, status: int, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _error(rid: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}}


def _one_object(params: Any) -> dict[str, Any]:
    if not isinstance(params, list) or len(params) != 1 or not isinstance(params[0], dict):
        raise BadParams("params must be a list of one object")
    return params[0]


def _txs(p: dict[str, Any]) -> list[RawTx]:
    txs = p.get("txs")
    if not isinstance(txs, list) or not txs or len(txs) > MAX_TXS:
        raise BadParams(f"txs must be a list of 1 to {MAX_TXS} signed transactions")
    out = []
    for i, raw in enumerate(txs):
        try:
            out.append(decode_raw_tx(raw))
        except WireFormatError as exc:
            raise BadParams(f"txs[{i}]: {exc}") from None
    return out


def _block(p: dict[str, Any], key: str) -> int:
    value = p.get(key)
    if not isinstance(value, str) or not _is_hex(value):
        raise BadParams(f"{key} must be a hex block number, got {value!r}")
    return int(value, 16)


def _is_hex(s: str) -> bool:
    try:
        return s.startswith("0x") and int(s, 16) >= 0
    except ValueError:
        return False


def _to_int(x: Any) -> int:
    if isinstance(x, int) and not isinstance(x, bool) and x >= 0:
        return x
    if isinstance(x, str) and _is_hex(x):
        return int(x, 16)
    raise BadParams(f"not a block number: {x!r}")


def _hash(txs: list[RawTx]) -> str:
    return "0x" + keccak(b"".join(bytes.fromhex(t.tx_hash[2:]) for t in txs)).hex()


def _url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"must be an http(s) JSON-RPC URL, got {text!r}")
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m arbbot.devnet.relay",
        description="A Flashbots-style bundle relay over an anvil node, for the devnet and tests. "
        "It becomes the node's block builder: anvil's automine and interval mining are turned off "
        "and the relay mines a block every --block-time seconds, with the bundles aimed at it.",
        epilog="Methods: eth_sendBundle, eth_callBundle (signed X-Flashbots-Signature header "
        "required); test controls: devrelay_missBlocks [[numbers]] (miss those blocks), "
        "devrelay_pause [true|false] (stop/resume building).",
    )
    ap.add_argument("--anvil", required=True, type=_url, metavar="URL", help="the anvil node's JSON-RPC URL")
    ap.add_argument("--port", required=True, type=arg_types.port, help="port to listen on (0: any free port, printed)")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ap.add_argument("--block-time", type=arg_types.positive_float, default=1.0, metavar="SECONDS",
                    help="seconds from one block the relay mines to the next (default 1.0)")
    ap.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s relay %(levelname)s %(message)s", stream=sys.stdout)

    try:
        builder = Builder(RpcClient(args.anvil, timeout_s=10, retries=1), args.block_time)
    except ArbbotError as exc:
        print(f"error: anvil at {endpoint_label(args.anvil)} does not answer: {exc}", file=sys.stderr)
        return 1
    try:
        server = RelayServer((args.host, args.port), builder)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    builder.take_over_mining()
    threads = [threading.Thread(target=server.serve_forever, daemon=True),
               threading.Thread(target=builder.run, daemon=True)]
    for t in threads:
        t.start()
    port = server.server_address[1]
    print(f"relay listening on http://{args.host}:{port} - building blocks of chain {builder.chain_id} "
          f"at {endpoint_label(args.anvil)} every {args.block_time}s", flush=True)
    try:
        stop.wait()
    finally:
        builder.stop.set()
        server.shutdown()
        threads[1].join(timeout=10)
        try:
            builder.restore_mining()
        except ArbbotError as exc:
            print(f"warning: could not restore automine: {exc}", file=sys.stderr)
        print("relay stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
