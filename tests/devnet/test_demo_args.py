"""The demo scripts refuse a bad argument with argparse's error (exit 2) before they
start anything: no devnet, no worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("script", "args", "said"), [
    ("demo.py", ("--seconds", "-5"), "argument --seconds: must be > 0, got '-5'"),
    ("demo.py", ("--seconds", "nan"), "argument --seconds: must be > 0, got 'nan'"),
    ("demo.py", ("--web-port", "70000"), "argument --web-port: must be 0..65535"),
    ("demo.py", ("--anvil-port", "x"), "argument --anvil-port: not a port number: 'x'"),
    ("demo_xchain.py", ("--seconds", "0"), "argument --seconds: must be > 0, got '0'"),
    ("demo_xchain.py", ("--tick", "-1"), "argument --tick: must be > 0, got '-1'"),
    ("demo_xchain.py", ("--ports", "8545"), "argument --ports: must be two ports, A,B, got '8545'"),
    ("demo_xchain.py", ("--ports", "8545,8545"), "argument --ports: must be two different ports above 0"),
    ("demo_xchain.py", ("--failure-rate", "2"), "failure_rate and stall_rate must be in [0, 1]"),
    ("demo_xchain.py", ("--fee-bps", "-1"), "fee_bps must be in [0, 10000]"),
    ("demo_xchain.py", ("--band-bps", "20000"), "argument --band-bps: must be 0..10000 basis points, got 20000"),
])
def test_a_bad_argument_is_refused_before_anything_starts(script: str, args: tuple[str, ...], said: str,
                                                          tmp_path: Path) -> None:
    # Django's settings unreadable: a script that took the argument fails at once, never
    # starting the demo's processes
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "no_such_settings_module"}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert said in done.stderr
    assert done.stdout == ""  # nothing started (the demo prints "== devnet" first)
