"""Operating the project's executor contract on any chain: deploy, inspect, fund, withdraw.

Owns the operator's side of ``ArbExecutor`` (the hot path's calldata is
``arbbot.execution.executor``'s): which (factory, init-code hash) pairs a chain's DEXes
register and how each is checked, the deployment as one raw signed CREATE transaction (the
contract takes its owner, executors and factories in its constructor, so the hot key never
owns it when a cold owner is given, and there is no half-configured state), the check that
an address runs exactly the compiled runtime code, the status read, and token transfers to
and from the contract. Every transaction is signed here with ``eth_account`` and sent with
``eth_sendRawTransaction``, so it works on any node (none holds our key unlocked), with
EIP-1559 (or legacy) fees from ``arbbot.execution.fees`` under the chain's hard cap.

Nothing here talks to the database: the caller passes what its rows say (``DexEntry``,
``TokenEntry``) and records the outcome. Errors for the operator are ``AdminError`` with a
message naming the bad entry; ``Unconfirmed`` when a transaction was sent but its outcome is
not known yet (the caller prints how to resume).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import rlp  # type: ignore[import-untyped]
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak, to_checksum_address

from arbbot.chain.create2 import (
    GENUINE_INIT_CODE_HASH,
    pool_address,
)
from arbbot.chain.create2 import GENUINE_V2_INIT_CODE_HASH as GENUINE_V2_INIT_CODE_HASH  # noqa: F401 re-export
from arbbot.chain.create2 import GENUINE_V3_INIT_CODE_HASH as GENUINE_V3_INIT_CODE_HASH  # noqa: F401 re-export
from arbbot.chain.create2 import v2_pair_address as v2_pair_address  # noqa: F401 re-export
from arbbot.chain.create2 import v3_pool_address as v3_pool_address  # noqa: F401 re-export
from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import TxFailed, encode_call, wait_receipt
from arbbot.contracts.build import load_artifact
from arbbot.errors import ArbbotError, RpcError
from arbbot.execution import fees
from arbbot.execution.executor import (
    constructor_args,
    decode_revert,
    encode_add_factory,
    encode_set_executor,
    encode_withdraw,
)

ZERO_ADDRESS = "0x" + "00" * 20
GAS_HEADROOM = (6, 5)  # gas limit = estimate x 6/5: estimates are exact on the node that made them
RECEIPT_TIMEOUT_S = 180.0

Progress = Callable[[str], None]


class AdminError(ArbbotError):
    """An operator's request that cannot be carried out (the message names the bad entry)."""


class Unconfirmed(AdminError):
    """A transaction was sent and its outcome is not known yet (not mined in time)."""

    def __init__(self, message: str, tx_hash: str) -> None:
        super().__init__(message)
        self.tx_hash = tx_hash


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class PoolSample:
    """One pool the factory is known to have made: checks an init-code hash by CREATE2."""

    address: str
    token0: str
    token1: str
    fee_pips: int = 3000


@dataclass(frozen=True)
class DexEntry:
    """A chain's DEX as configured: ``init_code_hash`` may be blank (the genuine one is then
    tried, and accepted only if a known pool of the factory proves it)."""

    name: str
    kind: str
    factory: str
    init_code_hash: str = ""
    sample: PoolSample | None = None


@dataclass(frozen=True)
class FactoryEntry:
    name: str
    kind: str
    factory: str
    init_code_hash: bytes

    def as_constructor(self) -> tuple[str, str, bytes]:
        return self.kind, self.factory, self.init_code_hash


@dataclass(frozen=True)
class TokenEntry:
    address: str
    symbol: str
    decimals: int | None


def norm(address: str, what: str = "address") -> str:
    """A 0x address, lower-case. Mixed case must be a valid EIP-55 checksum (a typo in a
    checksummed address is caught, not sent money to)."""
    a = address.strip()
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", a):
        raise AdminError(f"{what} {address!r} is not an address (0x + 40 hex digits)")
    if a[2:] != a[2:].lower() and a[2:] != a[2:].upper() and to_checksum_address(a) != a:
        raise AdminError(f"{what} {address!r} fails its EIP-55 checksum (a typo?)")
    return a.lower()


