// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title PairReserves: getReserves() of many Uniswap V2 pairs in one eth_call
/// @notice Never deployed: ``arbbot.chain.multicall`` runs its runtime code through an
/// ``eth_call`` with a state override. Calldata is the pairs' addresses, 20 bytes each,
/// packed; the reply is two words per pair, reserve0 and reserve1, in the same order. A pair
/// whose call reverts, runs out of its gas allowance or answers fewer than 64 bytes reads
/// as two all-ones words (no uint112 reserve can be that), so one broken pool never fails
/// the others. Against Multicall3's aggregate3 the request is 8x and the reply 3.5x smaller,
/// and nothing is ABI-decoded on chain: the full refresh of a large registry is bound by
/// the bytes moved and by the node's work per pool.
contract PairReserves {
    /// Gas forwarded to each getReserves(): a genuine pair needs under 10k (cold account
    /// and slot); a hostile one burns at most this much, not the whole call's budget.
    uint256 private constant PER_PAIR_GAS = 60_000;

    fallback() external {
        assembly {
            let n := div(calldatasize(), 20)
            mstore(0, shl(224, 0x0902f1ac)) // getReserves()
            let out := 0x80
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                let pair := shr(96, calldataload(mul(i, 20)))
                let dst := add(out, shl(6, i))
                let ok := staticcall(PER_PAIR_GAS, pair, 0, 4, dst, 64)
                if or(iszero(ok), lt(returndatasize(), 64)) {
                    mstore(dst, not(0))
                    mstore(add(dst, 32), not(0))
                }
            }
            return(out, shl(6, n))
        }
    }
}
