#!/usr/bin/env python
"""``make demo-xchain`` (``scripts/demo.py --xchain``): cross-chain arbitrage on two chains.

Brings up the two-chain devnet (``arbbot.devnet.twochain``: chain A 31337 with 1 s blocks,
chain B 31338 with 2 s blocks, the DevBridge on each) in its own directory
(``.devnet-xchain/``), registers both chains and applies the devnet's cross-chain
configuration (``.devnet-xchain/xchain.yaml``, the file format of ``config apply``), the
market simulator on both chains, the bridge's relayer (fee,
delay, a seeded failure rate), a Celery worker on the ``bridge`` queue and the Django
server; sends the strategy's ``tick`` every few seconds and prints a progress line (sagas
by state, alerts, PnL per token, the inventory per chain). Ctrl-C (or ``--seconds``)
stops everything it started, both chains included. Logs go to ``.run/xchain-*.log``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
os.environ.setdefault("ARBBOT_DEVNET", "1")
# the demo trades on the chains it deploys itself, so it chooses live there (elsewhere the
# default is dry-run, where the bridge queue starts no saga); ARBBOT_MODE overrides it
os.environ.setdefault("ARBBOT_MODE", "live")
os.environ.setdefault("ARBBOT_DEVNET_DIR", str(ROOT / ".devnet-xchain"))


def main(argv: list[str] | None = None) -> int:
    from arbbot.crosschain.relayer import RelayerConfig
    from arbbot.devnet.args import bps, port, port_pair, positive_float
    from arbbot.errors import ArbbotError

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=positive_float, default=None, help="stop after this long (default: until Ctrl-C)")
    ap.add_argument("--web-port", type=port, default=8000)
    ap.add_argument("--ports", type=port_pair, default=(8545, 8546), help="chain A and chain B anvil ports, A,B")
    ap.add_argument("--fee-bps", type=int, default=10, help="the bridge's fee")
    ap.add_argument("--delay-blocks", type=int, default=3, help="the bridge's delay in source-chain blocks")
    ap.add_argument("--failure-rate", type=float, default=0.1, help="share of transfers the bridge fails")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tick", type=positive_float, default=3.0, help="seconds between strategy passes")
    ap.add_argument("--band-bps", type=bps, default=300,
                    help="a chain's share of a token may leave 50 %% by this much before a rebalance")
    args = ap.parse_args(argv)
    try:  # the relayer's own rules, checked before anything starts
        RelayerConfig(fee_bps=args.fee_bps, delay_blocks=args.delay_blocks, failure_rate=args.failure_rate,
                      seed=args.seed)
    except ArbbotError as exc:
        ap.error(str(exc))

    import django

    django.setup()
    import yaml

    from arbbot.config import get_settings
    from arbbot.devnet import twochain
    from workers.celery_app import app

    directory = get_settings().devnet_dir
    run_dir = ROOT / ".run"
    run_dir.mkdir(exist_ok=True)
    py = sys.executable
    celery = str(Path(py).parent / "celery")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    port_a, port_b = args.ports

    from webapp.core import services

    print(f"== two chains in {directory}")
    twochain.down(directory=directory, progress=None)
    held = services.xchain_sagas_abandon("its two-chain devnet was torn down and started again (demo)")
    if held:
        print(f"   {held} saga(s) of an earlier run left open: held (alert 'abandoned')")
    two = twochain.up(directory=directory, ports=(port_a, port_b), fee_bps=args.fee_bps)
    # the devnet configures itself as a user would: both chains, then an xchain section
    config = twochain.xchain_config(two, fee_bps=args.fee_bps, delay_blocks=args.delay_blocks, stall_blocks=60,
                                    slippage_bps=30, tolerance_bps=args.band_bps)
    config_file = directory / "xchain.yaml"
    config_file.write_text("# the two-chain devnet's cross-chain configuration (written by the demo)\n"
                           + yaml.safe_dump(config, sort_keys=False))
    services.xchain_devnet_apply(twochain.chain_records(two), yaml.safe_load(config_file.read_text()))
    print(f"   applied {config_file} (see `python manage.py arbbot config show`)")

    procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(name: str, cmd: list[str], extra_env: dict[str, str] | None = None) -> None:
        log = open(run_dir / f"xchain-{name}.log", "wb")
        procs.append((name, subprocess.Popen(cmd, cwd=ROOT, env={**env, **(extra_env or {})}, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True)))

    heartbeat = run_dir / "heartbeat-xchain-bridge"
    heartbeat.unlink(missing_ok=True)
    start("worker-bridge", [celery, "-A", "workers.celery_app", "worker", "-Q", "bridge", "-n", "xchain-bridge@%h",
                            "--pool", "prefork", "--concurrency", "2", "-l", "INFO"],
          {"ARBBOT_HEARTBEAT_FILE": str(heartbeat)})
    start("relayer", [py, "manage.py", "arbbot", "relayer", "--delay-blocks", str(args.delay_blocks),
                      "--failure-rate", str(args.failure_rate), "--seed", str(args.seed)])
    for sub, block_time in (("a", twochain.BLOCK_TIME_A_S), ("b", twochain.BLOCK_TIME_B_S)):
        start(f"simulator-{sub}", [py, "-m", "arbbot.devnet", "--dir", str(directory / sub), "simulate",
                                   "--seed", str(args.seed + (sub == "b")), "--swaps-per-block", "3"])
    start("web", [py, "manage.py", "runserver", f"127.0.0.1:{args.web_port}", "--noreload"])
    print(f"""