def parse_amount(text: str, decimals: int, symbol: str) -> int:
    """``"1.5"`` in token units -> base units, exactly (integers only, no float, no rounding).
    More decimal places than the token has, a sign, an exponent or zero are refused."""
    t = text.strip()
    m = re.fullmatch(r"(\d+)(?:\.(\d+))?", t)
    if not m:
        raise AdminError(f"amount {text!r} is not a plain decimal number such as 12.5")
    whole, frac = m.group(1), (m.group(2) or "").rstrip("0")
    if len(frac) > decimals:
        raise AdminError(f"amount {text!r} has {len(frac)} decimal places; {symbol} has {decimals}")
    amount = int(whole) * 10**decimals + (int(frac.ljust(decimals, "0")) if frac else 0)
    if amount == 0:
        raise AdminError(f"amount {text!r} is zero")
    return amount


def format_units(amount: int, decimals: int | None) -> str:
    """Base units in token units, exactly (trailing zeros dropped)."""
    if not decimals:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**decimals)
    frac_s = str(frac).rjust(decimals, "0").rstrip("0")
    return f"{sign}{whole}" + (f".{frac_s}" if frac_s else "")


# --------------------------------------------------------------------------- the node


def connect(urls: Sequence[str], chain_id: int) -> RpcClient:
    """A client for the chain's endpoints, checked to answer and to serve ``chain_id``."""
    if not urls:
        raise AdminError(f"chain {chain_id} has no RPC URL configured")
    rpc = RpcClient(list(urls), timeout_s=10.0)
    try:
        served = rpc.chain_id()
    except RpcError as exc:
        raise AdminError(f"chain {chain_id} is not reachable: {exc}") from None
    if served != chain_id:
        raise AdminError(f"the node at {rpc.url} serves chain {served}, not {chain_id}")
    return rpc


def code_at(rpc: RpcClient, address: str) -> bytes:
    return bytes.fromhex(str(rpc.call("eth_getCode", [address, "latest"]))[2:])


def native_balance(rpc: RpcClient, address: str) -> int:
    return int(rpc.call("eth_getBalance", [address, "latest"]), 16)


def token_balance(rpc: RpcClient, token: str, who: str) -> int:
    return int(rpc.eth_call(token, encode_call("balanceOf(address)", [who])), 16)


def _word(rpc: RpcClient, to: str, signature: str, args: Sequence[Any]) -> int:
    """One 32-byte return word; ``ValueError`` for anything else (no such function: a
    fallback that returns nothing, another contract's layout)."""
    raw = str(rpc.eth_call(to, encode_call(signature, list(args))))
    if len(raw) != 66:
        raise ValueError(f"{signature} at {to} returned {len(raw) // 2 - 1} bytes, not one word")
    return int(raw, 16)


def view_address(rpc: RpcClient, to: str, signature: str, args: Sequence[Any] = ()) -> str:
    word = _word(rpc, to, signature, args)
    if word >> 160:
        raise ValueError(f"{signature} at {to} did not return an address")
    return "0x" + word.to_bytes(20, "big").hex()


def view_int(rpc: RpcClient, to: str, signature: str, args: Sequence[Any] = ()) -> int:
    return _word(rpc, to, signature, args)


# --------------------------------------------------------------------------- factories


def _pool_address(kind: str, factory: str, init_code_hash: bytes, s: PoolSample) -> str:
    return pool_address(kind, factory, init_code_hash, s.token0, s.token1, s.fee_pips)


def onchain_v2_sample(rpc: RpcClient, factory: str) -> PoolSample | None:
    """The factory's first pair (``allPairs(0)``) and its tokens, if it has one."""
    try:
        if view_int(rpc, factory, "allPairsLength()") == 0:
            return None
        pair = view_address(rpc, factory, "allPairs(uint256)", [0])
        return PoolSample(pair, view_address(rpc, pair, "token0()"), view_address(rpc, pair, "token1()"))
    except (RpcError, ValueError):
        return None


