"""Transfer checks on anvil: the TransferProbe run by eth_call with a state override at a
real holder's address tells a standard token from fee-on-transfer, reverting, false-returning
and rounding tokens, in one batch; the scanner records the verdict in the hot state, at
bootstrap and for a token whose first pool is funded blocks after it was created."""

from __future__ import annotations

import pytest

from arbbot.chain.discovery import Factory
from arbbot.chain.scanner import Scanner, ScannerConfig
from arbbot.chain.token_checks import (
    MIN_PROBE_AMOUNT,
    PROBE_RECIPIENT,
    TransferCheck,
    check_transfer,
    check_transfers,
    classify,
)
from arbbot.chain.tx import deploy_unlocked, encode_call, send_unlocked
from arbbot.hotstate import HotState
from tests.chain.devchain import DevChain, compile_solidity, encode

SUPPLY = 10**24

# Minimal ERC20s with exactly the behaviour under test (transfer + balanceOf suffice for a
# genuine Uniswap V2 pair: mint/swap read balanceOf, pay out with transfer).
NONSTANDARD_TOKENS_SOL = """
// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract MiniToken {
    string public symbol;
    uint8 public constant decimals = 18;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    constructor(string memory s, uint256 supply) { symbol = s; balanceOf[msg.sender] = supply; totalSupply = supply; }
    function _move(address from, address to, uint256 amount) internal virtual {
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
    }
    function transfer(address to, uint256 amount) external virtual returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }
}
contract BurnTwoPercentToken is MiniToken {        // 2% of every transfer is burned
    constructor(uint256 supply) MiniToken("FOT", supply) {}
    function _move(address from, address to, uint256 amount) internal override {
        uint256 fee = amount * 2 / 100;
        balanceOf[from] -= amount;
        balanceOf[to] += amount - fee;
        totalSupply -= fee;
    }
}
contract SenderPaysFeeToken is MiniToken {         // the sender is charged 1% on top
    constructor(uint256 supply) MiniToken("SPF", supply) {}
    function _move(address from, address to, uint256 amount) internal override {
        uint256 fee = amount / 100;
        balanceOf[from] -= amount + fee;
        balanceOf[to] += amount;
        totalSupply -= fee;
    }
}
contract RoundingToken is MiniToken {              // stETH-like: the receiver gets 1 wei less
    constructor(uint256 supply) MiniToken("RND", supply) {}
    function _move(address from, address to, uint256 amount) internal override {
        balanceOf[from] -= amount;
        balanceOf[to] += amount - 1;
    }
}
contract FalseToken is MiniToken {                 // returns false and moves nothing
    constructor(uint256 supply) MiniToken("FLS", supply) {}
    function transfer(address, uint256) external pure override returns (bool) { return false; }
}
contract NoReturnToken {                           // USDT-style: returns nothing, is fine
    mapping(address => uint256) public balanceOf;
    constructor(uint256 supply) { balanceOf[msg.sender] = supply; }
    function transfer(address to, uint256 amount) external {
        balanceOf[msg.sender] -= amount;
        balanceOf[to] += amount;
    }
}
contract RevertingTransferToken is MiniToken {     // holders can never move it
    constructor(uint256 supply) MiniToken("REV", supply) {}
    function transfer(address, uint256) external pure override returns (bool) { revert("transfers disabled"); }
}
"""


@pytest.fixture(scope="module")
def code() -> dict[str, str]:
    return compile_solidity(NONSTANDARD_TOKENS_SOL)


def _deploy(dev: DevChain, bytecode: str) -> str:
    return deploy_unlocked(dev.rpc, dev.sender, bytecode + encode(["uint256"], [SUPPLY]).hex())


def _transfer(dev: DevChain, token: str, to: str, amount: int) -> None:
    send_unlocked(dev.rpc, dev.sender, to=token, data=encode_call("transfer(address,uint256)", [to, amount]))


