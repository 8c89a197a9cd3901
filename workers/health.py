"""Worker liveness without ``celery inspect ping``: a heartbeat file touched by the worker,
checked by age. ``python -m workers.health --max-age 60`` exits 0 when fresh, 1 otherwise."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def _path() -> Path:
    return Path(os.environ.get("ARBBOT_HEARTBEAT_FILE", "/tmp/arbbot-worker-heartbeat"))


def touch() -> None:
    path = _path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    os.utime(path, None)


def age_seconds(path: Path | None = None) -> float | None:
    path = path or _path()
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="arbbot worker liveness check")
    parser.add_argument("--max-age", type=float, default=60.0, help="seconds (default 60)")
    args = parser.parse_args(argv)
    age = age_seconds()
    if age is None:
        print(f"unhealthy: no heartbeat file at {_path()}")
        return 1
    if age > args.max_age:
        print(f"unhealthy: heartbeat is {age:.0f}s old (max {args.max_age:.0f}s)")
        return 1
    print(f"ok: heartbeat {age:.1f}s old")
    return 0


if __name__ == "__main__":
    sys.exit(main())
