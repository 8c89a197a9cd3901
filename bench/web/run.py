"""``make load-web``: the console through the repository's nginx (``infrastructure/nginx/nginx.conf``,
its upstream and listen address pointed at 127.0.0.1) under Locust, headless and bounded:

1. ``steady``: 8 users at 10 requests/s each (80 r/s, inside the limit): nothing refused;
2. ``burst``: 300 users as fast as they can, far beyond the 100 r/s per client limit: the
   excess gets 429, the app never a 5xx, and what passes stays near 100 r/s (+ the burst
   allowance of 200);
3. ``baseline``: the same burst straight to gunicorn, no nginx, in the same run: what the
   app alone serves on this machine.

gunicorn serves ``webapp.wsgi`` (2 workers) on the dev database and Redis of this machine
(``ARBBOT_DATABASE_URL`` etc., defaults as everywhere); the pages read, never write. Prints a
table and one JSON line; exits 1 if a 5xx came through nginx or the burst saw no 429.
Debian's ``nginx-light`` is installed by ``make setup`` (scripts/ensure-services.sh)."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from arbbot.devnet.anvil import free_port  # noqa: E402

VENV_BIN = Path(sys.executable).parent


def wait_http(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except Exception:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout_s} s") from None
        time.sleep(0.3)


def nginx_conf(work: Path, listen: int, upstream: int) -> Path:
    """The repository's nginx.conf, pointed at 127.0.0.1 and at this run's directory."""
    text = (ROOT / "infrastructure/nginx/nginx.conf").read_text()
    text = text.replace("server web:8000;", f"server 127.0.0.1:{upstream};")
    text = re.sub(r"listen 8080;", f"listen 127.0.0.1:{listen};", text)
    text = text.replace("pid /tmp/nginx.pid;", f"pid {work}/nginx.pid;")
    text = re.sub(r"/tmp/(\w+_temp)", lambda m: str(work / m.group(1)), text)
    text = text.replace("access_log /dev/stdout main;", "access_log off;")
    text = text.replace("worker_processes auto;", "worker_processes 1;")
    assert f"127.0.0.1:{upstream}" in text and f"127.0.0.1:{listen}" in text, "nginx.conf changed shape"
    conf = work / "nginx.conf"
    conf.write_text(text)
    return conf


def locust(host: str, users: int, pace: float, seconds: int, out: Path, logs: Path) -> dict[str, Any]:
    env = {**os.environ, "LOADWEB_OUT": str(out), "LOADWEB_PACE": str(pace)}
    cmd = [str(VENV_BIN / "locust"), "-f", str(ROOT / "bench/web/locustfile.py"), "--headless", "--only-summary",
           "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--stop-timeout", "5", "--host", host,
           "--loglevel", "WARNING"]
    with open(logs, "ab") as log:
        subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=seconds + 120, check=False)
    return json.loads(out.read_text())


def summarise(phase: str, users: int, r: dict[str, Any]) -> dict[str, Any]:
    status = {int(k): v for k, v in r["status"].items()}
    total = sum(status.values())
    ok = sum(v for k, v in status.items() if 200 <= k < 400)
    d = max(r["duration_s"], 1e-9)
    return {
        "phase": phase, "users": users, "requests": total, "offered_rps": round(total / d, 1),
        "ok_rps": round(ok / d, 1), "429": status.get(429, 0),
        "5xx": sum(v for k, v in status.items() if k >= 500),
        "other": sum(v for k, v in status.items() if k < 200 or (400 <= k < 500 and k != 429)),
        "p50_ms": r["p50_ms"], "p95_ms": r["p95_ms"], "duration_s": r["duration_s"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=20, help="length of each phase")
    ap.add_argument("--burst-users", type=int, default=300)
    args = ap.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        print("nginx is not installed: `make setup` installs Debian's nginx-light", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="arbbot-loadweb-"))
    for d in ("client_temp", "proxy_temp", "fastcgi_temp", "uwsgi_temp", "scgi_temp"):
        (work / d).mkdir()
        (work / d).chmod(0o777)
    work.chmod(0o755)
    app_port, nginx_port = free_port(), free_port()
    env = {**os.environ, "ARBBOT_DEVNET": "1", "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
           "ARBBOT_LOG_FORMAT": "json", "OTEL_SDK_DISABLED": "true"}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "webapp.wsgi:application", "--bind", f"127.0.0.1:{app_port}",
             "--workers", "2", "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=open(work / "gunicorn.log", "ab"), stderr=subprocess.STDOUT))
        wait_http(f"http://127.0.0.1:{app_port}/healthz", 120)
        conf = nginx_conf(work, nginx_port, app_port)
        procs.append(subprocess.Popen([nginx, "-c", str(conf), "-p", str(work), "-g", "daemon off;"],
                                      stdout=open(work / "nginx.log", "ab"), stderr=subprocess.STDOUT))
        wait_http(f"http://127.0.0.1:{nginx_port}/nginx-health", 30)
        via_nginx, direct = f"http://127.0.0.1:{nginx_port}", f"http://127.0.0.1:{app_port}"
        rows = []
        for phase, host, users, pace in (("steady 80 r/s via nginx", via_nginx, 8, 10.0),
                                         ("burst via nginx", via_nginx, args.burst_users, 0.0),
                                         ("baseline: burst to gunicorn", direct, args.burst_users, 0.0)):
            time.sleep(2)  # the limiter's bucket refills between phases
            out = work / f"{len(rows)}.json"
            rows.append(summarise(phase, users, locust(host, users, pace, args.seconds, out, work / "locust.log")))
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    cols = list(rows[0])
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print("  ".join(str(r[c]).ljust(w) for c, w in zip(cols, widths)))
    load = os.getloadavg()
    print(json.dumps({"bench": "load-web", "rows": rows, "loadavg_1m": round(load[0], 1), "logs": str(work)}))
    steady, burst, _ = rows
    problems = []
    if steady["429"] or steady["5xx"]:
        problems.append("the steady load inside the limit was refused or failed")
    if burst["5xx"] or not burst["429"]:
        problems.append("the burst saw a 5xx, or no 429")
    for p in problems:
        print("FAIL:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
