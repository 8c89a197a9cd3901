// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

/// @title ArbExecutor: arbbot's on-chain executor for n-hop arbitrage cycles.
/// @notice Runs a cycle tokenIn -> ... -> tokenIn over Uniswap V2 pairs and Uniswap V3 pools
///         (and their forks) atomically, either from its own inventory or flash-borrowing from
///         the first hop, and reverts unless its tokenIn balance grows by at least `minProfit`
///         AND no other token of the cycle ends below its starting balance.
/// @dev Threat model: any pool in a cycle may be hostile (a malicious fork whose factory an
///      operator registered, a pool injected into the bot's state), and so may any token.
///      The guards, from strongest to weakest:
///  * Balance rule: at the start every token the cycle touches (tokenIn and each hop's
///    tokenOut; the contract never moves any other token) and the native balance are
///    snapshotted; at the end each must be >= its snapshot (tokenIn: + the profit kept). A
///    pool that takes our input and never pays, or reports outputs it did not send, can only
///    make the transaction revert: the contract's own inventory never pays for it.
///  * Callback binding: a callback is accepted once, only from the pool this contract is
///    calling right now, and only with the exact arguments this contract passed to `swap`
///    (V2: hash of pair, amount0Out, amount1Out and data; V3: hash of pool and data, payment
///    in the input token and at most the input amount), kept in transient storage (EIP-1153)
///    and cleared on use. The hops a callback runs come from data this contract encoded, so a
///    pool cannot forge hops or amounts.
///  * Pool check: V2 pairs and V3 pools must be CREATE2 children of an owner-registered
///    (factory, init-code hash). A malicious fork passes this for its own pools once its
///    factory is registered, so the two guards above are what actually protect the funds.
///  * Roles: a cold `owner` (withdraw, configuration, executors, unpause, ownership) and hot
///    `executor` keys that can only run cycles (and pause). A reentrancy lock covers execute.
///  * V2 hop outputs are computed from live reserves (UniswapV2Library.getAmountOut with the
///    fee in pips for forks) so a stale cycle fails on the profit guard, not on a pair's K.
///  * zeroForOne is derived from token order, so a hop cannot carry an inconsistent direction.
contract ArbExecutor {
    uint8 internal constant KIND_V2 = 0;
    uint8 internal constant KIND_V3 = 1;
    uint256 internal constant MAX_BPS = 10_000;

    /// @dev v3-core TickMath bounds (+1 / -1: the pool requires the limit strictly inside).
    uint160 internal constant MIN_SQRT_RATIO_PLUS_ONE = 4295128740;
    uint160 internal constant MAX_SQRT_RATIO_MINUS_ONE = 1461446703485210103287273052203988822378723970341;

    /// @dev transient slots (EIP-1153): all zero outside an execute() in flight.
    uint256 internal constant T_LOCK = 0; // 1 while execute() runs
    uint256 internal constant T_V2_BINDING = 1; // keccak(pair, amount0Out, amount1Out, keccak(data))
    uint256 internal constant T_V3_BINDING = 2; // keccak(pool, keccak(data))
    uint256 internal constant T_V3_PAY_TOKEN = 3; // the token the bound V3 pool is paid in
    uint256 internal constant T_V3_MAX_PAY = 4; // and at most how much of it

    struct Hop {
        address pool;
        address tokenOut;
        uint8 kind; // 0 = Uniswap V2 pair (or fork), 1 = Uniswap V3 pool (or fork)
        uint24 fee; // V2: swap fee in pips (3000 = 0.3%); V3: the pool's fee tier (for the address check)
        uint256 minOut; // optional per-hop floor (0 = rely on the final guards)
    }

    /// @notice A DEX factory whose CREATE2 children are accepted as pools of `kind`.
    struct Factory {
        uint8 kind;
        address factory;
        bytes32 initCodeHash;
    }

    address public owner; // cold key
    bool public paused; // packed with owner: one storage read on the hot path
    address public pendingOwner;
    address public immutable weth; // the coinbase share is paid by unwrapping WETH profit
    mapping(address => bool) public isExecutor; // hot keys that may run cycles
    mapping(address => bytes32) public v2InitCodeHash; // factory => its pairs' init-code hash (0 = not allowed)
    mapping(address => bytes32) public v3InitCodeHash; // factory => its pools' init-code hash (0 = not allowed)

    error NotOwner();
    error NotExecutor();
    error ContractPaused();
    error Reentrancy();
    error BadCallback();
    error NotCycle();
    error BadHop(uint256 index);
    error BadKind();
    error BadCoinbaseShare();
    error HopOutputTooLow(uint256 index, uint256 amountOut);
    error ProfitTooLow(uint256 gained, uint256 minProfit);
    error BalanceDecreased(address token, uint256 before, uint256 afterBal);
    error TransferFailed();

    event Executed(address indexed token, uint256 amountIn, uint256 profit);
    event CoinbasePaid(address indexed coinbase, uint256 amount);
    event ExecutorSet(address indexed account, bool allowed);
    event FactorySet(uint8 indexed kind, address indexed factory, bytes32 initCodeHash);
    event PauseSet(address indexed by, bool paused);
    event OwnershipTransferStarted(address indexed owner, address indexed pendingOwner);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event Withdrawn(address indexed token, address indexed to, uint256 amount);

    constructor(address owner_, address weth_, address[] memory executors_, Factory[] memory factories_) {
        owner = owner_;
        weth = weth_;
        emit OwnershipTransferred(address(0), owner_);
        for (uint256 i = 0; i < executors_.length; ++i) {
            _setExecutor(executors_[i], true);
        }
        for (uint256 i = 0; i < factories_.length; ++i) {
            _setFactory(factories_[i].kind, factories_[i].factory, factories_[i].initCodeHash);
        }
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    receive() external payable {
        if (msg.sender != weth) revert TransferFailed(); // only WETH unwraps land here
    }

    // ------------------------------------------------------------------ the hot path

    /// @notice Execute the cycle `tokenIn --hops--> tokenIn` with `amountIn`.
    /// @param flash borrow the first hop's output from its pool (no inventory needed) when true;
    ///        otherwise spend `amountIn` of the contract's own `tokenIn`.
    /// @param coinbaseBps share of the profit (basis points) paid to `block.coinbase` in native
    ///        token, unwrapped from WETH; only when tokenIn is WETH (skipped otherwise), 0 = none.
    /// @return profit the growth of this contract's `tokenIn` balance it keeps (after the coinbase share).
    function execute(
        address tokenIn,
        uint256 amountIn,
        uint256 minProfit,
        bool flash,
        Hop[] calldata hops,
        uint256 coinbaseBps
    ) external returns (uint256 profit) {
        if (!isExecutor[msg.sender]) revert NotExecutor();
        if (paused) revert ContractPaused();
        if (_tload(T_LOCK) != 0) revert Reentrancy();
        _tstore(T_LOCK, 1);
        uint256 n = hops.length;
        if (n == 0 || hops[n - 1].tokenOut != tokenIn) revert NotCycle();
        if (coinbaseBps > MAX_BPS) revert BadCoinbaseShare();
        if (amountIn == 0 || amountIn > uint256(type(int256).max)) revert BadHop(0);

        (address[] memory tokens, uint256[] memory start) = _snapshot(hops);
        uint256 nativeStart = address(this).balance;

        if (flash) {
            _flashFirstHop(tokenIn, amountIn, minProfit, hops);
        } else {
            _run(hops, 0, tokenIn, amountIn);
        }

        uint256 before = start[n - 1]; // tokens[n - 1] == tokenIn
        uint256 afterBal = _balanceOf(tokenIn);
        if (afterBal < before + minProfit) {
            revert ProfitTooLow(afterBal > before ? afterBal - before : 0, minProfit);
        }
        profit = afterBal - before;
        if (coinbaseBps != 0 && tokenIn == weth) {
            uint256 pay = (profit * coinbaseBps) / MAX_BPS;
            profit -= pay;
            if (profit < minProfit) revert ProfitTooLow(profit, minProfit);
            if (pay != 0) {
                IWETH(weth).withdraw(pay);
                (bool ok, ) = block.coinbase.call{value: pay}("");
                if (!ok) revert TransferFailed();
                emit CoinbasePaid(block.coinbase, pay);
            }
        }
        // The balance rule, after every external call: nothing the contract held is spent.
        start[n - 1] = before + profit;
        _requireNoLoss(tokens, start);
        if (address(this).balance < nativeStart) {
            revert BalanceDecreased(address(0), nativeStart, address(this).balance);
        }
        _tstore(T_LOCK, 0);
        emit Executed(tokenIn, amountIn, profit);
    }

    // ------------------------------------------------------------------ callbacks

    /// @dev V2 flash swap callback: the first pair sent us hops[0]'s output optimistically.
    ///      Accepted only from the pair we called, with the amounts and data we passed.
    function uniswapV2Call(address sender, uint256 amount0, uint256 amount1, bytes calldata data) external {
        bytes32 expected = _tload32(T_V2_BINDING);
        if (
            expected == 0 || sender != address(this)
                || keccak256(abi.encode(msg.sender, amount0, amount1, keccak256(data))) != expected
        ) revert BadCallback();
        _tstore(T_V2_BINDING, 0);
        (uint256 amountIn, uint256 minProfit, Hop[] memory hops) = abi.decode(data, (uint256, uint256, Hop[]));
        uint256 back = _run(hops, 1, hops[0].tokenOut, amount0 + amount1);
        // Checked before repaying so a stale cycle fails on the profit guard, not on a transfer.
        _requireProfit(back, amountIn, minProfit);
        // Paying exactly the sized input restores K (the output was derived from it).
        _transfer(hops[hops.length - 1].tokenOut, msg.sender, amountIn);
    }

    /// @dev V3 swap callback: pay the bound pool what it asks, in the bound token, at most the
    ///      bound amount. With data (flash first hop) run the rest of the cycle before paying.
    function uniswapV3SwapCallback(int256 amount0Delta, int256 amount1Delta, bytes calldata data) external {
        bytes32 expected = _tload32(T_V3_BINDING);
        if (expected == 0 || keccak256(abi.encode(msg.sender, keccak256(data))) != expected) revert BadCallback();
        _tstore(T_V3_BINDING, 0);
        address payToken = address(uint160(_tload(T_V3_PAY_TOKEN)));
        uint256 maxPay = _tload(T_V3_MAX_PAY);
        (int256 owedDelta, int256 gotDelta) = amount0Delta > 0 ? (amount0Delta, amount1Delta) : (amount1Delta, amount0Delta);
        if (owedDelta <= 0 || uint256(owedDelta) > maxPay) revert BadCallback();
        uint256 owed = uint256(owedDelta);
        if (data.length > 0) {
            if (gotDelta >= 0) revert BadCallback();
            (, uint256 minProfit, Hop[] memory hops) = abi.decode(data, (uint256, uint256, Hop[]));
            uint256 back = _run(hops, 1, hops[0].tokenOut, uint256(-gotDelta));
            _requireProfit(back, owed, minProfit);
        }
        _transfer(payToken, msg.sender, owed);
    }

    // ------------------------------------------------------------------ owner (cold key)

    /// @notice Move tokens (profit, inventory) out of the contract; token 0 = native.
    function withdraw(address token, address to, uint256 amount) external onlyOwner {
        if (token == address(0)) {
            (bool ok, ) = to.call{value: amount}("");
            if (!ok) revert TransferFailed();
        } else {
            _transfer(token, to, amount);
        }
        emit Withdrawn(token, to, amount);
    }

    function setExecutor(address account, bool allowed) external onlyOwner {
        _setExecutor(account, allowed);
    }

    /// @notice Accept CREATE2 children of `factory` with `initCodeHash` as pools of `kind`.
    function addFactory(uint8 kind, address factory, bytes32 initCodeHash) external onlyOwner {
        if (initCodeHash == 0) revert BadKind();
        _setFactory(kind, factory, initCodeHash);
    }

    function removeFactory(uint8 kind, address factory) external onlyOwner {
        _setFactory(kind, factory, 0);
    }

    /// @notice Stop every execute(); the owner or any executor may pull it (an operator's
    ///         emergency brake), only the owner releases it.
    function pause() external {
        if (msg.sender != owner && !isExecutor[msg.sender]) revert NotExecutor();
        paused = true;
        emit PauseSet(msg.sender, true);
    }

    function unpause() external onlyOwner {
        paused = false;
        emit PauseSet(msg.sender, false);
    }

    /// @notice Two-step ownership transfer: the new owner must accept (no typo loses the contract).
    function transferOwnership(address newOwner) external onlyOwner {
        pendingOwner = newOwner;
        emit OwnershipTransferStarted(owner, newOwner);
    }

    function acceptOwnership() external {
        if (msg.sender != pendingOwner) revert NotOwner();
        emit OwnershipTransferred(owner, msg.sender);
        owner = msg.sender;
        pendingOwner = address(0);
    }

    // ------------------------------------------------------------------ internals

    function _setExecutor(address account, bool allowed) internal {
        isExecutor[account] = allowed;
        emit ExecutorSet(account, allowed);
    }

    function _setFactory(uint8 kind, address factory, bytes32 initCodeHash) internal {
        if (kind == KIND_V2) {
            v2InitCodeHash[factory] = initCodeHash;
        } else if (kind == KIND_V3) {
            v3InitCodeHash[factory] = initCodeHash;
        } else {
            revert BadKind();
        }
        emit FactorySet(kind, factory, initCodeHash);
    }

    /// @dev Every hop's tokenOut (the last is tokenIn) and this contract's balance of it.
    function _snapshot(Hop[] calldata hops) internal view returns (address[] memory tokens, uint256[] memory start) {
        uint256 n = hops.length;
        tokens = new address[](n);
        start = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            address t = hops[i].tokenOut;
            tokens[i] = t;
            start[i] = _balanceOf(t);
        }
    }

    function _requireNoLoss(address[] memory tokens, uint256[] memory start) internal view {
        for (uint256 i = 0; i < tokens.length; ++i) {
            uint256 bal = _balanceOf(tokens[i]);
            if (bal < start[i]) revert BalanceDecreased(tokens[i], start[i], bal);
        }
    }

    function _flashFirstHop(address tokenIn, uint256 amountIn, uint256 minProfit, Hop[] calldata hops) internal {
        Hop calldata h = hops[0];
        bytes memory data = abi.encode(amountIn, minProfit, hops);
        bool zeroForOne = tokenIn < h.tokenOut;
        if (h.kind == KIND_V2) {
            _checkV2Pair(h.pool, tokenIn, h.tokenOut, 0);
            uint256 out = _v2AmountOut(h.pool, zeroForOne, amountIn, h.fee);
            if (out < h.minOut) revert HopOutputTooLow(0, out);
            (uint256 a0, uint256 a1) = zeroForOne ? (uint256(0), out) : (out, uint256(0));
            _tstore(T_V2_BINDING, uint256(keccak256(abi.encode(h.pool, a0, a1, keccak256(data)))));
            IUniswapV2Pair(h.pool).swap(a0, a1, address(this), data);
            if (_tload(T_V2_BINDING) != 0) revert BadCallback(); // the pair never called back
        } else if (h.kind == KIND_V3) {
            _checkV3Pool(h.pool, tokenIn, h.tokenOut, h.fee, 0);
            (int256 a0, int256 a1) = _v3Swap(h.pool, address(this), zeroForOne, tokenIn, amountIn, data);
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
            _checkV2Pair(h.pool, tokenIn, h.tokenOut, i);
            if (!inputAtPool) _transfer(tokenIn, h.pool, amountIn);
            out = _v2AmountOut(h.pool, zeroForOne, amountIn, h.fee);
            IUniswapV2Pair(h.pool).swap(zeroForOne ? 0 : out, zeroForOne ? out : 0, to, "");
        } else if (h.kind == KIND_V3) {
            _checkV3Pool(h.pool, tokenIn, h.tokenOut, h.fee, i);
            if (amountIn > uint256(type(int256).max)) revert BadHop(i);
            (int256 a0, int256 a1) = _v3Swap(h.pool, to, zeroForOne, tokenIn, amountIn, "");
            out = uint256(-(zeroForOne ? a1 : a0));
        } else {
            revert BadHop(i);
        }
        if (out < h.minOut) revert HopOutputTooLow(i, out);
    }

    /// @dev Bind the callback to this pool and data, paid in `payToken`, at most `amountIn`;
    ///      a pool that returns without calling back leaves nothing bound.
    function _v3Swap(address pool, address to, bool zeroForOne, address payToken, uint256 amountIn, bytes memory data)
        internal
        returns (int256 a0, int256 a1)
    {
        _tstore(T_V3_BINDING, uint256(keccak256(abi.encode(pool, keccak256(data)))));
        _tstore(T_V3_PAY_TOKEN, uint256(uint160(payToken)));
        _tstore(T_V3_MAX_PAY, amountIn);
        (a0, a1) = IUniswapV3Pool(pool).swap(
            to, zeroForOne, int256(amountIn), zeroForOne ? MIN_SQRT_RATIO_PLUS_ONE : MAX_SQRT_RATIO_MINUS_ONE, data
        );
        if (_tload(T_V3_BINDING) != 0) revert BadCallback(); // the pool never called back
        // an output must be negative (paid to us) and no larger than int256 allows to negate
        if ((zeroForOne ? a1 : a0) > 0) revert BadCallback();
    }

    function _v2AmountOut(address pair, bool zeroForOne, uint256 amountIn, uint24 fee) internal view returns (uint256) {
        (uint112 r0, uint112 r1, ) = IUniswapV2Pair(pair).getReserves();
        (uint256 reserveIn, uint256 reserveOut) = zeroForOne ? (uint256(r0), uint256(r1)) : (uint256(r1), uint256(r0));
        uint256 inWithFee = amountIn * (1_000_000 - fee);
        return (inWithFee * reserveOut) / (reserveIn * 1_000_000 + inWithFee);
    }

    /// @dev The pool names its factory; CREATE2 from a registered (factory, init-code hash) proves it.
    function _factoryOf(address pool, uint256 i) internal view returns (address factory) {
        (bool ok, bytes memory ret) = pool.staticcall(abi.encodeWithSelector(IPoolFactory.factory.selector));
        if (!ok || ret.length != 32) revert BadHop(i);
        uint256 word = abi.decode(ret, (uint256));
        if (word >> 160 != 0) revert BadHop(i);
        factory = address(uint160(word));
    }

    function _checkV2Pair(address pair, address tokenA, address tokenB, uint256 i) internal view {
        address factory = _factoryOf(pair, i);
        bytes32 initCodeHash = v2InitCodeHash[factory];
        if (initCodeHash == 0) revert BadHop(i);
        (address t0, address t1) = tokenA < tokenB ? (tokenA, tokenB) : (tokenB, tokenA);
        if (_create2(factory, keccak256(abi.encodePacked(t0, t1)), initCodeHash) != pair) revert BadHop(i);
    }

    function _checkV3Pool(address pool, address tokenA, address tokenB, uint24 fee, uint256 i) internal view {
        address factory = _factoryOf(pool, i);
        bytes32 initCodeHash = v3InitCodeHash[factory];
        if (initCodeHash == 0) revert BadHop(i);
        (address t0, address t1) = tokenA < tokenB ? (tokenA, tokenB) : (tokenB, tokenA);
        if (_create2(factory, keccak256(abi.encode(t0, t1, fee)), initCodeHash) != pool) revert BadHop(i);
    }

    function _create2(address factory, bytes32 salt, bytes32 initCodeHash) internal pure returns (address) {
        return address(uint160(uint256(keccak256(abi.encodePacked(hex"ff", factory, salt, initCodeHash)))));
    }

    function _tstore(uint256 slot, uint256 value) internal {
        assembly {
            tstore(slot, value)
        }
    }

    function _tload(uint256 slot) internal view returns (uint256 value) {
        assembly {
            value := tload(slot)
        }
    }

    function _tload32(uint256 slot) internal view returns (bytes32 value) {
        assembly {
            value := tload(slot)
        }
    }

    function _balanceOf(address token) internal view returns (uint256) {
        return IERC20Minimal(token).balanceOf(address(this));
    }

    /// @dev Tolerates tokens that return nothing (USDT style) as well as bool.
    function _transfer(address token, address to, uint256 amount) internal {
        (bool ok, bytes memory ret) = token.call(abi.encodeWithSelector(IERC20Minimal.transfer.selector, to, amount));
        if (!ok || (ret.length != 0 && (ret.length != 32 || !abi.decode(ret, (bool))))) revert TransferFailed();
    }
}

interface IERC20Minimal {
    function balanceOf(address) external view returns (uint256);
    function transfer(address to, uint256 amount) external returns (bool);
}

interface IWETH {
    function withdraw(uint256 amount) external;
}

interface IPoolFactory {
    function factory() external view returns (address);
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
