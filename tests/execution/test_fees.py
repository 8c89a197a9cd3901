"""Fees (``arbbot.execution.fees``): the EIP-1559 base-fee rule against anvil's own blocks,
the offer a transaction makes (and that anvil mines it), the priority-fee percentile, the
hard cap, and legacy-fee chains (anvil on a pre-London hardfork)."""

from __future__ import annotations

import secrets
from typing import Iterator

import pytest
from eth_account import Account

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import LocalSigner, check_receipt, wait_receipt
from arbbot.devnet.anvil import start_anvil
from arbbot.execution import fees
from arbbot.execution.fees import FeeCapExceeded, FeePolicy, base_fee_after_full_blocks, next_base_fee

GWEI = 10**9


def test_next_base_fee_follows_eip1559() -> None:
    assert next_base_fee(GWEI, 15_000_000, 30_000_000) == GWEI  # at target: unchanged
    assert next_base_fee(GWEI, 30_000_000, 30_000_000) == GWEI * 9 // 8  # full: +12.5%
    assert next_base_fee(GWEI, 0, 30_000_000) == GWEI * 7 // 8  # empty: -12.5%
    assert next_base_fee(7, 30_000_000, 30_000_000) == 8  # the rise is at least 1 wei
    assert next_base_fee(7, 0, 30_000_000) == 7  # 7/8 floors to 0: no fall
    # 20M of a 15M target: base * 5M / 15M / 8, floored
    assert next_base_fee(10**10, 20_000_000, 30_000_000) == 10**10 + 10**10 * 5 // 15 // 8
    assert base_fee_after_full_blocks(GWEI, 3) == next_base_fee(next_base_fee(GWEI * 9 // 8, 2, 2), 2, 2)
    assert base_fee_after_full_blocks(GWEI, 0) == GWEI


@pytest.fixture
def small_blocks() -> Iterator[RpcClient]:
    """Blocks of 50,000 gas (target 25,000): one transfer (21,000) or two move the base fee."""
    with start_anvil(gas_limit=50_000) as anvil:
        yield anvil.rpc()


def _account(rpc: RpcClient) -> LocalSigner:
    key = "0x" + secrets.token_hex(32)
    rpc.call("anvil_setBalance", [Account.from_key(key).address, hex(10**20)])
    return LocalSigner(rpc, key)


def test_the_forecast_is_the_base_fee_anvil_gives_the_next_block(small_blocks: RpcClient) -> None:
    rpc = small_blocks
    a, b = _account(rpc), _account(rpc)
    rpc.call("evm_setAutomine", [False])
    loads = [0, 1, 2, 2, 0, 1, 2, 0]  # transfers per block: below, above and far above target
    for n in loads:
        for signer in (a, b)[:n]:
            signer.send(to=signer.address, data="0x", gas=21_000, max_fee_per_gas=10 * GWEI,
                        max_priority_fee_per_gas=0)
        rpc.call("evm_mine")
        latest = rpc.call("eth_getBlockByNumber", ["latest", False])
        assert int(latest["gasUsed"], 16) == 21_000 * n
        forecast = next_base_fee(int(latest["baseFeePerGas"], 16), int(latest["gasUsed"], 16),
                                 int(latest["gasLimit"], 16))
        rpc.call("evm_mine")
        after = rpc.call("eth_getBlockByNumber", ["latest", False])
        assert int(after["baseFeePerGas"], 16) == forecast
        assert fees.quote(rpc, FeePolicy()).base_fee_next == next_base_fee(forecast, 0, 50_000)
    rpc.call("evm_setAutomine", [True])


def test_the_offer_covers_k_full_blocks_and_takes_the_priority_percentile(small_blocks: RpcClient) -> None:
    rpc = small_blocks
    signer = _account(rpc)
    tip = 2 * GWEI
    for _ in range(3):  # three blocks that paid a 2 gwei tip
        sent = signer.send(to=signer.address, data="0x", gas=21_000, max_fee_per_gas=10 * GWEI,
                           max_priority_fee_per_gas=tip)
        wait_receipt(rpc, sent)  # automine may answer the send before its block is there
    latest = rpc.call("eth_getBlockByNumber", ["latest", False])
    base_next = next_base_fee(int(latest["baseFeePerGas"], 16), 21_000, 50_000)
    quote = fees.quote(rpc, FeePolicy(inclusion_blocks=2))
    assert quote.kind == "eip1559" and quote.base_fee_next == base_next
    assert quote.max_priority_fee_per_gas == tip
    assert quote.max_fee_per_gas == next_base_fee(next_base_fee(base_next, 2, 2), 2, 2) + tip
    assert quote.worst_case_cost(100_000) == 100_000 * quote.max_fee_per_gas
    assert fees.quote(rpc, FeePolicy(inclusion_blocks=2, min_priority_fee_wei=5 * GWEI)).max_priority_fee_per_gas \
        == 5 * GWEI
    # the offer is a transaction anvil mines
    tx_hash = signer.send(to=signer.address, data="0x", gas=21_000, **quote.signer_fields())
    receipt = check_receipt(wait_receipt(rpc, tx_hash, timeout_s=10))
    assert int(receipt["effectiveGasPrice"], 16) == base_next + tip


def test_median_reward_ignores_empty_blocks() -> None:
    block = {"baseFeePerGas": hex(GWEI), "gasUsed": hex(15_000_000), "gasLimit": hex(30_000_000)}
    history = {
        "baseFeePerGas": [hex(GWEI)] * 5,
        "gasUsedRatio": [0.0, 0.5, 0.9, 0.0, 0.2],
        "reward": [["0x0"], [hex(3 * GWEI)], [hex(1 * GWEI)], ["0x0"], [hex(7 * GWEI)]],
    }
    quote = fees.quote_from_replies([block, history, hex(GWEI)], FeePolicy(inclusion_blocks=0))
    assert quote.max_priority_fee_per_gas == 3 * GWEI
    assert quote.max_fee_per_gas == GWEI + 3 * GWEI
    # a node forecasting a higher base fee (other chain constants) is believed
    history["baseFeePerGas"][-1] = hex(2 * GWEI)
    assert fees.quote_from_replies([block, history, hex(GWEI)], FeePolicy(inclusion_blocks=0)).base_fee_next \
        == 2 * GWEI


def test_a_fee_above_the_cap_is_refused_with_both_numbers(small_blocks: RpcClient) -> None:
    rpc = small_blocks
    needed = fees.quote(rpc, FeePolicy()).max_fee_per_gas
    assert fees.quote(rpc, FeePolicy(max_fee_per_gas_wei=needed)).max_fee_per_gas == needed
    with pytest.raises(FeeCapExceeded) as caught:
        fees.quote(rpc, FeePolicy(max_fee_per_gas_wei=needed - 1))
    assert f"max fee {needed} wei" in str(caught.value) and f"cap of {needed - 1} wei" in str(caught.value)


def test_a_legacy_fee_chain_gets_a_gas_price_transaction() -> None:
    with start_anvil(extra_args=["--hardfork", "berlin"]) as anvil:
        rpc = anvil.rpc()
        assert rpc.call("eth_getBlockByNumber", ["latest", False]).get("baseFeePerGas") is None
        gas_price = int(rpc.call("eth_gasPrice"), 16)
        quote = fees.quote(rpc, FeePolicy())
        assert (quote.kind, quote.max_fee_per_gas, quote.base_fee_next) == ("legacy", gas_price, None)
        assert quote.signer_fields() == {"gas_price": gas_price}
        signer = _account(rpc)
        tx_hash = signer.send(to=signer.address, data="0x", gas=21_000, **quote.signer_fields())
        receipt = check_receipt(wait_receipt(rpc, tx_hash, timeout_s=10))
        assert int(receipt["type"], 16) == 0 and int(receipt["effectiveGasPrice"], 16) == gas_price
        with pytest.raises(FeeCapExceeded):
            fees.quote(rpc, FeePolicy(max_fee_per_gas_wei=gas_price - 1))