def test_classify_words() -> None:
    assert classify(100, 100, 100) == (True, "")
    assert classify(100, 100, 98) == (False, "fee-on-transfer: received 98/100")
    assert classify(10**18, 10**18, 10**18 - 1)[1] == (
        f"rebasing/irregular balance change: received {10**18 - 1}/{10**18} (rounding)"
    )
    assert classify(100, 101, 100)[1].startswith("fee-on-transfer: sender charged 101 for 100")
    assert classify(100, 100, 101)[1].startswith("rebasing/irregular balance change")
    assert classify(100, 99, 99)[1].startswith("rebasing/irregular balance change")


def test_standard_and_nonstandard_tokens_in_one_batch(dev: DevChain, code: dict[str, str]) -> None:
    oz = dev.deploy_token("Standard", "STD", mint=SUPPLY)  # OpenZeppelin ERC20PresetMinterPauser
    fot = _deploy(dev, code["BurnTwoPercentToken"])
    spf = _deploy(dev, code["SenderPaysFeeToken"])
    rnd = _deploy(dev, code["RoundingToken"])
    fls = _deploy(dev, code["FalseToken"])
    nrt = _deploy(dev, code["NoReturnToken"])
    rev = _deploy(dev, code["RevertingTransferToken"])
    holder = dev.sender  # an EOA holding every token: its code is overridden for the call

    # explicit amounts: the numbers are exact
    got = check_transfers(dev.rpc, [(t, holder, 100) for t in (oz, fot, spf, fls, nrt, rev)])
    assert got[0] == TransferCheck(True, "", 100, 100, 100)
    assert got[1] == TransferCheck(False, "fee-on-transfer: received 98/100", 100, 98, 100)
    assert got[2] == TransferCheck(False, "fee-on-transfer: sender charged 101 for 100, received 100/100", 101, 100, 100)
    assert (got[3].ok, got[3].conclusive, got[3].reason) == (False, True, "transfer returned false")
    assert got[4] == TransferCheck(True, "", 100, 100, 100)
    assert (got[5].ok, got[5].conclusive, got[5].reason) == (False, True, "transfer reverted: transfers disabled")
    assert got[5].excluded_reason == "transfer reverted: transfers disabled"

    # default amount: a small share of the holder's balance, read on-chain in the same call
    share = SUPPLY // 1000
    fot_check = check_transfer(dev.rpc, fot, holder)
    assert fot_check.amount == share and fot_check.sent == share
    assert fot_check.received == share - share * 2 // 100
    assert fot_check.reason == f"fee-on-transfer: received {share - share * 2 // 100}/{share}"
    rnd_check = check_transfer(dev.rpc, rnd, holder)
    assert rnd_check.reason == f"rebasing/irregular balance change: received {share - 1}/{share} (rounding)"
    assert check_transfer(dev.rpc, oz, holder).ok

    # a standard token whose pause makes every transfer revert (OpenZeppelin's own message)
    send_unlocked(dev.rpc, dev.sender, to=oz, data=encode_call("pause()"))
    paused = check_transfer(dev.rpc, oz, holder)
    assert paused.excluded_reason == "transfer reverted: ERC20Pausable: token transfer while paused"

    # nothing was sent: the probe ran inside eth_call only
    bal = dev.rpc.eth_call(fot, encode_call("balanceOf(address)", [PROBE_RECIPIENT]))
    assert int(bal, 16) == 0


def test_inconclusive_checks_are_not_exclusions(dev: DevChain, code: dict[str, str]) -> None:
    oz = dev.deploy_token("Standard", "STD", mint=SUPPLY)
    nobody = "0x" + "42" * 20  # holds none
    none_held = check_transfer(dev.rpc, oz, nobody)
    assert (none_held.ok, none_held.conclusive, none_held.excluded_reason) == (False, False, None)
    assert none_held.reason == "unchecked: holder holds none of the token"
    # a holder with a tiny balance probes all of it (no fee can hide in rounding of 0.1%)
    _transfer(dev, oz, nobody, 5)
    assert check_transfer(dev.rpc, oz, nobody) == TransferCheck(True, "", 5, 5, 5)
    _transfer(dev, oz, nobody, MIN_PROBE_AMOUNT * 10)
    assert check_transfer(dev.rpc, oz, nobody).amount == MIN_PROBE_AMOUNT
    # an address without code is a conclusive "not a contract"
    assert check_transfer(dev.rpc, "0x" + "77" * 20, dev.sender).excluded_reason == "not a contract"


