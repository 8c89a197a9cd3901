// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

// Hostile contracts for tests/execution/test_executor_attacks.py: a malicious V2 "fork"
// (factory + pair, so its pairs pass the executor's CREATE2 check once an operator registers
// the factory), a contract that calls the executor's callbacks directly, and an ERC20 whose
// transfer calls back into the executor. Never deployed outside tests.

interface IExecutorCallbacks {
    function uniswapV2Call(address sender, uint256 amount0, uint256 amount1, bytes calldata data) external;
    function uniswapV3SwapCallback(int256 amount0Delta, int256 amount1Delta, bytes calldata data) external;
}

interface IERC20Like {
    function balanceOf(address) external view returns (uint256);
    function transfer(address to, uint256 amount) external returns (bool);
}

/// @notice A V2 fork factory whose pairs are EvilPairs, deployed by CREATE2 exactly like
///         UniswapV2Factory (salt = keccak(token0, token1)).
contract EvilFactory {
    mapping(address => mapping(address => address)) public getPair;

    function pairInitCodeHash() external pure returns (bytes32) {
        return keccak256(type(EvilPair).creationCode);
    }

    function createPair(address tokenA, address tokenB) external returns (address pair) {
        (address t0, address t1) = tokenA < tokenB ? (tokenA, tokenB) : (tokenB, tokenA);
        pair = address(new EvilPair{salt: keccak256(abi.encodePacked(t0, t1))}());
        EvilPair(pair).initialize(t0, t1, msg.sender);
        getPair[t0][t1] = pair;
        getPair[t1][t0] = pair;
    }
}

/// @notice Looks like a UniswapV2Pair (factory, token0/1, getReserves, swap) but its swap does
///         whatever the attacker configured:
///         MODE_NEVER_PAY   keep the input, send nothing (a later hop that never pays);
///         MODE_REPLAY      call uniswapV2Call back with exactly the arguments received but
///                          without sending the borrowed output first (an unpaid flash);
///         MODE_FORGE       call `target` with `payload` (forged uniswapV2Call/V3 callback);
///         MODE_PAY         behave: send the requested outputs from its own balance.
///         `bubble` makes a failed callback revert the swap; otherwise the failure is swallowed.
contract EvilPair {
    uint8 public constant MODE_NEVER_PAY = 0;
    uint8 public constant MODE_REPLAY = 1;
    uint8 public constant MODE_FORGE = 2;
    uint8 public constant MODE_PAY = 3;

    address public factory;
    address public token0;
    address public token1;
    address public attacker;
    uint112 internal reserve0;
    uint112 internal reserve1;
    uint8 public mode;
    bool public bubble;
    address public target;
    bytes public payload;

    constructor() {
        factory = msg.sender;
    }

    function initialize(address t0, address t1, address attacker_) external {
        require(msg.sender == factory, "factory only");
        (token0, token1, attacker) = (t0, t1, attacker_);
    }

    function configure(uint112 r0, uint112 r1, uint8 mode_, bool bubble_, address target_, bytes calldata payload_)
        external
    {
        require(msg.sender == attacker, "attacker only");
        (reserve0, reserve1, mode, bubble, target, payload) = (r0, r1, mode_, bubble_, target_, payload_);
    }

    /// @dev Lie about the factory (a pair not created by the factory it names).
    function setFactory(address f) external {
        require(msg.sender == attacker, "attacker only");
        factory = f;
    }

    function getReserves() external view returns (uint112, uint112, uint32) {
        return (reserve0, reserve1, 0);
    }

    function swap(uint256 amount0Out, uint256 amount1Out, address to, bytes calldata data) external {
        if (mode == MODE_PAY) {
            if (amount0Out > 0) IERC20Like(token0).transfer(to, amount0Out);
            if (amount1Out > 0) IERC20Like(token1).transfer(to, amount1Out);
            if (data.length > 0) IExecutorCallbacks(to).uniswapV2Call(msg.sender, amount0Out, amount1Out, data);
            return;
        }
        if (mode == MODE_NEVER_PAY) return;
        bytes memory call_ = mode == MODE_REPLAY
            ? abi.encodeCall(IExecutorCallbacks.uniswapV2Call, (msg.sender, amount0Out, amount1Out, data))
            : payload;
        address callee = mode == MODE_REPLAY ? msg.sender : target;
        (bool ok, bytes memory ret) = callee.call(call_);
        if (!ok && bubble) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
    }

    /// @notice The loot: everything this pair holds of `token` to the attacker.
    function sweep(address token) external {
        IERC20Like(token).transfer(attacker, IERC20Like(token).balanceOf(address(this)));
    }
}

/// @notice Calls anything with anything and bubbles the revert (a contract, not an EOA, forging
///         a callback).
contract DirectCaller {
    function call(address target, bytes calldata data) external returns (bytes memory) {
        (bool ok, bytes memory ret) = target.call(data);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        return ret;
    }
}