== cross-chain arbitrage is running
   chain A      {two.a.rpc_url} (chain {two.a.chain_id}, canonical tokens)
   chain B      {two.b.rpc_url} (chain {two.b.chain_id}, bridged {', '.join(twochain.BRIDGED)})
   bridges      {two.bridges}  (relayer: delay {args.delay_blocks} blocks, failure rate {args.failure_rate})
   API          http://127.0.0.1:{args.web_port}/api/xchain/sagas/  /api/xchain/inventory/  /api/xchain/pnl/
   logs         {run_dir}/xchain-*.log
   Ctrl-C stops everything.
""")
    from django.utils import timezone

    since = timezone.now()
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    started = last_tick = time.monotonic()
    try:
        while not stop["now"]:
            time.sleep(1)
            dead = [n for n, p in procs if p.poll() is not None]
            if dead:
                print(f"!! process exited: {', '.join(dead)} (see .run/xchain-<name>.log)")
                break
            if heartbeat.exists() and time.monotonic() - last_tick >= args.tick:
                last_tick = time.monotonic()
                app.send_task("workers.tasks.bridge.tick")
                app.send_task("workers.tasks.bridge.resume")
                print(_progress(time.monotonic() - started, since), flush=True)
            if args.seconds and time.monotonic() - started >= args.seconds:
                break
    except KeyboardInterrupt:
        pass
    print("\n== stopping: no new trades; the sagas in flight finish first (Ctrl-C skips)")
    _settle(timeout_s=30.0)
    for _name, p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + 20
    for _name, p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
    print(_progress(time.monotonic() - started, since))
    twochain.down(directory=directory, progress=None)
    return 0


def _settle(timeout_s: float) -> None:
    from django.db import close_old_connections

    from webapp.core import selectors
    from workers.celery_app import app

    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            close_old_connections()
            if not selectors.xchain_open():
                return
            app.send_task("workers.tasks.bridge.resume")
            time.sleep(2)
    except KeyboardInterrupt:
        pass


def _progress(elapsed: float, since: object) -> str:
    """This run's sagas (created since the demo started) and the inventory now."""
    from django.db import close_old_connections

    from webapp.core import selectors
    from webapp.core.models import XChainInventory

    close_old_connections()
    pnl = selectors.xchain_pnl(since)
    states = ", ".join(f"{k} {v}" for k, v in sorted(pnl["sagas_by_state"].items())) or "none yet"
    money = ", ".join(f"{r['token']} net {int(r['net']) / 1e18:.2f} ({r['trades']} trades, "
                      f"{r['rebalances']} rebalances)" for r in pnl["by_token"]) or "none yet"
    inv = ", ".join(f"{r.symbol}@{r.chain_id} {int(r.balance) / 1e18:,.0f}" for r in XChainInventory.objects.all())
    alerts = ", ".join(f"{k} {v}" for k, v in pnl["alerts"].items()) or "none"
    return f"[{elapsed:5.0f}s] sagas: {states} | alerts: {alerts} | PnL: {money} | inventory: {inv}"


if __name__ == "__main__":
    raise SystemExit(main())
