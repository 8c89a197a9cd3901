"""Many transactions and many genuine Uniswap V2 pairs on an anvil devnet, fast.

Owns ``send_batched`` (transactions from an account the node holds unlocked, sent in
JSON-RPC batches with automine off, then mined with ``evm_mine`` until every one is in a
block, each receipt checked) and ``build_v2_pairs``: a market of N pairs made by the
genuine npm ``UniswapV2Factory`` (its ``createPair``, called by the genuine
``UniswapV2Router02.addLiquidity`` when the pair does not exist yet, which also mints the
first liquidity: one transaction per pair). Nothing is written to storage behind the
contracts' back; the pairs, their ``PairCreated`` logs and their reserves are the
factory's and the pairs' own. 20,000 pairs take about a minute on a 2-core machine
(``bench/scale``).

The reserves of each pair after its first ``addLiquidity`` are the amounts given, exactly
(the router's ``_addLiquidity`` takes the desired amounts as they are for an empty pair),
so ``V2Market`` knows every pair's reserves without reading them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import rlp  # type: ignore[import-untyped]  # shipped with eth-account
from eth_abi import encode
from eth_utils import keccak

from arbbot.chain.create2 import v2_pair_address
from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import deploy_unlocked, encode_call
from arbbot.devnet import artifacts
from arbbot.errors import ArbbotError

DEPLOYER = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"  # anvil account 0
UINT256_MAX = 2**256 - 1
_DEADLINE = 2**40  # far in the future: the router's `ensure(deadline)`
_MAX_BATCH_CHARS = 1_000_000  # calldata per JSON-RPC batch (contract creations are ~10 kB each)


def send_batched(
    rpc: RpcClient, sender: str, txs: Sequence[dict[str, Any]], *, mine: bool = True, chunk: int = 500
) -> str | None:
    """Send ``txs`` (dicts without ``from``/``nonce``: ``to``, ``data``, ``gas``...) from
    ``sender`` in order with explicit nonces, automine off, then mine until all are
    included (one block when they fit its gas limit). Raises ``ArbbotError`` naming the
    first reverted transaction. Returns the last block's hash (None with ``mine=False``:
    the transactions wait in the node's pool)."""
    if not txs:
        return None
    hashes: list[str] = []
    rpc.call("evm_setAutomine", [False])
    try:
        nonce = int(rpc.call("eth_getTransactionCount", [sender, "pending"]), 16)
        calls: list[tuple[str, Sequence[Any]]] = []
        size = 0
        for t in txs:
            calls.append(("eth_sendTransaction", [{**t, "from": sender, "nonce": hex(nonce)}]))
            nonce += 1
            size += len(t.get("data", ""))
            if len(calls) >= chunk or size >= _MAX_BATCH_CHARS:  # anvil refuses huge requests
                hashes += rpc.batch(calls)
                calls, size = [], 0
        if calls:
            hashes += rpc.batch(calls)
        if not mine:
            return None
        pending = hashes
        for _ in range(100_000):
            rpc.call("evm_mine", [])
            receipts: list[Any] = []
            for i in range(0, len(pending), 5_000):
                receipts += rpc.batch([("eth_getTransactionReceipt", [h]) for h in pending[i : i + 5_000]])
            failed = [r["transactionHash"] for r in receipts if r is not None and int(r["status"], 16) != 1]
            if failed:
                raise ArbbotError(f"{len(failed)} transaction(s) reverted, the first {failed[0]}")
            pending = [h for h, r in zip(pending, receipts) if r is None]
            if not pending:
                break
        else:
            raise ArbbotError(f"{len(pending)} transaction(s) never mined")
    finally:
        rpc.call("evm_setAutomine", [True])
    return str(rpc.call("eth_getBlockByNumber", ["latest", False])["hash"])


def pair_reserves(rpc: RpcClient, pairs: Sequence[str], block: str | int = "latest") -> dict[str, tuple[int, int]]:
    """``getReserves()`` of each pair at ``block`` by plain ``eth_call``s in JSON-RPC
    batches (no Multicall3: an independent reading to check a scanner against)."""
    tag = hex(block) if isinstance(block, int) else block
    out: dict[str, tuple[int, int]] = {}
    for i in range(0, len(pairs), 2000):
        part = pairs[i : i + 2000]
        got = rpc.batch([("eth_call", [{"to": p, "data": encode_call("getReserves()")}, tag]) for p in part])
        out.update({p: (int(r[2:66], 16), int(r[66:130], 16)) for p, r in zip(part, got)})
    return out


def create_address(sender: str, nonce: int) -> str:
    """The address a plain CREATE from ``sender`` at ``nonce`` deploys to."""
    return "0x" + keccak(rlp.encode([bytes.fromhex(sender[2:]), nonce]))[12:].hex()


@dataclass(frozen=True, slots=True)
class V2Pair:
    """A pair as ``build_v2_pairs`` made it: sorted tokens and its reserves right after."""

    address: str
    token0: str
    token1: str
    reserve0: int
    reserve1: int


