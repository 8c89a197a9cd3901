"""``manage.py arbbot backtest``: run as a user runs it, on a synthetic recording. Good
input gives a table, a JSON summary and a PNG; bad input is named, exit code 2, nothing
written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.replay.market import CHAIN_ID, LINK, WETH, write_market

ROOT = Path(__file__).resolve().parents[2]


def backtest(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), "arbbot", "backtest", *args], cwd=cwd,
                          env=dict(os.environ), capture_output=True, text=True, timeout=300)


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    return write_market(tmp_path / "rec", first=100, count=20)


def test_a_backtest_reports_a_table_json_and_png(recording: Path, tmp_path: Path) -> None:
    r = backtest(str(recording), "--from", "105", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "share captured" in r.stdout and "100.0%" in r.stdout
    assert "blocks" in r.stderr  # the progress bar
    summary = json.loads((tmp_path / "backtest-chain-31337-000000000100.json").read_text())
    assert summary["blocks"] == {"first": 105, "last": 119, "traded": 15, "replayed": 20}
    # each paper fill moves pool A, which the recording never changes again, so B's recorded
    # moves open a gap every block (5 when fills left the pools as recorded)
    assert summary["opportunities"]["executed"] == 14
    assert summary["fills"] == "math"  # the synthetic recording has no state dump
    assert summary["optimum"]["share"] == 1.0
    png = (tmp_path / "backtest-chain-31337-000000000100.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_compare_two_strategy_files_side_by_side(recording: Path, tmp_path: Path) -> None:
    (tmp_path / "loose.yaml").write_text(f"strategy:\n  start_tokens: ['{WETH}']\n  margin: '1.5'\n")
    (tmp_path / "picky.yaml").write_text(
        f"chains:\n  - chain_id: {CHAIN_ID}\n    name: dev\n    strategy:\n      min_profit_wei: '100000000000000000000'\n"
    )
    r = backtest(str(recording), "--compare", "loose.yaml", "picky.yaml", "--json", "out.json", "--png", "out.png",
                 "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    header = r.stdout.splitlines()[0].split()
    assert header == ["loose", "picky"]
    runs = json.loads((tmp_path / "out.json").read_text())["compare"]
    assert runs["loose"]["opportunities"]["executed"] == 17  # fills move the pools (see above)
    assert runs["picky"]["opportunities"]["executed"] == 0
    assert runs["picky"]["strategy"]["min_profit_wei"] == str(10**20)
    assert runs["picky"]["opportunities"]["skipped"] == {"net profit below minimum": 6}
    assert (tmp_path / "out.png").stat().st_size > 10_000


def _written(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if p.is_file())


def test_bad_input_is_named_and_nothing_is_written(recording: Path, tmp_path: Path) -> None:
    stranger = "0x" + "99" * 20
    (tmp_path / "odd.yaml").write_text(f"strategy:\n  start_tokens: ['{LINK}', '{stranger}']\n")
    (tmp_path / "typo.yaml").write_text("strategy:\n  max_hopz: 3\n")
    torn = tmp_path / "torn.arbrec"
    torn.write_bytes(recording.read_bytes()[:-5])
    before = _written(tmp_path)
    r = backtest(str(recording), "--config", "odd.yaml", cwd=tmp_path)
    assert r.returncode == 2 and f"odd.yaml: names tokens no pool of the recording holds: {stranger}" in r.stderr
    r = backtest(str(recording), "--config", "typo.yaml", cwd=tmp_path)
    assert r.returncode == 2 and "unknown field 'max_hopz'" in r.stderr
    r = backtest(str(recording), "--to", "500", cwd=tmp_path)
    assert r.returncode == 2 and "--to 500 is outside the recording's blocks 100..119" in r.stderr
    r = backtest(str(torn), cwd=tmp_path)
    assert r.returncode == 2 and "truncated" in r.stderr and "after block 118" in r.stderr
    assert _written(tmp_path) == before


def test_anvil_fills_need_a_state_dump(recording: Path, tmp_path: Path) -> None:
    r = backtest(str(recording), "--fills", "anvil", "--quiet", cwd=tmp_path)
    assert r.returncode == 2
    assert "--fills anvil needs a state dump" in r.stderr
    assert not list(tmp_path.glob("backtest-*"))
