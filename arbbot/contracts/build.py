"""Compile the project's own Solidity (``ArbExecutor.sol``) with solc-js from node_modules.

Owns the compiler settings and the committed artifact ``ArbExecutor.json`` (abi +
creation/runtime bytecode). The compile is offline and deterministic: the source is keyed
by its bare file name, so the metadata hash in the bytecode does not depend on where the
repository is checked out, and ``tests/contracts/test_artifact.py`` can demand that the
committed artifact equals a fresh compile byte for byte.

Usage: ``python -m arbbot.contracts.build`` (rewrites the artifact), ``--check`` (exit 1
when the committed artifact is stale).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from arbbot.config import get_settings
from arbbot.errors import ArbbotError

CONTRACTS_DIR = Path(__file__).resolve().parent
SOURCES = ("ArbExecutor.sol",)
ARTIFACT_NAME = "ArbExecutor"
EVM_VERSION = "cancun"  # transient storage (EIP-1153) guards the swap callbacks
OPTIMIZER_RUNS = 20_000  # the executor is called often and deployed once

# solc-js reads a standard-json document on stdin and writes the result on stdout.
_NODE_DRIVER = """
const solc = require(process.argv[1]);
let input = '';
process.stdin.on('data', (c) => { input += c; });
process.stdin.on('end', () => { process.stdout.write(solc.compile(input)); });
"""


class CompileError(ArbbotError):
    """solc reported an error (the messages are in the exception text)."""


def standard_json_input() -> dict[str, Any]:
    return {
        "language": "Solidity",
        "sources": {name: {"content": (CONTRACTS_DIR / name).read_text()} for name in SOURCES},
        "settings": {
            "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
            "evmVersion": EVM_VERSION,
            "metadata": {"bytecodeHash": "ipfs"},
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
        },
    }


def solc_version(node_modules: Path | None = None) -> str:
    solc = (node_modules or get_settings().node_modules) / "solc"
    out = subprocess.run(
        ["node", "-e", "process.stdout.write(require(process.argv[1]).version())", str(solc)],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


def compile_sources(node_modules: Path | None = None) -> dict[str, Any]:
    """Run solc-js on the sources; returns the standard-json output (raises on errors)."""
    solc = (node_modules or get_settings().node_modules) / "solc"
    if not (solc / "index.js").exists() and not (solc / "package.json").exists():
        raise CompileError(f"solc-js not found at {solc}: run `npm ci`")
    proc = subprocess.run(
        ["node", "-e", _NODE_DRIVER, str(solc)],
        input=json.dumps(standard_json_input()), capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise CompileError(f"solc-js failed: {proc.stderr.strip()}")
    output: dict[str, Any] = json.loads(proc.stdout)
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise CompileError("\n".join(e.get("formattedMessage", e.get("message", "")) for e in errors))
    return output


def build_artifact(node_modules: Path | None = None) -> dict[str, Any]:
    output = compile_sources(node_modules)
    contract = output["contracts"]["ArbExecutor.sol"][ARTIFACT_NAME]
    return {
        "contractName": ARTIFACT_NAME,
        "compiler": {
            "version": solc_version(node_modules),
            "evmVersion": EVM_VERSION,
            "optimizerRuns": OPTIMIZER_RUNS,
        },
        "abi": contract["abi"],
        "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + contract["evm"]["deployedBytecode"]["object"],
    }


def artifact_path() -> Path:
    return CONTRACTS_DIR / f"{ARTIFACT_NAME}.json"


def render(artifact: dict[str, Any]) -> str:
    return json.dumps(artifact, indent=2, sort_keys=True) + "\n"


def load_artifact() -> dict[str, Any]:
    """The committed artifact (what the devnet deploys and the encoder's ABI comes from)."""
    data: dict[str, Any] = json.loads(artifact_path().read_text())
    return data


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    fresh = render(build_artifact())
    path = artifact_path()
    if "--check" in args:
        if not path.exists() or path.read_text() != fresh:
            print(f"{path} is stale: run `python -m arbbot.contracts.build`", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    path.write_text(fresh)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
