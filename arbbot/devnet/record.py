"""The devnet's deployment record: ``<devnet_dir>/deployment.json`` and the files beside it.

Owns the ``Deployment`` record (every address of a devnet deployment, with the lookups tests
and the simulator use) that other parts read (the webapp turns it into
Chain/Dex/Token/Pool rows, the scan stage reads addresses from it), where the devnet
directory is (``devnet_dir``, default ``settings.devnet_dir``), loading the record
(``load_deployment``) and the bot's signer key: generated once into ``signer.key`` (0600),
never printed. ``deploy`` fills the record, ``lifecycle`` starts and stops the node.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account

from arbbot.config import get_settings
from arbbot.errors import ArbbotError

DEPLOYMENT_FILE = "deployment.json"
SIGNER_FILE = "signer.key"


@dataclass
class Deployment:
    """Every address of a devnet deployment. Addresses are lower-case 0x hex."""

    chain_id: int
    rpc_url: str
    block: int
    deployer: str
    weth: str
    multicall3: str
    executor: str
    signer: str
    dexes: list[dict[str, Any]] = field(default_factory=list)
    tokens: list[dict[str, Any]] = field(default_factory=list)
    pools: list[dict[str, Any]] = field(default_factory=list)
    #: hash of block 0: anvil stamps its start time into genesis, so a restarted devnet is
    #: told apart from the one it replaces under the same chain id ("" in older records)
    genesis_hash: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Deployment:
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in names})

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        tmp.replace(path)  # readers never see a half-written file

    @classmethod
    def load(cls, path: Path) -> Deployment:
        return cls.from_json(json.loads(path.read_text()))

    # lookups tests and the simulator use
    def token(self, symbol: str) -> str:
        for t in self.tokens:
            if t["symbol"] == symbol:
                return str(t["address"])
        raise ArbbotError(f"no token {symbol!r} in the deployment")

    def symbol(self, address: str) -> str:
        a = address.lower()
        for t in self.tokens:
            if t["address"] == a:
                return str(t["symbol"])
        return a

    def dex(self, name: str) -> dict[str, Any]:
        for d in self.dexes:
            if d["name"] == name:
                return d
        raise ArbbotError(f"no dex {name!r} in the deployment")

    def pool(self, dex: str, token_a: str, token_b: str, fee_pips: int | None = None) -> dict[str, Any]:
        """The pool of ``dex`` over two tokens (symbols or addresses)."""
        a, b = self._addr(token_a), self._addr(token_b)
        for p in self.pools:
            if p["dex"] == dex and {p["token0"], p["token1"]} == {a, b}:
                if fee_pips is None or p["fee_pips"] == fee_pips:
                    return p
        raise ArbbotError(f"no pool for {token_a}/{token_b} on {dex}")

    def _addr(self, token: str) -> str:
        return token.lower() if token.startswith("0x") else self.token(token)


def devnet_dir(path: Path | str | None = None) -> Path:
    return Path(path) if path is not None else get_settings().devnet_dir


def deployment_path(path: Path | str | None = None) -> Path:
    return devnet_dir(path) / DEPLOYMENT_FILE


def load_deployment(path: Path | str | None = None) -> Deployment:
    """The recorded deployment of ``devnet_dir`` (default ``settings.devnet_dir``)."""
    p = deployment_path(path)
    if not p.is_file():
        raise ArbbotError(f"no devnet deployment at {p}: run `python -m arbbot.devnet up`")
    return Deployment.load(p)


def ensure_signer_key(directory: Path) -> str:
    """Create the bot's devnet signing key once (mode 0600); returns its address only."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / SIGNER_FILE
    if not path.exists():
        key = "0x" + secrets.token_hex(32)
        # O_EXCL + mode at creation: the key is never world-readable, not even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
    os.chmod(path, 0o600)
    return str(Account.from_key(path.read_text().strip()).address).lower()
