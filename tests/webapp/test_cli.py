"""``manage.py arbbot``: run as a user runs it (a subprocess), against the real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import redis

from arbbot.hotstate import Fleet

ROOT = Path(__file__).resolve().parents[2]


def arbbot(*args: str, prefix: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ARBBOT_REDIS_PREFIX": prefix, **(env or {})}
    return subprocess.run(
        [sys.executable, "manage.py", "arbbot", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )


def test_help_lists_the_groups(prefix: str) -> None:
    r = arbbot("--help", prefix=prefix)
    assert r.returncode == 0
    assert "killswitch" in r.stdout


def test_killswitch_on_off_status(redis_client: redis.Redis, prefix: str) -> None:
    fleet = Fleet(redis_client, prefix)
    try:
        r = arbbot("killswitch", "on", prefix=prefix)
        assert r.returncode == 0, r.stderr
        assert "ON" in r.stdout and fleet.kill_switch_engaged()
        r = arbbot("killswitch", "status", prefix=prefix)
        assert "ON" in r.stdout and fleet.kill_switch_engaged()
        r = arbbot("killswitch", "off", prefix=prefix)
        assert "off" in r.stdout and not fleet.kill_switch_engaged()
    finally:
        fleet.set_kill_switch(False)


def test_a_wrong_argument_is_named_with_exit_code_2(prefix: str) -> None:
    r = arbbot("killswitch", "maybe", prefix=prefix)
    assert r.returncode == 2
    assert "invalid choice: 'maybe'" in r.stderr
    r = arbbot("nosuchgroup", prefix=prefix)
    assert r.returncode == 2
