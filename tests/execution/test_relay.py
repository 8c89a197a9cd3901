"""Private submission end to end: the relay client and the submitters against the project's
own relay process (a real subprocess, the real Flashbots wire format) building the blocks
of a real anvil. Each test has its own anvil and relay; the trading key and the relay's
reputation key are fresh and distinct."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Iterator

import pytest
import requests
from eth_abi import encode
from eth_account import Account
from eth_keys import keys
from eth_utils import keccak

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import LocalSigner, deploy_unlocked
from arbbot.devnet.anvil import Anvil, start_anvil
from arbbot.errors import ConfigError, WireFormatError
from arbbot.execution.relay import SIGNATURE_HEADER, Bundle, RelayClient, RelayError, bundle_hash, sign_body
from arbbot.execution.submit import (
    BundleStale,
    PrivateSubmitter,
    PublicSubmitter,
    Submission,
    SubmissionConfig,
    make_submitter,
)
from tests.devnet.relay_proc import RelayProc, start_relay

GWEI = 10**9
DEST = "0x" + "d5" * 20


def reverter_code() -> str:
    """Creation code of a contract whose every call reverts with ``Error("nope")``."""
    payload = bytes.fromhex("08c379a0") + encode(["string"], ["nope"])
    n = len(payload)
    # CODECOPY the payload (after this 12-byte prologue) to memory, REVERT with it
    runtime = bytes([0x60, n, 0x60, 0x0C, 0x5F, 0x39, 0x60, n, 0x5F, 0xFD, 0, 0]) + payload
    m = len(runtime)
    return "0x" + (bytes([0x60, m, 0x60, 0x0C, 0x5F, 0x39, 0x60, m, 0x5F, 0xF3, 0, 0]) + runtime).hex()


@dataclass
class World:
    anvil: Anvil
    rpc: RpcClient
    relay_proc: RelayProc
    relay: RelayClient
    trader: LocalSigner
    reverter: str

    def sign(self, to: str, *, value: int = 0, data: str = "0x", gas: int = 60_000, nonce: int | None = None) -> str:
        if nonce is None:  # a private tx is not in the node's pending count: mined ones only
            nonce = self.nonce()
        raw, _, _ = self.trader.sign(to=to, data=data, gas=gas, value=value, nonce=nonce,
                                     max_fee_per_gas=100 * GWEI, max_priority_fee_per_gas=2 * GWEI)
        return raw

    def balance(self, who: str) -> int:
        return int(self.rpc.call("eth_getBalance", [who, "latest"]), 16)

    def nonce(self) -> int:
        return int(self.rpc.call("eth_getTransactionCount", [self.trader.address, "latest"]), 16)

    def wait_block(self, number: int, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.rpc.block_number() < number:
            assert time.monotonic() < deadline, f"block {number} not reached"
            time.sleep(0.05)

    def miss(self, *blocks: int) -> None:
        self.relay.request("devrelay_missBlocks", [[hex(b) for b in blocks]])

    def pause(self, paused: bool) -> None:
        """While paused the relay builds nothing: what is sent meanwhile aims at head + 1."""
        self.relay.request("devrelay_pause", [paused])


@pytest.fixture
def world() -> Iterator[World]:
    anvil = start_anvil()  # automine while setting up; the relay then takes over mining
    proc: RelayProc | None = None
    try:
        rpc = RpcClient(anvil.url, timeout_s=10)
        trader_key = "0x" + bytes(Account.create().key).hex()
        rpc.call("anvil_setBalance", [Account.from_key(trader_key).address, hex(10**20)])
        reverter = deploy_unlocked(rpc, rpc.call("eth_accounts")[0], reverter_code())
        proc = start_relay(anvil.url, block_time_s=0.3)
        relay = RelayClient(proc.url, "0x" + bytes(Account.create().key).hex())
        yield World(anvil, rpc, proc, relay, LocalSigner(rpc, trader_key), reverter)
    finally:
        if proc is not None:
            proc.stop()
        anvil.stop()


def test_a_submission_of_bytes_the_caller_signed_holds_what_the_signature_says(world: World) -> None:
    """The runner tells each submitter the account it signed as (``sender``): the
    submission then skips the signature's recovery, and must hold the hash, sender and nonce
    a submission read back from the bytes holds."""
    world.pause(True)
    target = world.rpc.block_number() + 1
    private = PrivateSubmitter(world.rpc, [world.relay]).submit(world.sign(DEST, value=1, gas=21_000), target,
                                                                  sender=world.trader.address)
    public = PublicSubmitter(world.rpc).submit(world.sign(DEST, value=2, gas=21_000, nonce=world.nonce() + 1),
                                               target, sender=world.trader.address)
    world.pause(False)
    for sub in (private, public):
        back = Submission.from_wire(sub.to_wire())  # recovered from the signature
        assert (sub.tx_hash, sub.sender, sub.nonce) == (back.tx_hash, back.sender, back.nonce)
    assert (private.nonce + 1, private.sender) == (public.nonce, world.trader.address.lower())


def test_a_bundle_lands_in_its_target_block(world: World) -> None:
    raw = world.sign(DEST, value=12_345, gas=21_000)
    world.pause(True)
    target = world.rpc.block_number() + 1
    submitter = PrivateSubmitter(world.rpc, [world.relay])
    sub = submitter.submit(raw, target)
    world.pause(False)
    assert sub.route == "private" and sub.target_block == target
    assert sub.bundle_hash == bundle_hash([raw])
    assert world.rpc.call("txpool_content")["pending"] == {}  # never in the public pool
    receipt = submitter.wait_receipt(sub, timeout_s=20)
    assert int(receipt["blockNumber"], 16) == target
    assert int(receipt["status"], 16) == 1
    assert world.balance(DEST) == 12_345
    assert world.relay_proc.wait_for(f"included in block {target}")
    assert Submission.from_wire(json.loads(json.dumps(sub.to_wire()))) == sub


def test_a_submission_read_back_trusts_only_the_signed_bytes() -> None:
    key = "0x" + bytes(Account.create().key).hex()
    signed = Account.sign_transaction({"type": 2, "chainId": 31337, "nonce": 9, "to": "0x" + "11" * 20, "value": 1, "gas": 21_000,
                                       "maxFeePerGas": GWEI, "maxPriorityFeePerGas": GWEI}, key)
    raw = "0x" + bytes(signed.raw_transaction).hex()
    wire = {"raw_tx": raw, "route": "private", "first_target": 5, "target_block": 6, "last_target": 7,
            "bundle_hash": bundle_hash([raw]), "tx_hash": "0x" + "00" * 32, "nonce": 0}
    sub = Submission.from_wire(wire)
    assert (sub.tx_hash, sub.nonce, sub.sender) == ("0x" + bytes(signed.hash).hex(), 9, Account.from_key(key).address.lower())
    for bad in ({**wire, "route": "carrier-pigeon"}, {**wire, "raw_tx": raw[:-2]}, {**wire, "first_target": -1},
                {k: v for k, v in wire.items() if k != "last_target"}):
        with pytest.raises(WireFormatError):
            Submission.from_wire(bad)


def test_a_reverting_bundle_is_not_included_and_costs_nothing(world: World) -> None:
    balance, nonce = world.balance(world.trader.address), world.nonce()
    raw = world.sign(world.reverter, data="0x01")
    submitter = PrivateSubmitter(world.rpc, [world.relay], max_blocks=2)
    sub = submitter.submit(raw, world.rpc.block_number() + 2)
    with pytest.raises(BundleStale, match=f"not included in blocks {sub.first_target}..{sub.last_target}"):
        submitter.wait_receipt(sub, timeout_s=20)
    assert world.rpc.block_number() >= sub.last_target
    assert world.balance(world.trader.address) == balance
    assert world.nonce() == nonce
    assert world.rpc.call("eth_getTransactionReceipt", [sub.tx_hash]) is None
    assert world.relay_proc.wait_for(f"tx {sub.tx_hash} would revert (nope)")


def test_a_reverting_tx_listed_as_allowed_is_included_and_pays_gas(world: World) -> None:
    balance = world.balance(world.trader.address)
    raw = world.sign(world.reverter, data="0x01")
    tx_hash = "0x" + keccak(bytes.fromhex(raw[2:])).hex()
    target = world.rpc.block_number() + 2
    world.relay.send_bundle(Bundle((raw,), target, reverting_tx_hashes=(tx_hash,)))
    world.wait_block(target)
    receipt = world.rpc.call("eth_getTransactionReceipt", [tx_hash])
    assert int(receipt["blockNumber"], 16) == target and int(receipt["status"], 16) == 0
    assert world.balance(world.trader.address) < balance


def _post(url: str, body: bytes, header: str | None) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers[SIGNATURE_HEADER] = header
    return requests.post(url, data=body, headers=headers, timeout=10)


def test_a_missing_or_bad_signature_is_refused(world: World) -> None:
    raw = world.sign(DEST, value=1, gas=21_000)
    target = world.rpc.block_number() + 2
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "eth_sendBundle",
                       "params": [{"txs": [raw], "blockNumber": hex(target)}]}).encode()
    key = "0x" + bytes(Account.create().key).hex()
    other = Account.create().address
    good = sign_body(body, key)
    cases = {
        "missing flashbots signature header": None,
        "invalid flashbots signature": sign_body(body + b" ", key),  # signed another body
    }
    for expected, header in cases.items():
        r = _post(world.relay_proc.url, body, header)
        assert r.status_code == 403
        assert r.json() == {"jsonrpc": "2.0", "id": 7, "error": {"code": -32025, "message": expected}}
    for header in (f"{other}:{good.split(':')[1]}", good.split(":")[0] + ":0x1234", good.replace(":", "")):
        r = _post(world.relay_proc.url, body, header)
        assert (r.status_code, r.json()["error"]["code"]) == (403, -32025), header
    world.wait_block(target + 1)
    assert world.nonce() == 0  # none of those bundles was taken
    assert _post(world.relay_proc.url, body, good).json()["result"]["bundleHash"] == bundle_hash([raw])


def test_the_signature_is_eip191_of_the_hex_digest_text() -> None:
    body = b'{"jsonrpc":"2.0","id":1,"method":"eth_sendBundle","params":[]}'
    account = Account.create()
    address, signature = sign_body(body, "0x" + bytes(account.key).hex()).split(":")
    assert address == account.address
    text = ("0x" + keccak(body).hex()).encode()
    assert len(text) == 66
    digest = keccak(b"\x19Ethereum Signed Message:\n66" + text)
    sig = bytes.fromhex(signature[2:])
    recovered = keys.Signature(sig[:64] + bytes([sig[64] - 27])).recover_public_key_from_msg_hash(digest)
    assert recovered.to_checksum_address() == account.address


def test_a_missed_target_is_resubmitted_for_the_next_block_and_lands(world: World) -> None:
    submitter = PrivateSubmitter(world.rpc, [world.relay], max_blocks=4)
    # 1. the target block is already mined when the bundle is sent
    head = world.rpc.block_number()
    sub = submitter.submit(world.sign(DEST, value=1, gas=21_000), head)
    receipt = submitter.wait_receipt(sub, timeout_s=20)
    assert head < int(receipt["blockNumber"], 16) <= sub.last_target
    # 2. the relay loses its target block
    world.pause(True)
    target = world.rpc.block_number() + 1
    world.miss(target)
    sub = submitter.submit(world.sign(DEST, value=2, gas=21_000), target)
    world.pause(False)
    receipt = submitter.wait_receipt(sub, timeout_s=20)
    assert target < int(receipt["blockNumber"], 16) <= sub.last_target
    assert world.relay_proc.wait_for(f"block {target}: told to miss it")
    assert world.balance(DEST) == 3


def test_after_max_blocks_a_bundle_is_stale_and_nothing_is_sent(world: World) -> None:
    balance = world.balance(world.trader.address)
    target = world.rpc.block_number() + 2
    world.miss(target, target + 1, target + 2)
    submitter = PrivateSubmitter(world.rpc, [world.relay], max_blocks=3)
    assert submitter.public_fallback is False  # off unless asked for
    sub = submitter.submit(world.sign(DEST, value=1, gas=21_000), target)
    with pytest.raises(BundleStale, match=f"blocks {target}..{target + 2}"):
        submitter.wait_receipt(sub, timeout_s=20)
    out = submitter.poll(sub)
    assert out.state == "stale" and out.reason == f"not included in blocks {target}..{target + 2}"
    assert world.rpc.block_number() >= target + 2
    world.wait_block(target + 4)
    assert world.nonce() == 0 and world.balance(world.trader.address) == balance
    assert world.rpc.call("eth_getTransactionReceipt", [sub.tx_hash]) is None
    assert world.rpc.call("txpool_content")["pending"] == {}


def test_private_with_public_fallback_sends_publicly_once_stale(world: World) -> None:
    target = world.rpc.block_number() + 2
    world.miss(target, target + 1)
    config = SubmissionConfig(route="private", relay_urls=(world.relay_proc.url,), public_fallback=True, max_blocks=2)
    submitter = make_submitter(config, world.rpc, trading_address=world.trader.address,
                               reputation_key="0x" + bytes(Account.create().key).hex())
    sub = submitter.submit(world.sign(DEST, value=5, gas=21_000), target)
    receipt = submitter.wait_receipt(sub, timeout_s=20)
    assert int(receipt["blockNumber"], 16) > target + 1
    assert world.balance(DEST) == 5


def test_call_bundle_returns_the_simulated_results(world: World) -> None:
    nonce = world.nonce()
    txs = [world.sign(DEST, value=7, gas=21_000, nonce=nonce), world.sign(world.reverter, data="0x01", nonce=nonce + 1)]
    head = world.rpc.block_number()
    result = world.relay.call_bundle(txs, head + 1)
    assert result.bundle_hash == bundle_hash(txs)
    assert result.state_block_number >= head
    ok, bad = result.results
    assert (ok.gas_used, ok.error, ok.tx_hash) == (21_000, None, "0x" + keccak(bytes.fromhex(txs[0][2:])).hex())
    assert ok.gas_fees_wei == 21_000 * 2 * GWEI == ok.coinbase_diff_wei
    assert ok.from_address == world.trader.address and ok.to_address == DEST
    assert bad.error == "execution reverted" and bad.revert == "nope" and bad.gas_used > 21_000
    assert result.reverted == [bad]
    assert result.total_gas_used == ok.gas_used + bad.gas_used
    world.wait_block(world.rpc.block_number() + 1)
    assert world.nonce() == nonce and world.balance(DEST) == 0  # a simulation changes nothing
    with pytest.raises(RelayError, match="nonce too high") as err:
        world.relay.call_bundle([world.sign(DEST, value=1, gas=21_000, nonce=nonce + 5)], head + 1)
    assert err.value.code == -32000


@pytest.fixture
def quiet_anvil() -> Iterator[Anvil]:
    """An anvil that mines only when told (``evm_mine``)."""
    anvil = start_anvil(extra_args=["--no-mining"])
    yield anvil
    anvil.stop()


def test_the_public_submitter_uses_eth_send_raw_transaction(quiet_anvil: Anvil) -> None:
    anvil = quiet_anvil
    rpc = anvil.rpc()
    key = "0x" + bytes(Account.create().key).hex()
    rpc.call("anvil_setBalance", [Account.from_key(key).address, hex(10**20)])
    raw, tx_hash, _ = LocalSigner(rpc, key).sign(to=DEST, data="0x", gas=21_000, value=3,
                                                   max_fee_per_gas=100 * GWEI, max_priority_fee_per_gas=GWEI)
    submitter = PublicSubmitter(rpc)
    sub = submitter.submit(raw, rpc.block_number() + 1)
    assert (sub.route, sub.tx_hash) == ("public", tx_hash)
    pending = rpc.call("txpool_content")["pending"]
    assert [tx["hash"] for by_nonce in pending.values() for tx in by_nonce.values()] == [tx_hash]
    assert submitter.poll(sub).state == "pending"
    rpc.call("evm_mine")
    assert int(submitter.wait_receipt(sub, timeout_s=5)["status"], 16) == 1


def test_configuration_is_public_by_default_and_refuses_the_trading_key_as_reputation_key() -> None:
    rpc = RpcClient("http://127.0.0.1:9")
    assert SubmissionConfig().route == "public" and SubmissionConfig().public_fallback is False
    assert isinstance(make_submitter(SubmissionConfig(), rpc, trading_address=DEST), PublicSubmitter)
    key = "0x" + "42" * 32
    private = SubmissionConfig(route="private", relay_urls=("http://127.0.0.1:9",))
    with pytest.raises(ConfigError, match="must not be the trading key"):
        make_submitter(private, rpc, trading_address=Account.from_key(key).address.lower(), reputation_key=key)
    with pytest.raises(ConfigError, match="needs a relay reputation key"):
        make_submitter(private, rpc, trading_address=DEST)
    with pytest.raises(ConfigError, match="needs at least one relay URL"):
        SubmissionConfig(route="private")
    with pytest.raises(ConfigError, match="only to the 'private' route"):
        SubmissionConfig(public_fallback=True)
    with pytest.raises(ConfigError, match="route must be one of"):
        SubmissionConfig(route="flashbots")
    assert "secret" not in repr(SubmissionConfig(route="private", relay_urls=("https://relay/?key=secret",)))
    assert key[2:] not in repr(RelayClient("https://relay.example/?key=secret", key))
    assert "secret" not in repr(RelayClient("https://relay.example/?key=secret", key))


def test_a_relay_that_cannot_be_reached_is_an_error_nothing_sent(world: World) -> None:
    dead = RelayClient("http://127.0.0.1:9", "0x" + bytes(Account.create().key).hex())
    with pytest.raises(RelayError, match="no relay accepted the bundle"):
        PrivateSubmitter(world.rpc, [dead]).submit(world.sign(DEST, value=1, gas=21_000), world.rpc.block_number() + 1)
    # one live relay among dead ones is enough
    sub = PrivateSubmitter(world.rpc, [dead, world.relay]).submit(world.sign(DEST, value=1, gas=21_000),
                                                                  world.rpc.block_number() + 2)
    assert sub.bundle_hash is not None


class OneShotServer:
    """A TCP server on 127.0.0.1 that takes one request and then: ``hang_up`` (reads it,
    closes without a word), ``stall`` (reads it, never answers) or ``html`` (a 502 page)."""

    def __init__(self, how: str) -> None:
        import socket
        import threading

        self.how = how
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.got = b""
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(5)
            while b"\r\n\r\n" not in self.got:
                self.got += conn.recv(65536)
            head, _, body = self.got.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:")))
            while len(body) < length:
                body += conn.recv(65536)
            self.got = head + b"\r\n\r\n" + body
            if self.how == "html":
                body = b"<html>bad gateway</html>"
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
            elif self.how == "stall":
                self.done.wait(5)
        self.done.set()

    def close(self) -> None:
        self.done.set()
        self.sock.close()


@pytest.mark.parametrize("how", ["hang_up", "stall"])
def test_a_request_the_relay_may_have_read_may_have_been_accepted(how: str) -> None:
    """A bundle whose request reached the relay (it read it, then hung up or never answered)
    may still land: ``maybe_accepted``, so its sends are followed, not forgotten."""
    server = OneShotServer(how)
    try:
        relay = RelayClient(server.url, "0x" + bytes(Account.create().key).hex(), timeout_s=0.5)
        with pytest.raises(RelayError) as caught:
            relay.request("eth_sendBundle", [{"txs": []}])
        assert caught.value.maybe_accepted is True
        assert b"eth_sendBundle" in server.got and SIGNATURE_HEADER.lower().encode() in server.got.lower()
    finally:
        server.close()


def test_a_relay_nobody_listens_on_took_nothing_and_a_page_is_not_an_answer() -> None:
    import socket

    with socket.socket() as s:  # a port with no listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    relay = RelayClient(f"http://user:s3cret@127.0.0.1:{port}/", "0x" + bytes(Account.create().key).hex())
    with pytest.raises(RelayError) as caught:
        relay.request("eth_sendBundle", [{"txs": []}])
    assert caught.value.maybe_accepted is False and "s3cret" not in str(caught.value)
    server = OneShotServer("html")
    try:
        with pytest.raises(RelayError, match="HTTP 502, not JSON") as caught:
            RelayClient(server.url, "0x" + bytes(Account.create().key).hex()).request("eth_callBundle", [{}])
        assert caught.value.http_status == 502
    finally:
        server.close()


def tripwire_code() -> str:
    """Creation code of a contract: a call without data sets a flag; a call with data
    reverts once the flag is set (and succeeds before)."""
    runtime = bytes.fromhex(
        "36600b57" "60015f5500" "0000"  # CALLDATASIZE ? jump : SSTORE(0, 1) STOP
        "5b5f5460135700" "00"  # JUMPDEST SLOAD(0) ? jump : STOP
        "5b5f5ffd"  # JUMPDEST REVERT(0, 0)
    )
    m = len(runtime)
    return "0x" + (bytes([0x60, m, 0x60, 0x0C, 0x5F, 0x39, 0x60, m, 0x5F, 0xF3, 0, 0]) + runtime).hex()


def test_a_bundle_runs_on_the_state_it_was_simulated_on_not_behind_a_public_tx() -> None:
    """A public tx paying a higher tip waits in the pool for the same block and would make
    the bundle revert if it ran first. The bundle's block carries only bundles: the bundle
    lands as simulated and the public tx in the next block."""
    anvil = start_anvil()
    proc = None
    try:
        rpc = RpcClient(anvil.url, timeout_s=10)
        key = "0x" + bytes(Account.create().key).hex()
        trader = LocalSigner(rpc, key)
        rpc.call("anvil_setBalance", [trader.address, hex(10**20)])
        public_sender = rpc.call("eth_accounts")[0]
        tripwire = deploy_unlocked(rpc, public_sender, tripwire_code())
        proc = start_relay(anvil.url, block_time_s=0.3)
        relay = RelayClient(proc.url, "0x" + bytes(Account.create().key).hex())
        balance = int(rpc.call("eth_getBalance", [trader.address, "latest"]), 16)
        raw, _, _ = trader.sign(to=tripwire, data="0x01", gas=60_000, nonce=0,
                                max_fee_per_gas=100 * GWEI, max_priority_fee_per_gas=2 * GWEI)
        assert relay.call_bundle([raw], rpc.block_number() + 1).reverted == []  # fine on the head state
        relay.request("devrelay_pause", [True])  # both must wait for the same block
        target = rpc.block_number() + 1
        submitter = PrivateSubmitter(rpc, [relay], max_blocks=1)
        sub = submitter.submit(raw, target)
        public = rpc.call("eth_sendTransaction", [{
            "from": public_sender, "to": tripwire, "data": "0x", "gas": hex(60_000),
            "maxFeePerGas": hex(200 * GWEI), "maxPriorityFeePerGas": hex(50 * GWEI),
        }])
        time.sleep(0.5)
        assert rpc.block_number() == target - 1  # paused
        relay.request("devrelay_pause", [False])
        receipt = submitter.wait_receipt(sub, timeout_s=20)
        assert (int(receipt["blockNumber"], 16), int(receipt["status"], 16)) == (target, 1)
        deadline = time.monotonic() + 10
        while (mined := rpc.call("eth_getTransactionReceipt", [public])) is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert int(mined["blockNumber"], 16) == target + 1
        assert int(rpc.call("eth_getBalance", [trader.address, "latest"]), 16) < balance  # it paid its gas
    finally:
        if proc is not None:
            proc.stop()
        anvil.stop()