/// @notice A minimal ERC20 whose every transfer, while armed, makes the configured calls
///         (e.g. into the executor) and records how each ended; the first round only.
contract HookToken {
    string public constant name = "Hook";
    string public constant symbol = "HOOK";
    uint8 public constant decimals = 18;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    address[] internal targets;
    bytes[] internal payloads;
    bool public armed;
    bool internal inHook;
    uint256 public hookRuns;
    bool[] public resultOk;
    bytes[] public resultData;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    function mint(address to, uint256 amount) external {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function arm(address[] calldata targets_, bytes[] calldata payloads_) external {
        targets = targets_;
        delete payloads;
        for (uint256 i = 0; i < payloads_.length; ++i) {
            payloads.push(payloads_[i]);
        }
        armed = true;
    }

    function results() external view returns (uint256 runs, bool[] memory ok, bytes[] memory data) {
        return (hookRuns, resultOk, resultData);
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 a = allowance[from][msg.sender];
        if (a != type(uint256).max) allowance[from][msg.sender] = a - amount;
        _move(from, to, amount);
        return true;
    }

    function _move(address from, address to, uint256 amount) internal {
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
        if (armed && !inHook) {
            inHook = true;
            hookRuns += 1;
            for (uint256 i = 0; i < targets.length; ++i) {
                (bool ok, bytes memory ret) = targets[i].call(payloads[i]);
                if (hookRuns == 1) {
                    resultOk.push(ok);
                    resultData.push(ret);
                }
            }
            inHook = false;
        }
    }
}

/// @notice A V3 fork factory whose pools are EvilV3Pools, CREATE2 salt keccak(abi.encode(t0, t1, fee)).
contract EvilV3Factory {
    function poolInitCodeHash() external pure returns (bytes32) {
        return keccak256(type(EvilV3Pool).creationCode);
    }

    function createPool(address tokenA, address tokenB, uint24 fee) external returns (address pool) {
        (address t0, address t1) = tokenA < tokenB ? (tokenA, tokenB) : (tokenB, tokenA);
        pool = address(new EvilV3Pool{salt: keccak256(abi.encode(t0, t1, fee))}());
        EvilV3Pool(pool).initialize(t0, t1, fee, msg.sender);
    }
}

/// @notice Looks like a UniswapV3Pool to the executor; its swap, by mode:
///         V3_FORGE       calls the V3 callback with the configured deltas and data;
///         V3_OVERCHARGE  calls it with our data but asks twice the input;
///         V3_NO_CALLBACK never calls back (takes nothing, is owed nothing).
///         Then it returns the configured deltas (what it claims) and really sends the output
///         it claims when it holds that much (so a forged route can look profitable).
contract EvilV3Pool {
    uint8 public constant V3_FORGE = 0;
    uint8 public constant V3_OVERCHARGE = 1;
    uint8 public constant V3_NO_CALLBACK = 2;

    address public factory;
    address public token0;
    address public token1;
    uint24 public fee;
    address public attacker;
    uint8 public mode;
    int256 public cb0;
    int256 public cb1;
    int256 public ret0;
    int256 public ret1;
    bytes public payload;

    constructor() {
        factory = msg.sender;
    }

    function initialize(address t0, address t1, uint24 fee_, address attacker_) external {
        require(msg.sender == factory, "factory only");
        (token0, token1, fee, attacker) = (t0, t1, fee_, attacker_);
    }

    function configure(uint8 mode_, int256 cb0_, int256 cb1_, int256 ret0_, int256 ret1_, bytes calldata payload_)
        external
    {
        require(msg.sender == attacker, "attacker only");
        (mode, cb0, cb1, ret0, ret1, payload) = (mode_, cb0_, cb1_, ret0_, ret1_, payload_);
    }

    function swap(address recipient, bool zeroForOne, int256 amountSpecified, uint160, bytes calldata data)
        external
        returns (int256, int256)
    {
        if (mode == V3_FORGE) {
            IExecutorCallbacks(msg.sender).uniswapV3SwapCallback(cb0, cb1, payload);
        } else if (mode == V3_OVERCHARGE) {
            int256 twice = 2 * amountSpecified;
            IExecutorCallbacks(msg.sender).uniswapV3SwapCallback(zeroForOne ? twice : cb0, zeroForOne ? cb1 : twice, data);
        }
        (address outToken, int256 out) = zeroForOne ? (token1, ret1) : (token0, ret0);
        if (out < 0 && IERC20Like(outToken).balanceOf(address(this)) >= uint256(-out)) {
            IERC20Like(outToken).transfer(recipient, uint256(-out));
        }
        return (ret0, ret1);
    }
}
