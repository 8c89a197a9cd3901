// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

interface IBridgeToken {
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
    function mint(address to, uint256 amount) external;
    function burnFrom(address from, uint256 amount) external;
}

/// @title DevBridge: arbbot's lock/mint bridge for the two-chain devnet.
/// @notice One contract per chain. On the canonical chain `send` locks the token in this
///         contract and `complete`/`refund` release it; on the other chain the token is a
///         bridged representation (an ERC20PresetMinterPauser whose minter role this
///         contract holds): `send` burns it and `complete`/`refund` mint it.
/// @dev Exactly-once by key: a `key` (the sender's idempotency key) is accepted once by
///      `send` on the source chain and completed once on the destination chain; `refund`
///      only returns a transfer that is still pending on its source chain. The relayer
///      (an off-chain process) must not both complete and refund a key: it decides a
///      transfer's fate once, from the key, and only this devnet trusts it to.
contract DevBridge {
    uint8 internal constant PENDING = 1;
    uint8 internal constant REFUNDED = 2;
    uint256 internal constant MAX_BPS = 10_000;

    struct Outbound {
        address sender;
        address token;
        uint256 amount; // taken from the sender (the fee included)
        uint8 state;
    }

    address public owner;
    address public relayer;
    uint16 public feeBps;
    bool public immutable canonical;

    mapping(bytes32 => Outbound) public outbound;
    mapping(bytes32 => bool) public completed;

    event Sent(bytes32 indexed key, address indexed sender, address token, address recipient, uint256 amountOut,
        uint256 fee, uint256 dstChainId);
    event Completed(bytes32 indexed key, address token, address recipient, uint256 amount);
    event Refunded(bytes32 indexed key, address sender, address token, uint256 amount);

    error NotOwner();
    error NotRelayer();
    error KeyUsed();
    error NotPending();
    error FeeTooHigh();

    constructor(bool canonical_, address relayer_, uint16 feeBps_) {
        if (feeBps_ > MAX_BPS) revert FeeTooHigh();
        owner = msg.sender;
        canonical = canonical_;
        relayer = relayer_;
        feeBps = feeBps_;
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    modifier onlyRelayer() {
        if (msg.sender != relayer) revert NotRelayer();
        _;
    }

    function setFee(uint16 feeBps_) external onlyOwner {
        if (feeBps_ > MAX_BPS) revert FeeTooHigh();
        feeBps = feeBps_;
    }

    function setRelayer(address relayer_) external onlyOwner {
        relayer = relayer_;
    }

    /// @notice Take `amount` of `token` from the caller; `recipient` gets `amount - fee`
    ///         of the token's counterpart on `dstChainId` once the relayer completes `key`.
    function send(bytes32 key, address token, uint256 amount, address recipient, uint256 dstChainId) external {
        if (outbound[key].state != 0) revert KeyUsed();
        uint256 fee = amount * feeBps / MAX_BPS; // rounds down: the sender never pays more than feeBps
        outbound[key] = Outbound(msg.sender, token, amount, PENDING);
        if (canonical) {
            require(IBridgeToken(token).transferFrom(msg.sender, address(this), amount), "transferFrom");
        } else {
            IBridgeToken(token).burnFrom(msg.sender, amount);
        }
        emit Sent(key, msg.sender, token, recipient, amount - fee, fee, dstChainId);
    }

    /// @notice Deliver the transfer `key` sent on the other chain.
    function complete(bytes32 key, address token, address recipient, uint256 amount) external onlyRelayer {
        if (completed[key]) revert KeyUsed();
        completed[key] = true;
        _pay(token, recipient, amount);
        emit Completed(key, token, recipient, amount);
    }

    /// @notice Return a pending transfer to its sender in full (the bridge failed it).
    function refund(bytes32 key) external onlyRelayer {
        Outbound storage o = outbound[key];
        if (o.state != PENDING) revert NotPending();
        o.state = REFUNDED;
        _pay(o.token, o.sender, o.amount);
        emit Refunded(key, o.sender, o.token, o.amount);
    }

    function _pay(address token, address to, uint256 amount) internal {
        if (canonical) {
            require(IBridgeToken(token).transfer(to, amount), "transfer");
        } else {
            IBridgeToken(token).mint(to, amount);
        }
    }
}
