#!/usr/bin/env python
"""``make demo``: the full pipeline on the embedded devnet.

Brings up the devnet (anvil + genuine Uniswap contracts + the executor), the market
simulator, one Celery worker process per queue, the block follower, beat, Flower and the
Django server; prints the URLs and a progress line every few seconds (opportunities,
executions, realised profit, and p50/p95/p99 of two latencies from the block's arrival:
to the execute stage's decision, and to the opportunity's row written after the ml stage). Ctrl-C (or ``--seconds``) stops everything it started, the
devnet included if it started it. Logs go to ``.run/<process>.log``.
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
# The demo runs on its own devnet: the development SECRET_KEY is allowed there only.
os.environ.setdefault("ARBBOT_DEVNET", "1")
# The demo trades on the devnet it deploys itself, so it chooses live there (the default
# elsewhere is dry-run); ARBBOT_MODE=paper or dry-run in the environment overrides it.
os.environ.setdefault("ARBBOT_MODE", "live")

QUEUES = ("scan", "path", "ml", "execute", "bridge", "analytics")


def main() -> int:
    if "--xchain" in sys.argv[1:]:  # the two-chain demo has its own script and options
        rest = [a for a in sys.argv[1:] if a != "--xchain"]
        os.execv(sys.executable, [sys.executable, str(ROOT / "scripts" / "demo_xchain.py"), *rest])
    from arbbot.devnet.args import port, positive_float

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--xchain", action="store_true",
                    help="cross-chain arbitrage on two chains instead (scripts/demo_xchain.py, make demo-xchain)")
    ap.add_argument("--seconds", type=positive_float, default=None, help="stop after this long (default: until Ctrl-C)")
    ap.add_argument("--web-port", type=port, default=8000)
    ap.add_argument("--flower-port", type=port, default=5555)
    ap.add_argument("--anvil-port", type=port, default=8545)
    ap.add_argument("--competitors", default="",
                    help="rival bots in the market simulator, LATENCY_S:N_POOLS[,...] (default: none)")
    ap.add_argument("--seed", type=int, default=None, help="the market simulator's seed")
    args = ap.parse_args()

    import django

    django.setup()
    from arbbot.config import get_settings
    from arbbot.devnet import lifecycle
    from arbbot.devnet.record import load_deployment

    settings = get_settings()
    run_dir = ROOT / ".run"
    run_dir.mkdir(exist_ok=True)
    py = sys.executable
    celery = str(Path(py).parent / "celery")
    env = dict(os.environ, PYTHONUNBUFFERED="1")

    was_up = lifecycle.status().get("running", False)
    print("== devnet", "(already running)" if was_up else "")
    rc = subprocess.call([py, "manage.py", "devnet", "up", "--port", str(args.anvil_port)], cwd=ROOT, env=env)
    if rc != 0:
        print("devnet failed to start; see .devnet/anvil.log")
        return rc
    dep = load_deployment()
    _reset_hot_state(dep.chain_id)

    procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(name: str, cmd: list[str], extra_env: dict[str, str] | None = None) -> None:
        log = open(run_dir / f"{name}.log", "wb")
        p = subprocess.Popen(cmd, cwd=ROOT, env={**env, **(extra_env or {})}, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        procs.append((name, p))

    # execute: two processes, so a beat-driven follow pass (tens of ms, every second, on the
    # same queue) does not hold a block's execute batch back: measured, it added ~60 ms to
    # the decision latency's median with one
    for q in QUEUES:
        (run_dir / f"heartbeat-{q}").unlink(missing_ok=True)  # a crashed run's
    for q in QUEUES:
        start(
            f"worker-{q}",
            [celery, "-A", "workers.celery_app", "worker", "-Q", q, "-n", f"{q}@%h", "--pool", "prefork",
             "--concurrency", "2" if q == "execute" else "1", "-l", "INFO"],
            {"ARBBOT_HEARTBEAT_FILE": str(run_dir / f"heartbeat-{q}")},
        )
    # the block follower: each new block to the scan queue as it arrives (newHeads over the
    # devnet's WebSocket, same port); beat's scan tick stays the fallback if it dies. Started
    # once the workers are up: blocks announced before would wait in the queues (seconds)
    _wait_up([run_dir / f"heartbeat-{q}" for q in QUEUES], [], timeout_s=120)
    start("follower", [py, "manage.py", "arbbot", "follow", "--chain", str(dep.chain_id),
                       "--ws", dep.rpc_url.replace("http://", "ws://", 1)],
          {"ARBBOT_HEARTBEAT_FILE": str(run_dir / "heartbeat-follower")})
    start("beat", [celery, "-A", "workers.celery_app", "beat", "-l", "INFO", "-s", str(run_dir / "beat-schedule")])
    login, password, token = _demo_login()
    start("flower", [celery, "-A", "workers.celery_app", "flower", f"--port={args.flower_port}",
                     "--address=127.0.0.1"], {"FLOWER_BASIC_AUTH": f"{login}:{password}"})
    start("web", [py, "manage.py", "runserver", f"127.0.0.1:{args.web_port}", "--noreload"],
          {"DJANGO_CSRF_TRUSTED_ORIGINS": f"http://127.0.0.1:{args.web_port},http://localhost:{args.web_port}"})
    # the market moves once the rest is up: the first blocks' decisions would otherwise
    # share the two cores with the console's and Flower's start (the first block's were
    # ~2x the later ones' with the simulator started at once)
    _wait_up([run_dir / "heartbeat-follower"], [f"http://127.0.0.1:{args.web_port}/healthz",
                                                f"http://127.0.0.1:{args.flower_port}/"], timeout_s=60)
    start("simulator", [py, "manage.py", "devnet", "simulate",
                        *(["--competitors", args.competitors] if args.competitors else []),
                        *(["--seed", str(args.seed)] if args.seed is not None else [])])

    print(
        f"""
