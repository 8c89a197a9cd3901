"""The Dockerfile passes hadolint and keeps the image rules: pinned python:3.11-slim-bookworm
base, multi-stage, non-root, a HEALTHCHECK per role, no secrets baked in; .dockerignore keeps
secrets and local state out of the build context."""

from __future__ import annotations

import re

import pytest

from tests.deploy.support import REPO, run, tool

DOCKERFILES = sorted((REPO / "docker").glob("Dockerfile*"))
ROLES = ("web", "worker", "beat", "flower", "devnet")


def stages(text: str) -> dict[str, str]:
    """Stage name -> its body (instructions until the next FROM)."""
    parts = re.split(r"^FROM\s+", text, flags=re.M)[1:]
    out = {}
    for part in parts:
        header, _, body = part.partition("\n")
        match = re.search(r"\s+AS\s+(\S+)", header, flags=re.I)
        out[match.group(1) if match else header.strip()] = header + "\n" + body
    return out


def test_dockerfiles_exist() -> None:
    assert DOCKERFILES


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(dockerfile) -> None:  # type: ignore[no-untyped-def]
    result = run([tool("hadolint"), "--failure-threshold", "info", str(dockerfile)])
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"


def test_image_rules() -> None:
    text = (REPO / "docker/Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim-bookworm$", text, flags=re.M)
    st = stages(text)
    assert {"builder", "runtime", *ROLES} <= set(st), set(st)
    assert re.search(r"^USER 10001", st["runtime"], flags=re.M), "runtime must drop root"
    assert "COPY --from=builder" in st["runtime"], "multi-stage: runtime copies the built venv"
    for role in ROLES:
        assert st[role].startswith("runtime"), f"{role} must build on the non-root runtime stage"
        assert "HEALTHCHECK" in st[role], f"{role} has no HEALTHCHECK"
        assert not re.search(r"^USER\s+(root|0)\b", st[role], flags=re.M)
    assert "workers.health" in st["worker"]
    assert "/healthz" in st["web"]
    assert "gunicorn\", \"webapp.wsgi:application\", \"--bind\", \"0.0.0.0:8000\"" in st["web"]
    # no secret values baked in
    for line in text.splitlines():
        if re.match(r"^\s*(ENV|ARG)\b", line):
            assert not re.search(r"(SECRET|PASSWORD|PRIVATE|SIGNER_KEY)\w*=", line), line


def test_dockerignore_keeps_secrets_out() -> None:
    entries = set((REPO / ".dockerignore").read_text().split())
    assert {".env", ".git", ".venv", ".devnet", "*.key", "node_modules"} <= entries


def test_devnet_init_imports_the_devnet_api() -> None:
    """docker/devnet_init.py (compose/k8s devnet glue) still matches arbbot.devnet.deploy/record."""
    import os
    import sys

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = run([sys.executable, str(REPO / "docker/devnet_init.py"), "--help"], env=env)
    assert result.returncode == 0, result.stderr
    from arbbot.devnet import deploy, record

    for module, name in ((record, "devnet_dir"), (record, "deployment_path"), (record, "Deployment"),
                         (deploy, "verify_deployment"), (record, "ensure_signer_key"), (deploy, "deploy_contracts")):
        assert hasattr(module, name), name
