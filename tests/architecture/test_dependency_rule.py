"""The dependency rules, checked with import-linter over the real import graph (contracts in
``pyproject.toml`` under ``[tool.importlinter]``): ``arbbot`` imports neither Django nor
Celery nor ``webapp``/``workers``; ``webapp`` and ``workers`` meet only through named modules;
inside the core ``arbbot.math <- arbbot.pools <- arbbot.paths``, and the pure stages reach no
I/O module. Each contract is also shown to break on a planted import, so none is vacuous."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
CONTRACT_IDS = ("core-is-pure", "webapp-workers", "math-pools-paths", "io-at-the-edge")


def lint_imports(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_contracts_are_the_documented_ones() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert tuple(c["id"] for c in config["contracts"]) == CONTRACT_IDS


def test_the_code_keeps_every_contract() -> None:
    proc = lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(CONTRACT_IDS)} kept, 0 broken" in proc.stdout


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the three packages and the config, to plant forbidden imports in."""
    dest = tmp_path_factory.mktemp("layout")
    for package in ("arbbot", "workers", "webapp"):
        shutil.copytree(ROOT / package, dest / package, ignore=shutil.ignore_patterns("__pycache__", "*.json"))
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


# (contract id, module file, the import planted in it)
VIOLATIONS = [
    ("core-is-pure", "arbbot/types.py", "import django"),
    ("core-is-pure", "arbbot/hotstate.py", "from workers import queues"),
    ("webapp-workers", "webapp/core/views.py", "from workers.tasks import scan"),
    ("webapp-workers", "workers/health.py", "from webapp.core import models"),
    ("math-pools-paths", "arbbot/math/v2.py", "from arbbot import pools"),
    ("math-pools-paths", "arbbot/pools/__init__.py", "from arbbot.paths import engine"),
    ("io-at-the-edge", "arbbot/scoring/rule.py", "from arbbot.chain import rpc"),
    ("io-at-the-edge", "arbbot/paths/__init__.py", "from arbbot.execution import runner"),
    ("io-at-the-edge", "arbbot/types.py", "import redis"),
]


@pytest.mark.parametrize(("contract", "module", "statement"), VIOLATIONS, ids=lambda v: str(v))
def test_a_planted_import_breaks_the_contract(tree: Path, contract: str, module: str, statement: str) -> None:
    path = tree / module
    original = path.read_text()
    path.write_text(original + f"\n{statement}  # planted by the test\n")
    try:
        proc = lint_imports(tree, "--contract", contract)
    finally:
        path.write_text(original)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "0 kept, 1 broken" in proc.stdout, proc.stdout
    assert module.removesuffix(".py").removesuffix("/__init__").replace("/", ".") in proc.stdout


def test_the_copy_keeps_every_contract_without_a_plant(tree: Path) -> None:
    """The planted runs above break because of the plant, not because the copy differs."""
    proc = lint_imports(tree)
    assert proc.returncode == 0, proc.stdout + proc.stderr
