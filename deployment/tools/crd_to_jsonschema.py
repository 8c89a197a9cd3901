#!/usr/bin/env python3
"""Turn a KEDA CustomResourceDefinition into the JSON schema ``tests/deploy`` validates with.

The Kubernetes schemas that ``kubernetes-validate`` ships know nothing of KEDA, so the CRD
schemas are kept in the repo (``k8s/crds/keda/*.schema.json``). This script derives them
from KEDA's own CRDs (``config/crd/bases/keda.sh_*.yaml`` in kedacore/keda):

- keeps ``spec`` only (``status`` is written by the operator, never by us);
- drops ``description`` text (size), keeps every type, enum, bound and ``required``;
- ``x-kubernetes-int-or-string`` becomes ``anyOf: [integer, string]``;
- objects with declared ``properties`` get ``additionalProperties: false`` (the API server
  prunes unknown fields silently; a strict schema turns a misspelt key into a test failure),
  except where the CRD says ``x-kubernetes-preserve-unknown-fields``;
- ``apiVersion`` and ``kind`` are pinned to the CRD's served version and kind.

CEL rules (``x-kubernetes-validations``) are kept as data; jsonschema ignores them, so the
one that matters (minReplicaCount <= maxReplicaCount) is checked in tests/deploy directly.

Usage: crd_to_jsonschema.py CRD.yaml OUT.schema.json [--source TEXT]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import yaml


def convert(node: Any) -> Any:
    if isinstance(node, list):
        return [convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "description":
            continue
        if key in ("properties", "patternProperties"):
            out[key] = {name: convert(sub) for name, sub in value.items()}
        else:
            out[key] = convert(value)
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out = {"anyOf": [{"type": "integer"}, {"type": "string"}], **out}
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_schema(crd: dict[str, Any], source: str) -> dict[str, Any]:
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"]
    version = next(v for v in crd["spec"]["versions"] if v.get("storage", True))
    root = version["schema"]["openAPIV3Schema"]
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$comment": f"Derived by deployment/tools/crd_to_jsonschema.py from {source}",
        "title": f"{kind} ({group}/{version['name']})",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": f"{group}/{version['name']}"},
            "kind": {"const": kind},
            "metadata": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string", "minLength": 1}},
            },
            "spec": convert(root["properties"]["spec"]),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("crd")
    parser.add_argument("out")
    parser.add_argument("--source", default="kedacore/keda")
    args = parser.parse_args()
    with open(args.crd) as fh:
        crd = yaml.safe_load(fh)
    with open(args.out, "w") as fh:
        json.dump(crd_schema(crd, args.source), fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main()
