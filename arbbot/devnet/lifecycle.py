"""The devnet's lifecycle: ``up``, ``down`` and ``status`` of its anvil node.

Owns the node process: ``up`` starts anvil detached on 127.0.0.1 (its pid and port in
``anvil.pid``, its output in ``anvil.log``), has ``deploy.deploy_contracts`` fill the
``record.Deployment`` and then switches the node to interval mining (one block a second) so
the demo looks like a chain; it is idempotent (a live recorded deployment is kept).
``down`` signals only the anvil it started (never a reused pid), ``status`` is a JSON-able
summary.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from arbbot.chain.rpc import RpcClient
from arbbot.devnet.anvil import DEFAULT_CHAIN_ID, start_anvil
from arbbot.devnet.deploy import Progress, deploy_contracts, verify_deployment
from arbbot.devnet.record import DEPLOYMENT_FILE, Deployment, devnet_dir, ensure_signer_key
from arbbot.errors import ArbbotError, RpcError

DEFAULT_PORT = 8545
DEFAULT_BLOCK_TIME_S = 1.0
PID_FILE = "anvil.pid"
LOG_FILE = "anvil.log"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_our_anvil(pid: int, port: int) -> bool:
    """True only for an anvil process listening on ``port`` (never signal a reused pid)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(c.endswith(b"anvil") for c in cmd) and str(port).encode() in cmd


def _read_pid(directory: Path) -> tuple[int, int] | None:
    try:
        data = json.loads((directory / PID_FILE).read_text())
        return int(data["pid"]), int(data["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _deployment_live(dep: Deployment, rpc_url: str) -> bool:
    try:
        rpc = RpcClient(rpc_url, timeout_s=2)
        if rpc.chain_id() != dep.chain_id:
            return False
        return not verify_deployment(rpc, dep)
    except ArbbotError:
        return False


def up(
    *,
    port: int = DEFAULT_PORT,
    directory: Path | str | None = None,
    block_time_s: float | None = DEFAULT_BLOCK_TIME_S,
    v3: bool = True,
    progress: Progress | None = print,
) -> Deployment:
    """Start anvil detached on 127.0.0.1:``port`` and deploy the devnet; idempotent.

    If the recorded deployment is already live at the recorded URL, says so and returns
    it. ``block_time_s=None`` leaves the node in automine (tests); otherwise the node mines
    a block every ``block_time_s`` seconds once deployment is done.
    """
    d = devnet_dir(directory)
    d.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _m: None)
    dep_file = d / DEPLOYMENT_FILE
    if dep_file.is_file():
        dep = Deployment.load(dep_file)
        if _deployment_live(dep, dep.rpc_url):
            say(f"devnet already up at {dep.rpc_url} (block {RpcClient(dep.rpc_url).block_number()}); nothing to do")
            return dep
    url = f"http://127.0.0.1:{port}"
    try:
        RpcClient(url, timeout_s=1).chain_id()
        raise ArbbotError(f"something already answers on {url} without our contracts: run `devnet down` or pick --port")
    except RpcError:
        pass  # the port is free: the normal case
    signer = ensure_signer_key(d)
    say(f"starting anvil on {url} (log: {d / LOG_FILE})")
    anvil = start_anvil(port, chain_id=DEFAULT_CHAIN_ID, log_path=d / LOG_FILE, detach=True)
    (d / PID_FILE).write_text(json.dumps({"pid": anvil.process.pid, "port": port}) + "\n")
    rpc = anvil.rpc()
    try:
        dep = deploy_contracts(rpc, signer=signer, progress=progress, v3=v3)
    except BaseException:
        down(directory=d)
        raise
    if block_time_s:
        # Deploy under automine (fast), then mine on an interval like a real chain.
        rpc.call("evm_setIntervalMining", [int(block_time_s) if float(block_time_s).is_integer() else block_time_s])
        rpc.call("evm_setAutomine", [False])
    dep.save(dep_file)
    say(
        f"devnet up: chain {dep.chain_id} at {dep.rpc_url}, {len(dep.tokens)} tokens, {len(dep.pools)} pools, "
        f"executor {dep.executor}, signer {dep.signer}; recorded in {dep_file}"
    )
    return dep


def down(*, directory: Path | str | None = None, progress: Progress | None = print) -> bool:
    """Stop the devnet's anvil (only the one this module started). True if one was stopped."""
    d = devnet_dir(directory)
    say = progress or (lambda _m: None)
    rec = _read_pid(d)
    if rec is None:
        say("devnet is not running (no pid file)")
        return False
    pid, port = rec
    stopped = False
    if _pid_alive(pid) and _is_our_anvil(pid, port):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _pid_alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.05)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        stopped = True
        say(f"stopped anvil pid {pid} (port {port})")
    else:
        say(f"anvil pid {pid} is gone; cleaning up")
    (d / PID_FILE).unlink(missing_ok=True)
    return stopped


def _reap(pid: int) -> None:
    # When the caller started anvil itself (tests), the child must be reaped to disappear.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def status(*, directory: Path | str | None = None) -> dict[str, Any]:
    """A JSON-able summary: running?, url, block, and whether the recorded contracts exist."""
    d = devnet_dir(directory)
    out: dict[str, Any] = {"devnet_dir": str(d), "running": False}
    rec = _read_pid(d)
    if rec:
        out["pid"], out["port"] = rec
        out["process_alive"] = _pid_alive(rec[0])
    dep_file = d / DEPLOYMENT_FILE
    if not dep_file.is_file():
        out["deployment"] = None
        return out
    dep = Deployment.load(dep_file)
    out.update(rpc_url=dep.rpc_url, chain_id=dep.chain_id, deployment=str(dep_file))
    try:
        rpc = RpcClient(dep.rpc_url, timeout_s=2)
        out["block_number"] = rpc.block_number()
        missing = verify_deployment(rpc, dep)
        out["running"] = True
        out["contracts_ok"] = not missing
        out["missing_code"] = missing
    except ArbbotError as exc:
        out["error"] = str(exc)
    out.update(
        tokens=len(dep.tokens), pools=len(dep.pools), dexes=[x["name"] for x in dep.dexes],
        executor=dep.executor, signer=dep.signer,
    )
    return out
