"""ArbExecutor's roles on anvil: the cold owner alone configures and withdraws (also while
paused), hot executors only run cycles and can be revoked, a pause stops every run, ownership
moves in two steps, native token arrives only from WETH; the optional share of a WETH profit
paid to ``block.coinbase`` (for bundles) is exact, guarded by minProfit, and skipped for
other tokens."""

from __future__ import annotations

from typing import Any, Sequence

import pytest
from eth_abi import encode
from eth_utils import keccak

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import LocalSigner, encode_call, send_unlocked, wait_receipt
from arbbot.devnet import v3
from arbbot.devnet.deploy import v2_pair_init_code_hash
from arbbot.devnet.record import Deployment
from arbbot.devnet.scenarios import balance_of, fund_token, plant_v3_price_gap, v2_state
from arbbot.errors import RpcError
from arbbot.execution.executor import (
    EXECUTE_SELECTOR,
    EXECUTE_TYPES,
    EncodingError,
    encode_add_factory,
    encode_cycle,
    encode_pause,
    encode_remove_factory,
    encode_set_executor,
    encode_unpause,
    encode_withdraw,
    gas_estimate,
    hops_for_cycle,
)
from tests.execution.executor_helpers import cycle_quoter, planted_cycle, revert_reason, send, size, size_cycle


def view(rpc: RpcClient, to: str, signature: str, args: Sequence[Any] = ()) -> int:
    return int(rpc.eth_call(to, encode_call(signature, list(args))), 16)


