"""Test helpers for the chain tests: a genuine Uniswap V2 devnet built from the npm
artifacts with raw JSON-RPC (no dependency on the devnet module), a Multicall3, fast
batched transaction sending (automine off + ``evm_mine``), tiny non-standard tokens
compiled with solc-js, and a killable JSON-RPC proxy that can refuse wide ``eth_getLogs``
ranges the way public providers do."""

from __future__ import annotations

import json
import random
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import requests
from eth_abi import encode
from eth_utils import keccak, to_checksum_address

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import deploy_unlocked, encode_call, send_unlocked
from arbbot.config import REPO_ROOT
from arbbot.devnet import artifacts
from arbbot.devnet.bulk import send_batched
from arbbot.devnet.faultproxy import PostServer
from arbbot.math.v2 import get_amount_out

DEPLOYER = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"  # anvil account 0


@dataclass
class V2Pair:
    address: str
    token0: str
    token1: str
    reserve0: int = 0
    reserve1: int = 0


@dataclass
class DevChain:
    """A deployer on an anvil node with local mirrors of the pairs it touches."""

    rpc: RpcClient
    sender: str = DEPLOYER
    pairs: dict[str, V2Pair] = field(default_factory=dict)
    _nonce: int | None = None
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    # ------------------------------------------------------------ deployment
    def deploy_multicall(self) -> str:
        return deploy_unlocked(self.rpc, self.sender, artifacts.multicall3_bytecode())

    def deploy_v2_factory(self) -> str:
        art = artifacts.load("UniswapV2Factory")
        return deploy_unlocked(self.rpc, self.sender, art.bytecode, ["address"], [self.sender])

    def deploy_token(self, name: str, symbol: str, mint: int = 10**30) -> str:
        art = artifacts.load("ERC20PresetMinterPauser")
        addr = deploy_unlocked(self.rpc, self.sender, art.bytecode, ["string", "string"], [name, symbol])
        send_unlocked(self.rpc, self.sender, to=addr, data=encode_call("mint(address,uint256)", [self.sender, mint]))
        return addr

    def create_pair(self, factory: str, a: str, b: str) -> V2Pair:
        send_unlocked(self.rpc, self.sender, to=factory, data=encode_call("createPair(address,address)", [a, b]))
        t0, t1 = sorted([a.lower(), b.lower()])
        pair = v2_pair_address(factory, t0, t1)
        p = V2Pair(pair, t0, t1)
        self.pairs[pair] = p
        return p

    def add_liquidity(self, p: V2Pair, a0: int, a1: int) -> None:
        self.send_many(self.liquidity_txs(p, a0, a1))

    def liquidity_txs(self, p: V2Pair, a0: int, a1: int) -> list[dict[str, Any]]:
        p.reserve0 += a0
        p.reserve1 += a1
        return [
            self.tx(p.token0, encode_call("transfer(address,uint256)", [p.address, a0]), 80_000),
            self.tx(p.token1, encode_call("transfer(address,uint256)", [p.address, a1]), 80_000),
            self.tx(p.address, encode_call("mint(address)", [self.sender]), 300_000),
        ]

    def swap_txs(self, p: V2Pair, zero_for_one: bool, amount_in: int) -> list[dict[str, Any]]:
        """transfer + pair.swap, with the output computed on the local mirror (exact)."""
        if zero_for_one:
            out = get_amount_out(amount_in, p.reserve0, p.reserve1)
            p.reserve0 += amount_in
            p.reserve1 -= out
            tin, args = p.token0, [0, out, self.sender, b""]
        else:
            out = get_amount_out(amount_in, p.reserve1, p.reserve0)
            p.reserve1 += amount_in
            p.reserve0 -= out
            tin, args = p.token1, [out, 0, self.sender, b""]
        return [
            self.tx(tin, encode_call("transfer(address,uint256)", [p.address, amount_in]), 80_000),
            self.tx(p.address, encode_call("swap(uint256,uint256,address,bytes)", args), 200_000),
        ]

    def random_swap_txs(self, p: V2Pair) -> list[dict[str, Any]]:
        z = self.rng.random() < 0.5
        reserve_in = p.reserve0 if z else p.reserve1
        amount = max(1000, int(reserve_in * self.rng.uniform(0.0005, 0.03)))
        return self.swap_txs(p, z, amount)

    # ------------------------------------------------------------ sending
    def tx(self, to: str, data: str, gas: int) -> dict[str, Any]:
        return {"from": self.sender, "to": to, "data": data, "gas": hex(gas)}

    def send_many(self, txs: Sequence[dict[str, Any]], *, mine: bool = True, chunk: int = 500) -> str | None:
        """Send ``txs`` in order with automine off, then mine until all are included
        (``arbbot.devnet.bulk.send_batched``). Returns the last block hash."""
        return send_batched(self.rpc, self.sender, txs, mine=mine, chunk=chunk)

    def resync_mirror(self) -> None:
        """Re-read every mirrored pair (after a revert/reorg changed history)."""
        for p in self.pairs.values():
            p.reserve0, p.reserve1 = self.onchain_reserves(p.address)

    def mine(self, n: int = 1) -> None:
        for _ in range(n):
            self.rpc.call("evm_mine", [])

    def onchain_reserves(self, pair: str, block: str = "latest") -> tuple[int, int]:
        d = bytes.fromhex(self.rpc.eth_call(pair, encode_call("getReserves()"), block)[2:])
        return int.from_bytes(d[0:32], "big"), int.from_bytes(d[32:64], "big")