@dataclass(frozen=True)
class V2Market:
    multicall: str
    factory: str
    router: str
    tokens: tuple[str, ...]
    pairs: tuple[V2Pair, ...]
    first_block: int  # the factory's deployment block (its start block)
    last_block: int  # the block the last pair's liquidity is in


def token_pairs(n_tokens: int, n_pairs: int) -> list[tuple[int, int]]:
    """``n_pairs`` distinct token index pairs: every token with token 0 first (a hub, like
    WETH), then the others in order; raises when ``n_tokens`` cannot make that many."""
    if n_pairs > n_tokens * (n_tokens - 1) // 2:
        raise ArbbotError(f"{n_tokens} tokens make at most {n_tokens * (n_tokens - 1) // 2} pairs, not {n_pairs}")
    combos = [(0, j) for j in range(1, n_tokens)]
    combos += [(i, j) for i in range(1, n_tokens) for j in range(i + 1, n_tokens)]
    return combos[:n_pairs]


def tokens_for(n_pairs: int) -> int:
    """The fewest tokens that make ``n_pairs`` distinct pairs."""
    n = 2
    while n * (n - 1) // 2 < n_pairs:
        n += 1
    return n


def build_v2_pairs(
    rpc: RpcClient,
    n_pairs: int,
    *,
    n_tokens: int | None = None,
    sender: str = DEPLOYER,
    seed: int = 1,
    per_block: int = 250,
    progress: Callable[[str], Any] | None = None,
) -> V2Market:
    """Deploy Multicall3, the genuine V2 factory and Router02, ``n_tokens`` ERC20s (the
    fewest that make ``n_pairs`` pairs when not given; minted to ``sender`` and approved to
    the router) and ``n_pairs`` pairs, each created and funded by one ``addLiquidity``
    with random depths (seeded). ``per_block`` transactions go in each mined batch. The
    node's block gas limit must hold ``per_block`` pair creations (~2.6M gas each)."""
    say = progress or (lambda _msg: None)
    rng = random.Random(seed)
    n_tokens = n_tokens or tokens_for(n_pairs)
    combos = token_pairs(n_tokens, n_pairs)
    multicall = deploy_unlocked(rpc, sender, artifacts.multicall3_bytecode())
    first_block = rpc.block_number() + 1
    factory = deploy_unlocked(rpc, sender, artifacts.load("UniswapV2Factory").bytecode, ["address"], [sender])
    art = artifacts.load("ERC20PresetMinterPauser")
    nonce0 = int(rpc.call("eth_getTransactionCount", [sender, "pending"]), 16)
    send_batched(rpc, sender, [
        {"data": art.bytecode + encode(["string", "string"], [f"Token{i}", f"T{i}"]).hex(), "gas": hex(3_000_000)}
        for i in range(n_tokens)
    ])
    tokens = tuple(create_address(sender, nonce0 + i) for i in range(n_tokens))
    # Router02's WETH is never used here (no ETH pairs); any address will do.
    router = deploy_unlocked(
        rpc, sender, artifacts.load("UniswapV2Router02").bytecode, ["address", "address"], [factory, tokens[0]]
    )
    send_batched(rpc, sender, [
        {"to": t, "data": data, "gas": hex(100_000)}
        for t in tokens
        for data in (encode_call("mint(address,uint256)", [sender, 10**50]),
                     encode_call("approve(address,uint256)", [router, UINT256_MAX]))
    ])
    say(f"{n_tokens} tokens, factory {factory}, router {router}")
    init_hash = keccak(bytes.fromhex(artifacts.load("UniswapV2Pair").bytecode[2:]))
    pairs: list[V2Pair] = []
    txs: list[dict[str, Any]] = []
    for i, j in combos:
        a, b = tokens[i], tokens[j]
        amount_a = 10**18 * rng.randint(1, 1_000_000)
        amount_b = 10**18 * rng.randint(1, 1_000_000)
        t0, t1 = sorted((a, b))
        r0, r1 = (amount_a, amount_b) if t0 == a else (amount_b, amount_a)
        addr = v2_pair_address(factory, init_hash, t0, t1)
        pairs.append(V2Pair(addr, t0, t1, r0, r1))
        txs.append({
            "to": router,
            "data": encode_call(
                "addLiquidity(address,address,uint256,uint256,uint256,uint256,address,uint256)",
                [a, b, amount_a, amount_b, 0, 0, sender, _DEADLINE],
            ),
            "gas": hex(3_500_000),
        })
    for k in range(0, len(txs), per_block):
        send_batched(rpc, sender, txs[k : k + per_block])
        if (k // per_block) % 20 == 19 or k + per_block >= len(txs):
            say(f"pairs {min(k + per_block, len(txs))}/{len(txs)}")
    return V2Market(multicall, factory, router, tokens, tuple(pairs), first_block, rpc.block_number())


__all__ = [
    "V2Market", "V2Pair", "build_v2_pairs", "create_address", "pair_reserves", "send_batched", "token_pairs",
    "tokens_for",
]
