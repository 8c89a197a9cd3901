"""Compile the project's own Solidity with solc-js from node_modules.

Owns the compiler settings and the committed artifacts ``<Name>.json`` (abi +
creation/runtime bytecode), one per contract in ``CONTRACTS``: ``ArbExecutor`` (the
on-chain executor), ``TransferProbe`` (never deployed: run through ``eth_call`` with a
state override by ``arbbot.chain.token_checks``) and ``DevBridge`` (the two-chain
devnet's lock/mint bridge, ``arbbot.devnet.twochain``). Each contract is compiled from its own
standard-json input, so adding a contract never changes another one's bytes. The compile is
offline and deterministic: the source is keyed by its bare file name, so the metadata hash
in the bytecode does not depend on where the repository is checked out, and
``tests/contracts/test_artifact.py`` can demand that every committed artifact equals a
fresh compile byte for byte.

Usage: ``python -m arbbot.contracts.build`` (rewrites the artifacts), ``--check`` (exit 1
when a committed artifact is stale).
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
ARTIFACT_NAME = "ArbExecutor"  # the default of the single-artifact helpers below
CONTRACTS = ("ArbExecutor", "TransferProbe", "PairReserves", "DevBridge")  # each in <Name>.sol, artifact <Name>.json
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


def standard_json_input(name: str = ARTIFACT_NAME, source_dir: Path = CONTRACTS_DIR) -> dict[str, Any]:
    source = f"{name}.sol"
    return {
        "language": "Solidity",
        "sources": {source: {"content": (source_dir / source).read_text()}},
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


def compile_sources(
    node_modules: Path | None = None, name: str = ARTIFACT_NAME, source_dir: Path = CONTRACTS_DIR
) -> dict[str, Any]:
    """Run solc-js on ``<source_dir>/<name>.sol``; returns the standard-json output (raises on errors)."""
    solc = (node_modules or get_settings().node_modules) / "solc"
    if not (solc / "index.js").exists() and not (solc / "package.json").exists():
        raise CompileError(f"solc-js not found at {solc}: run `npm ci`")
    proc = subprocess.run(
        ["node", "-e", _NODE_DRIVER, str(solc)],
        input=json.dumps(standard_json_input(name, source_dir)), capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise CompileError(f"solc-js failed: {proc.stderr.strip()}")
    output: dict[str, Any] = json.loads(proc.stdout)
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise CompileError("\n".join(e.get("formattedMessage", e.get("message", "")) for e in errors))
    return output


def build_artifact(node_modules: Path | None = None, name: str = ARTIFACT_NAME) -> dict[str, Any]:
    output = compile_sources(node_modules, name)
    contract = output["contracts"][f"{name}.sol"][name]
    return {
        "contractName": name,
        "compiler": {
            "version": solc_version(node_modules),
            "evmVersion": EVM_VERSION,
            "optimizerRuns": OPTIMIZER_RUNS,
        },
        "abi": contract["abi"],
        "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + contract["evm"]["deployedBytecode"]["object"],
    }


def compile_file(path: Path, node_modules: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every contract of one Solidity file (e.g. a test's attacker contracts), compiled with
    the executor's exact settings: ``{name: {"abi", "bytecode", "deployedBytecode"}}``."""
    output = compile_sources(node_modules, path.stem, path.parent)
    return {
        name: {
            "abi": c["abi"],
            "bytecode": "0x" + c["evm"]["bytecode"]["object"],
            "deployedBytecode": "0x" + c["evm"]["deployedBytecode"]["object"],
        }
        for name, c in output["contracts"][path.name].items()
    }


def artifact_path(name: str = ARTIFACT_NAME) -> Path:
    return CONTRACTS_DIR / f"{name}.json"


def render(artifact: dict[str, Any]) -> str:
    return json.dumps(artifact, indent=2, sort_keys=True) + "\n"


def load_artifact(name: str = ARTIFACT_NAME) -> dict[str, Any]:
    """A committed artifact (by default the executor's: what the devnet deploys and the
    encoder's ABI comes from)."""
    data: dict[str, Any] = json.loads(artifact_path(name).read_text())
    return data


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    stale = 0
    for name in CONTRACTS:
        fresh = render(build_artifact(name=name))
        path = artifact_path(name)
        if "--check" in args:
            if not path.exists() or path.read_text() != fresh:
                print(f"{path} is stale: run `python -m arbbot.contracts.build`", file=sys.stderr)
                stale += 1
            else:
                print(f"{path} is up to date")
            continue
        path.write_text(fresh)
        print(f"wrote {path}")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