def v2_pair_address(factory: str, token0: str, token1: str) -> str:
    init_hash = keccak(bytes.fromhex(artifacts.load("UniswapV2Pair").bytecode[2:]))
    salt = keccak(bytes.fromhex(token0[2:]) + bytes.fromhex(token1[2:]))
    raw = keccak(b"\xff" + bytes.fromhex(factory[2:]) + salt + init_hash)
    return "0x" + raw[12:].hex()


def build_v2_market(dev: DevChain, n_tokens: int, n_pairs: int, liquidity: int = 10**24) -> tuple[str, list[str]]:
    """Factory + ``n_tokens`` tokens + ``n_pairs`` funded pairs. Returns (factory, tokens)."""
    factory = dev.deploy_v2_factory()
    tokens = [dev.deploy_token(f"Token{i}", f"T{i}") for i in range(n_tokens)]
    combos = [(a, b) for i, a in enumerate(tokens) for b in tokens[i + 1 :]][:n_pairs]
    txs = []
    for a, b in combos:
        txs.append(dev.tx(factory, encode_call("createPair(address,address)", [a, b]), 3_000_000))
        t0, t1 = sorted([a, b])
        dev.pairs[v2_pair_address(factory, t0, t1)] = V2Pair(v2_pair_address(factory, t0, t1), t0, t1)
    dev.send_many(txs)
    liq: list[dict[str, Any]] = []
    for p in dev.pairs.values():
        liq += dev.liquidity_txs(p, liquidity, liquidity * dev.rng.randint(1, 9))
    dev.send_many(liq)
    return factory, tokens


# ---------------------------------------------------------------- odd tokens (solc-js)

ODD_TOKENS_SOL = """
// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract Bytes32SymbolToken {          // MKR-style
    bytes32 public symbol = "MKR";
    bytes32 public name = "Maker";
    uint8 public decimals = 18;
}
contract RevertingToken {
    function symbol() external pure returns (string memory) { revert("no symbol"); }
    function decimals() external pure returns (uint8) { revert(); }
}
contract GarbageToken {                // returns too few bytes
    fallback() external { assembly { mstore(0, 0x1234) return(30, 2) } }
}
"""

_COMPILE_JS = r"""
const solc = require(process.argv[1]);
const src = require('fs').readFileSync(0, 'utf8');
const input = {language: 'Solidity', sources: {'T.sol': {content: src}},
  settings: {optimizer: {enabled: true, runs: 200}, outputSelection: {'*': {'*': ['evm.bytecode.object']}}}};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
if (out.errors && out.errors.some(e => e.severity === 'error')) { console.error(JSON.stringify(out.errors)); process.exit(1); }
const res = {};
for (const [name, c] of Object.entries(out.contracts['T.sol'])) res[name] = '0x' + c.evm.bytecode.object;
process.stdout.write(JSON.stringify(res));
"""


