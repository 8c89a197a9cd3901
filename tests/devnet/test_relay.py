"""The relay process's command line and the JSON-RPC errors it answers. The bundle
semantics are tested end to end in tests/execution/test_relay.py."""

from __future__ import annotations

import json
import socket
import time
from typing import Iterator

import pytest
import requests
from eth_account import Account

from arbbot.chain.rawtx import decode_raw_tx
from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import LocalSigner, deploy_unlocked
from arbbot.devnet.anvil import Anvil, free_port, start_anvil
from arbbot.devnet.builder import Builder, QueuedBundle
from arbbot.execution.relay import SIGNATURE_HEADER, RelayClient, RelayError, sign_body
from tests.devnet.relay_proc import run_cli, start_relay
from tests.execution.test_relay import GWEI, tripwire_code


def test_help_names_every_option() -> None:
    out = run_cli("--help")
    assert out.returncode == 0
    for option in ("--anvil", "--port", "--block-time", "--host", "eth_sendBundle", "eth_callBundle"):
        assert option in out.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "the following arguments are required: --anvil, --port"),
        (("--anvil", "127.0.0.1:8545", "--port", "1"), "must be an http(s) JSON-RPC URL, got '127.0.0.1:8545'"),
        (("--anvil", "http://127.0.0.1:1", "--port", "abc"), "argument --port: not a port number: 'abc'"),
        (("--anvil", "http://127.0.0.1:1", "--port", "70000"), "must be 0..65535"),
        (("--anvil", "http://127.0.0.1:1", "--port", "0", "--block-time", "0"), "--block-time: must be > 0, got '0'"),
        (("--anvil", "http://127.0.0.1:1", "--port", "0", "--block-time", "x"), "--block-time: not a number: 'x'"),
    ],
)
def test_a_bad_argument_is_named(args: tuple[str, ...], message: str) -> None:
    out = run_cli(*args)
    assert out.returncode == 2
    assert message in out.stderr


def test_an_anvil_that_does_not_answer_is_a_clear_error() -> None:
    port = free_port()
    out = run_cli("--anvil", f"http://127.0.0.1:{port}", "--port", "0")
    assert out.returncode == 1
    assert f"error: anvil at 127.0.0.1:{port} does not answer" in out.stderr


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    a = start_anvil()
    yield a
    a.stop()


def test_a_port_in_use_is_a_clear_error(anvil: Anvil) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = run_cli("--anvil", anvil.url, "--port", str(port))
    assert out.returncode == 1
    assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use" in out.stderr


def test_the_relay_mines_while_it_runs_and_restores_automine(anvil: Anvil) -> None:
    rpc = anvil.rpc()
    relay = start_relay(anvil.url, block_time_s=0.2)
    try:
        assert rpc.call("anvil_getAutomine") is False
        start = rpc.block_number()
        assert relay.wait_for("relay listening")
        time.sleep(1.0)
        assert rpc.block_number() >= start + 2
    finally:
        assert relay.stop() == 0
    assert "relay stopped" in relay.log()
    assert rpc.call("anvil_getAutomine") is True


def test_json_rpc_errors(anvil: Anvil) -> None:
    relay = start_relay(anvil.url)
    key = "0x" + bytes(Account.create().key).hex()
    try:
        client = RelayClient(relay.url, key)
        with pytest.raises(RelayError, match=r"eth_sendRawTransaction does not exist.*code -32601"):
            client.request("eth_sendRawTransaction", ["0x00"])
        with pytest.raises(RelayError, match=r"params must be a list of one object.*code -32602"):
            client.request("eth_sendBundle", [])
        with pytest.raises(RelayError, match=r"txs\[0\]: raw transaction is not valid hex"):
            client.request("eth_sendBundle", [{"txs": ["0xzz"], "blockNumber": "0x5"}])
        with pytest.raises(RelayError, match="blockNumber must be a hex block number, got 5"):
            client.request("eth_sendBundle", [{"txs": ["0x00"], "blockNumber": 5}])
        body = b"[1, 2]"
        r = requests.post(relay.url, data=body, headers={SIGNATURE_HEADER: sign_body(body, key)}, timeout=5)
        assert r.status_code == 400 and "single JSON-RPC request" in r.json()["error"]["message"]
        r = requests.post(relay.url, data=b"{not json", timeout=5)
        assert r.status_code == 400 and r.json()["error"]["code"] == -32700
        r = requests.get(relay.url, timeout=5)
        assert r.status_code == 405 and json.loads(r.text)["error"]["message"] == "POST a signed JSON-RPC request"
    finally:
        relay.stop()
    assert "Traceback" not in relay.log()


class LateArrival(Builder):
    """A builder during whose build a public transaction arrives: right after it has taken
    the pool's transactions out, before it mines."""

    late_raw: str | None = None

    def _hold_public(self) -> list[str]:
        held = super()._hold_public()
        if self.late_raw:
            self.rpc.call("eth_sendRawTransaction", [self.late_raw])
            self.late_raw = None
        return held


def test_a_rollback_keeps_the_public_txs_that_arrived_during_the_build(anvil: Anvil) -> None:
    rpc = anvil.rpc()
    tripwire = deploy_unlocked(rpc, rpc.call("eth_accounts")[0], tripwire_code())
    trader, public = LocalSigner(rpc, _funded(rpc)), LocalSigner(rpc, _funded(rpc))
    builder = LateArrival(rpc, block_time_s=1.0)
    builder.take_over_mining()
    bundle_raw, bundle_tx, _ = trader.sign(to=tripwire, data="0x01", gas=60_000, nonce=0,
                                           max_fee_per_gas=100 * GWEI, max_priority_fee_per_gas=GWEI)
    builder.late_raw, late_tx, _ = public.sign(to=tripwire, data="0x", gas=60_000, nonce=0,
                                               max_fee_per_gas=200 * GWEI, max_priority_fee_per_gas=50 * GWEI)
    n = rpc.block_number() + 1
    tx = decode_raw_tx(bundle_raw)
    builder.add(QueuedBundle([tx], n, frozenset(), tx.tx_hash, "0x" + "00" * 20))
    builder.build_next()
    assert rpc.block_number() == n
    assert rpc.call("eth_getTransactionReceipt", [bundle_tx]) is None  # left out: it would revert after late_tx
    assert int(rpc.call("eth_getTransactionCount", [trader.address, "latest"]), 16) == 0
    assert rpc.call("eth_getBalance", [trader.address, "latest"]) == hex(10**20)
    builder.build_next()  # the late tx was kept for the next block, not lost in the rollback
    assert int(rpc.call("eth_getTransactionReceipt", [late_tx])["blockNumber"], 16) == n + 1


def _funded(rpc: RpcClient) -> str:
    key = "0x" + bytes(Account.create().key).hex()
    rpc.call("anvil_setBalance", [Account.from_key(key).address, hex(10**20)])
    return key
