"""``arbbot executor deploy|status|fund|withdraw`` run as an operator runs them (a subprocess
of ``manage.py``) against a real anvil and this run's test database.

The bot's key is an ordinary funded key the node does not hold: anvil cannot sign for it,
so every transaction of the commands can only have gone through ``eth_sendRawTransaction``.
Balances, roles and the factory registry are read back on-chain.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from eth_account import Account
from eth_utils import keccak

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import encode_call, send_unlocked
from arbbot.devnet import v3
from arbbot.devnet.anvil import Anvil
from arbbot.devnet.deploy import v2_pair_init_code_hash
from arbbot.devnet.record import Deployment
from arbbot.devnet.scenarios import balance_of, deployed_devnet, fund_token, revert_to, snapshot
from arbbot.execution import executor_admin as admin
from arbbot.execution.fees import FeePolicy

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)  # the command's process reads committed rows


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Anvil, Deployment]]:
    with deployed_devnet(tmp_path_factory.mktemp("devnet-cli"), v3=True) as (anvil, dep):
        yield anvil, dep


class Env:
    """The chain (registered without an executor), a fresh funded bot key, and the command."""

    def __init__(self, rpc: RpcClient, dep: Deployment, workdir: Path) -> None:
        from django.db import connection

        from webapp.core import services

        self.rpc, self.dep = rpc, dep
        self.key = "0x" + secrets.token_hex(32)
        self.signer = Account.from_key(self.key).address.lower()
        rpc.call("anvil_setBalance", [self.signer, hex(100 * 10**18)])
        services.chain_register_deployment({**dep.to_json(), "executor": "", "name": "cli-devnet"})
        self.env = {**os.environ, "ARBBOT_DATABASE_NAME": connection.settings_dict["NAME"],
                    "ARBBOT_DEVNET_DIR": str(workdir), "ARBBOT_SIGNER_KEY": self.key}
        for name in ("ARBBOT_SIGNER_KEY_FILE", "ARBBOT_OWNER_KEY", "ARBBOT_OWNER_KEY_FILE"):
            self.env.pop(name, None)

    def run(self, *args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
        full = {**self.env, **{k: v for k, v in env.items() if v is not None}}
        for k in [k for k, v in env.items() if v is None]:
            full.pop(k, None)
        r = subprocess.run([sys.executable, "manage.py", "arbbot", "executor", *args], cwd=ROOT, env=full,
                           capture_output=True, text=True, timeout=120)
        for secret in {self.key, full.get("ARBBOT_SIGNER_KEY") or self.key}:  # never printed, any case
            assert secret[2:].lower() not in (r.stdout + r.stderr).lower()
        return r

    def nonce(self, who: str | None = None) -> int:
        return int(self.rpc.call("eth_getTransactionCount", [who or self.signer, "latest"]), 16)

    def deploy(self, *extra: str) -> str:
        r = self.run("deploy", "--chain", str(self.dep.chain_id), *extra)
        assert r.returncode == 0, r.stdout + r.stderr
        return fields(r.stdout)["executor"]


@pytest.fixture()
def cli(devnet: tuple[Anvil, Deployment], tmp_path: Path) -> Iterator[Env]:
    anvil, dep = devnet
    rpc = anvil.rpc()
    snap = snapshot(rpc)
    try:
        yield Env(rpc, dep, tmp_path)
    finally:
        revert_to(rpc, snap)


def fields(stdout: str) -> dict[str, str]:
    """``name: value`` lines (the last one of a name wins)."""
    out = {}
    for line in stdout.splitlines():
        name, sep, value = line.partition(": ")
        if sep:
            out[name.strip()] = value.strip()
    return out


def view_address(rpc: RpcClient, to: str, signature: str, args: list[Any] | None = None) -> str:
    return "0x" + rpc.eth_call(to, encode_call(signature, args or []))[-40:]


def view_int(rpc: RpcClient, to: str, signature: str, args: list[Any] | None = None) -> int:
    return int(rpc.eth_call(to, encode_call(signature, args or [])), 16)


def genuine(kind: str) -> bytes:
    return v2_pair_init_code_hash() if kind == "v2" else v3.POOL_INIT_CODE_HASH


# --------------------------------------------------------------------------- pure helpers


def test_amounts_convert_exactly_and_refuse_extra_decimals() -> None:
    assert admin.parse_amount("12.345678", 6, "USDC") == 12_345_678
    assert admin.parse_amount("1.50", 1, "X") == 15  # trailing zeros are not extra precision
    assert admin.parse_amount("123456789012345678901234567890.000000000000000001", 18, "W") == \
        123456789012345678901234567890 * 10**18 + 1  # beyond float and default Decimal precision
    for bad in ("1.0000001", "-1", "1e3", "abc", "0", "0.000", " ", "1,5", "inf", "NaN"):
        with pytest.raises(admin.AdminError):
            admin.parse_amount(bad, 6, "USDC")
    assert admin.format_units(12_345_678, 6) == "12.345678"
    assert admin.format_units(10**18, 18) == "1" and admin.format_units(5, None) == "5"


def test_the_genuine_hashes_are_the_npm_artifacts() -> None:
    assert admin.GENUINE_V2_INIT_CODE_HASH == v2_pair_init_code_hash()
    assert admin.GENUINE_V3_INIT_CODE_HASH == v3.POOL_INIT_CODE_HASH


def test_a_checksum_typo_in_an_address_is_refused() -> None:
    good = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    assert admin.norm(good) == good.lower() and admin.norm(good.lower()) == good.lower()
    with pytest.raises(admin.AdminError, match="checksum"):
        admin.norm("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD")


# --------------------------------------------------------------------------- deploy and status


def test_deploy_by_raw_transaction_then_status_field_by_field(cli: Env) -> None:
    from webapp.core.models import Chain

    dep, rpc = cli.dep, cli.rpc
    r = cli.run("deploy", "--chain", str(dep.chain_id))
    assert r.returncode == 0, r.stdout + r.stderr
    out = fields(r.stdout)
    address = out["executor"]
    assert Chain.objects.get(chain_id=dep.chain_id).executor == address
    assert "gas limit" in r.stdout and "sent 0x" in r.stdout and "gas used" in r.stdout
    # one raw EIP-1559 transaction from the bot's key, which the node does not hold
    assert cli.signer not in [a.lower() for a in rpc.call("eth_accounts")]
    assert cli.nonce() == 1
    tx_hash = next(w for line in r.stdout.splitlines() if "sent 0x" in line for w in line.split()
                   if w.startswith("0x"))
    tx = rpc.call("eth_getTransactionByHash", [tx_hash])
    assert tx["from"].lower() == cli.signer and tx["type"] == "0x2" and tx["to"] is None
    # the constructor set everything: the signer is owner and executor, every DEX registered
    assert view_address(rpc, address, "owner()") == cli.signer
    assert view_int(rpc, address, "isExecutor(address)", [cli.signer]) == 1
    assert view_address(rpc, address, "weth()") == dep.weth
    for d in dep.dexes:
        getter = "v2InitCodeHash(address)" if d["kind"] == "v2" else "v3InitCodeHash(address)"
        assert view_int(rpc, address, getter, [d["factory"]]) == int.from_bytes(genuine(d["kind"]), "big")

    fund_token(rpc, dep, "USDC", address, 7 * 10**18 + 1)
    s = cli.run("status", "--chain", str(dep.chain_id))
    assert s.returncode == 0, s.stdout + s.stderr
    st = fields(s.stdout)
    assert st["executor"] == address
    assert st["code matches compiled"] == "yes"
    assert st["code hash"] == "0x" + keccak(admin.code_at(rpc, address)).hex()
    assert st["owner"] == cli.signer and st["signer"] == cli.signer
    assert st["signer is executor"] == "yes" and st["signer is owner"] == "yes"
    assert st["paused"] == "no" and st["pending owner"] == "none" and st["weth"] == dep.weth
    for d in dep.dexes:
        assert st[f"factory {d['name']} ({d['kind']} {d['factory']})"] == f"registered 0x{genuine(d['kind']).hex()}"
    assert st["balance USDC"] == "7.000000000000000001 (7000000000000000001 base units)"
    assert st["balance WETH"] == "0 (0 base units)"
    native = int(rpc.call("eth_getBalance", [cli.signer, "latest"]), 16)
    assert st["signer native balance"] == f"{admin.format_units(native, 18)} ({native} wei)"


def test_a_live_executor_is_not_replaced_without_force(cli: Env) -> None:
    first = cli.deploy()
    r = cli.run("deploy", "--chain", str(cli.dep.chain_id))
    assert r.returncode == 1 and f"already has an executor at {first}" in r.stderr
    assert cli.nonce() == 1  # nothing sent
    second = cli.deploy("--force")
    assert second != first and admin.check_code(cli.rpc, second).matches


def test_a_chain_that_is_not_a_devnet_needs_yes_after_the_cost(cli: Env) -> None:
    from webapp.core.models import Chain

    Chain.objects.filter(chain_id=cli.dep.chain_id).update(is_devnet=False)
    r = cli.run("deploy", "--chain", str(cli.dep.chain_id))
    assert r.returncode == 1 and "re-run with --yes" in r.stdout
    assert "at most" in r.stdout and "wei" in r.stdout  # the worst-case cost, before anything is sent
    assert cli.nonce() == 0 and Chain.objects.get(chain_id=cli.dep.chain_id).executor == ""
    address = cli.deploy("--yes")
    assert Chain.objects.get(chain_id=cli.dep.chain_id).executor == address


# --------------------------------------------------------------------------- fund, withdraw


def test_fund_and_withdraw_move_exact_amounts(cli: Env) -> None:
    dep, rpc = cli.dep, cli.rpc
    chain = str(dep.chain_id)
    address = cli.deploy()
    usdc = dep.token("USDC")
    fund_token(rpc, dep, "USDC", cli.signer, 20 * 10**18)

    r = cli.run("fund", "--chain", chain, "USDC", "12.345678901234567891")
    assert r.returncode == 0, r.stdout + r.stderr
    assert balance_of(rpc, usdc, address) == 12_345678901234567891
    assert balance_of(rpc, usdc, cli.signer) == 20 * 10**18 - 12_345678901234567891

    sink = "0x" + "5e" * 20
    r = cli.run("withdraw", "--chain", chain, usdc, "2.5", "--to", sink)  # the token by address
    assert r.returncode == 0, r.stdout + r.stderr
    assert balance_of(rpc, usdc, sink) == 25 * 10**17
    r = cli.run("withdraw", "--chain", chain, "usdc", "all")  # to the owner by default
    assert r.returncode == 0, r.stdout + r.stderr
    assert balance_of(rpc, usdc, address) == 0
    assert balance_of(rpc, usdc, cli.signer) == 20 * 10**18 - 25 * 10**17

    rpc.call("anvil_setBalance", [address, hex(3 * 10**18)])  # native arrives only by force (selfdestruct)
    r = cli.run("withdraw", "--chain", chain, "native", "1.25", "--to", sink)
    assert r.returncode == 0, r.stdout + r.stderr
    assert int(rpc.call("eth_getBalance", [sink, "latest"]), 16) == 125 * 10**16
    assert int(rpc.call("eth_getBalance", [address, "latest"]), 16) == 175 * 10**16

    before = cli.nonce()
    for args, code, says in [
        (("fund", "--chain", chain, "USDC", "1.0000000000000000001"), 2, "has 19 decimal places; USDC has 18"),
        (("fund", "--chain", chain, "USDC", "-1"), 2, "not a plain decimal number"),
        (("fund", "--chain", chain, "NOPE", "1"), 2, "unknown token 'NOPE'"),
        (("fund", "--chain", chain, "USDC", "1000"), 1, "less than 1000; nothing sent"),
        (("withdraw", "--chain", chain, "USDC", "all"), 1, "holds no USDC"),
        (("withdraw", "--chain", chain, "USDC", "1"), 1, "less than 1; nothing sent"),
        (("fund", "--chain", "999999", "USDC", "1"), 2, "unknown chain 999999"),
    ]:
        r = cli.run(*args)
        assert r.returncode == code and says in r.stderr, (args, r.stdout, r.stderr)
    assert cli.nonce() == before


def test_a_cold_owner_withdraws_only_with_its_own_key(cli: Env) -> None:
    dep, rpc = cli.dep, cli.rpc
    chain = str(dep.chain_id)
    cold_key = "0x" + secrets.token_hex(32)
    cold = Account.from_key(cold_key).address
    address = cli.deploy("--owner", cold)  # checksummed, as an operator pastes it
    assert view_address(rpc, address, "owner()") == cold.lower()  # set by the constructor: never the hot key
    assert view_int(rpc, address, "isExecutor(address)", [cli.signer]) == 1
    st = fields(cli.run("status", "--chain", chain).stdout)
    assert st["owner"] == cold.lower() and st["signer is owner"] == "no" and st["signer is executor"] == "yes"

    usdc = dep.token("USDC")
    fund_token(rpc, dep, "USDC", address, 5 * 10**18)
    before = cli.nonce()
    r = cli.run("withdraw", "--chain", chain, "USDC", "all")
    assert r.returncode == 1 and "not the owner" in r.stderr
    assert balance_of(rpc, usdc, address) == 5 * 10**18 and cli.nonce() == before  # nothing moved, nothing sent
    out = fields(r.stdout)
    assert out["to"] == address and out["chain id"] == chain
    # the printed calldata is what the owner signs offline: it withdraws exactly that
    rpc.call("anvil_setBalance", [cold.lower(), hex(10**18)])
    rpc.call("anvil_impersonateAccount", [cold.lower()])
    try:
        send_unlocked(rpc, cold.lower(), to=address, data=out["data"])
    finally:
        rpc.call("anvil_stopImpersonatingAccount", [cold.lower()])
    assert balance_of(rpc, usdc, address) == 0 and balance_of(rpc, usdc, cold.lower()) == 5 * 10**18

    # with the owner's key configured the command sends it itself (from a key file)
    fund_token(rpc, dep, "USDC", address, 3 * 10**18)
    key_file = Path(cli.env["ARBBOT_DEVNET_DIR"]) / "cold.key"
    key_file.write_text(cold_key + "\n")
    r = cli.run("withdraw", "--chain", chain, "USDC", "1", ARBBOT_OWNER_KEY_FILE=str(key_file))
    assert r.returncode == 0, r.stdout + r.stderr
    assert balance_of(rpc, usdc, address) == 2 * 10**18 and balance_of(rpc, usdc, cold.lower()) == 6 * 10**18


# --------------------------------------------------------------------------- checks and errors


def test_the_code_check_fails_on_another_contract(cli: Env) -> None:
    chain = str(cli.dep.chain_id)
    r = cli.run("status", "--chain", chain, "--address", cli.dep.weth)
    st = fields(r.stdout)
    assert r.returncode == 1 and st["has code"] == "yes" and st["code matches compiled"] == "no"
    r = cli.run("deploy", "--chain", chain, "--resume", cli.dep.weth)
    assert r.returncode == 1 and "not the compiled ArbExecutor" in r.stderr
    # the devnet's own executor (another deployer, another constructor) is ours: the immutable
    # WETH is the only difference the check allows
    st = fields(cli.run("status", "--chain", chain, "--address", cli.dep.executor).stdout)
    assert st["code matches compiled"] == "yes" and st["owner"] == cli.dep.deployer
    assert st["signer is executor"] == "no"
    code = admin.code_at(cli.rpc, cli.dep.executor)
    assert not admin.runtime_matches(code, "0x" + "77" * 20)
    flipped = bytearray(code)
    flipped[100] ^= 1
    assert not admin.runtime_matches(bytes(flipped), cli.dep.weth)


def test_resume_registers_what_is_missing_and_records(cli: Env) -> None:
    """A deployment interrupted after its transaction: here, made without one DEX."""
    from webapp.core.models import Chain

    dep, rpc = cli.dep, cli.rpc
    entries = [admin.FactoryEntry(d["name"], d["kind"], d["factory"], genuine(d["kind"])) for d in dep.dexes]
    wallet = admin.Wallet(cli.key)
    plan = admin.plan_tx(rpc, wallet.address, to=None, policy=FeePolicy(), what="deploy",
                         data=admin.deploy_data(wallet.address, dep.weth, [wallet.address], entries[1:]))
    receipt = admin.send_plan(rpc, wallet, plan, dep.chain_id)
    address = receipt["contractAddress"].lower()
    assert view_int(rpc, address, "v2InitCodeHash(address)", [entries[0].factory]) == 0

    r = cli.run("deploy", "--chain", str(dep.chain_id), "--resume", address)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"addFactory(v2, {entries[0].name}" in r.stdout
    assert view_int(rpc, address, "v2InitCodeHash(address)", [entries[0].factory]) == \
        int.from_bytes(entries[0].init_code_hash, "big")
    assert Chain.objects.get(chain_id=dep.chain_id).executor == address


def test_a_wrong_init_code_hash_is_named_and_nothing_is_sent(cli: Env) -> None:
    from webapp.core.models import Dex

    Dex.objects.filter(chain__chain_id=cli.dep.chain_id, name="sushiswap").update(init_code_hash="0x" + "ab" * 32)
    r = cli.run("deploy", "--chain", str(cli.dep.chain_id))
    assert r.returncode == 1 and "dex 'sushiswap'" in r.stderr and "does not give the address" in r.stderr
    assert cli.nonce() == 0


def test_missing_key_bad_owner_and_no_gas_money_are_refused(cli: Env) -> None:
    chain = str(cli.dep.chain_id)
    r = cli.run("deploy", "--chain", chain, ARBBOT_SIGNER_KEY=None)
    assert r.returncode == 1 and "no signing key configured" in r.stderr
    r = cli.run("deploy", "--chain", chain, "--owner", "0x1234")
    assert r.returncode == 2 and "--owner '0x1234' is not an address" in r.stderr
    r = cli.run("deploy", "--chain", chain, "--owner", "0x" + "00" * 20)
    assert r.returncode == 2 and "zero address" in r.stderr
    poor = "0x" + secrets.token_hex(32)
    r = cli.run("deploy", "--chain", chain, ARBBOT_SIGNER_KEY=poor)
    assert r.returncode == 1 and "not enough native balance for gas" in r.stderr and "nothing sent" in r.stderr
    assert cli.nonce(Account.from_key(poor).address.lower()) == 0
    r = cli.run("status", "--chain", chain)
    assert r.returncode == 1 and "has no executor recorded" in r.stderr


def test_an_unreachable_chain_is_named(cli: Env) -> None:
    from webapp.core.models import Chain

    Chain.objects.filter(chain_id=cli.dep.chain_id).update(rpc_urls="http://127.0.0.1:9")
    r = cli.run("deploy", "--chain", str(cli.dep.chain_id))
    assert r.returncode == 1 and f"chain {cli.dep.chain_id} is not reachable" in r.stderr



def test_a_deploy_not_mined_in_time_says_how_to_resume(cli: Env) -> None:
    from webapp.core.models import Chain

    rpc, chain = cli.rpc, str(cli.dep.chain_id)
    rpc.call("evm_setAutomine", [False])
    try:
        r = cli.run("deploy", "--chain", chain, "--wait", "1")
        assert r.returncode == 1 and "not mined within 1s" in r.stderr, r.stdout + r.stderr
        assert Chain.objects.get(chain_id=cli.dep.chain_id).executor == ""  # nothing recorded
        resume = r.stderr.split("finish with: python manage.py arbbot executor ")[1].split()
        predicted = resume[-1]
        assert f"the contract will be at {predicted} (nonce 0)" in r.stdout
        r = cli.run(*resume)  # not mined yet: nothing to check, nothing recorded
        assert r.returncode == 1 and "not mined yet" in r.stderr
        rpc.call("evm_mine")
    finally:
        rpc.call("evm_setAutomine", [True])
    r = cli.run(*resume)
    assert r.returncode == 0, r.stdout + r.stderr
    assert Chain.objects.get(chain_id=cli.dep.chain_id).executor == predicted
    assert fields(r.stdout)["executor"] == predicted and admin.check_code(rpc, predicted).matches
