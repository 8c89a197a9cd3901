"""Every YAML and JSON deployment file parses (Helm templates excepted: they are rendered
and validated in test_helm.py)."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.deploy.support import REPO

ROOTS = ["infrastructure", "k8s", "helm"]
TEMPLATE_DIR = REPO / "helm" / "arbbot" / "templates"


def files(*suffixes: str) -> list:  # type: ignore[type-arg]
    found = [REPO / "docker-compose.yml"] if ".yml" in suffixes else []
    for root in ROOTS:
        found += [p for p in (REPO / root).rglob("*") if p.suffix in suffixes and TEMPLATE_DIR not in p.parents]
    return sorted(found)


YAML = files(".yml", ".yaml")
JSON = files(".json")


def test_found_files() -> None:
    assert len(YAML) > 20 and len(JSON) > 5


@pytest.mark.parametrize("path", YAML, ids=lambda p: str(p.relative_to(REPO)))
def test_yaml_parses(path) -> None:  # type: ignore[no-untyped-def]
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path} is empty"


@pytest.mark.parametrize("path", JSON, ids=lambda p: str(p.relative_to(REPO)))
def test_json_parses(path) -> None:  # type: ignore[no-untyped-def]
    json.loads(path.read_text())
