"""``up`` / ``status`` / ``down`` on a free port in a tmp dir: detached anvil with a pid
file, interval mining after deployment, idempotent ``up``, clean ``down``."""

from __future__ import annotations

import stat
import time
from pathlib import Path

from arbbot.chain.rpc import RpcClient
from arbbot.devnet.anvil import free_port
from arbbot.devnet.lifecycle import down, status, up


def test_up_is_idempotent_and_down_stops_it(tmp_path: Path) -> None:
    port = free_port()
    lines: list[str] = []
    dep = up(port=port, directory=tmp_path, block_time_s=1, progress=lines.append)
    try:
        assert any(line.startswith("[1/") for line in lines)  # step i/n progress
        assert dep.rpc_url == f"http://127.0.0.1:{port}"
        assert stat.S_IMODE((tmp_path / "signer.key").stat().st_mode) == 0o600
        key = (tmp_path / "signer.key").read_text().strip()
        assert all(key[2:] not in line for line in lines)  # the key is never printed
        st = status(directory=tmp_path)
        assert st["running"] and st["contracts_ok"] and st["pools"] == len(dep.pools) >= 12
        assert "uniswap-v3" in st["dexes"]
        # interval mining: blocks appear without transactions
        rpc = RpcClient(dep.rpc_url)
        b0 = rpc.block_number()
        time.sleep(2.2)
        assert rpc.block_number() > b0
        again: list[str] = []
        assert up(port=port, directory=tmp_path, progress=again.append) == dep
        assert any("already up" in line for line in again)
    finally:
        assert down(directory=tmp_path, progress=None)
    st = status(directory=tmp_path)
    assert not st["running"] and not (tmp_path / "anvil.pid").exists()
    assert not down(directory=tmp_path, progress=None)
