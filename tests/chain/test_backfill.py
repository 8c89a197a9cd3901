"""Backfill in the core (no database): the chunk sizer, what counts as a node's refusal (the
real messages of geth, Infura, Alchemy and others), and a backfill over genuine Uniswap V2
and V3 factories on anvil behind a proxy that refuses ranges wider than N blocks the way
those nodes do: it completes, every pool once and in order, with its chunk shrunk."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from arbbot.chain.backfill import (
    BackfillConflict,
    ChunkSizer,
    MemoryLedger,
    Progress,
    backfill,
    refusal,
)
from arbbot.chain.discovery import Factory
from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import deploy_unlocked, encode_call, send_unlocked
from arbbot.devnet import artifacts
from arbbot.errors import ConfigError, RpcError
from tests.chain.devchain import DevChain, RpcProxy

# --------------------------------------------------------------------------- refusals as nodes send them

# (style, JSON-RPC error object for a refused range lo..hi, given the node's limit n)
REFUSALS: dict[str, Any] = {
    # geth / Infura: too many results, with (Infura) or without (geth) a suggested range
    "geth": lambda lo, hi, n: {"code": -32005, "message": "query returned more than 10000 results"},
    # geth with --rpc.rangelimit, and the public nodes built on it (publicnode, BSC)
    "geth-range": lambda lo, hi, n: {"code": -32000, "message": f"exceed maximum block range: {n}"},
    # Alchemy: too large a response, with the range that would work in the message
    "alchemy": lambda lo, hi, n: {
        "code": -32602,
        "message": "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range "
        "and no limit on the response size, or you can request any block range with a cap of 10K logs in the "
        f"response. Based on your parameters, this block range should work: [{hex(lo)}, {hex(lo + n - 1)}]",
    },
    # Ankr, QuickNode and others
    "too-wide": lambda lo, hi, n: {"code": -32600, "message": "block range is too wide"},
}


@pytest.mark.parametrize("style", sorted(REFUSALS))
def test_each_providers_refusal_is_recognised(style: str) -> None:
    err = REFUSALS[style](0x100, 0x900, 0x40)
    refused, suggested_to = refusal(RpcError(f"eth_getLogs: {err['message']}", code=err["code"]))
    assert refused
    assert suggested_to == (0x100 + 0x40 - 1 if style == "alchemy" else None)


def test_a_timeout_is_a_refusal_and_other_errors_are_not() -> None:
    # what RpcClient raises when the node does not answer in time
    assert refusal(RpcError("all RPC endpoints failed (127.0.0.1:8545): 127.0.0.1:8545: timeout after 30.0s"))[0]
    assert refusal(RpcError("eth_getLogs: Query timeout exceeded. Consider reducing your block range", code=-32002))[0]
    assert not refusal(RpcError("eth_getLogs: invalid argument 0: hex string without 0x prefix", code=-32602))[0]
    assert not refusal(RpcError("all RPC endpoints down (127.0.0.1:8545): ConnectionError"))[0]


# --------------------------------------------------------------------------- the chunk sizer


def test_the_chunk_halves_on_refusal_follows_a_suggestion_and_grows_back_bounded() -> None:
    s = ChunkSizer(max_size=1000, min_size=2, relax_after=4)
    assert s.size == 1000
    s.refused(1000)
    assert s.size == 500
    s.refused(500, suggested=120)  # the node named a range: take it
    assert s.size == 120
    s.refused(120, suggested=500)  # a "suggestion" larger than what was refused: halve instead
    assert s.size == 60
    for _ in range(3):
        s.succeeded()
    assert s.size == 60  # not above what was last accepted until the cap relaxes
    s.succeeded()
    assert s.size == 120  # after relax_after successes the cap doubles
    for _ in range(40):
        s.succeeded()
    assert s.size == 1000  # and never beyond the bound
    for _ in range(20):
        s.refused(s.size)
    assert s.size == 2  # nor below the floor
    with pytest.raises(ConfigError):
        ChunkSizer(max_size=0)


# --------------------------------------------------------------------------- on anvil


class RangeLimitProxy(RpcProxy):
    """``RpcProxy`` refusing ``eth_getLogs`` over more than ``max_log_range`` blocks in
    one of the ``REFUSALS`` styles; records every getLogs range it forwarded. With
    ``hold_from`` set, a getLogs starting at or after that block waits until ``release()``
    (so a test can stop a backfill at a known block without timing)."""

    def __init__(self, upstream: str, *, max_log_range: int | None = None, style: str = "geth") -> None:
        self.refusal_style = style
        self.ranges: list[tuple[int, int]] = []
        self.filters: list[dict[str, Any]] = []  # every eth_getLogs filter forwarded
        self.hold_from: int | None = None
        self.hold_address: str | None = None
        self.slow_s = 2.0  # style "slow": how long a too-wide range takes to answer
        self.held = threading.Event()  # set while a request waits at the hold
        self.held_from: int | None = None  # the first block of the request held
        self._release = threading.Event()
        super().__init__(upstream, max_log_range=max_log_range, style=style)

    def hold(self, from_block: int, address: str | None = None) -> None:
        """Hold getLogs from ``from_block`` on (of ``address`` only, when given)."""
        self._release.clear()
        self.held.clear()
        self.hold_address = address
        self.hold_from = from_block

    def release(self) -> None:
        self.hold_from = None
        self._release.set()

    def _refusal(self, req: dict[str, Any]) -> dict[str, Any] | None:
        if req.get("method") != "eth_getLogs" or "blockHash" in req["params"][0]:
            return None
        f = req["params"][0]
        lo, hi = int(f.get("fromBlock", "0x0"), 16), int(f.get("toBlock", "0x0"), 16)
        if self.hold_from is not None and lo >= self.hold_from and self.hold_address in (None, f.get("address")):
            self.held_from = lo
            self.held.set()
            self._release.wait(120)
        if self.max_log_range is not None and hi - lo + 1 > self.max_log_range:
            if self.refusal_style == "slow":  # a node that cannot answer a wide range in time
                with self._lock:
                    self.refused += 1
                self._release.wait(self.slow_s)
                return None
            with self._lock:
                self.refused += 1
            err = REFUSALS[self.refusal_style](lo, hi, self.max_log_range)
            return {"jsonrpc": "2.0", "id": req.get("id"), "error": err}
        with self._lock:
            self.ranges.append((lo, hi))
            self.filters.append(f)
        return None


@dataclass
class SpreadMarket:
    """Genuine Uniswap V2 and V3 factories with pools created in separate blocks."""

    v2: str
    v3: str
    v2_start: int
    v3_start: int
    tokens: list[str]
    pools: list[str] = field(default_factory=list)  # in creation order
    kinds: dict[str, str] = field(default_factory=dict)


def deploy_v3_factory(dev: DevChain) -> str:
    return deploy_unlocked(dev.rpc, dev.sender, artifacts.load("UniswapV3Factory").bytecode)


def create_v3_pool(dev: DevChain, factory: str, a: str, b: str, fee: int) -> str:
    receipt = send_unlocked(dev.rpc, dev.sender, to=factory,
                            data=encode_call("createPool(address,address,uint24)", [a, b, fee]))
    assert isinstance(receipt, dict)
    (log,) = [lg for lg in receipt["logs"] if lg["address"].lower() == factory]
    return "0x" + log["data"][-40:]


def spread_market(dev: DevChain, *, n_tokens: int = 7, gap: int = 25, v3_pools: int = 4) -> SpreadMarket:
    """``n_tokens`` tokens, a V2 pair for every two of them and ``v3_pools`` V3 pools, each
    created ``gap`` blocks after the one before."""
    dev.rpc.call("anvil_mine", [hex(10)])
    v2 = dev.deploy_v2_factory()
    v2_start = dev.rpc.block_number()
    v3 = deploy_v3_factory(dev)
    v3_start = dev.rpc.block_number()
    tokens = [dev.deploy_token(f"Spread{i}", f"S{i}") for i in range(n_tokens)]
    m = SpreadMarket(v2, v3, v2_start, v3_start, tokens)
    combos = [(a, b) for i, a in enumerate(tokens) for b in tokens[i + 1 :]]
    for k, (a, b) in enumerate(combos):
        dev.rpc.call("anvil_mine", [hex(gap)])
        m.pools.append(dev.create_pair(v2, a, b).address)
        m.kinds[m.pools[-1]] = "v2"
        if k < v3_pools:
            dev.rpc.call("anvil_mine", [hex(gap)])
            m.pools.append(create_v3_pool(dev, v3, a, b, 3000))
            m.kinds[m.pools[-1]] = "v3"
    dev.rpc.call("anvil_mine", [hex(gap)])
    return m


@pytest.mark.parametrize("style", sorted(REFUSALS) + ["slow"])
def test_backfill_behind_a_range_limited_node_completes_shrinking_its_chunk(dev: DevChain, style: str) -> None:
    m = spread_market(dev, n_tokens=5, gap=20, v3_pools=3)
    head = dev.rpc.block_number()
    limit = 64
    proxy = RangeLimitProxy(dev.rpc.url, max_log_range=limit, style=style)
    try:
        ledger = MemoryLedger()
        reports: list[Progress] = []
        factories = [Factory(m.v2, "v2", start_block=m.v2_start), Factory(m.v3, "v3", start_block=m.v3_start)]
        # "slow": a wide range times out at the client, which the backfill takes as a refusal
        rpc = RpcClient(proxy.url, timeout_s=0.3, retries=0) if style == "slow" else RpcClient(proxy.url)
        result = backfill(rpc, factories, ledger, to_block=head, max_chunk=1000 if style != "slow" else 200,
                          on_progress=reports.append)
    finally:
        proxy.release()  # wake the answers still being slow, while anvil is up
        proxy.kill()
    assert sorted(p.address for p in ledger.pools) == sorted(m.pools)
    assert len(ledger.pools) == len(m.pools)  # each once
    # in chain order per factory, each with what its creation log says
    v2_found = [p.address for p in ledger.pools if p.factory == m.v2]
    assert v2_found == [a for a in m.pools if m.kinds[a] == "v2"]
    v3 = [p for p in ledger.pools if p.factory == m.v3]
    assert [p.address for p in v3] == [a for a in m.pools if m.kinds[a] == "v3"]
    assert all(p.kind == "v3" and p.fee_pips == 3000 and p.tick_spacing == 60 for p in v3)
    assert ledger.cursors == {m.v2: head, m.v3: head}
    # the node refused, the chunk shrank to what it accepts, and no refused range was lost
    assert proxy.refused > 0 and result.refusals == proxy.refused
    assert all(hi - lo + 1 <= limit for lo, hi in proxy.ranges)
    if style == "slow":
        assert result.refusals < 10  # the chunk stays small once shrunk: not a timeout per chunk
    covered = sorted(proxy.ranges)
    assert covered[0][0] == m.v2_start and covered[-1][1] == head
    per_factory_blocks = (head - m.v2_start + 1) + (head - m.v3_start + 1)
    assert sum(hi - lo + 1 for lo, hi in covered) == per_factory_blocks == result.blocks
    # progress: monotonic, ends at the total, with a rate and an ETA
    assert [r.blocks_done for r in reports] == sorted(r.blocks_done for r in reports)
    assert reports[-1].blocks_done == reports[-1].blocks_total == per_factory_blocks
    assert reports[-1].pools_found == len(m.pools)
    assert reports[-1].rate_bps > 0 and reports[-1].eta_s == 0


def test_backfill_resumes_after_its_cursor_and_a_moved_cursor_is_refused(dev: DevChain) -> None:
    m = spread_market(dev, n_tokens=4, gap=10, v3_pools=0)
    head = dev.rpc.block_number()
    mid = (m.v2_start + head) // 2
    ledger = MemoryLedger()
    f = Factory(m.v2, "v2", start_block=m.v2_start)
    first = backfill(dev.rpc, [f], ledger, to_block=mid, max_chunk=7)
    second = backfill(dev.rpc, [f], ledger, to_block=head, max_chunk=7)
    assert first.blocks + second.blocks == head - m.v2_start + 1
    assert [p.address for p in ledger.pools] == m.pools
    assert backfill(dev.rpc, [f], ledger, to_block=head).blocks == 0  # nothing left
    with pytest.raises(BackfillConflict):
        ledger.record(m.v2, head - 5, head, [])


def test_a_node_refusing_even_one_block_is_an_error_not_a_loop(dev: DevChain) -> None:
    m = spread_market(dev, n_tokens=3, gap=5, v3_pools=0)
    proxy = RangeLimitProxy(dev.rpc.url, max_log_range=0, style="geth-range")
    try:
        ledger = MemoryLedger()
        with pytest.raises(RpcError, match="refused even 1 block"):
            backfill(RpcClient(proxy.url), [Factory(m.v2, "v2", start_block=m.v2_start)], ledger,
                     to_block=dev.rpc.block_number(), max_chunk=16)
        assert ledger.pools == [] and ledger.cursors == {}
    finally:
        proxy.kill()