def planted_flash(rpc: RpcClient, dep: Deployment) -> tuple[list[dict[str, Any]], list[str], int, int]:
    """The planted two-DEX WETH cycle, sized: (pools, tokens, amount_in, predicted profit)."""
    pools, tokens = planted_cycle(rpc, dep)
    states = [v2_state(rpc, p) for p in pools]
    amount_in, amounts = size_cycle(states, tokens, states[0].reserve0 // 5)
    return pools, tokens, amount_in, amounts[-1] - amount_in


def test_devnet_registers_its_genuine_factories_and_the_signer(chain: Any) -> None:
    rpc, dep, signer = chain
    for d in dep.dexes:
        signature = "v2InitCodeHash(address)" if d["kind"] == "v2" else "v3InitCodeHash(address)"
        expected = v2_pair_init_code_hash() if d["kind"] == "v2" else v3.POOL_INIT_CODE_HASH
        assert view(rpc, dep.executor, signature, [d["factory"]]) == int.from_bytes(expected, "big")
        other = "v3InitCodeHash(address)" if d["kind"] == "v2" else "v2InitCodeHash(address)"
        assert view(rpc, dep.executor, other, [d["factory"]]) == 0  # registered for its own kind only
    assert view(rpc, dep.executor, "isExecutor(address)", [signer.address]) == 1
    assert "0x" + rpc.eth_call(dep.executor, encode_call("weth()"))[-40:] == dep.weth
    assert view(rpc, dep.executor, "paused()") == 0


def test_a_revoked_executor_cannot_run(chain: Any) -> None:
    rpc, dep, signer = chain
    pools, tokens, amount_in, predicted = planted_flash(rpc, dep)
    data = encode_cycle(pools, tokens, amount_in, [0, amount_in + predicted], predicted)
    second = LocalSigner(rpc, "0x" + "5a" * 32)
    rpc.call("anvil_setBalance", [second.address, hex(10**20)])
    assert revert_reason(rpc, second.address, dep.executor, data) == "NotExecutor()"
    send_unlocked(rpc, dep.deployer, to=dep.executor, data=encode_set_executor(second.address, True))
    rpc.call("eth_call", [{"from": second.address, "to": dep.executor, "data": data}, "latest"])  # may run now
    send_unlocked(rpc, dep.deployer, to=dep.executor, data=encode_set_executor(second.address, False))
    assert revert_reason(rpc, second.address, dep.executor, data) == "NotExecutor()"
    receipt = send(second, dep.executor, data)
    assert int(receipt["status"], 16) == 0 and balance_of(rpc, dep.weth, dep.executor) == 0
    # revoking one key leaves the others running
    assert int(send(signer, dep.executor, data)["status"], 16) == 1
    assert balance_of(rpc, dep.weth, dep.executor) == predicted


def test_paused_nothing_runs_until_the_owner_unpauses(chain: Any) -> None:
    rpc, dep, signer = chain
    pools, tokens, amount_in, predicted = planted_flash(rpc, dep)
    data = encode_cycle(pools, tokens, amount_in, [0, amount_in + predicted], predicted)
    stranger = rpc.call("eth_accounts")[3].lower()
    assert revert_reason(rpc, stranger, dep.executor, encode_pause()) == "NotExecutor()"
    assert int(send(signer, dep.executor, encode_pause())["status"], 16) == 1  # the hot key's brake
    assert view(rpc, dep.executor, "paused()") == 1
    assert revert_reason(rpc, signer.address, dep.executor, data) == "ContractPaused()"
    assert int(send(signer, dep.executor, data)["status"], 16) == 0
    assert revert_reason(rpc, signer.address, dep.executor, encode_unpause()) == "NotOwner()"
    fund_token(rpc, dep, "USDC", dep.executor, 10**18)
    send_unlocked(rpc, dep.deployer, to=dep.executor, data=encode_withdraw(dep.token("USDC"), stranger, 10**18))
    assert balance_of(rpc, dep.token("USDC"), stranger) == 10**18  # the owner can still rescue funds
    send_unlocked(rpc, dep.deployer, to=dep.executor, data=encode_unpause())
    assert int(send(signer, dep.executor, data)["status"], 16) == 1
    assert balance_of(rpc, dep.weth, dep.executor) == predicted


def test_configuration_is_the_owners_alone(chain: Any) -> None:
    rpc, dep, signer = chain
    stranger = rpc.call("eth_accounts")[3].lower()
    calls = [
        encode_set_executor(stranger, True),
        encode_add_factory("v2", stranger, b"\x01" * 32),
        encode_remove_factory("v2", dep.dex("uniswap")["factory"]),
        encode_unpause(),
        encode_call("transferOwnership(address)", [stranger]),
        encode_withdraw(dep.weth, stranger, 0),
    ]
    for who in (signer.address, stranger):
        for data in calls:
            assert revert_reason(rpc, who, dep.executor, data) == "NotOwner()"
    for data in calls[:3]:  # and the owner's own calls go through
        send_unlocked(rpc, dep.deployer, to=dep.executor, data=data)
    assert view(rpc, dep.executor, "isExecutor(address)", [stranger]) == 1
    assert view(rpc, dep.executor, "v2InitCodeHash(address)", [dep.dex("uniswap")["factory"]]) == 0


def test_ownership_moves_in_two_steps(chain: Any) -> None:
    rpc, dep, _ = chain
    new, stranger = (a.lower() for a in rpc.call("eth_accounts")[4:6])
    send_unlocked(rpc, dep.deployer, to=dep.executor, data=encode_call("transferOwnership(address)", [new]))
    assert "0x" + rpc.eth_call(dep.executor, encode_call("owner()"))[-40:] == dep.deployer  # not yet
    assert revert_reason(rpc, stranger, dep.executor, encode_call("acceptOwnership()")) == "NotOwner()"
    send_unlocked(rpc, new, to=dep.executor, data=encode_call("acceptOwnership()"))
    assert "0x" + rpc.eth_call(dep.executor, encode_call("owner()"))[-40:] == new
    assert revert_reason(rpc, dep.deployer, dep.executor, encode_unpause()) == "NotOwner()"
    send_unlocked(rpc, new, to=dep.executor, data=encode_unpause())


def test_native_token_only_from_weth_and_the_owner_withdraws_it(chain: Any) -> None:
    rpc, dep, _ = chain
    stranger = rpc.call("eth_accounts")[3].lower()
    with pytest.raises(RpcError):
        rpc.call("eth_call", [{"from": stranger, "to": dep.executor, "value": hex(1)}, "latest"])
    rpc.call("anvil_setBalance", [dep.executor, hex(5 * 10**18)])  # e.g. forced in by selfdestruct
    sink = "0x" + "5e" * 20
    assert revert_reason(rpc, stranger, dep.executor, encode_withdraw("0x" + "00" * 20, stranger, 1)) == "NotOwner()"
    send_unlocked(rpc, dep.deployer, to=dep.executor, data=encode_withdraw("0x" + "00" * 20, sink, 2 * 10**18))
    assert int(rpc.call("eth_getBalance", [sink, "latest"]), 16) == 2 * 10**18
    assert int(rpc.call("eth_getBalance", [dep.executor, "latest"]), 16) == 3 * 10**18


def send_without_tip(signer: LocalSigner, to: str, data: str) -> dict[str, Any]:
    """So the coinbase's balance moves only by what the contract pays it."""
    base = int(signer.rpc.call("eth_getBlockByNumber", ["latest", False])["baseFeePerGas"], 16)
    tx_hash = signer.send(to=to, data=data, gas=2_000_000, max_fee_per_gas=2 * base + 10**9, max_priority_fee_per_gas=0)
    return wait_receipt(signer.rpc, tx_hash)


def test_coinbase_share_is_paid_from_weth_profit(chain: Any) -> None:
    rpc, dep, signer = chain
    pools, tokens, amount_in, predicted = planted_flash(rpc, dep)
    builder = "0x" + "b0" * 20
    rpc.call("anvil_setCoinbase", [builder])
    share = predicted * 2500 // 10_000
    kept = predicted - share
    # minProfit guards what the contract keeps: the gross profit as the guard cannot pass
    too_high = encode_cycle(pools, tokens, amount_in, [0, amount_in + predicted], predicted, coinbase_bps=2500)
    assert revert_reason(rpc, signer.address, dep.executor, too_high).startswith("ProfitTooLow(")
    data = encode_cycle(pools, tokens, amount_in, [0, amount_in + predicted], kept, coinbase_bps=2500)
    assert int(rpc.call("eth_call", [{"from": signer.address, "to": dep.executor, "data": data}, "latest"]), 16) == kept
    native_before = int(rpc.call("eth_getBalance", [builder, "latest"]), 16)
    receipt = send_without_tip(signer, dep.executor, data)
    assert int(receipt["status"], 16) == 1
    assert int(rpc.call("eth_getBalance", [builder, "latest"]), 16) - native_before == share
    assert balance_of(rpc, dep.weth, dep.executor) == kept
    assert int(rpc.call("eth_getBalance", [dep.executor, "latest"]), 16) == 0
    paid = [e for e in receipt["logs"] if e["topics"][0] == "0x" + keccak(text="CoinbasePaid(address,uint256)").hex()]
    assert len(paid) == 1 and int(paid[0]["data"], 16) == share
    assert int(receipt["gasUsed"], 16) <= gas_estimate(["v2", "v2"], coinbase_share=True)


def test_coinbase_share_is_skipped_when_the_profit_is_not_weth(chain: Any) -> None:
    """USDC -v3-> WETH -v2-> DAI -v2-> USDC with a 50% share asked: nothing is paid, the
    whole profit is kept; a share above 100% is refused by the contract and the encoder."""
    rpc, dep, signer = chain
    plant_v3_price_gap(rpc, dep, "WETH", "USDC", 3000, 3.0)
    pools = [dep.pool("uniswap-v3", "USDC", "WETH", 3000), dep.pool("uniswap", "WETH", "DAI"),
             dep.pool("sushiswap", "DAI", "USDC")]
    tokens = [dep.token("USDC"), dep.weth, dep.token("DAI"), dep.token("USDC")]
    amount_in, amounts = size(cycle_quoter(rpc, dep, pools, tokens), 10**24)
    predicted = amounts[-1] - amount_in
    builder = "0x" + "b1" * 20
    rpc.call("anvil_setCoinbase", [builder])
    receipt = send_without_tip(signer, dep.executor,
                               encode_cycle(pools, tokens, amount_in, amounts, predicted, coinbase_bps=5000))
    assert int(receipt["status"], 16) == 1
    assert balance_of(rpc, tokens[0], dep.executor) == predicted
    assert int(rpc.call("eth_getBalance", [builder, "latest"]), 16) == 0
    with pytest.raises(EncodingError):
        encode_cycle(pools, tokens, amount_in, amounts, 0, coinbase_bps=10_001)
    hops = hops_for_cycle(pools, tokens)
    raw = "0x" + (EXECUTE_SELECTOR + encode(EXECUTE_TYPES, [tokens[0], amount_in, 0, True,
                                                             [h.as_tuple() for h in hops], 10_001])).hex()
    assert revert_reason(rpc, signer.address, dep.executor, raw) == "BadCoinbaseShare()"
