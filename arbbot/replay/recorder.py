"""The scan stage's side of a recording: each published ``PoolDelta`` with the node's header
of its block and the fee data the execute stage reads, appended to the chain's recording
(``arbbot.replay.recording``). One JSON-RPC batch per block, only while recording is on.

A new recording file starts with the meta the fleet gives (``meta``: chain, strategy in
force, fee policy, exclusions) and, on a devnet (``dump_state``), an anvil state dump
(``anvil_dumpState``, gzip as anvil gives it) written beside it, so the chain itself can be
rebuilt (``anvil --load-state`` or ``anvil_loadState``) at the block the meta names.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Mapping

from arbbot.chain.rpc import RpcClient
from arbbot.errors import RpcError
from arbbot.execution.fees import FeePolicy
from arbbot.replay.recording import RecordedBlock, RecordingWriter
from arbbot.types import PoolDelta

HEADER_FIELDS = ("number", "hash", "parentHash", "timestamp", "baseFeePerGas", "gasUsed", "gasLimit")
STATE_SUFFIX = ".anvil-state.gz"


class Recorder:
    def __init__(
        self,
        writer: RecordingWriter,
        rpc: RpcClient,
        fee_policy: FeePolicy,
        meta: Callable[[], Mapping[str, Any]],
        *,
        dump_state: bool = False,
    ) -> None:
        self.writer = writer
        self.rpc = rpc
        self.fee_policy = fee_policy
        self.meta = meta
        self.dump_state = dump_state

    def record(self, delta: PoolDelta) -> Path:
        """Append ``delta``'s block; the recording file it went to."""
        n = hex(delta.block_number)
        policy = self.fee_policy
        block, history, gas_price = self.rpc.batch(
            [("eth_getBlockByNumber", [n, False]),
             ("eth_feeHistory", [hex(policy.history_blocks), n, [policy.priority_percentile]]),
             ("eth_gasPrice", [])],
            raise_errors=False,
        )
        header = {k: block[k] for k in HEADER_FIELDS if k in block} if isinstance(block, dict) else None
        recorded = RecordedBlock(
            delta,
            header,
            history if isinstance(history, dict) else None,
            gas_price if isinstance(gas_price, str) else None,
        )
        return self.writer.append(recorded, self._start)

    def _start(self, block: RecordedBlock, path: Path) -> dict[str, Any]:
        meta = {**self.meta(), "chain_id": self.writer.chain_id, "recorded_at": time.time(),
                "first_block": block.number, "state_dump": None}
        if self.dump_state:
            meta["state_dump"] = self._dump(path)
        return meta

    def _dump(self, path: Path) -> dict[str, Any] | None:
        """anvil's state (at its head, read just before) beside the recording."""
        try:
            head = self.rpc.block_number()
            raw = self.rpc.call("anvil_dumpState")
        except RpcError as exc:  # not an anvil after all: the recording goes on without
            return {"error": f"anvil_dumpState failed: {exc}"[:300]}
        dump = path.with_name(path.name.removesuffix(".arbrec") + STATE_SUFFIX)
        dump.write_bytes(bytes.fromhex(str(raw).removeprefix("0x")))
        return {"file": dump.name, "block": head, "format": "anvil_dumpState"}
