"""Discovery: chunked eth_getLogs backfill that shrinks on a refusing node (a proxy with a
public provider's range limit and wire format), and token registration that survives
bytes32 symbols, reverting calls and garbage."""

from __future__ import annotations

import pytest

from arbbot.chain.discovery import Factory, discover_pools, get_logs_chunked, PAIR_CREATED
from arbbot.chain.multicall import Multicaller
from arbbot.chain.rpc import RpcClient
from arbbot.chain.scanner import Scanner, ScannerConfig
from arbbot.chain.token_registry import read_tokens
from arbbot.chain.tx import deploy_unlocked, encode_call
from arbbot.errors import RpcError
from tests.chain.devchain import ODD_TOKENS_SOL, DevChain, RpcProxy, compile_solidity


def _spread_pairs(dev: DevChain, n_pairs: int, gap: int) -> tuple[str, list[str]]:
    factory = dev.deploy_v2_factory()
    tokens = [dev.deploy_token(f"Tok{i}", f"K{i}") for i in range(6)]
    combos = [(a, b) for i, a in enumerate(tokens) for b in tokens[i + 1 :]][:n_pairs]
    created = []
    for a, b in combos:
        dev.rpc.call("anvil_mine", [hex(gap)])
        created.append(dev.create_pair(factory, a, b).address)
    return factory, created


@pytest.mark.parametrize("style", ["infura", "generic"])
def test_backfill_shrinks_on_refusing_node(dev: DevChain, style: str) -> None:
    factory, created = _spread_pairs(dev, n_pairs=12, gap=100)
    head = dev.rpc.block_number()
    assert head > 1200
    proxy = RpcProxy(dev.rpc.url, max_log_range=100, style=style)
    try:
        rpc = RpcClient([proxy.url])
        stats: dict[str, int] = {}
        found = discover_pools(rpc, [Factory(factory, "v2")], 0, head, max_range=10_000, stats=stats)
        assert [p.address for p in found] == created
        assert all(p.kind == "v2" and p.factory == factory for p in found)
        assert proxy.refused > 0 and stats["refusals"] == proxy.refused
        # a node that refuses even one block is an error, not an endless loop
        proxy.max_log_range = 0
        with pytest.raises(RpcError):
            get_logs_chunked(rpc, address=factory, topics=[PAIR_CREATED], from_block=0, to_block=10)
    finally:
        proxy.kill()


def test_odd_tokens_are_registered_without_crashing(dev: DevChain) -> None:
    code = compile_solidity(ODD_TOKENS_SOL)
    b32 = deploy_unlocked(dev.rpc, dev.sender, code["Bytes32SymbolToken"])
    rev = deploy_unlocked(dev.rpc, dev.sender, code["RevertingToken"])
    junk = deploy_unlocked(dev.rpc, dev.sender, code["GarbageToken"])
    eoa = "0x" + "77" * 20
    good = dev.deploy_token("Good", "GOOD")
    mc_addr = dev.deploy_multicall()
    toks = read_tokens(Multicaller(dev.rpc, mc_addr), [b32, rev, junk, eoa, good])
    assert (toks[b32].symbol, toks[b32].decimals) == ("MKR", 18)
    assert "bytes32" in toks[b32].problems[0]
    assert (toks[rev].symbol, toks[rev].decimals) == ("UNKNOWN", None)
    assert "symbol() reverted" in toks[rev].problems and "decimals() reverted" in toks[rev].problems
    assert (toks[junk].symbol, toks[junk].decimals) == ("UNKNOWN", None)
    assert (toks[eoa].symbol, toks[eoa].decimals) == ("UNKNOWN", None)
    assert (toks[good].symbol, toks[good].decimals, toks[good].problems) == ("GOOD", 18, ())

    # through the scanner: pairs with odd tokens, at bootstrap and while following
    factory = dev.deploy_v2_factory()
    dev.create_pair(factory, b32, good)
    scanner = Scanner(ScannerConfig(chain_id=31337, rpc_urls=(dev.rpc.url,), multicall=mc_addr,
                                    factories=(Factory(factory, "v2"),)))
    assert len(scanner.poll()[0].states) == 1
    dev.create_pair(factory, rev, junk)
    d = scanner.poll()
    assert len(d) == 1 and len(d[0].states) == 1
    assert scanner.tokens[rev].symbol == "UNKNOWN" and scanner.tokens[b32].symbol == "MKR"
    assert scanner.health()["healthy"]
    encode_call  # noqa: B018
