"""The scan stage's side of a recording, on a real anvil: each block with the node's header
and fee data, such that the backtest's fee quote is the one the execute stage would have
made at that block; on a devnet, a state dump that loads into a fresh anvil."""

from __future__ import annotations

from pathlib import Path

from arbbot.devnet.anvil import start_anvil
from arbbot.devnet.scenarios import mine
from arbbot.execution import fees
from arbbot.replay.backtest import fee_replies
from arbbot.replay.recorder import Recorder
from arbbot.replay.recording import Recording, RecordingWriter
from arbbot.types import PoolDelta


def test_blocks_carry_header_and_fee_data_and_the_devnet_state(tmp_path: Path) -> None:
    anvil = start_anvil(log_path=tmp_path / "anvil.log")
    try:
        rpc = anvil.rpc()
        rpc.call("anvil_setBalance", ["0x" + "42" * 20, hex(12345)])
        mine(rpc, 3)
        policy = fees.FeePolicy()
        recorder = Recorder(RecordingWriter(tmp_path / "rec", rpc.chain_id()), rpc, policy,
                            lambda: {"chain": {"weth": "0x" + "c0" * 20}}, dump_state=True)
        quotes = {}
        for _ in range(3):
            head = rpc.call("eth_getBlockByNumber", ["latest", False])
            n = int(head["number"], 16)
            quotes[n] = fees.quote(rpc, policy)  # what the execute stage reads at this head
            path = recorder.record(PoolDelta(rpc.chain_id(), n, head["hash"], ()))
            mine(rpc, 1)
        recording = Recording.open(path)
        assert recording.meta["chain"]["weth"] == "0x" + "c0" * 20
        for block in recording.blocks():
            assert block.header is not None and block.header["hash"] == block.delta.block_hash
            assert block.fee_history is not None and block.gas_price is not None
            assert fees.quote_from_replies(fee_replies(block), policy) == quotes[block.number]
        dump = recording.meta["state_dump"]
        assert dump["block"] == recording.first_block
        state = (path.parent / dump["file"]).read_bytes()
    finally:
        anvil.stop()
    fresh = start_anvil(log_path=tmp_path / "fresh.log")
    try:
        other = fresh.rpc()
        assert other.call("anvil_loadState", ["0x" + state.hex()]) is True
        assert other.call("eth_getBalance", ["0x" + "42" * 20, "latest"]) == hex(12345)
    finally:
        fresh.stop()
