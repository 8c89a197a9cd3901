"""The two-chain devnet: chain A (canonical tokens) and chain B (their bridged
representations), each an anvil with the genuine Uniswap deployment of ``deploy``, joined
by the project's ``DevBridge`` (lock on A, burn/mint on B).

Owns what makes the pair of chains: their ids and block times (``CHAIN_A``, ``CHAIN_B``),
which tokens are bridged (``BRIDGED``), the bridge on each side (B's tokens grant it the
minter role), the cross-chain inventory wallet (its own key, ``xchain.key``, never the
execute stage's signer: the two must not share nonces) funded on both chains and approved
for the routers and the bridge, the ``TwoChain`` record (``twochain.json``), and the
configuration the devnet applies for itself (``xchain_config``: its two chains' records
and an ``xchain`` section, the same path as a user's ``config apply`` file). Each chain
keeps the single-chain layout in its own sub-directory (``a/``, ``b/``: ``deployment.json``,
``anvil.pid``, ``anvil.log``), so ``lifecycle.down``/``status`` and the simulator work on
either unchanged. Chain B deploys after one spent nonce, so no contract shares an address
with its counterpart on A: code that mixes the chains up fails instead of passing by luck.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from eth_account import Account
from eth_utils import keccak

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import LocalSigner, check_receipt, deploy_unlocked, encode_call, send_unlocked, wait_receipt
from arbbot.contracts.build import load_artifact
from arbbot.devnet import lifecycle
from arbbot.devnet.anvil import Anvil, start_anvil
from arbbot.devnet.deploy import Progress, deploy_contracts
from arbbot.devnet.record import DEPLOYMENT_FILE, Deployment, devnet_dir, ensure_signer_key
from arbbot.devnet.scenarios import MAX_UINT256
from arbbot.errors import ArbbotError

CHAIN_A = 31337  # canonical tokens; the single-chain devnet's id
CHAIN_B = 31338  # bridged representations
BLOCK_TIME_A_S = 1.0
BLOCK_TIME_B_S = 2.0
PORT_A, PORT_B = 8545, 8546
BRIDGED: tuple[str, ...] = ("USDC", "LINK")
XCHAIN_KEY_FILE = "xchain.key"
TWOCHAIN_FILE = "twochain.json"
DEFAULT_BRIDGE_FEE_BPS = 10
#: the inventory wallet's starting holdings per chain, in USD of each bridged token
INVENTORY_USD = 200_000.0
MINTER_ROLE = keccak(text="MINTER_ROLE")


@dataclass
class TwoChain:
    """Both deployments, the bridge per chain id and each bridged token per chain id."""

    a: Deployment
    b: Deployment
    bridges: dict[int, str]
    tokens: dict[str, dict[int, str]]  # symbol -> chain id -> address
    trader: str  # the cross-chain inventory wallet
    relayer: str  # the bridges' relayer (and owner): anvil's dev account 0 on both
    canonical_chain: int = CHAIN_A
    directory: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def chain(self, chain_id: int) -> Deployment:
        if chain_id == self.a.chain_id:
            return self.a
        if chain_id == self.b.chain_id:
            return self.b
        raise ArbbotError(f"chain {chain_id} is not one of the two devnet chains")

    def other(self, chain_id: int) -> int:
        return self.b.chain_id if chain_id == self.a.chain_id else self.a.chain_id

    def token(self, symbol: str, chain_id: int) -> str:
        try:
            return self.tokens[symbol][chain_id]
        except KeyError:
            raise ArbbotError(f"token {symbol} is not bridged to chain {chain_id}") from None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["a"], out["b"] = self.a.to_json(), self.b.to_json()
        out["bridges"] = {str(k): v for k, v in self.bridges.items()}
        out["tokens"] = {s: {str(k): v for k, v in m.items()} for s, m in self.tokens.items()}
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TwoChain:
        return cls(
            a=Deployment.from_json(data["a"]), b=Deployment.from_json(data["b"]),
            bridges={int(k): v for k, v in data["bridges"].items()},
            tokens={s: {int(k): v for k, v in m.items()} for s, m in data["tokens"].items()},
            trader=data["trader"], relayer=data["relayer"], canonical_chain=int(data["canonical_chain"]),
            directory=data.get("directory", ""), extra=data.get("extra", {}),
        )

    def save(self, directory: Path) -> Path:
        path = directory / TWOCHAIN_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        tmp.replace(path)
        return path


XCHAIN_PAIR = "devnet"


def chain_records(two: TwoChain) -> list[dict[str, Any]]:
    """Both chains' deployment records, named, for ``services.chain_register_deployment``."""
    return [{**two.a.to_json(), "name": "devnet-a"}, {**two.b.to_json(), "name": "devnet-b"}]


