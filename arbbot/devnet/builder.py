"""The devnet relay's block builder: bundles held per target block, simulated with anvil's
``eth_simulateV1``, and the node's blocks mined with exactly the bundles that run as
simulated (``arbbot.devnet.relay`` serves the wire format and explains the rules).

It is the only miner of its node while it runs: it turns automine and interval mining
off and mines a block ``block_time_s`` after the previous one was built. For block N: each
bundle aimed at N is simulated on top of those already accepted; one that would revert
(outside its ``revertingTxHashes``), has a wrong nonce, a wrong chain or cannot pay is left
out and costs nothing. A block with bundles carries only the accepted bundles' txs, on the
head state they were simulated on; the public txs held in the pool wait for the next
block. Every accepted bundle is then checked to have landed whole, in order and unreverted
in N; if one did not (the node ordered bundles of different senders otherwise than
simulated, or a public tx arrived mid-build), the block is rolled back
(``evm_snapshot``/``evm_revert``), that bundle dropped and N mined again. So a bundle is
in its target block as simulated, or absent and free. Such a rollback is visible for a
moment to anyone polling the node; with one bundle per block it does not happen.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from eth_abi import decode
from eth_utils import keccak

from arbbot.chain.rawtx import RawTx
from arbbot.chain.rpc import RpcClient
from arbbot.errors import ArbbotError, RpcError

log = logging.getLogger("arbbot.devnet.relay")

TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
ETH_TRANSFER_LOG = "0x" + "ee" * 20  # eth_simulateV1 traceTransfers: native value moves


class BundleInvalid(ArbbotError):
    """A bundle that cannot be simulated at all: bad nonce, wrong chain, cannot pay."""


@dataclass
class QueuedBundle:
    txs: list[RawTx]
    block: int
    reverting: frozenset[str]
    bundle_hash: str
    signer: str


class Builder:
    """Holds bundles per target block and mines the node's blocks; see the module."""

    def __init__(self, rpc: RpcClient, block_time_s: float) -> None:
        self.rpc = rpc
        self.block_time_s = block_time_s
        self.chain_id = rpc.chain_id()
        self.coinbase = str(rpc.call("eth_coinbase")).lower()
        self.chain_lock = threading.Lock()  # one simulation or build at a time
        self.state_lock = threading.Lock()
        self.bundles: dict[int, list[QueuedBundle]] = {}
        self.miss: set[int] = set()
        self.paused = False
        self.stop = threading.Event()
        self.was_automine = bool(rpc.call("anvil_getAutomine"))

    # ------------------------------------------------------------------ control

    def take_over_mining(self) -> None:
        self.rpc.call("evm_setAutomine", [False])
        self.rpc.call("evm_setIntervalMining", [0])

    def restore_mining(self) -> None:
        if self.was_automine:
            self.rpc.call("evm_setAutomine", [True])

    def add(self, bundle: QueuedBundle) -> None:
        with self.state_lock:
            self.bundles.setdefault(bundle.block, []).append(bundle)

    def pause(self, paused: bool) -> None:
        """Stop or resume building; once this returns no build is under way."""
        with self.chain_lock:
            self.paused = paused

    def miss_blocks(self, numbers: list[int]) -> None:
        with self.state_lock:
            self.miss.update(numbers)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.build_next()
            except Exception:  # the builder goes on; the next tick tries again
                log.exception("building a block failed")
            # a full block time after each build, never a burst after a slow one: a searcher
            # always has block_time_s to see a block and aim at the next
            self.stop.wait(self.block_time_s)

    # ------------------------------------------------------------------ simulation

    def simulate(self, txs: list[RawTx], block_number: int, state: str) -> tuple[list[dict[str, Any]], int]:
        """Per-tx results (Flashbots fields) and the state block's number."""
        state_block = int(self.rpc.call("eth_getBlockByNumber", [state, False])["number"], 16)
        nonces: dict[str, int] = {}
        for tx in txs:
            if tx.chain_id is not None and tx.chain_id != self.chain_id:
                raise BundleInvalid(f"tx {tx.tx_hash}: chain id {tx.chain_id}, this chain is {self.chain_id}")
            if tx.sender not in nonces:
                nonces[tx.sender] = int(self.rpc.call("eth_getTransactionCount", [tx.sender, hex(state_block)]), 16)
            if tx.nonce != nonces[tx.sender]:
                low = "low" if tx.nonce < nonces[tx.sender] else "high"
                raise BundleInvalid(f"tx {tx.tx_hash}: nonce too {low}: address {tx.sender}, "
                                    f"tx: {tx.nonce} state: {nonces[tx.sender]}")
            nonces[tx.sender] += 1
        request = {
            "blockStateCalls": [{
                "blockOverrides": {"number": hex(block_number), "feeRecipient": self.coinbase},
                "calls": [tx.as_call() for tx in txs],
            }],
            "validation": True,
            "traceTransfers": True,
        }
        try:
            block = self.rpc.call("eth_simulateV1", [request, hex(state_block)])[0]
        except RpcError as exc:
            raise BundleInvalid(f"bundle cannot run: {exc}") from None
        base_fee = int(block.get("baseFeePerGas") or "0x0", 16)
        return [_result(tx, call, base_fee, self.coinbase) for tx, call in zip(txs, block["calls"])], state_block

    # ------------------------------------------------------------------ building

    def build_next(self) -> None:
        with self.chain_lock:
            if self.paused:
                return
            n = self.rpc.block_number() + 1
            with self.state_lock:
                due = self.bundles.pop(n, [])
                for past in [k for k in self.bundles if k < n]:
                    for b in self.bundles.pop(past):
                        log.info("bundle %s for block %d: expired, never built", b.bundle_hash, past)
                missed = n in self.miss
                self.miss.discard(n)
            if missed and due:
                log.info("block %d: told to miss it; %d bundle(s) not included", n, len(due))
                due = []
            accepted: list[QueuedBundle] = []
            for b in due:
                prior = [t for a in accepted for t in a.txs]
                try:
                    results, _ = self.simulate(prior + b.txs, n, "latest")
                except BundleInvalid as exc:
                    log.info("bundle %s for block %d: not included: %s", b.bundle_hash, n, exc)
                    continue
                bad = [(t, r) for t, r in zip(b.txs, results[len(prior):]) if r.get("error") and t.tx_hash not in b.reverting]
                if bad:
                    t, r = bad[0]
                    log.info("bundle %s for block %d: not included: tx %s would revert (%s)",
                             b.bundle_hash, n, t.tx_hash, r.get("revert") or r["error"])
                    continue
                accepted.append(b)
            if accepted:
                self._mine_with(accepted, n)
            else:
                self.rpc.call("evm_mine")

    def _mine_with(self, accepted: list[QueuedBundle], n: int) -> None:
        # A block with bundles carries only bundles, on top of the head state they were
        # simulated on; the public txs wait for the next block.
        public = self._hold_public()
        try:
            while accepted:
                snapshot = self.rpc.call("evm_snapshot")
                self._send_all([t.raw for b in accepted for t in b.txs], n)
                self.rpc.call("evm_mine")
                failed = [b for b in accepted if not self._landed(b, n)]
                if not failed:
                    for b in accepted:
                        log.info("bundle %s: included in block %d (%d tx)", b.bundle_hash, n, len(b.txs))
                    return
                # The node ordered bundles otherwise than simulated, or a public tx arrived
                # mid-build: keep every public tx (in block n or in the pool), roll back.
                ours = {t.tx_hash for b in accepted for t in b.txs}
                mined = self.rpc.call("eth_getBlockByNumber", [hex(n), False])["transactions"]
                late = [self.rpc.call("eth_getRawTransactionByHash", [h]) for h in mined if h not in ours]
                public = list(dict.fromkeys(public + [str(r) for r in late if r] + self._hold_public()))
                self.rpc.call("evm_revert", [snapshot])
                self.rpc.call("anvil_dropAllTransactions")
                for b in failed:
                    log.info("bundle %s for block %d: not included: did not land as simulated", b.bundle_hash, n)
                accepted = [b for b in accepted if b not in failed]
            self.rpc.call("evm_mine")
        finally:
            self._send_all(public, n)  # back in the pool, for the next block

    def _send_all(self, raws: list[str], n: int) -> None:
        for raw in raws:
            try:
                self.rpc.call("eth_sendRawTransaction", [raw])
            except RpcError as exc:  # a bundle tx refused shows as not landed; a public one lost its nonce
                log.debug("block %d: node refused a tx: %s", n, exc)

    def _hold_public(self) -> list[str]:
        """Take every transaction out of the node's pool; their raw bytes, nonce order."""
        content = self.rpc.call("txpool_content") or {}
        hashes: list[str] = []
        for section in ("pending", "queued"):
            for by_nonce in (content.get(section) or {}).values():
                for _, tx in sorted(by_nonce.items(), key=lambda kv: int(kv[0])):
                    hashes.append(tx["hash"])
        raws = [r for r in (self.rpc.call("eth_getRawTransactionByHash", [h]) for h in hashes) if r]
        self.rpc.call("anvil_dropAllTransactions")
        return [str(r) for r in raws]

    def _landed(self, b: QueuedBundle, n: int) -> bool:
        last_index = -1
        for t in b.txs:
            receipt = self.rpc.call("eth_getTransactionReceipt", [t.tx_hash])
            if not receipt or int(receipt["blockNumber"], 16) != n:
                return False
            if int(receipt["status"], 16) != 1 and t.tx_hash not in b.reverting:
                return False
            index = int(receipt["transactionIndex"], 16)
            if index < last_index:
                return False
            last_index = index
        return True


