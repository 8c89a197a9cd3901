"""Load the genuine contract artifacts shipped in npm packages (never recompiled: the
init-code hashes the routers hard-code depend on these exact bytecodes)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from arbbot.config import get_settings
from arbbot.errors import ArbbotError

# name -> path under node_modules
ARTIFACTS: dict[str, str] = {
    "UniswapV2Factory": "@uniswap/v2-core/build/UniswapV2Factory.json",
    "UniswapV2Pair": "@uniswap/v2-core/build/UniswapV2Pair.json",
    "UniswapV2Router02": "@uniswap/v2-periphery/build/UniswapV2Router02.json",
    "WETH9": "@uniswap/v2-periphery/build/WETH9.json",
    "UniswapV3Factory": "@uniswap/v3-core/artifacts/contracts/UniswapV3Factory.sol/UniswapV3Factory.json",
    "UniswapV3Pool": "@uniswap/v3-core/artifacts/contracts/UniswapV3Pool.sol/UniswapV3Pool.json",
    "NonfungiblePositionManager": (
        "@uniswap/v3-periphery/artifacts/contracts/NonfungiblePositionManager.sol/NonfungiblePositionManager.json"
    ),
    "SwapRouter": "@uniswap/v3-periphery/artifacts/contracts/SwapRouter.sol/SwapRouter.json",
    "QuoterV2": "@uniswap/v3-periphery/artifacts/contracts/lens/QuoterV2.sol/QuoterV2.json",
    "ERC20PresetMinterPauser": "@openzeppelin/contracts/build/contracts/ERC20PresetMinterPauser.json",
}


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str  # 0x-prefixed creation code


def _node_modules() -> Path:
    return get_settings().node_modules


@lru_cache(maxsize=None)
def load(name: str) -> Artifact:
    rel = ARTIFACTS.get(name)
    if rel is None:
        raise ArbbotError(f"unknown artifact {name!r}")
    path = _node_modules() / rel
    if not path.is_file():
        raise ArbbotError(f"artifact {path} missing: run `npm ci`")
    data = json.loads(path.read_text())
    code = data.get("bytecode")
    if isinstance(code, dict):  # truffle/waffle style
        code = code.get("object")
    if not code and "evm" in data:
        code = data["evm"]["bytecode"]["object"]
    if not isinstance(code, str) or not code:
        raise ArbbotError(f"artifact {name} has no bytecode")
    if not code.startswith("0x"):
        code = "0x" + code
    return Artifact(name, data["abi"], code)


@lru_cache(maxsize=None)
def multicall3_bytecode() -> str:
    """Multicall3 creation code, as shipped by viem (``multicall3Bytecode``)."""
    src = (_node_modules() / "viem/_cjs/constants/contracts.js").read_text()
    m = re.search(r"multicall3Bytecode\s*=\s*'(0x[0-9a-fA-F]+)'", src)
    if not m:
        raise ArbbotError("multicall3Bytecode not found in viem: run `npm ci`")
    return m.group(1)