def xchain_config(
    two: TwoChain, *, name: str = XCHAIN_PAIR, quote: str = "USDC", base: str = "LINK", dex: str = "uniswap",
    fee_bps: int = DEFAULT_BRIDGE_FEE_BPS, delay_blocks: int = 2, stall_blocks: int = 20, slippage_bps: int = 0,
    tolerance_bps: int = 1_500, costs: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The configuration file's ``xchain`` section for this devnet: one pair (A, B) through
    its DevBridges, every bridged token canonical on A, each at half its inventory on each
    chain +- ``tolerance_bps``. The chains themselves come from ``chain_records``."""
    a, b = two.a.chain_id, two.b.chain_id
    pair: dict[str, Any] = {
        "name": name, "chains": [a, b], "dex": dex, "quote": quote, "base": base,
        "slippage_bps": slippage_bps, "stall_blocks": stall_blocks,
        "bridge": {"kind": "devnet", "contracts": {a: two.bridges[a], b: two.bridges[b]}, "fee_bps": fee_bps,
                   "delay_blocks": delay_blocks},
        "tokens": [{"symbol": s, "canonical": {"chain_id": a, "address": two.tokens[s][a]},
                    "bridged": {"chain_id": b, "address": two.tokens[s][b]}} for s in sorted(two.tokens)],
        "inventory": [{"symbol": s, "chain_id": a, "target_bps": 5_000, "tolerance_bps": tolerance_bps}
                      for s in sorted(two.tokens)],
    }
    if costs:
        pair["costs"] = dict(costs)
    return {"xchain": {"pairs": [pair]}}


def load_twochain(directory: Path | str | None = None) -> TwoChain:
    path = devnet_dir(directory) / TWOCHAIN_FILE
    if not path.is_file():
        raise ArbbotError(f"no two-chain devnet at {path}: run `python scripts/demo.py --xchain` or `make demo-xchain`")
    return TwoChain.from_json(json.loads(path.read_text()))


def ensure_xchain_key(directory: Path) -> str:
    """The inventory wallet's devnet key, created once with mode 0600; returns its address."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / XCHAIN_KEY_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("0x" + secrets.token_hex(32) + "\n")
    return str(Account.from_key(read_xchain_key(directory)).address).lower()


def read_xchain_key(directory: Path | str) -> str:
    """The inventory wallet's key (for a ``LocalSigner``; never print it)."""
    return (Path(directory) / XCHAIN_KEY_FILE).read_text().strip()


def inventory_amount(dep: Deployment, symbol: str, usd: float = INVENTORY_USD) -> int:
    price = next(float(t["price_usd"]) for t in dep.tokens if t["symbol"] == symbol)
    return int(usd / price) * 10**18


def deploy_two_chains(
    rpc_a: RpcClient, rpc_b: RpcClient, directory: Path, *, fee_bps: int = DEFAULT_BRIDGE_FEE_BPS,
    v3: bool = False, progress: Progress | None = print,
) -> TwoChain:
    """Deploy both chains (automine nodes), the bridges and the funded inventory wallet;
    writes ``a/deployment.json``, ``b/deployment.json`` and ``twochain.json``."""
    say = progress or (lambda _m: None)
    signer = ensure_signer_key(directory)
    for sub in ("a", "b"):  # the execute stage reads the signer key beside each deployment
        (directory / sub).mkdir(parents=True, exist_ok=True)
        key = directory / sub / "signer.key"
        if not key.exists():
            key.write_text((directory / "signer.key").read_text())
            os.chmod(key, 0o600)
    trader = ensure_xchain_key(directory)
    say(f"chain A ({rpc_a.chain_id()}): the genuine Uniswap deployment")
    dep_a = deploy_contracts(rpc_a, signer=signer, progress=None, v3=v3)
    say(f"chain B ({rpc_b.chain_id()}): the same tokens as bridged representations")
    deployer_b = str(rpc_b.call("eth_accounts")[0]).lower()
    send_unlocked(rpc_b, deployer_b, to=deployer_b)  # one spent nonce: no address shared with A
    dep_b = deploy_contracts(rpc_b, signer=signer, progress=None, v3=v3)
    bridge_code = load_artifact("DevBridge")["bytecode"]
    bridges: dict[int, str] = {}
    for dep, rpc, canonical in ((dep_a, rpc_a, True), (dep_b, rpc_b, False)):
        bridges[dep.chain_id] = deploy_unlocked(
            rpc, dep.deployer, bridge_code, ["bool", "address", "uint16"], [canonical, dep.deployer, fee_bps])
    tokens = {s: {dep_a.chain_id: dep_a.token(s), dep_b.chain_id: dep_b.token(s)} for s in BRIDGED}
    for s in BRIDGED:
        # B's representations are minted and burnt by the bridge; what B holds already (its
        # pools' liquidity) is backed by the same amount locked in A's bridge, as if bridged
        send_unlocked(rpc_b, dep_b.deployer, to=tokens[s][dep_b.chain_id],
                      data=encode_call("grantRole(bytes32,address)", [MINTER_ROLE, bridges[dep_b.chain_id]]))
        supply_b = int(rpc_b.eth_call(tokens[s][dep_b.chain_id], encode_call("totalSupply()")), 16)
        send_unlocked(rpc_a, dep_a.deployer, to=tokens[s][dep_a.chain_id],
                      data=encode_call("mint(address,uint256)", [bridges[dep_a.chain_id], supply_b]))
    wallet_key = read_xchain_key(directory)
    for dep, rpc in ((dep_a, rpc_a), (dep_b, rpc_b)):
        say(f"chain {dep.chain_id}: inventory wallet {trader} funded and approved")
        rpc.call("anvil_setBalance", [trader, hex(1_000 * 10**18)])
        wallet = LocalSigner(rpc, wallet_key)
        hashes = []
        for s in BRIDGED:
            token = tokens[s][dep.chain_id]
            send_unlocked(rpc, dep.deployer, to=token,
                          data=encode_call("mint(address,uint256)", [trader, inventory_amount(dep, s)]))
            for spender in (dep.dex("uniswap")["router"], bridges[dep.chain_id]):
                hashes.append(wallet.send(to=token, data=encode_call("approve(address,uint256)", [spender, MAX_UINT256]),
                                          gas=100_000, max_fee_per_gas=10**11, max_priority_fee_per_gas=10**9))
        for h in hashes:
            check_receipt(wait_receipt(rpc, h), "approve")
    two = TwoChain(a=dep_a, b=dep_b, bridges=bridges, tokens=tokens, trader=trader, relayer=dep_a.deployer,
                   directory=str(directory))
    dep_a.save(directory / "a" / DEPLOYMENT_FILE)
    dep_b.save(directory / "b" / DEPLOYMENT_FILE)
    two.save(directory)
    return two


@contextlib.contextmanager
def deployed_two_chains(directory: Path, *, fee_bps: int = DEFAULT_BRIDGE_FEE_BPS) -> Iterator[tuple[Anvil, Anvil, TwoChain]]:
    """Two throw-away automine anvils on free ports with everything deployed (tests)."""
    directory.mkdir(parents=True, exist_ok=True)
    anvil_a = start_anvil(chain_id=CHAIN_A, log_path=directory / "anvil-a.log")
    anvil_b = None
    try:
        anvil_b = start_anvil(chain_id=CHAIN_B, log_path=directory / "anvil-b.log")
        yield anvil_a, anvil_b, deploy_two_chains(anvil_a.rpc(), anvil_b.rpc(), directory, fee_bps=fee_bps, progress=None)
    finally:
        anvil_a.stop()
        if anvil_b is not None:
            anvil_b.stop()


def up(
    *, directory: Path | str | None = None, ports: tuple[int, int] = (PORT_A, PORT_B),
    block_times_s: tuple[float, float] = (BLOCK_TIME_A_S, BLOCK_TIME_B_S), fee_bps: int = DEFAULT_BRIDGE_FEE_BPS,
    progress: Progress | None = print,
) -> TwoChain:
    """Start both anvils detached (pid files in ``a/`` and ``b/``), deploy, then mine on
    each chain's own interval. Not idempotent: run ``down`` first."""
    d = devnet_dir(directory)
    d.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _m: None)
    anvils = []
    try:
        for sub, chain_id, port in (("a", CHAIN_A, ports[0]), ("b", CHAIN_B, ports[1])):
            (d / sub).mkdir(exist_ok=True)
            say(f"starting anvil chain {chain_id} on 127.0.0.1:{port}")
            anvil = start_anvil(port, chain_id=chain_id, log_path=d / sub / lifecycle.LOG_FILE, detach=True)
            (d / sub / lifecycle.PID_FILE).write_text(json.dumps({"pid": anvil.process.pid, "port": port}) + "\n")
            anvils.append(anvil)
        two = deploy_two_chains(anvils[0].rpc(), anvils[1].rpc(), d, fee_bps=fee_bps, progress=progress)
    except BaseException:
        down(directory=d, progress=None)
        raise
    for anvil, block_time in zip(anvils, block_times_s):
        rpc = anvil.rpc()
        rpc.call("evm_setIntervalMining", [int(block_time) if float(block_time).is_integer() else block_time])
        rpc.call("evm_setAutomine", [False])
    say(f"two chains up: A {two.a.rpc_url} ({block_times_s[0]} s blocks), B {two.b.rpc_url} "
        f"({block_times_s[1]} s blocks), bridges {two.bridges}, inventory wallet {two.trader}")
    return two


def down(*, directory: Path | str | None = None, progress: Progress | None = print) -> None:
    d = devnet_dir(directory)
    for sub in ("a", "b"):
        lifecycle.down(directory=d / sub, progress=progress)
