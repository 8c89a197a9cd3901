"""Every committed contract artifact is exactly what a fresh solc-js compile produces."""

from __future__ import annotations

import pytest

from arbbot.contracts.build import CONTRACTS, artifact_path, build_artifact, load_artifact, render


@pytest.mark.parametrize("name", CONTRACTS)
def test_committed_artifact_equals_fresh_compile(name: str) -> None:
    fresh = build_artifact(name=name)
    assert artifact_path(name).read_text() == render(fresh)
    assert fresh["compiler"]["version"].startswith("0.8.26+")


def test_artifact_has_the_entry_points_the_encoder_uses() -> None:
    abi = load_artifact()["abi"]
    names = {x["name"] for x in abi if x.get("type") == "function"}
    assert {
        "execute", "withdraw", "owner", "uniswapV2Call", "uniswapV3SwapCallback", "isExecutor", "setExecutor",
        "addFactory", "removeFactory", "pause", "unpause", "v2InitCodeHash", "v3InitCodeHash",
    } <= names


def test_transfer_probe_artifact_has_the_entry_points_token_checks_use() -> None:
    abi = load_artifact("TransferProbe")["abi"]
    functions = {x["name"] for x in abi if x.get("type") == "function"}
    errors = {x["name"] for x in abi if x.get("type") == "error"}
    assert functions == {"probe", "probeShare"}
    assert errors == {
        "TransferReverted", "TransferReturnedFalse", "BalanceOfFailed", "NotAContract", "IrregularBalanceChange"
    }
