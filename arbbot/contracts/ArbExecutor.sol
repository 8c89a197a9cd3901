// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

/// @title ArbExecutor: arbbot's on-chain executor for n-hop arbitrage cycles.
/// @notice Runs a cycle tokenIn -> ... -> tokenIn over Uniswap V2 pairs and Uniswap V3 pools
///         atomically, either from its own inventory or flash-borrowing from the first hop,
///         and reverts unless its tokenIn balance grows by at least `minProfit`.
/// @dev Design notes (why, not what):
///  * V2 hop outputs are computed here from live reserves (same formula as
///    UniswapV2Library.getAmountOut, fee in pips for forks) instead of being passed in, so a
///    cycle whose pools moved after sizing fails on the single profit guard rather than on a
///    pair's K check, and a cycle that moved in our favour still executes.
///  * Outputs go straight to the next V2 pair when possible (saves a transfer per hop).
///  * Callbacks are only accepted from the pool this contract is calling right now: the
///    expected caller is kept in transient storage (EIP-1153) and cleared on use. V3 pools
///    are additionally checked to be genuine CREATE2 children of the configured factory.
///  * zeroForOne is derived from the token order (token0 < token1 in both V2 and V3), so a
///    hop cannot carry an inconsistent direction.
contract ArbExecutor {
    uint8 internal constant KIND_V2 = 0;
    uint8 internal constant KIND_V3 = 1;

    /// @dev v3-core TickMath bounds (+1 / -1: the pool requires the limit strictly inside).
    uint160 internal constant MIN_SQRT_RATIO_PLUS_ONE = 4295128740;
    uint160 internal constant MAX_SQRT_RATIO_MINUS_ONE = 1461446703485210103287273052203988822378723970341;

    /// @dev keccak256 of the genuine v3-core UniswapV3Pool creation code (v3-periphery PoolAddress).
    bytes32 internal constant V3_POOL_INIT_CODE_HASH = 0xe34f199b19b2b4f47f68442619d555527d244f78a3297ea89325f843f87b8b54;

    /// @dev transient slots: the pool whose callback we expect, and the token it must be paid in.
    uint256 internal constant T_EXPECTED_POOL = 0;
    uint256 internal constant T_PAY_TOKEN = 1;

    struct Hop {
        address pool;
        address tokenOut;
        uint8 kind; // 0 = Uniswap V2 pair, 1 = Uniswap V3 pool
        uint24 fee; // V2: swap fee in pips (3000 = 0.3%); V3: the pool's fee tier (for address check)
        uint256 minOut; // optional per-hop floor (0 = rely on the final profit guard)
    }

    address public immutable owner;
    address public immutable v3Factory;

    error NotOwner();
    error BadCallback();
    error NotCycle();
    error BadHop(uint256 index);
    error HopOutputTooLow(uint256 index, uint256 amountOut);
    error ProfitTooLow(uint256 gained, uint256 minProfit);
    error TransferFailed();

    event Executed(address indexed token, uint256 amountIn, uint256 profit);

    constructor(address owner_, address v3Factory_) {
        owner = owner_;
        v3Factory = v3Factory_;
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    /// @notice Execute the cycle `tokenIn --hops--> tokenIn` with `amountIn`.
    /// @param flash borrow the first hop's output from its pool (no inventory needed) when true;
    ///        otherwise spend `amountIn` of the contract's own `tokenIn`.
    /// @return profit the growth of this contract's `tokenIn` balance.
    function execute(address tokenIn, uint256 amountIn, uint256 minProfit, bool flash, Hop[] calldata hops)
        external
        onlyOwner
        returns (uint256 profit)
    {
        uint256 n = hops.length;
        if (n == 0 || hops[n - 1].tokenOut != tokenIn) revert NotCycle();
        uint256 before = _balanceOf(tokenIn, address(this));
        if (flash) {
            _flashFirstHop(tokenIn, amountIn, minProfit, hops);
        } else {
            _run(hops, 0, tokenIn, amountIn);
        }
        uint256 afterBal = _balanceOf(tokenIn, address(this));
        // Checked arithmetic: a loss underflows and reverts, which is the guard we want too.
        if (afterBal < before + minProfit) {
            revert ProfitTooLow(afterBal > before ? afterBal - before : 0, minProfit);
        }
        profit = afterBal - before;
        emit Executed(tokenIn, amountIn, profit);
    }

    /// @notice Move tokens (profit, inventory) out of the contract.
    function withdraw(address token, address to, uint256 amount) external onlyOwner {
        _transfer(token, to, amount);
    }

    // ------------------------------------------------------------------ callbacks

    /// @dev V2 flash swap callback: the first pair sent us hops[0]'s output optimistically.
    function uniswapV2Call(address sender, uint256 amount0, uint256 amount1, bytes calldata data) external {
        _consumeExpected();
        if (sender != address(this)) revert BadCallback();
        (address tokenIn, uint256 amountIn, uint256 minProfit, Hop[] memory hops) =
            abi.decode(data, (address, uint256, uint256, Hop[]));
        uint256 back = _run(hops, 1, hops[0].tokenOut, amount0 + amount1);
        // Checked before repaying so a stale cycle fails on the profit guard, not on a transfer.
        _requireProfit(back, amountIn, minProfit);
        // Paying exactly the sized input restores K (the output was derived from it).
        _transfer(tokenIn, msg.sender, amountIn);
    }

    /// @dev V3 swap callback: pay the pool what it asks (the positive delta) in the input token.
    function uniswapV3SwapCallback(int256 amount0Delta, int256 amount1Delta, bytes calldata data) external {
        address payToken = _consumeExpected();
        uint256 owed = uint256(amount0Delta > 0 ? amount0Delta : amount1Delta);
        if (data.length > 0) {
            // flash: the pool already sent hops[0]'s output; run the rest before paying
            (, , uint256 minProfit, Hop[] memory hops) = abi.decode(data, (address, uint256, uint256, Hop[]));
            uint256 received = uint256(-(amount0Delta > 0 ? amount1Delta : amount0Delta));
            uint256 back = _run(hops, 1, hops[0].tokenOut, received);
            _requireProfit(back, owed, minProfit);
        }
        _transfer(payToken, msg.sender, owed);
    }

    // ------------------------------------------------------------------ internals

    function _flashFirstHop(address tokenIn, uint256 amountIn, uint256 minProfit, Hop[] calldata hops) internal {
        Hop calldata h = hops[0];
        bytes memory data = abi.encode(tokenIn, amountIn, minProfit, hops);
        bool zeroForOne = tokenIn < h.tokenOut;
        if (h.kind == KIND_V2) {
            uint256 out = _v2AmountOut(h.pool, zeroForOne, amountIn, h.fee);
            if (out < h.minOut) revert HopOutputTooLow(0, out);
            _expect(h.pool, tokenIn);
            IUniswapV2Pair(h.pool).swap(zeroForOne ? 0 : out, zeroForOne ? out : 0, address(this), data);
        } else if (h.kind == KIND_V3) {
            _checkV3Pool(h.pool, tokenIn, h.tokenOut, h.fee, 0);
            _expect(h.pool, tokenIn);
            (int256 a0, int256 a1) = IUniswapV3Pool(h.pool).swap(
                address(this), zeroForOne, int256(amountIn), zeroForOne ? MIN_SQRT_RATIO_PLUS_ONE : MAX_SQRT_RATIO_MINUS_ONE, data
            );
            uint256 out = uint256(-(zeroForOne ? a1 : a0));
            if (out < h.minOut) revert HopOutputTooLow(0, out);
        } else {
            revert BadHop(0);
        }
    }

    /// @dev One loop for both entry points (hops copied to memory: a few hundred gas per hop,
    ///      and it keeps the hop's fields off the stack).
    function _run(Hop[] memory hops, uint256 start, address token, uint256 amount) internal returns (uint256) {
        uint256 n = hops.length;
        bool inputAtPool = false;
        for (uint256 i = start; i < n; ++i) {
            Hop memory h = hops[i];
            address to = (i + 1 < n && hops[i + 1].kind == KIND_V2) ? hops[i + 1].pool : address(this);
            amount = _hop(i, h, token, amount, inputAtPool, to);
            inputAtPool = to != address(this);
            token = h.tokenOut;
        }
        return amount;
    }

    function _requireProfit(uint256 back, uint256 paid, uint256 minProfit) internal pure {
        if (back < paid + minProfit) revert ProfitTooLow(back > paid ? back - paid : 0, minProfit);
    }

    function _hop(uint256 i, Hop memory h, address tokenIn, uint256 amountIn, bool inputAtPool, address to)
        internal
        returns (uint256 out)
    {
        bool zeroForOne = tokenIn < h.tokenOut;
        if (h.kind == KIND_V2) {
            if (!inputAtPool) _transfer(tokenIn, h.pool, amountIn);
            out = _v2AmountOut(h.pool, zeroForOne, amountIn, h.fee);
            IUniswapV2Pair(h.pool).swap(zeroForOne ? 0 : out, zeroForOne ? out : 0, to, "");
        } else if (h.kind == KIND_V3) {
            _checkV3Pool(h.pool, tokenIn, h.tokenOut, h.fee, i);
            _expect(h.pool, tokenIn);
            (int256 a0, int256 a1) = IUniswapV3Pool(h.pool).swap(
                to, zeroForOne, int256(amountIn), zeroForOne ? MIN_SQRT_RATIO_PLUS_ONE : MAX_SQRT_RATIO_MINUS_ONE, ""
            );
            out = uint256(-(zeroForOne ? a1 : a0));
        } else {
            revert BadHop(i);
        }
        if (out < h.minOut) revert HopOutputTooLow(i, out);
    }

    function _v2AmountOut(address pair, bool zeroForOne, uint256 amountIn, uint24 fee) internal view returns (uint256) {
        (uint112 r0, uint112 r1, ) = IUniswapV2Pair(pair).getReserves();
        (uint256 reserveIn, uint256 reserveOut) = zeroForOne ? (uint256(r0), uint256(r1)) : (uint256(r1), uint256(r0));
        uint256 inWithFee = amountIn * (1_000_000 - fee);
        return (inWithFee * reserveOut) / (reserveIn * 1_000_000 + inWithFee);
    }

    function _checkV3Pool(address pool, address tokenA, address tokenB, uint24 fee, uint256 i) internal view {
        if (v3Factory == address(0)) revert BadHop(i);
        (address t0, address t1) = tokenA < tokenB ? (tokenA, tokenB) : (tokenB, tokenA);
        bytes32 salt = keccak256(abi.encode(t0, t1, fee));
        address expected =
            address(uint160(uint256(keccak256(abi.encodePacked(hex"ff", v3Factory, salt, V3_POOL_INIT_CODE_HASH)))));
        if (expected != pool) revert BadHop(i);
    }

    function _expect(address pool, address payToken) internal {
        assembly {
            tstore(T_EXPECTED_POOL, pool)
            tstore(T_PAY_TOKEN, payToken)
        }
    }

    /// @dev Accept one callback from the expected pool, then forget it (no second callback).
    function _consumeExpected() internal returns (address payToken) {
        address expected;
        assembly {
            expected := tload(T_EXPECTED_POOL)
            payToken := tload(T_PAY_TOKEN)
            tstore(T_EXPECTED_POOL, 0)
        }
        if (expected == address(0) || msg.sender != expected) revert BadCallback();
    }

    function _balanceOf(address token, address who) internal view returns (uint256) {
        return IERC20Minimal(token).balanceOf(who);
    }

    /// @dev Tolerates tokens that return nothing (USDT style) as well as bool.
    function _transfer(address token, address to, uint256 amount) internal {
        (bool ok, bytes memory ret) = token.call(abi.encodeWithSelector(IERC20Minimal.transfer.selector, to, amount));
        if (!ok || (ret.length != 0 && !abi.decode(ret, (bool)))) revert TransferFailed();
    }
}

interface IERC20Minimal {
    function balanceOf(address) external view returns (uint256);
    function transfer(address to, uint256 amount) external returns (bool);
}

interface IUniswapV2Pair {
    function getReserves() external view returns (uint112 reserve0, uint112 reserve1, uint32 blockTimestampLast);
    function swap(uint256 amount0Out, uint256 amount1Out, address to, bytes calldata data) external;
}

interface IUniswapV3Pool {
    function swap(address recipient, bool zeroForOne, int256 amountSpecified, uint160 sqrtPriceLimitX96, bytes calldata data)
        external
        returns (int256 amount0, int256 amount1);
}
