"""Start and stop an anvil node (npm ``@foundry-rs/anvil-linux-amd64``) on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from arbbot.chain.rpc import RpcClient
from arbbot.config import REPO_ROOT
from arbbot.errors import ArbbotError

DEFAULT_CHAIN_ID = 31337


def anvil_binary() -> Path:
    local = Path(os.environ.get("ARBBOT_NODE_MODULES", REPO_ROOT / "node_modules")) / ".bin" / "anvil"
    if local.exists():
        return local
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise ArbbotError("anvil not found: run `npm ci` (package @foundry-rs/anvil-linux-amd64)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Anvil:
    """A running anvil. ``stop()`` terminates it; usable as a context manager."""

    process: subprocess.Popen[bytes]
    port: int
    url: str
    log_path: Path | None

    def rpc(self) -> RpcClient:
        return RpcClient(self.url)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Anvil:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_anvil(
    port: int | None = None,
    *,
    chain_id: int = DEFAULT_CHAIN_ID,
    block_time: float | None = None,
    log_path: Path | None = None,
    extra_args: list[str] | None = None,
    gas_limit: int = 60_000_000,
    detach: bool = False,
) -> Anvil:
    """Start anvil and wait until it answers ``eth_chainId``.

    ``block_time=None`` is automine (a block per transaction); a number mines on an
    interval. ``detach`` starts it in its own session so it outlives the caller.
    """
    port = port or free_port()
    args = [
        str(anvil_binary()),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--chain-id", str(chain_id),
        "--gas-limit", str(gas_limit),
        "--code-size-limit", "100000",
        "--accounts", "10",
        "--balance", "1000000",
    ]
    if block_time is not None:
        args += ["--block-time", str(block_time)]
    args += extra_args or []
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=detach)
    url = f"http://127.0.0.1:{port}"
    anvil = Anvil(proc, port, url, log_path)
    rpc = RpcClient(url, timeout_s=2)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ArbbotError(f"anvil exited with code {proc.returncode} (args: {' '.join(args)})")
        try:
            if rpc.chain_id() == chain_id:
                return anvil
        except ArbbotError:
            time.sleep(0.05)
    anvil.stop()
    raise ArbbotError(f"anvil did not answer on {url} within 30s")
