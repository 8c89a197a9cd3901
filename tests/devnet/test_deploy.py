"""The devnet deployment: every contract has code, the record is complete, pair addresses
follow Router02's hard-coded init-code hash, and V2 math equals Router02 on chain."""

from __future__ import annotations

import json
import random
import stat
from pathlib import Path

from eth_abi import decode

from arbbot.chain.tx import encode_call
from arbbot.devnet.anvil import Anvil
from arbbot.devnet.artifacts import load
from arbbot.devnet.deploy import create2_pair_address, v2_pair_init_code_hash, verify_deployment
from arbbot.devnet.record import Deployment
from arbbot.devnet.scenarios import v2_state
from arbbot.math.v2 import get_amounts_out

ROUTER02_INIT_CODE_HASH = "96e8ac4277198ff8b6f785478aa9a39f403cb768dd02cbee326c3e7da348845f"

Devnet = tuple[Anvil, Deployment, Path]


def test_every_recorded_contract_has_code(devnet: Devnet) -> None:
    anvil, dep, _ = devnet
    assert verify_deployment(anvil.rpc(), dep) == []


def test_record_is_complete(devnet: Devnet) -> None:
    anvil, dep, directory = devnet
    assert dep.chain_id == anvil.rpc().chain_id()
    genesis = anvil.rpc().call("eth_getBlockByNumber", ["0x0", False])["hash"]
    assert dep.genesis_hash == genesis.lower() and len(dep.genesis_hash) == 66
    assert [d["name"] for d in dep.dexes if d["kind"] == "v2"] == ["uniswap", "sushiswap"]
    assert all(d["fee_pips"] == 3000 and d["factory"] != d["router"] for d in dep.dexes if d["kind"] == "v2")
    symbols = [t["symbol"] for t in dep.tokens]
    assert "WETH" in symbols and len(symbols) >= 6
    assert all(t["decimals"] == 18 for t in dep.tokens)
    v2 = [p for p in dep.pools if p["kind"] == "v2"]
    assert len(v2) >= 12
    assert {p["dex"] for p in v2} == {"uniswap", "sushiswap"}
    assert any(dep.weth in (p["token0"], p["token1"]) for p in v2)
    assert all(p["token0"] < p["token1"] for p in v2)
    # the file round-trips to the same record
    assert Deployment.load(directory / "deployment.json") == dep
    assert json.loads((directory / "deployment.json").read_text())["executor"] == dep.executor


def test_signer_key_is_private_and_runs_the_executor(devnet: Devnet) -> None:
    """Roles split: the signer (hot) may run cycles, the deployer (cold) owns the contract."""
    anvil, dep, directory = devnet
    key_file = directory / "signer.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    owner = anvil.rpc().eth_call(dep.executor, encode_call("owner()"))
    assert "0x" + owner[-40:] == dep.deployer != dep.signer
    assert int(anvil.rpc().eth_call(dep.executor, encode_call("isExecutor(address)", [dep.signer])), 16) == 1
    assert int(anvil.rpc().eth_call(dep.executor, encode_call("isExecutor(address)", [dep.deployer])), 16) == 0
    assert int(anvil.rpc().call("eth_getBalance", [dep.signer, "latest"]), 16) > 10**21
    # the key never lands in the record
    assert key_file.read_text().strip()[2:] not in (directory / "deployment.json").read_text()


def test_pools_have_liquidity_at_reference_prices(devnet: Devnet) -> None:
    anvil, dep, _ = devnet
    prices = {t["address"]: t["price_usd"] for t in dep.tokens}
    for p in (p for p in dep.pools if p["kind"] == "v2"):
        s = v2_state(anvil.rpc(), p)
        assert s.reserve0 > 0 and s.reserve1 > 0
        implied = s.reserve1 / s.reserve0
        assert abs(implied / (prices[p["token0"]] / prices[p["token1"]]) - 1) < 1e-6


def test_pair_bytecode_hash_is_the_one_router02_hard_codes(devnet: Devnet) -> None:
    anvil, dep, _ = devnet
    assert v2_pair_init_code_hash().hex() == ROUTER02_INIT_CODE_HASH
    assert ROUTER02_INIT_CODE_HASH in load("UniswapV2Router02").bytecode
    for p in (p for p in dep.pools if p["kind"] == "v2"):
        factory = dep.dex(p["dex"])["factory"]
        assert create2_pair_address(factory, p["token1"], p["token0"], v2_pair_init_code_hash()) == p["address"]
        # and the factory agrees
        got = anvil.rpc().eth_call(factory, encode_call("getPair(address,address)", [p["token0"], p["token1"]]))
        assert "0x" + got[-40:] == p["address"]


def test_v2_math_equals_router02_get_amounts_out(devnet: Devnet) -> None:
    """Exact == against the genuine Router02 for a few hundred random swaps and paths."""
    anvil, dep, _ = devnet
    rpc = anvil.rpc()
    rng = random.Random(20240601)
    pools = [p for p in dep.pools if p["kind"] == "v2"]
    states = {p["address"]: v2_state(rpc, p) for p in pools}
    calls, expected = [], []
    for _ in range(600):
        dex = rng.choice(["uniswap", "sushiswap"])
        dex_pools = [p for p in pools if p["dex"] == dex]
        first = rng.choice(dex_pools)
        path = [first["token0"], first["token1"]] if rng.random() < 0.5 else [first["token1"], first["token0"]]
        hops = []
        for _hop in range(rng.choice([1, 1, 2, 3])):
            if len(hops) > 0:
                nxt = [p for p in dex_pools if path[-1] in (p["token0"], p["token1"])
                       and ({p["token0"], p["token1"]} - {path[-1]}).pop() not in path[-2:]]
                if not nxt:
                    break
                p = rng.choice(nxt)
                path.append(p["token1"] if path[-1] == p["token0"] else p["token0"])
            else:
                p = first
            s = states[p["address"]]
            r_in, r_out = (s.reserve0, s.reserve1) if path[-2] == s.token0 else (s.reserve1, s.reserve0)
            hops.append((r_in, r_out, 3000))
        r_in0 = hops[0][0]
        # from dust to a third of the reserve, log-uniform, plus edge values
        amount = rng.choice([1, 2, 997, 1000, int(10 ** rng.uniform(0, 1) * r_in0 // 3),
                             int(10 ** rng.uniform(0, len(str(r_in0)) - 1))])
        amount = max(1, amount)
        try:
            exp = get_amounts_out(amount, hops)
        except Exception:  # noqa: BLE001 - output rounds to 0 mid-path: the router reverts too
            continue
        if 0 in exp:
            continue
        router = dep.dex(dex)["router"]
        calls.append(("eth_call", [{"to": router, "data": encode_call("getAmountsOut(uint256,address[])",
                                                                      [amount, path])}, "latest"]))
        expected.append(exp)
    results = rpc.batch(calls)
    assert len(results) >= 300
    for raw, exp in zip(results, expected):
        got = list(decode(["uint256[]"], bytes.fromhex(raw[2:]))[0])
        assert got == exp