def resolve_factories(rpc: RpcClient, dexes: Sequence[DexEntry]) -> list[FactoryEntry]:
    """The (factory, init-code hash) of every DEX, each checked: the factory has code, and
    the hash reproduces a pool the factory made (CREATE2), when one is known. A DEX without
    a configured hash gets the genuine Uniswap one only if a pool proves it."""
    out: list[FactoryEntry] = []
    if not dexes:
        raise AdminError("the chain has no DEX configured: nothing for the executor to trade on")
    for d in dexes:
        where = f"dex {d.name!r} ({d.kind} factory {d.factory})"
        if d.kind not in GENUINE_INIT_CODE_HASH:
            raise AdminError(f"{where}: unknown kind {d.kind!r} (v2 or v3)")
        factory = norm(d.factory, f"{where}: factory")
        if not code_at(rpc, factory):
            raise AdminError(f"{where}: no contract at the factory address")
        if d.init_code_hash:
            if not re.fullmatch(r"(0x)?[0-9a-fA-F]{64}", d.init_code_hash.strip()):
                raise AdminError(f"{where}: init_code_hash {d.init_code_hash!r} is not 32 bytes of hex")
            init_hash = bytes.fromhex(d.init_code_hash.strip().removeprefix("0x"))
        else:
            init_hash = GENUINE_INIT_CODE_HASH[d.kind]
        sample = d.sample or (onchain_v2_sample(rpc, factory) if d.kind == "v2" else None)
        if sample is None and not d.init_code_hash:
            raise AdminError(f"{where}: no init_code_hash configured and no pool of the factory known to check "
                             "the genuine one against: set the DEX's init_code_hash")
        if sample is not None and _pool_address(d.kind, factory, init_hash, sample) != sample.address.lower():
            said = "the configured" if d.init_code_hash else "no init_code_hash configured, and the genuine"
            raise AdminError(f"{where}: {said} init-code hash 0x{init_hash.hex()} does not give the address of "
                             f"its pool {sample.address}: set the DEX's init_code_hash")
        out.append(FactoryEntry(d.name, d.kind, factory, init_hash))
    return out


# --------------------------------------------------------------------------- code check


def compiled_runtime() -> bytes:
    return bytes.fromhex(str(load_artifact()["deployedBytecode"])[2:])


def compiled_creation() -> str:
    return str(load_artifact()["bytecode"])


def runtime_matches(code: bytes, weth: str) -> bool:
    """``code`` is exactly the compiled ``ArbExecutor`` runtime with ``weth`` as its one
    immutable. solc leaves an immutable's 32-byte slots zero in the artifact and the
    constructor fills them, so the only differences allowed are zero words of the artifact
    that hold the left-padded ``weth`` word in ``code``."""
    expected = bytearray(compiled_runtime())
    if len(code) != len(expected):
        return False
    word = bytes(12) + bytes.fromhex(weth[2:])
    i = code.find(word)
    while i != -1:
        if expected[i : i + 32] == bytes(32):
            expected[i : i + 32] = word
        i = code.find(word, i + 1)
    return bytes(expected) == code


@dataclass(frozen=True)
class CodeCheck:
    address: str
    has_code: bool
    matches: bool
    code_hash: str  # keccak of the runtime code, 0x hex ("" without code)
    weth: str  # the contract's weth() ("" if it has none)


def check_code(rpc: RpcClient, address: str) -> CodeCheck:
    code = code_at(rpc, address)
    if not code:
        return CodeCheck(address, False, False, "", "")
    try:
        weth = view_address(rpc, address, "weth()")
    except (RpcError, ValueError):
        weth = ""
    return CodeCheck(address, True, bool(weth) and runtime_matches(code, weth), "0x" + keccak(code).hex(), weth)


# --------------------------------------------------------------------------- signing


