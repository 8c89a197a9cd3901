"""The devnet bridge's relayer: watches ``Sent`` on each chain's ``DevBridge`` and, once a
transfer is ``delay_blocks`` deep on its source chain, completes it on the other chain,
or fails it (refund on the source) or lets it stall, as its configuration says.

Owns the relayer's behaviour only: fee (written to both bridges at start), delay in
blocks, failure and stall rates. A transfer's fate is drawn from ``seed`` and its key
alone, so it is the same on every run and after any restart. The relayer keeps no state of
its own: the bridges record what was completed or refunded, so a restarted relayer scans
from block 0 and acts only on keys still pending on both sides.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass, field
from typing import Mapping

from eth_abi import decode
from eth_utils import keccak

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import encode_call, send_unlocked
from arbbot.errors import ArbbotError

log = logging.getLogger("arbbot.crosschain.relayer")

SENT_TOPIC = "0x" + keccak(text="Sent(bytes32,address,address,address,uint256,uint256,uint256)").hex()

DELIVER, FAIL, STALL = "deliver", "fail", "stall"


@dataclass(frozen=True)
class RelayerConfig:
    fee_bps: int | None = None  # None: leave the bridges' fee as deployed
    delay_blocks: int = 2
    failure_rate: float = 0.0
    stall_rate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.delay_blocks < 0:
            raise ArbbotError("relayer: delay_blocks must not be negative")
        if not (0 <= self.failure_rate <= 1 and 0 <= self.stall_rate <= 1 and self.failure_rate + self.stall_rate <= 1):
            raise ArbbotError("relayer: failure_rate and stall_rate must be in [0, 1] and sum to at most 1")
        if self.fee_bps is not None and not 0 <= self.fee_bps <= 10_000:
            raise ArbbotError("relayer: fee_bps must be in [0, 10000]")


@dataclass
class Transfer:
    key: bytes
    src_chain: int
    dst_chain: int
    token: str  # on the source chain
    recipient: str
    amount_out: int
    block: int


@dataclass
class Relayer:
    rpcs: Mapping[int, RpcClient]
    bridges: Mapping[int, str]
    tokens: Mapping[str, Mapping[int, str]]
    account: str  # the bridges' relayer: an unlocked devnet account
    config: RelayerConfig = field(default_factory=RelayerConfig)
    cursor: dict[int, int] = field(default_factory=dict)
    pending: dict[bytes, Transfer] = field(default_factory=dict)
    stalled: set[bytes] = field(default_factory=set)

    def configure(self) -> None:
        if self.config.fee_bps is None:
            return
        for chain_id, bridge in self.bridges.items():
            send_unlocked(self.rpcs[chain_id], self.account, to=bridge,
                          data=encode_call("setFee(uint16)", [self.config.fee_bps]))

    def fate(self, key: bytes) -> str:
        draw = random.Random(f"{self.config.seed}:{key.hex()}").random()
        if draw < self.config.failure_rate:
            return FAIL
        if draw < self.config.failure_rate + self.config.stall_rate:
            return STALL
        return DELIVER

    def _counterpart(self, src_chain: int, dst_chain: int, token: str) -> str:
        for by_chain in self.tokens.values():
            if by_chain.get(src_chain, "").lower() == token.lower():
                return by_chain[dst_chain]
        raise ArbbotError(f"relayer: token {token} of chain {src_chain} has no counterpart on {dst_chain}")

    def _scan(self, chain_id: int, head: int) -> None:
        start = self.cursor.get(chain_id, 0)
        if start > head:
            return
        logs = self.rpcs[chain_id].call("eth_getLogs", [{
            "address": self.bridges[chain_id], "topics": [SENT_TOPIC], "fromBlock": hex(start), "toBlock": hex(head)}])
        for entry in logs:
            key = bytes.fromhex(entry["topics"][1][2:])
            token, recipient, amount_out, _fee, dst = decode(
                ["address", "address", "uint256", "uint256", "uint256"], bytes.fromhex(entry["data"][2:]))
            if key not in self.pending and key not in self.stalled:
                self.pending[key] = Transfer(key, chain_id, int(dst), token.lower(), recipient.lower(), int(amount_out),
                                             int(entry["blockNumber"], 16))
        self.cursor[chain_id] = head + 1

    def _flag(self, chain_id: int, fn: str, key: bytes) -> int:
        return int(self.rpcs[chain_id].eth_call(self.bridges[chain_id], encode_call(fn, [key])), 16)

    def poll_once(self) -> list[tuple[str, str]]:
        """Scan both chains and act on every transfer that is deep enough: ``[(key hex, fate)]``."""
        heads = {c: rpc.block_number() for c, rpc in self.rpcs.items()}
        for chain_id, head in heads.items():
            self._scan(chain_id, head)
        acted: list[tuple[str, str]] = []
        for key, t in list(self.pending.items()):
            if heads[t.src_chain] < t.block + self.config.delay_blocks:
                continue
            del self.pending[key]
            fate = self.fate(key)
            if fate == STALL:
                self.stalled.add(key)
                log.info("transfer %s: stalled (never delivered)", key.hex())
            elif fate == FAIL:
                # outbound(key) = (sender, token, amount, state): still pending (1) to refund
                raw = self.rpcs[t.src_chain].eth_call(self.bridges[t.src_chain], encode_call("outbound(bytes32)", [key]))
                if decode(["address", "address", "uint256", "uint8"], bytes.fromhex(raw[2:]))[3] == 1:
                    send_unlocked(self.rpcs[t.src_chain], self.account, to=self.bridges[t.src_chain],
                                  data=encode_call("refund(bytes32)", [key]), gas=200_000)
                    log.info("transfer %s: failed, refunded on chain %d", key.hex(), t.src_chain)
            elif not self._flag(t.dst_chain, "completed(bytes32)", key):
                token = self._counterpart(t.src_chain, t.dst_chain, t.token)
                send_unlocked(self.rpcs[t.dst_chain], self.account, to=self.bridges[t.dst_chain], gas=200_000,
                              data=encode_call("complete(bytes32,address,address,uint256)",
                                               [key, token, t.recipient, t.amount_out]))
                log.info("transfer %s: delivered on chain %d", key.hex(), t.dst_chain)
            acted.append((key.hex(), fate))
        return acted

    def run(self, stop: threading.Event | None = None, poll_s: float = 0.5) -> None:
        stop = stop or threading.Event()
        self.configure()
        while not stop.is_set():
            try:
                self.poll_once()
            except ArbbotError:
                log.exception("relayer pass failed; the next one retries")
            stop.wait(poll_s)
