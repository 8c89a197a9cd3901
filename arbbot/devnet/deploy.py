"""The embedded devnet: anvil plus the genuine Uniswap contracts, tokens, pools and the
project's executor, recorded in ``<devnet_dir>/deployment.json``.

Owns the devnet lifecycle (``up`` / ``down`` / ``status``), the deployment order and the
``Deployment`` record other parts read (the webapp turns it into Chain/Dex/Token/Pool rows,
the scan stage reads addresses from it). Deploys only genuine npm artifacts (see
``artifacts.py``) plus ``arbbot/contracts/ArbExecutor.json``.

Everything is sent from anvil's unlocked dev account 0 with automine, so a deployment takes
a couple of seconds; ``up`` then switches the node to interval mining (one block a second)
so the demo looks like a chain. The bot's signer key is generated once into
``signer.key`` (0600) and is never printed.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from eth_abi import decode
from eth_account import Account
from eth_utils import keccak

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import deploy_unlocked, encode_call, send_unlocked
from arbbot.config import get_settings
from arbbot.contracts.build import load_artifact
from arbbot.devnet.anvil import DEFAULT_CHAIN_ID, start_anvil
from arbbot.devnet.artifacts import load, multicall3_bytecode
from arbbot.errors import ArbbotError, RpcError

DEFAULT_PORT = 8545
DEFAULT_BLOCK_TIME_S = 1.0
MULTICALL3_ADDRESS = "0xca11bde05977b3631167028862be2a173976ca11"  # canonical on every chain
V2_FEE_PIPS = 3000
SIGNER_FUNDING_WEI = 10_000 * 10**18
DEPLOYMENT_FILE = "deployment.json"
PID_FILE = "anvil.pid"
LOG_FILE = "anvil.log"
SIGNER_FILE = "signer.key"

# (symbol, name, reference price in USD). The OpenZeppelin preset has 18 decimals fixed.
TOKENS: tuple[tuple[str, str, float], ...] = (
    ("USDC", "USD Coin (devnet)", 1.0),
    ("USDT", "Tether USD (devnet)", 1.0),
    ("DAI", "Dai Stablecoin (devnet)", 1.0),
    ("WBTC", "Wrapped BTC (devnet)", 60_000.0),
    ("LINK", "ChainLink (devnet)", 15.0),
    ("UNI", "Uniswap (devnet)", 8.0),
)
WETH_PRICE_USD = 3_000.0

# (symbol_a, symbol_b) pairs created on every V2 DEX. WETH pairs, stable pairs and
# triangles (WETH-USDC-DAI, WETH-WBTC-USDC, WETH-LINK-USDC) so 3-hop cycles exist.
PAIRS: tuple[tuple[str, str], ...] = (
    ("WETH", "USDC"),
    ("WETH", "USDT"),
    ("WETH", "DAI"),
    ("WETH", "WBTC"),
    ("WETH", "LINK"),
    ("WETH", "UNI"),
    ("USDC", "DAI"),
    ("USDC", "USDT"),
    ("WBTC", "USDC"),
    ("LINK", "USDC"),
)

# (dex name, USD depth of each side of each pool). Different depths make the DEXes react
# differently to the same flow, which is what creates cross-DEX gaps.
V2_DEXES: tuple[tuple[str, float], ...] = (("uniswap", 2_000_000.0), ("sushiswap", 800_000.0))

Progress = Callable[[str], None]


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


# --------------------------------------------------------------------------- paths and files


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


# --------------------------------------------------------------------------- deployment


def _addr_word(hex_result: str) -> str:
    return "0x" + hex_result[-40:].lower()


def create2_pair_address(factory: str, token_a: str, token_b: str, init_code_hash: bytes) -> str:
    """UniswapV2Library.pairFor: CREATE2 address of a pair from its (sorted) tokens."""
    t0, t1 = sorted((token_a.lower(), token_b.lower()))
    salt = keccak(bytes.fromhex(t0[2:]) + bytes.fromhex(t1[2:]))
    raw = keccak(b"\xff" + bytes.fromhex(factory[2:]) + salt + init_code_hash)
    return "0x" + raw[-20:].hex()


def v2_pair_init_code_hash() -> bytes:
    return keccak(bytes.fromhex(load("UniswapV2Pair").bytecode[2:]))


class _Steps:
    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.i, self.progress = total, 0, progress

    def __call__(self, msg: str) -> None:
        self.i += 1
        if self.progress:
            self.progress(f"[{self.i}/{self.total}] {msg}")


def _reserve_amount(usd_depth: float, price_usd: float, decimals: int = 18) -> int:
    # integer base units; round to whole tokens * 1e6 so amounts read nicely in logs
    units = usd_depth / price_usd
    return int(round(units * 1e6)) * 10 ** (decimals - 6)


def deploy_contracts(
    rpc: RpcClient,
    *,
    signer: str,
    progress: Progress | None = print,
    v3: bool = False,
) -> Deployment:
    """Deploy the whole devnet onto a running (automine) anvil; returns the record.

    ``signer`` is the address that will own the executor (the bot's key). ``v3=True``
    also deploys the Uniswap V3 stack and pools (``arbbot.devnet.v3``).
    """
    accounts = [a.lower() for a in rpc.call("eth_accounts")]
    deployer = accounts[0]
    n_steps = 3 + len(TOKENS) + len(V2_DEXES) * (1 + len(PAIRS)) + 2 + (3 if v3 else 0)
    step = _Steps(n_steps, progress)
    chain_id = rpc.chain_id()

    step("WETH9")
    weth = deploy_unlocked(rpc, deployer, load("WETH9").bytecode)

    step("Multicall3 (viem bytecode, placed at the canonical address)")
    mc = deploy_unlocked(rpc, deployer, multicall3_bytecode())
    # Multicall3 has no constructor state or immutables, so its runtime code can be copied
    # to the address every real chain uses; clients need no per-chain configuration.
    rpc.call("anvil_setCode", [MULTICALL3_ADDRESS, rpc.call("eth_getCode", [mc, "latest"])])

    tokens: list[dict[str, Any]] = [
        {"address": weth, "symbol": "WETH", "name": "Wrapped Ether", "decimals": 18, "price_usd": WETH_PRICE_USD}
    ]
    erc20 = load("ERC20PresetMinterPauser")
    for symbol, name, price in TOKENS:
        step(f"ERC20 {symbol} (OpenZeppelin 4.9.6 ERC20PresetMinterPauser)")
        addr = deploy_unlocked(rpc, deployer, erc20.bytecode, ["string", "string"], [name, symbol])
        tokens.append({"address": addr, "symbol": symbol, "name": name, "decimals": 18, "price_usd": price})
    by_symbol = {t["symbol"]: t for t in tokens}

    # Enough of every token for all pools (and later top-ups): mint once per token.
    step("mint tokens and wrap ETH for liquidity")
    need: dict[str, int] = {}
    for _, depth in V2_DEXES:
        for a, b in PAIRS:
            for s in (a, b):
                need[s] = need.get(s, 0) + _reserve_amount(depth, by_symbol[s]["price_usd"])
    for s, amount in need.items():
        amount *= 4  # headroom for V3 positions and scenarios
        if s == "WETH":
            rpc.call("anvil_setBalance", [deployer, hex(10**30)])
            send_unlocked(rpc, deployer, to=weth, data=encode_call("deposit()"), value=amount)
        else:
            send_unlocked(
                rpc, deployer, to=by_symbol[s]["address"],
                data=encode_call("mint(address,uint256)", [deployer, amount]),
            )

    dexes: list[dict[str, Any]] = []
    pools: list[dict[str, Any]] = []
    factory_art, router_art = load("UniswapV2Factory"), load("UniswapV2Router02")
    for dex_name, depth in V2_DEXES:
        step(f"{dex_name}: UniswapV2Factory + UniswapV2Router02")
        factory = deploy_unlocked(rpc, deployer, factory_art.bytecode, ["address"], [deployer])
        router = deploy_unlocked(rpc, deployer, router_art.bytecode, ["address", "address"], [factory, weth])
        dexes.append({"name": dex_name, "kind": "v2", "factory": factory, "router": router, "fee_pips": V2_FEE_PIPS})
        for a, b in PAIRS:
            step(f"{dex_name}: pool {a}/{b}")
            ta, tb = by_symbol[a], by_symbol[b]
            send_unlocked(
                rpc, deployer, to=factory,
                data=encode_call("createPair(address,address)", [ta["address"], tb["address"]]),
            )
            pair = _addr_word(
                rpc.eth_call(factory, encode_call("getPair(address,address)", [ta["address"], tb["address"]]))
            )
            for t in (ta, tb):
                amount = _reserve_amount(depth, t["price_usd"])
                send_unlocked(
                    rpc, deployer, to=t["address"], data=encode_call("transfer(address,uint256)", [pair, amount])
                )
            send_unlocked(rpc, deployer, to=pair, data=encode_call("mint(address)", [deployer]))
            t0, t1 = sorted((ta["address"], tb["address"]))
            pools.append(
                {"address": pair, "dex": dex_name, "kind": "v2", "token0": t0, "token1": t1, "fee_pips": V2_FEE_PIPS}
            )

    v3_factory = "0x" + "00" * 20
    if v3:
        from arbbot.devnet import v3 as v3mod

        step("Uniswap V3: factory, position manager, swap router, QuoterV2")
        stack = v3mod.deploy_v3_stack(rpc, deployer, weth)
        v3_factory = stack["factory"]
        dexes.append({"name": "uniswap-v3", "kind": "v3", **stack})
        step("Uniswap V3: pools in fee tiers 500 and 3000")
        step("Uniswap V3: positions over several tick ranges")
        pools.extend(v3mod.create_default_pools(rpc, deployer, stack, tokens))

    step("ArbExecutor (owner = the bot's signer)")
    executor = deploy_unlocked(
        rpc, deployer, load_artifact()["bytecode"], ["address", "address"], [signer, v3_factory]
    )

    step("fund the bot's signer with ETH")
    rpc.call("anvil_setBalance", [signer, hex(SIGNER_FUNDING_WEI)])

    return Deployment(
        chain_id=chain_id,
        rpc_url=rpc.url,
        block=rpc.block_number(),
        deployer=deployer,
        weth=weth,
        multicall3=MULTICALL3_ADDRESS,
        executor=executor,
        signer=signer,
        dexes=dexes,
        tokens=tokens,
        pools=pools,
        genesis_hash=str(rpc.call("eth_getBlockByNumber", ["0x0", False])["hash"]).lower(),
    )


def verify_deployment(rpc: RpcClient, deployment: Deployment) -> list[str]:
    """Addresses in the record that have no code on the node (empty list = all present)."""
    addrs = [deployment.weth, deployment.multicall3, deployment.executor]
    for d in deployment.dexes:
        addrs += [v for k, v in d.items() if k not in ("name", "kind", "fee_pips") and isinstance(v, str)]
    addrs += [t["address"] for t in deployment.tokens] + [p["address"] for p in deployment.pools]
    codes = rpc.batch([("eth_getCode", [a, "latest"]) for a in addrs], raise_errors=False)
    return [a for a, c in zip(addrs, codes) if not isinstance(c, str) or c in ("0x", "")]


# --------------------------------------------------------------------------- lifecycle


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_our_anvil(pid: int, port: int) -> bool:
    """True only for an anvil process listening on ``port`` (never signal a reused pid)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(c.endswith(b"anvil") for c in cmd) and str(port).encode() in cmd


def _read_pid(directory: Path) -> tuple[int, int] | None:
    try:
        data = json.loads((directory / PID_FILE).read_text())
        return int(data["pid"]), int(data["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _deployment_live(dep: Deployment, rpc_url: str) -> bool:
    try:
        rpc = RpcClient(rpc_url, timeout_s=2)
        if rpc.chain_id() != dep.chain_id:
            return False
        return not verify_deployment(rpc, dep)
    except ArbbotError:
        return False


def up(
    *,
    port: int = DEFAULT_PORT,
    directory: Path | str | None = None,
    block_time_s: float | None = DEFAULT_BLOCK_TIME_S,
    v3: bool = True,
    progress: Progress | None = print,
) -> Deployment:
    """Start anvil detached on 127.0.0.1:``port`` and deploy the devnet; idempotent.

    If the recorded deployment is already live at the recorded URL, says so and returns
    it. ``block_time_s=None`` leaves the node in automine (tests); otherwise the node mines
    a block every ``block_time_s`` seconds once deployment is done.
    """
    d = devnet_dir(directory)
    d.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _m: None)
    dep_file = d / DEPLOYMENT_FILE
    if dep_file.is_file():
        dep = Deployment.load(dep_file)
        if _deployment_live(dep, dep.rpc_url):
            say(f"devnet already up at {dep.rpc_url} (block {RpcClient(dep.rpc_url).block_number()}); nothing to do")
            return dep
    url = f"http://127.0.0.1:{port}"
    try:
        RpcClient(url, timeout_s=1).chain_id()
        raise ArbbotError(f"something already answers on {url} without our contracts: run `devnet down` or pick --port")
    except RpcError:
        pass  # the port is free: the normal case
    signer = ensure_signer_key(d)
    say(f"starting anvil on {url} (log: {d / LOG_FILE})")
    anvil = start_anvil(port, chain_id=DEFAULT_CHAIN_ID, log_path=d / LOG_FILE, detach=True)
    (d / PID_FILE).write_text(json.dumps({"pid": anvil.process.pid, "port": port}) + "\n")
    rpc = anvil.rpc()
    try:
        dep = deploy_contracts(rpc, signer=signer, progress=progress, v3=v3)
    except BaseException:
        down(directory=d)
        raise
    if block_time_s:
        # Deploy under automine (fast), then mine on an interval like a real chain.
        rpc.call("evm_setIntervalMining", [int(block_time_s) if float(block_time_s).is_integer() else block_time_s])
        rpc.call("evm_setAutomine", [False])
    dep.save(dep_file)
    say(
        f"devnet up: chain {dep.chain_id} at {dep.rpc_url}, {len(dep.tokens)} tokens, {len(dep.pools)} pools, "
        f"executor {dep.executor}, signer {dep.signer}; recorded in {dep_file}"
    )
    return dep


def down(*, directory: Path | str | None = None, progress: Progress | None = print) -> bool:
    """Stop the devnet's anvil (only the one this module started). True if one was stopped."""
    d = devnet_dir(directory)
    say = progress or (lambda _m: None)
    rec = _read_pid(d)
    if rec is None:
        say("devnet is not running (no pid file)")
        return False
    pid, port = rec
    stopped = False
    if _pid_alive(pid) and _is_our_anvil(pid, port):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _pid_alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.05)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        stopped = True
        say(f"stopped anvil pid {pid} (port {port})")
    else:
        say(f"anvil pid {pid} is gone; cleaning up")
    (d / PID_FILE).unlink(missing_ok=True)
    return stopped


def _reap(pid: int) -> None:
    # When the caller started anvil itself (tests), the child must be reaped to disappear.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def status(*, directory: Path | str | None = None) -> dict[str, Any]:
    """A JSON-able summary: running?, url, block, and whether the recorded contracts exist."""
    d = devnet_dir(directory)
    out: dict[str, Any] = {"devnet_dir": str(d), "running": False}
    rec = _read_pid(d)
    if rec:
        out["pid"], out["port"] = rec
        out["process_alive"] = _pid_alive(rec[0])
    dep_file = d / DEPLOYMENT_FILE
    if not dep_file.is_file():
        out["deployment"] = None
        return out
    dep = Deployment.load(dep_file)
    out.update(rpc_url=dep.rpc_url, chain_id=dep.chain_id, deployment=str(dep_file))
    try:
        rpc = RpcClient(dep.rpc_url, timeout_s=2)
        out["block_number"] = rpc.block_number()
        missing = verify_deployment(rpc, dep)
        out["running"] = True
        out["contracts_ok"] = not missing
        out["missing_code"] = missing
    except ArbbotError as exc:
        out["error"] = str(exc)
    out.update(
        tokens=len(dep.tokens), pools=len(dep.pools), dexes=[x["name"] for x in dep.dexes],
        executor=dep.executor, signer=dep.signer,
    )
    return out


def reference_price(dep: Deployment, token_in: str, token_out: str) -> float:
    """Units of ``token_out`` per unit of ``token_in`` at the deployment's USD prices."""
    pi = next(t["price_usd"] for t in dep.tokens if t["address"] == token_in.lower())
    po = next(t["price_usd"] for t in dep.tokens if t["address"] == token_out.lower())
    return float(pi) / float(po)


def read_v2_reserves(rpc: RpcClient, pools: Iterable[str]) -> dict[str, tuple[int, int]]:
    """``getReserves`` of many pairs in one JSON-RPC batch."""
    pools = list(pools)
    data = encode_call("getReserves()")
    res = rpc.batch([("eth_call", [{"to": p, "data": data}, "latest"]) for p in pools])
    out = {}
    for p, r in zip(pools, res):
        r0, r1, _ = decode(["uint112", "uint112", "uint32"], bytes.fromhex(r[2:]))
        out[p] = (int(r0), int(r1))
    return out