@dataclass
class Wallet:
    """A private key held in memory only (never in ``repr``), signing raw transactions."""

    key: str = field(repr=False)

    def __post_init__(self) -> None:
        try:
            self._account = Account.from_key(self.key)
        except Exception:  # noqa: BLE001 - eth_account raises several types; never echo the key
            raise AdminError("the configured key is not a valid private key") from None

    @property
    def address(self) -> str:
        return str(self._account.address).lower()

    def sign(self, tx: dict[str, Any]) -> tuple[str, str]:
        signed = self._account.sign_transaction(tx)
        return "0x" + bytes(signed.raw_transaction).hex(), "0x" + bytes(signed.hash).hex()


@dataclass(frozen=True)
class TxPlan:
    """One transaction, priced and checked, not yet signed. ``to`` None: a CREATE."""

    what: str
    sender: str
    to: str | None
    data: str
    gas_limit: int
    quote: fees.FeeQuote
    nonce: int
    sender_balance_wei: int

    @property
    def worst_cost_wei(self) -> int:
        return self.quote.worst_case_cost(self.gas_limit)

    @property
    def contract_address(self) -> str:
        """Where a CREATE from ``sender`` at ``nonce`` puts the contract."""
        return "0x" + keccak(rlp.encode([bytes.fromhex(self.sender[2:]), self.nonce]))[-20:].hex()

    def describe(self) -> str:
        return (f"{self.what}: gas limit {self.gas_limit}, {self.quote.describe()}; at most "
                f"{format_units(self.worst_cost_wei, 18)} native ({self.worst_cost_wei} wei); "
                f"the sender holds {format_units(self.sender_balance_wei, 18)}")


def plan_tx(
    rpc: RpcClient, sender: str, *, to: str | None, data: str, policy: fees.FeePolicy, what: str
) -> TxPlan:
    """Estimate, price and check one transaction: it must not revert in simulation, its fee
    must be under the chain's cap, and the sender must afford its worst-case gas."""
    call: dict[str, Any] = {"from": sender, "data": data}
    if to is not None:
        call["to"] = to
    try:
        estimate = int(rpc.call("eth_estimateGas", [call]), 16)
    except RpcError as exc:
        reason = decode_revert(exc.data) if isinstance(exc.data, str) else str(exc)
        raise AdminError(f"{what} would fail: {reason}") from None
    gas_limit = estimate * GAS_HEADROOM[0] // GAS_HEADROOM[1]
    try:
        quote = fees.quote(rpc, policy)
    except fees.FeeError as exc:
        raise AdminError(f"{what}: {exc}") from None
    balance = native_balance(rpc, sender)
    nonce = int(rpc.call("eth_getTransactionCount", [sender, "pending"]), 16)
    plan = TxPlan(what, sender, to, data, gas_limit, quote, nonce, balance)
    if balance < plan.worst_cost_wei:
        raise AdminError(f"{what}: not enough native balance for gas: {sender} has {format_units(balance, 18)} "
                         f"({balance} wei), needs up to {format_units(plan.worst_cost_wei, 18)} "
                         f"({plan.worst_cost_wei} wei)")
    return plan


