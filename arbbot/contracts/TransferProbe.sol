// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

/// @title TransferProbe: measures what an ERC20 transfer really moves.
/// @notice Never deployed. arbbot runs it with `eth_call` and a state override that puts this
///         runtime code at the address of an account that already holds the token (a pool),
///         so the token sees a genuine holder as `msg.sender` and nothing on chain changes.
/// @dev Why the failures are custom errors and not (false, 0, 0) returns: the caller decodes
///      one fixed layout for success and a selector for every way a token can misbehave, and
///      an `eth_call` that fails for any other reason (no state override support, out of gas)
///      is recognisably not the token's fault.
contract TransferProbe {
    /// The token's `transfer` reverted; `reason` is its revert data.
    error TransferReverted(bytes reason);
    /// The token's `transfer` returned `false` (or a non-boolean word that is zero).
    error TransferReturnedFalse();
    /// `balanceOf` reverted or returned fewer than 32 bytes.
    error BalanceOfFailed(address account);
    /// The token address holds no code.
    error NotAContract();
    /// A balance moved the wrong way (the sender gained or the receiver lost): a rebasing or
    /// otherwise irregular token. The four balances are before/after of sender and receiver.
    error IrregularBalanceChange(uint256 senderBefore, uint256 senderAfter, uint256 toBefore, uint256 toAfter);

    /// @notice Transfers `amount` of `token` from this account to `to`.
    /// @return sent how much this account's balance fell
    /// @return received how much `to`'s balance rose
    function probe(address token, address to, uint256 amount) external returns (uint256 sent, uint256 received) {
        return _probe(token, to, amount);
    }

    /// @notice Like `probe`, with `amount = max(balance / divisor, min(balance, minAmount))`
    ///         of this account's balance, so one round trip suffices when the caller does not
    ///         know the holder's balance. A zero balance probes a zero transfer.
    function probeShare(address token, address to, uint256 divisor, uint256 minAmount)
        external
        returns (uint256 amount, uint256 sent, uint256 received)
    {
        if (token.code.length == 0) revert NotAContract();
        uint256 bal = _balanceOf(token, address(this));
        amount = bal / divisor;
        uint256 floor_ = bal < minAmount ? bal : minAmount;
        if (amount < floor_) amount = floor_;
        (sent, received) = _probe(token, to, amount);
    }

    function _probe(address token, address to, uint256 amount) internal returns (uint256 sent, uint256 received) {
        if (token.code.length == 0) revert NotAContract();
        uint256 selfBefore = _balanceOf(token, address(this));
        uint256 toBefore = _balanceOf(token, to);
        (bool ok, bytes memory ret) = token.call(abi.encodeWithSelector(0xa9059cbb, to, amount));
        if (!ok) revert TransferReverted(ret);
        // USDT-style tokens return nothing; anything else must decode to true.
        if (ret.length > 0 && (ret.length < 32 || abi.decode(ret, (uint256)) == 0)) revert TransferReturnedFalse();
        uint256 selfAfter = _balanceOf(token, address(this));
        uint256 toAfter = _balanceOf(token, to);
        if (selfAfter > selfBefore || toAfter < toBefore) {
            revert IrregularBalanceChange(selfBefore, selfAfter, toBefore, toAfter);
        }
        sent = selfBefore - selfAfter;
        received = toAfter - toBefore;
    }

    function _balanceOf(address token, address account) internal view returns (uint256) {
        (bool ok, bytes memory ret) = token.staticcall(abi.encodeWithSelector(0x70a08231, account));
        if (!ok || ret.length < 32) revert BalanceOfFailed(account);
        return abi.decode(ret, (uint256));
    }
}
