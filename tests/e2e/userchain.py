"""A user's own chain for the end-to-end test of the command-line path
(``test_user_chain``), built by this test code and not by ``arbbot.devnet``: no
``deploy_contracts``, no ``deployment.json``, nothing registered in the database. arbbot
learns about it only through the commands an operator runs.

What it holds, all from the genuine npm artifacts, sent from anvil's unlocked account 0
(the fixture's own key; the bot's key is a separate one the node does not hold):

- the wrapped native token (WETH9's bytecode; the configuration calls it ``WNATIVE``),
  two ERC20 tokens ``ALPHA`` (1 WNATIVE = 100 ALPHA) and ``BETA`` (1 BETA = 1 ALPHA), and
  Multicall3 at an ordinary address (not the canonical one);
- ``uniswap-v2`` (a UniswapV2Factory): WNATIVE/ALPHA and ALPHA/BETA;
- ``uniswap-v3`` (a UniswapV3Factory with its NonfungiblePositionManager): WNATIVE/ALPHA
  at fee 3000, one wide position;
- after 50 empty blocks, ``sushiswap`` (a second UniswapV2Factory, the fork created late):
  WNATIVE/ALPHA and ALPHA/BETA, half as deep.

Every pool starts at the same prices, so nothing pays until a gap is planted
(``plant_gaps``). No cycle through an ALPHA/BETA pool can reach WNATIVE (BETA has no
WNATIVE pool), so the best cycle of the ALPHA/BETA gap starts at ALPHA, a token other than
the native one; BETA has a native price only through ALPHA.

``Miner`` mines a block every ``interval`` seconds once the node's automine is off (the
chain's clock for the fleet), and can be held so that several transactions land in one
block.
"""

from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterator, Sequence

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import deploy_unlocked, encode_call, send_unlocked
from arbbot.devnet.artifacts import load
from tests.chain.devchain import DevChain, V2Pair

E18 = 10**18
MAX_UINT256 = 2**256 - 1
V2_INIT_CODE_HASH = "0x96e8ac4277198ff8b6f785478aa9a39f403cb768dd02cbee326c3e7da348845f"
V3_INIT_CODE_HASH = "0xe34f199b19b2b4f47f68442619d555527d244f78a3297ea89325f843f87b8b54"
V3_FEE = 3000
V3_TICK_SPACING = 60
ALPHA_PER_NATIVE = 100
LATE_DEX_DELAY_BLOCKS = 50


@dataclass
class UserChain:
    rpc: RpcClient
    deployer: str
    wnative: str
    alpha: str
    beta: str
    multicall3: str
    #: dex name -> {"factory", "kind", "start_block"}
    dexes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (dex name, "WNATIVE/ALPHA" | "ALPHA/BETA") -> pool address
    pools: dict[tuple[str, str], str] = field(default_factory=dict)
    dev: DevChain | None = None

    def pair(self, dex: str, name: str) -> V2Pair:
        assert self.dev is not None
        return self.dev.pairs[self.pools[(dex, name)]]

    def symbol_of(self, address: str) -> str:
        return {self.wnative: "WNATIVE", self.alpha: "ALPHA", self.beta: "BETA"}[address.lower()]


def _mined_block(rpc: RpcClient, address: str) -> int:
    """The block of the transaction that created ``address`` (the last block: automine)."""
    assert rpc.call("eth_getCode", [address, "latest"]) not in ("0x", "")
    return rpc.block_number()


def _sorted_amounts(p: V2Pair, amounts: dict[str, int]) -> tuple[int, int]:
    return amounts[p.token0], amounts[p.token1]


def build(rpc: RpcClient) -> UserChain:
    """Deploy the whole chain onto an automining anvil (see the module)."""
    dev = DevChain(rpc)
    me = dev.sender
    rpc.call("anvil_setBalance", [me, hex(10**30)])
    wnative = deploy_unlocked(rpc, me, load("WETH9").bytecode)
    send_unlocked(rpc, me, to=wnative, data=encode_call("deposit()"), value=10_000 * E18)
    alpha = dev.deploy_token("Alpha (user chain)", "ALPHA")
    beta = dev.deploy_token("Beta (user chain)", "BETA")
    chain = UserChain(rpc, me, wnative, alpha, beta, dev.deploy_multicall(), dev=dev)

    def v2_dex(name: str, native_depth: int, ab_depth: int) -> None:
        factory = dev.deploy_v2_factory()
        chain.dexes[name] = {"factory": factory, "kind": "v2", "start_block": _mined_block(rpc, factory)}
        wa = dev.create_pair(factory, wnative, alpha)
        dev.add_liquidity(wa, *_sorted_amounts(wa, {wnative: native_depth, alpha: native_depth * ALPHA_PER_NATIVE}))
        ab = dev.create_pair(factory, alpha, beta)
        dev.add_liquidity(ab, *_sorted_amounts(ab, {alpha: ab_depth, beta: ab_depth}))
        chain.pools[(name, "WNATIVE/ALPHA")] = wa.address
        chain.pools[(name, "ALPHA/BETA")] = ab.address

    v2_dex("uniswap-v2", 100 * E18, 4_000 * E18)

    v3_factory = deploy_unlocked(rpc, me, load("UniswapV3Factory").bytecode)
    chain.dexes["uniswap-v3"] = {"factory": v3_factory, "kind": "v3", "start_block": _mined_block(rpc, v3_factory)}
    npm = deploy_unlocked(rpc, me, load("NonfungiblePositionManager").bytecode,
                          ["address", "address", "address"], [v3_factory, wnative, "0x" + "00" * 20])
    chain.pools[("uniswap-v3", "WNATIVE/ALPHA")] = _v3_pool(rpc, me, v3_factory, npm, wnative, alpha)

    # The fork arrives later: its factory's first block is 50 blocks after the rest.
    rpc.call("anvil_mine", [hex(LATE_DEX_DELAY_BLOCKS)])
    v2_dex("sushiswap", 50 * E18, 2_000 * E18)
    return chain