def send_plan(
    rpc: RpcClient, wallet: Wallet, plan: TxPlan, chain_id: int, *, timeout_s: float = RECEIPT_TIMEOUT_S,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Sign, send and wait for the receipt; raises ``TxFailed`` (with the receipt) on a
    revert and ``Unconfirmed`` when not mined within ``timeout_s``."""
    if wallet.address != plan.sender:
        raise AdminError(f"{plan.what}: planned for {plan.sender}, the key is {wallet.address}")
    tx: dict[str, Any] = {"chainId": chain_id, "nonce": plan.nonce, "data": plan.data, "value": 0,
                          "gas": plan.gas_limit}
    if plan.to is not None:
        tx["to"] = to_checksum_address(plan.to)
    if plan.quote.kind == "legacy":
        tx["gasPrice"] = plan.quote.max_fee_per_gas
    else:
        tx.update(type=2, maxFeePerGas=plan.quote.max_fee_per_gas,
                  maxPriorityFeePerGas=plan.quote.max_priority_fee_per_gas)
    raw, tx_hash = wallet.sign(tx)
    try:
        rpc.call("eth_sendRawTransaction", [raw])
    except RpcError as exc:
        # the node may hold it after all (a timeout after delivery): look before giving up
        known = _known(rpc, tx_hash)
        if not known:
            raise AdminError(f"{plan.what}: the node refused the transaction: {exc}") from None
    if progress:
        progress(f"{plan.what}: sent {tx_hash} (nonce {plan.nonce})")
    try:
        receipt = wait_receipt(rpc, tx_hash, timeout_s=timeout_s, poll_s=0.1)
    except TxFailed:
        raise Unconfirmed(f"{plan.what}: {tx_hash} not mined within {timeout_s:.0f}s", tx_hash) from None
    gas_used = int(receipt["gasUsed"], 16)
    if int(receipt["status"], 16) != 1:
        raise TxFailed(f"{plan.what}: {tx_hash} reverted (gas used {gas_used})", receipt)
    if progress:
        progress(f"{plan.what}: mined in block {int(receipt['blockNumber'], 16)}, gas used {gas_used}")
    return receipt


def _known(rpc: RpcClient, tx_hash: str) -> bool:
    try:
        return rpc.call("eth_getTransactionByHash", [tx_hash]) is not None
    except RpcError:
        return False


# --------------------------------------------------------------------------- deploy


def deploy_data(owner: str, weth: str, executors: Sequence[str], factories: Sequence[FactoryEntry]) -> str:
    types, values = constructor_args(owner, weth, executors, [f.as_constructor() for f in factories])
    return compiled_creation() + encode(types, values).hex()


@dataclass(frozen=True)
class SetupCheck:
    owner: str
    pending_owner: str
    paused: bool
    executor_ok: bool
    factories: list[tuple[FactoryEntry, bytes]]  # (expected, what the contract has: 0 = none)

    def problems(self, *, owner: str | None, executor: str) -> list[str]:
        out = []
        if owner is not None and self.owner != owner:
            out.append(f"owner is {self.owner}, expected {owner}")
        if not self.executor_ok:
            out.append(f"{executor} is not an executor")
        for f, have in self.factories:
            if have != f.init_code_hash:
                out.append(f"dex {f.name!r} ({f.kind} factory {f.factory}) is not registered"
                           if have == bytes(32) else
                           f"dex {f.name!r} ({f.kind} factory {f.factory}) is registered with another "
                           f"init-code hash 0x{have.hex()}")
        return out


def read_setup(rpc: RpcClient, address: str, executor: str, factories: Sequence[FactoryEntry]) -> SetupCheck:
    """The contract's roles and registry as they are on-chain, for the entries expected."""
    regs = []
    for f in factories:
        getter = "v2InitCodeHash(address)" if f.kind == "v2" else "v3InitCodeHash(address)"
        have = _word(rpc, address, getter, [f.factory]).to_bytes(32, "big")
        regs.append((f, have))
    return SetupCheck(
        owner=view_address(rpc, address, "owner()"),
        pending_owner=view_address(rpc, address, "pendingOwner()"),
        paused=view_int(rpc, address, "paused()") != 0,
        executor_ok=view_int(rpc, address, "isExecutor(address)", [executor]) != 0,
        factories=regs,
    )


def factory_fix_calls(check: SetupCheck, executor: str) -> list[tuple[str, str]]:
    """(what, calldata) the owner sends to bring the contract to the expected setup."""
    calls = []
    if not check.executor_ok:
        calls.append((f"setExecutor({executor})", encode_set_executor(executor, True)))
    for f, have in check.factories:
        if have != f.init_code_hash:
            calls.append((f"addFactory({f.kind}, {f.name} {f.factory})",
                          encode_add_factory(f.kind, f.factory, f.init_code_hash)))
    return calls


# --------------------------------------------------------------------------- transfers


def transfer_data(to: str, amount: int) -> str:
    return encode_call("transfer(address,uint256)", [to, amount])


def withdraw_data(token: str, to: str, amount: int) -> str:
    return encode_withdraw(token, to, amount)
