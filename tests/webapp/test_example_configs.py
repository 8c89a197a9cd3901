"""The example configurations apply cleanly, and their factories and init-code hashes are
right: a well-known pool of each DEX on each chain is the CREATE2 address computed from the
configured factory, init-code hash and token pair (V3: the fee is in the salt).

The pool addresses are public facts, each seen in public code (cited per row); if a factory
or hash in an example were wrong, the computed address would differ."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from eth_utils import keccak

from arbbot.devnet.deploy import create2_pair_address, v2_pair_init_code_hash
from arbbot.devnet.v3 import POOL_INIT_CODE_HASH, compute_pool_address
from webapp.core import selectors, services
from webapp.core.models import Chain, Dex

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FILES = {"ethereum.yaml": 1, "base.yaml": 8453, "arbitrum.yaml": 42161}

USDC_ETH = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
WETH_ETH = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
WETH_BASE = "0x4200000000000000000000000000000000000006"
USDC_BASE = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
WETH_ARB = "0x82aF49447D8a07e3bd95BD0d56f35241523fBab1"
USDC_ARB = "0xaf88d065e77c8cC2239327C5EDb3A432268e5831"  # native USDC
USDCE_ARB = "0xFF970A61A04b1cA14834A43f5dE4533eBDDB5CC8"  # bridged USDC.e

# (chain, dex name, token a, token b, V3 fee or None, the pool's address, where it is cited)
WELL_KNOWN_POOLS = [
    (1, "uniswap-v2", USDC_ETH, WETH_ETH, None, "0xB4e16d0168e52d35CaCD2c6185b44281Ec28C9Dc",
     "the USDC/WETH pair, e.g. in Uniswap's v2 docs and countless arbitrage examples"),
    (1, "uniswap-v3", USDC_ETH, WETH_ETH, 500, "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640",
     "the USDC/WETH 0.05% pool, Uniswap's best-known V3 pool"),
    (1, "sushiswap", USDC_ETH, WETH_ETH, None, "0x397FF1542f962076d0BFE58eA045FfA2d347ACa0",
     "SushiSwap WETH/USDC, e.g. a `sushiPairs[\"WETH/USDC\"]` table in public Go code"),
    (8453, "uniswap-v2", WETH_BASE, USDC_BASE, None, "0x88A43bbDF9D098eEC7bCEda4e2494615dfD9bB9C",
     "Uniswap V2 USDC/WETH on Base, e.g. a `UNISWAP_USDC_WETH_POOL` constant for base.id"),
    (8453, "uniswap-v3", WETH_BASE, USDC_BASE, 500, "0xd0b53D9277642d899DF5C87A3966A349A798F224",
     "Uniswap V3 WETH/USDC 0.05% on Base, e.g. `POOL = ... // WETH/USDC 0.05%` in public Solidity"),
    (8453, "sushiswap", WETH_BASE, USDC_BASE, None, "0x2F8818D1B0f3e3E295440c1C0cDDf40aAA21fA87",
     "SushiSwap V2 WETH/USDC on Base, e.g. `SUSHI_PAIR = ... // WETH/USDC` in public Solidity tests"),
    (42161, "uniswap-v2", WETH_ARB, USDC_ARB, None, "0xF64Dfe17C8b87F012FCf50FbDA1D62bfA148366a",
     "Uniswap/v2-subgraph config/arbitrum-one/chain.ts STABLE_TOKEN_PAIRS (WETH/USDC)"),
    (42161, "uniswap-v3", WETH_ARB, USDC_ARB, 500, "0xC6962004f452bE9203591991D15f6b388e09E8D0",
     "Uniswap V3 WETH/USDC 0.05% on Arbitrum, e.g. a 'default market ETH/USDC pool' table"),
    (42161, "sushiswap", WETH_ARB, USDCE_ARB, None, "0x905dfCD5649217c42684f23958568e533C711Aa3",
     "SushiSwap WETH/USDC.e on Arbitrum, e.g. `// Sushi USDC/WETH` in public pool tables"),
]


def v3_pool_address(factory: str, token_a: str, token_b: str, fee: int, init_code_hash: bytes) -> str:
    """v3-periphery PoolAddress.computeAddress with a given init-code hash (so a wrong hash
    in the configuration shows; ``compute_pool_address`` has the genuine one built in)."""
    t0, t1 = sorted((token_a.lower(), token_b.lower()), key=lambda a: int(a, 16))
    salt = keccak(bytes(12) + bytes.fromhex(t0[2:]) + bytes(12) + bytes.fromhex(t1[2:]) + fee.to_bytes(32, "big"))
    return "0x" + keccak(b"\xff" + bytes.fromhex(factory[2:]) + salt + init_code_hash)[-20:].hex()


def load(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / name).read_text())


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(FILES))
def test_each_example_applies_in_dry_run(name: str) -> None:
    counts = services.config_apply(load(name), source=name)
    assert counts["chains"] == 1 and counts["dexes"] == 3 and counts["strategies"] == 1
    chain = Chain.objects.get(chain_id=FILES[name])
    assert chain.mode == "dry-run", "an example must never trade live by itself"
    assert chain.multicall3 == "0xca11bde05977b3631167028862be2a173976ca11"
    assert all(u.startswith("https://") for u in chain.rpc_url_list())
    assert all(u.startswith("wss://") for u in chain.ws_url_list())
    dexes = {d.name: d for d in Dex.objects.filter(chain=chain)}
    assert set(dexes) == {"uniswap-v2", "uniswap-v3", "sushiswap"}
    assert all(d.start_block > 0 and len(d.init_code_hash) == 66 for d in dexes.values())
    strategy = selectors.strategy_for(chain.chain_id)
    assert strategy.version == 1 and strategy.max_hops == 3 and chain.weth in strategy.start_tokens
    # Applying the same file again writes no new strategy version.
    assert services.config_apply(load(name))["strategies"] == 0


@pytest.mark.django_db
def test_the_examples_coexist_and_uniswap_hashes_are_the_genuine_bytecode_hashes() -> None:
    for name in FILES:
        services.config_apply(load(name))
    assert Chain.objects.count() == 3
    for dex in Dex.objects.filter(name="uniswap-v2"):
        assert bytes.fromhex(dex.init_code_hash[2:]) == v2_pair_init_code_hash()
    for dex in Dex.objects.filter(kind="v3"):
        assert bytes.fromhex(dex.init_code_hash[2:]) == POOL_INIT_CODE_HASH


@pytest.mark.django_db
@pytest.mark.parametrize(("chain_id", "dex_name", "token_a", "token_b", "fee", "pool", "source"), WELL_KNOWN_POOLS)
def test_a_well_known_pool_is_the_create2_address_of_the_configured_factory(
    chain_id: int, dex_name: str, token_a: str, token_b: str, fee: int | None, pool: str, source: str
) -> None:
    name = next(n for n, c in FILES.items() if c == chain_id)
    services.config_apply(load(name))
    dex = Dex.objects.get(chain__chain_id=chain_id, name=dex_name)
    init_code_hash = bytes.fromhex(dex.init_code_hash[2:])
    if fee is None:
        assert dex.kind == "v2"
        computed = create2_pair_address(dex.factory, token_a, token_b, init_code_hash)
        assert computed == create2_pair_address(dex.factory, token_b, token_a, init_code_hash)  # order-free
    else:
        assert dex.kind == "v3"
        computed = v3_pool_address(dex.factory, token_a, token_b, fee, init_code_hash)
        assert computed == compute_pool_address(dex.factory, token_a, token_b, fee)
    assert computed == pool.lower(), f"{name} {dex_name}: {source}"


def test_every_dex_of_every_example_is_checked_by_a_well_known_pool() -> None:
    covered = {(c, d) for c, d, *_ in WELL_KNOWN_POOLS}
    configured = {(FILES[n], d["name"]) for n in FILES for d in load(n)["chains"][0]["dexes"]}
    assert configured == covered