def test_scanner_records_the_exclusion_in_hot_state(dev: DevChain, code: dict[str, str], hot: HotState) -> None:
    mc = dev.deploy_multicall()
    factory = dev.deploy_v2_factory()
    weth = dev.deploy_token("Wrapped", "WETH", mint=SUPPLY)
    usd = dev.deploy_token("Dollar", "USD", mint=SUPPLY)
    fot = _deploy(dev, code["BurnTwoPercentToken"])
    p_std = dev.create_pair(factory, weth, usd)
    dev.add_liquidity(p_std, 10**21, 10**21)
    p_fot = dev.create_pair(factory, weth, fot)
    dev.add_liquidity(p_fot, 10**21, 10**21)

    scanner = Scanner(
        ScannerConfig(chain_id=31337, rpc_urls=(dev.rpc.url,), multicall=mc, factories=(Factory(factory, "v2"),)),
        store=hot,
    )
    assert scanner.poll()
    tokens = hot.get_tokens()
    # the pair holds the FoT token's reserve after the 2% burn; 0.1% of it is probed
    fot_balance = next(s for s in scanner.pools.values() if s.address == p_fot.address)
    fot_reserve = fot_balance.reserve0 if fot_balance.token0 == fot else fot_balance.reserve1  # type: ignore[union-attr]
    share = fot_reserve // 1000
    reason = f"fee-on-transfer: received {share - share * 2 // 100}/{share}"
    assert tokens[fot]["excluded_reason"] == reason
    assert tokens[fot]["transfer_check"] == {
        "ok": False, "reason": reason, "conclusive": True,
        "amount": str(share), "sent": str(share), "received": str(share - share * 2 // 100),
    }
    assert tokens[fot]["symbol"] == "FOT"
    for good in (weth, usd):
        assert tokens[good]["excluded_reason"] is None
        assert tokens[good]["transfer_check"]["ok"] is True
    assert hot.excluded_tokens() == {fot: reason}
    assert scanner.tokens[fot].excluded_reason == reason
    assert not scanner.unchecked

    # following: a pair created empty is registered at once, its new token checked only
    # once the pair is funded; blocks that touch no pending token probe nothing
    spf = _deploy(dev, code["SenderPaysFeeToken"])
    p_spf = dev.create_pair(factory, usd, spf)
    dev.mine()
    checks_before = scanner.stats.extra.get("transfer_checks", 0)
    scanner.poll()
    assert spf in scanner.unchecked and hot.get_tokens()[spf]["transfer_check"] is None
    assert hot.get_tokens()[spf]["excluded_reason"] is None
    assert scanner.stats.extra.get("transfer_checks", 0) == checks_before
    # funding goes through transfer: the pair gets 100% (the sender pays the fee)
    dev.add_liquidity(p_spf, 10**20, 10**20)
    dev.send_many(dev.swap_txs(p_std, True, 10**18))
    scanner.poll()
    assert scanner.stats.extra["transfer_checks"] == checks_before + 1
    assert spf not in scanner.unchecked
    assert hot.get_tokens()[spf]["excluded_reason"].startswith("fee-on-transfer: sender charged")
    assert set(hot.excluded_tokens()) == {fot, spf}
    dev.send_many(dev.swap_txs(p_std, False, 10**18))
    scanner.poll()
    assert scanner.stats.extra["transfer_checks"] == checks_before + 1
    assert scanner.health()["healthy"]


def test_node_trouble_is_inconclusive_never_an_exclusion() -> None:
    from arbbot.chain.token_checks import _interpret
    from arbbot.errors import RpcError

    for reply in (RpcError("eth_call: state override not supported", code=-32602), None, "0xzz", "0x12"):
        got = _interpret(reply, None)
        assert not got.conclusive and got.excluded_reason is None and got.reason.startswith("unchecked")