def compile_solidity(source: str) -> dict[str, str]:
    """Creation bytecode by contract name, compiled with solc-js from node_modules."""
    cache = Path("/tmp") / f"arbbot-solc-{keccak(text=source).hex()[:16]}.json"
    if cache.exists():
        return dict(json.loads(cache.read_text()))
    solc = str(REPO_ROOT / "node_modules" / "solc")
    out = subprocess.run(
        ["node", "-e", _COMPILE_JS, solc], input=source.encode(), capture_output=True, timeout=120, check=True
    )
    cache.write_bytes(out.stdout)
    return dict(json.loads(out.stdout))


# ---------------------------------------------------------------- proxy


class RpcProxy:
    """A JSON-RPC proxy in front of a node on its own port. ``kill()`` closes the port
    (connections refused), ``revive()`` opens it again. With ``max_log_range`` set, an
    ``eth_getLogs`` over more blocks than that is refused like Infura does (code -32005,
    "query returned more than 10000 results", a suggested ``data.from/to``), or with
    ``style="generic"`` like many nodes (-32000 "block range too large", no suggestion).
    With ``refuse_overrides`` an ``eth_call`` carrying a state override is refused as nodes
    without that extension do (-32602 "too many arguments")."""

    def __init__(
        self, upstream: str, *, max_log_range: int | None = None, style: str = "infura", refuse_overrides: bool = False
    ) -> None:
        self.upstream = upstream
        self.refuse_overrides = refuse_overrides
        self.max_log_range = max_log_range
        self.style = style
        self.refused = 0
        self.requests = 0
        self._session = requests.Session()
        self._session.trust_env = False  # straight to the upstream, whatever the environment says
        self._lock = threading.Lock()
        self.server = PostServer(self.handle, _free_port())
        self.port = self.server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def revive(self) -> None:
        self.server.open()

    def kill(self) -> None:
        self.server.close()

    def _refusal(self, req: dict[str, Any]) -> dict[str, Any] | None:
        if self.refuse_overrides and req.get("method") == "eth_call" and len(req.get("params", ())) > 2:
            with self._lock:
                self.refused += 1
            return {"jsonrpc": "2.0", "id": req.get("id"),
                    "error": {"code": -32602, "message": "too many arguments, want at most 2"}}
        if self.max_log_range is None or req.get("method") != "eth_getLogs":
            return None
        f = req["params"][0]
        if "blockHash" in f:
            return None
        lo, hi = int(f.get("fromBlock", "0x0"), 16), int(f.get("toBlock", "0x0"), 16)
        if hi - lo + 1 <= self.max_log_range:
            return None
        with self._lock:
            self.refused += 1
        if self.style == "infura":
            err = {"code": -32005, "message": "query returned more than 10000 results",
                   "data": {"from": hex(lo), "limit": 10000, "to": hex(lo + self.max_log_range // 2)}}
        else:
            err = {"code": -32000, "message": "block range too large"}
        return {"jsonrpc": "2.0", "id": req.get("id"), "error": err}

    def handle(self, body: bytes) -> tuple[int, bytes]:
        with self._lock:
            self.requests += 1
        payload = json.loads(body)
        reqs = payload if isinstance(payload, list) else [payload]
        refusals = [self._refusal(r) for r in reqs]
        if isinstance(payload, dict) and refusals[0] is not None:
            return 200, json.dumps(refusals[0]).encode()
        forward = [r for r, x in zip(reqs, refusals) if x is None]
        replies: list[Any] = []
        if forward:
            resp = self._session.post(self.upstream, data=json.dumps(forward if isinstance(payload, list) else forward[0]),
                                      headers={"Content-Type": "application/json"}, timeout=30)
            got = resp.json()
            replies = got if isinstance(got, list) else [got]
        if not isinstance(payload, list):
            return 200, json.dumps(replies[0]).encode()
        return 200, json.dumps(replies + [x for x in refusals if x is not None]).encode()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def checksum(a: str) -> str:
    return str(to_checksum_address(a))


__all__ = ["DevChain", "RpcProxy", "build_v2_market", "compile_solidity", "v2_pair_address", "encode"]
