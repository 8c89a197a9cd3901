"""The project's relay (``python -m arbbot.devnet.relay``) as a real subprocess on a free
127.0.0.1 port, its output collected line by line for assertions."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from arbbot.config import REPO_ROOT
from arbbot.devnet.anvil import free_port

RELAY = [sys.executable, "-m", "arbbot.devnet.relay"]


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RELAY, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


@dataclass
class RelayProc:
    process: subprocess.Popen[str]
    url: str
    lines: list[str] = field(default_factory=list)
    drain: threading.Thread | None = None

    def log(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout_s: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.drain is not None:
            self.drain.join(timeout=5)  # the log is complete once stop returns
        return self.process.returncode


def start_relay(anvil_url: str, *, block_time_s: float = 0.3) -> RelayProc:
    port = free_port()
    proc = subprocess.Popen(
        [*RELAY, "--anvil", anvil_url, "--port", str(port), "--block-time", str(block_time_s)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    relay = RelayProc(proc, f"http://127.0.0.1:{port}")
    assert proc.stdout is not None
    first = proc.stdout.readline()
    relay.lines.append(first)
    if "relay listening on" not in first:
        relay.stop()
        raise RuntimeError(f"relay did not start: {first!r} {proc.stdout.read()!r}")

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            relay.lines.append(line)

    relay.drain = threading.Thread(target=drain, daemon=True)
    relay.drain.start()
    return relay
