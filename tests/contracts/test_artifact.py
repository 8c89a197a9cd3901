"""The committed ArbExecutor artifact is exactly what a fresh solc-js compile produces."""

from __future__ import annotations

from arbbot.contracts.build import artifact_path, build_artifact, load_artifact, render


def test_committed_artifact_equals_fresh_compile() -> None:
    fresh = build_artifact()
    assert artifact_path().read_text() == render(fresh)
    assert fresh["compiler"]["version"].startswith("0.8.26+")


def test_artifact_has_the_entry_points_the_encoder_uses() -> None:
    abi = load_artifact()["abi"]
    names = {x["name"] for x in abi if x.get("type") == "function"}
    assert {"execute", "withdraw", "owner", "uniswapV2Call", "uniswapV3SwapCallback", "v3Factory"} <= names