== arbbot is running (mode: {settings.mode})
   dashboard   http://127.0.0.1:{args.web_port}/  (log in as {login}, password {password}: an operator)
   API         http://127.0.0.1:{args.web_port}/api/summary/  (-H 'Authorization: Token {token}'; docs at /api/docs/)
   admin       http://127.0.0.1:{args.web_port}/admin/  (an admin login: python manage.py arbbot roles user NAME --role admin)
   health      http://127.0.0.1:{args.web_port}/healthz
   flower      http://127.0.0.1:{args.flower_port}/  (the same login)
   devnet RPC  {dep.rpc_url}  (chain {dep.chain_id})
   logs        {run_dir}/*.log
   Ctrl-C stops everything.
"""
    )
    from django.utils import timezone

    since = timezone.now()
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    started = time.monotonic()
    try:
        while not stop["now"]:
            time.sleep(5)
            dead = [n for n, p in procs if p.poll() is not None]
            if dead:
                print(f"!! process exited: {', '.join(dead)} (see .run/<name>.log)")
                break
            print(_progress_line(time.monotonic() - started, since), flush=True)
            if args.seconds and time.monotonic() - started >= args.seconds:
                break
    except KeyboardInterrupt:
        pass
    print("\n== stopping")
    # no new price moves: the pipeline drains and what was sent is followed to its end, the
    # follower still deciding the last blocks (the simulator's last swaps, and what our own
    # trades leave: stopped first, those went to beat's tick and a cold path worker, 35-60 ms
    # against ~20), then everything stops
    for name, p in procs:
        if name == "simulator" and p.poll() is None:
            p.terminate()
    _settle_in_flight(since, timeout_s=20.0)
    for name, p in procs:
        if p.poll() is None:
            p.terminate()  # SIGTERM to the main process: Celery's warm shutdown finishes running tasks
    deadline = time.monotonic() + 20
    for name, p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
    if not was_up:
        lifecycle.down()
    print(_progress_line(time.monotonic() - started, since, final=True))
    return 0


def _wait_up(heartbeats: list[Path], urls: list[str], timeout_s: float) -> None:
    """Until each process's heartbeat file exists (a worker is ready, the follower's loop
    runs) and each URL answers (any HTTP status), or ``timeout_s``: the demo goes on either
    way."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout_s
    waiting = list(urls)
    while time.monotonic() < deadline and (waiting or not all(h.exists() for h in heartbeats)):
        for url in list(waiting):
            try:
                urllib.request.urlopen(url, timeout=1).close()
            except urllib.error.HTTPError:  # it answers (a login asked for, say)
                pass
            except OSError:
                continue
            waiting.remove(url)
        time.sleep(0.2)


def _settle_in_flight(since: object, timeout_s: float) -> None:
    """Let the journal's follow pass finish the transactions still in flight (sent, mined)
    before the workers stop; a second Ctrl-C skips the wait (they stay in the journal and
    are followed when the fleet runs again)."""
    from django.db import close_old_connections

    from webapp.core.models import Execution

    deadline = time.monotonic() + timeout_s
    quiet = 0  # polls in a row with nothing in flight: the pipeline's last batches may still send
    try:
        while time.monotonic() < deadline and quiet < 2:
            close_old_connections()
            n = Execution.objects.filter(created_at__gte=since, status__in=("sent", "mined")).count()
            quiet = quiet + 1 if n == 0 else 0
            if n:
                print(f"   waiting for {n} transaction(s) in flight to be final (Ctrl-C to skip)", flush=True)
            time.sleep(2)
    except KeyboardInterrupt:
        pass


def _demo_login() -> tuple[str, str, str]:
    """A local operator login for this run, with a new generated password (printed, never
    stored in clear) and its API token."""
    from webapp.core import services

    _, password = services.user_set_role("operator", "operator")
    return "operator", str(password), services.user_token("operator")


def _reset_hot_state(chain_id: int) -> None:
    """A (re)started devnet is a new chain under the same id: drop the old cursor/states."""
    import redis

    from arbbot.config import get_settings
    from arbbot.hotstate import HotState

    s = get_settings()
    HotState(redis.Redis.from_url(s.redis_url), s.redis_prefix, chain_id).clear()


def _progress_line(elapsed: float, since: object, final: bool = False) -> str:
    """This run's figures (rows created since the demo started)."""
    from django.db import close_old_connections

    from webapp.core import selectors

    close_old_connections()
    s = selectors.dashboard_summary(limit=0, since=since)  # type: ignore[arg-type]
    profit = ", ".join(f"{p['total']} {p['token']}" for p in s["profit_by_token"]) or "none yet"
    paper = ", ".join(f"{p['total']} {p['token']}" for p in s["paper_profit_by_token"])
    ex = s["executions_by_status"]
    head = f"== this run ({elapsed:.0f}s):" if final else f"[{elapsed:5.0f}s]"
    return (
        f"{head} opportunities {s['opportunities_total']} ({s['opportunities_per_second']}/s) | executions "
        f"ok {ex.get('success', 0)} in flight {ex.get('sent', 0) + ex.get('mined', 0)} "
        f"reverted {ex.get('reverted', 0)} dropped {ex.get('dropped', 0)} failed {ex.get('failed', 0)} "
        f"simulated {ex.get('simulated', 0)} | "
        f"realised profit {profit}" + (f" | paper profit {paper}" if paper else "")
        + f" | block->execute decision {_latency(s['latency']['block_to_decision_ms'])}"
        f" | block->opportunity recorded (ml decided, analytics wrote) {_latency(s['latency']['block_to_recorded_ms'])}"
    )


def _latency(figures: dict[str, object]) -> str:
    """``p50/p95/p99 ms (n)`` of one latency (``selectors.latency_percentiles``)."""
    if not figures.get("n"):
        return "n/a"
    p = [f"{figures[k]:.1f}" if isinstance(figures[k], float) else "?" for k in ("p50", "p95", "p99")]
    return f"p50/p95/p99 {'/'.join(p)} ms (n={figures['n']})"


if __name__ == "__main__":
    raise SystemExit(main())