def _result(tx: RawTx, call: dict[str, Any], base_fee: int, coinbase: str) -> dict[str, Any]:
    gas_used = int(call["gasUsed"], 16)
    if tx.max_fee_per_gas is not None:
        price = min(tx.max_fee_per_gas, base_fee + (tx.max_priority_fee_per_gas or 0))
    else:
        price = tx.gas_price_wei or 0
    gas_fees = gas_used * max(price - base_fee, 0)
    to_coinbase = sum(
        int(entry["data"], 16)
        for entry in call.get("logs", [])
        if entry["address"].lower() == ETH_TRANSFER_LOG and entry["topics"][0] == TRANSFER_TOPIC
        and "0x" + entry["topics"][2][-40:] == coinbase
    )
    out: dict[str, Any] = {
        "coinbaseDiff": str(gas_fees + to_coinbase),
        "ethSentToCoinbase": str(to_coinbase),
        "fromAddress": tx.sender,
        "gasFees": str(gas_fees),
        "gasPrice": str(price),
        "gasUsed": gas_used,
        "toAddress": tx.to,
        "txHash": tx.tx_hash,
        "value": call.get("returnData") or "0x",
    }
    if int(call["status"], 16) != 1:
        out["error"] = "execution reverted"
        out["revert"] = _revert_reason(call.get("returnData") or "0x")
        out["value"] = None
    return out


def _revert_reason(data: str) -> str:
    if data.startswith("0x08c379a0") and len(data) >= 138:  # Error(string)
        try:
            return str(decode(["string"], bytes.fromhex(data[10:]))[0])
        except Exception:
            pass
    return data