def _v3_pool(rpc: RpcClient, me: str, factory: str, npm: str, wnative: str, alpha: str) -> str:
    """WNATIVE/ALPHA at fee 3000 at the V2 pools' price, one position of +-6000 ticks."""
    t0, t1 = sorted((wnative, alpha), key=lambda a: int(a, 16))
    price = Fraction(ALPHA_PER_NATIVE) if t0 == wnative else Fraction(1, ALPHA_PER_NATIVE)  # token1 per token0
    sqrt_price = math.isqrt(price.numerator * 2**192 // price.denominator)
    send_unlocked(rpc, me, to=npm, gas=6_000_000, data=encode_call(
        "createAndInitializePoolIfNecessary(address,address,uint24,uint160)", [t0, t1, V3_FEE, sqrt_price]))
    pool = "0x" + rpc.eth_call(factory, encode_call("getPool(address,address,uint24)", [t0, t1, V3_FEE]))[-40:]
    tick = int(math.log(float(price)) / math.log(1.0001))
    lower = (tick - 6000) // V3_TICK_SPACING * V3_TICK_SPACING
    upper = (tick + 6000) // V3_TICK_SPACING * V3_TICK_SPACING
    want = {wnative: 60 * E18, alpha: 60 * E18 * ALPHA_PER_NATIVE}
    for t in (t0, t1):
        send_unlocked(rpc, me, to=t, data=encode_call("approve(address,uint256)", [npm, MAX_UINT256]))
    params = (t0, t1, V3_FEE, lower, upper, want[t0], want[t1], 0, 0, me, 2**64)
    send_unlocked(rpc, me, to=npm, gas=2_000_000, data=encode_call(
        "mint((address,address,uint24,int24,int24,uint256,uint256,uint256,uint256,address,uint256))", [params]))
    assert int(rpc.eth_call(pool, encode_call("liquidity()")), 16) > 0
    return pool.lower()


def config_yaml(chain: UserChain, rpc_url: str, chain_id: int) -> str:
    """The operator's configuration file for this chain (mode dry-run: live is chosen later)."""
    dexes = "\n".join(
        f"      - {{name: {name}, kind: {d['kind']}, factory: \"{d['factory']}\", "
        f"init_code_hash: \"{V2_INIT_CODE_HASH if d['kind'] == 'v2' else V3_INIT_CODE_HASH}\", "
        f"fee_pips: 3000, start_block: {d['start_block']}}}"
        for name, d in chain.dexes.items()
    )
    return f"""\
# a user's own chain: arbbot.devnet did not build it
chains:
  - chain_id: {chain_id}
    name: userchain
    rpc_urls: ["{rpc_url}"]
    multicall3: "{chain.multicall3}"
    weth: "{chain.wnative}"
    mode: dry-run
    confirmations: 1
    dexes:
{dexes}
    tokens:
      - {{address: "{chain.wnative}", symbol: WNATIVE, decimals: 18}}
      - {{address: "{chain.alpha}", symbol: ALPHA, decimals: 18}}
      - {{address: "{chain.beta}", symbol: BETA, decimals: 18}}
    strategy:
      max_hops: 3
      margin: "1.5"
      max_amount_in:
        "{chain.wnative}": "{100 * E18}"
        "{chain.alpha}": "{10_000 * E18}"
      max_fee_per_gas_wei: 100000000000
"""


def gap_txs(chain: UserChain, dex: str, name: str, sell: str, pct: float) -> list[dict[str, Any]]:
    """Transactions making ``sell`` about ``pct`` % cheaper on ``dex``'s pair ``name`` (one
    swap straight through the pair: transfer, then ``swap``)."""
    assert chain.dev is not None
    chain.dev.resync_mirror()
    p = chain.pair(dex, name)
    reserve = p.reserve0 if sell == p.token0 else p.reserve1
    amount = int(reserve * (1 / math.sqrt(1 - pct / 100) - 1))
    return chain.dev.swap_txs(p, sell == p.token0, amount)


class Miner:
    """Mines a block every ``interval`` seconds on a node whose automine is off."""

    def __init__(self, url: str, interval: float) -> None:
        self.rpc = RpcClient(url, timeout_s=10)
        self.interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="user-chain-miner", daemon=True)

    def start(self) -> Miner:
        self.rpc.call("evm_setAutomine", [False])
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                self.rpc.call("evm_mine")

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """No block is mined by the clock inside this (mine with ``mine_now``)."""
        with self._lock:
            yield

    def send_in_one_block(self, sender: str, txs: Sequence[dict[str, Any]]) -> int:
        """Send ``txs`` from an unlocked account and mine them in one block; its number."""
        with self.held():
            nonce = int(self.rpc.call("eth_getTransactionCount", [sender, "pending"]), 16)
            hashes = [self.rpc.call("eth_sendTransaction", [{**t, "from": sender, "nonce": hex(nonce + i)}])
                      for i, t in enumerate(txs)]
            self.rpc.call("evm_mine")
            receipts = [self.rpc.call("eth_getTransactionReceipt", [h]) for h in hashes]
        assert all(r is not None and int(r["status"], 16) == 1 for r in receipts), receipts
        blocks = {int(r["blockNumber"], 16) for r in receipts}
        assert len(blocks) == 1, f"the transactions landed in blocks {sorted(blocks)}"
        return blocks.pop()
