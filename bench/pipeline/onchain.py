"""The pipeline bench's market on its devnet: each of the market's pools (``market.build``)
is, at its address, the code of the pool it stands for, with the state the hot state holds,
and each token the code of an ERC20; the bench's DEXes are registered on the executor. The
execute stage's re-validation (``eth_call`` of the exact executor calldata) then runs the
executor's code through real pool and token code on the state the path stage sized on,
as on a real chain: it succeeds (the decision is ``simulated``, in dry-run) or reverts for
a reason of its own. Without this every re-validation reverted at the first hop (no code at
the pool: ``BadHop``, which the runner reads as maybe short of gas and asks again, a second
round trip a real chain would not take).

Owns the storage layouts written and the codes placed, both by ``anvil_setCode`` and
``anvil_setStorageAt`` (the market is synthetic: no factory made these pools, the feed's
moves are not swaps; ``arbbot.devnet.bulk`` builds genuine markets where that matters):

- a token: the devnet's OpenZeppelin ``ERC20PresetMinterPauser`` runtime; its balances'
  mapping slot is found on the node (``_balance_slot``); a V2 pair holds exactly its
  reserves, a V3 pool ``V3_BALANCE`` of each token (it reads balances only to check what it
  was paid);
- a V2 pair: the genuine npm ``UniswapV2Pair`` runtime (no immutables; 0.3%), or for a 0.25%
  pair the same code with its fee arithmetic over 400 instead of 1000 (``_v2_code``: the
  pair's ``balance * 1000 - amountIn * 3`` and ``1000**2`` made ``balance * 400 - amountIn``
  and ``400**2``, the same inequality as a 10000/25 fork's, checked on the node by a swap
  that takes the 0.25% output and one wei more); storage: factory (5), token0 (6), token1
  (7), reserves (8), the price accumulators (9, 10: nonzero, as a traded pair's, so a swap's
  writes cost what they cost there: from zero, ~40k gas more a pair, and the executor's
  modelled gas bound fell short), unlocked (12);
- a V3 pool: the runtime of a genuine ``UniswapV3Pool`` the devnet's V3 factory made for
  the fee tier, its immutables (factory, token0, token1, and its own address, which
  ``NoDelegateCall`` checks) rewritten to the pool's; storage:
  slot0 (0; unlocked, one observation), the fee accumulators (1, 2: nonzero, as for a V2
  pair's), liquidity (4), the two full-range ticks of the
  synthetic market (5) and their bitmap words (6), observation 0 (8).

``Mirror.move`` writes a block's moved pools (a V2 pair's reserves and balances, a V3
pool's slot0 and liquidity) in one JSON-RPC batch, before the feed stamps the block's
arrival: the chain's swaps happen before a block arrives."""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterable, Sequence

import orjson
import requests
from eth_utils import keccak

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import deploy_unlocked, encode_call, send_unlocked
from arbbot.devnet import artifacts
from arbbot.types import PoolState, V2PoolState, V3PoolState

V3_BALANCE = 2**200  # each token a V3 pool holds: more than any swap pays out, far from overflow
_CHUNK = 400  # calls a JSON-RPC batch
_V2_SLOTS = {"factory": 5, "token0": 6, "token1": 7, "reserves": 8, "price0CumulativeLast": 9,
             "price1CumulativeLast": 10, "unlocked": 12}
_V3_SLOT0, _V3_FEE_GROWTH, _V3_LIQUIDITY, _V3_TICKS, _V3_BITMAP, _V3_OBSERVATIONS = 0, (1, 2), 4, 5, 6, 8
_KIND = {"v2": 0, "v3": 1}  # the executor's hop kinds (addFactory)
_PLACEHOLDER0, _PLACEHOLDER1 = "0x" + "a1" * 20, "0x" + "b2" * 20  # the V3 templates' tokens


def _word(value: int) -> str:
    return "0x" + (value % 2**256).to_bytes(32, "big").hex()


def _key(key: int, slot: int) -> str:
    """The storage slot of ``mapping[key]`` at ``slot`` (a signed key in two's complement)."""
    return "0x" + keccak((key % 2**256).to_bytes(32, "big") + slot.to_bytes(32, "big")).hex()


def _addr(a: str) -> int:
    return int(a, 16)


class Mirror:
    """Writes moved pools' state to the node at ``rpc_url``: ``balance_slot`` is the tokens'
    balances' mapping slot (``place`` finds it). A block's writes go as one JSON-RPC batch,
    written by orjson on a kept connection (the feed's cost a block: ~3 ms, where the
    project's ``RpcClient`` took ~20 for its ~850 calls, stdlib JSON both ways)."""

    def __init__(self, rpc_url: str, balance_slot: int) -> None:
        self.rpc_url, self.balance_slot = rpc_url, balance_slot
        self._keys: dict[str, str] = {}
        self._http = requests.Session()

    def _balance_key(self, holder: str) -> str:
        key = self._keys.get(holder)
        if key is None:
            key = self._keys[holder] = _key(_addr(holder), self.balance_slot)
        return key

    def writes(self, states: Iterable[PoolState]) -> list[tuple[str, list[Any]]]:
        out: list[tuple[str, list[Any]]] = []
        for s in states:
            if isinstance(s, V2PoolState):
                out.append(("anvil_setStorageAt", [s.address, _word(_V2_SLOTS["reserves"]),
                                                   _word(s.reserve0 | s.reserve1 << 112)]))
                key = self._balance_key(s.address)
                out.append(("anvil_setStorageAt", [s.token0, key, _word(s.reserve0)]))
                out.append(("anvil_setStorageAt", [s.token1, key, _word(s.reserve1)]))
            else:
                slot0 = (s.sqrt_price_x96 | (s.tick % 2**24) << 160 | 1 << 200 | 1 << 216 | 1 << 240)
                out.append(("anvil_setStorageAt", [s.address, _word(_V3_SLOT0), _word(slot0)]))
                out.append(("anvil_setStorageAt", [s.address, _word(_V3_LIQUIDITY), _word(s.liquidity)]))
        return out

    def move(self, states: Sequence[PoolState]) -> None:
        """Write ``states`` (a block's moved pools) in one batch; raises if the node refused any."""
        calls = self.writes(states)
        if not calls:
            return
        body = orjson.dumps([{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)])
        reply = self._http.post(self.rpc_url, data=body, headers={"content-type": "application/json"}, timeout=30)
        reply.raise_for_status()
        if b'"error"' in reply.content:
            raise RuntimeError(f"the devnet refused a pool write: {reply.content[:300]!r}")


def place(rpc: RpcClient, deployer: str, executor: str, pools: Sequence[PoolState],
          dexes: Sequence[dict[str, str]], progress: Callable[[str], None] = print) -> Mirror:
    """Every token and pool of the market on the node at ``rpc``, and the market's DEXes
    registered on ``executor`` (owned by ``deployer``, an account the node holds unlocked)."""
    t0 = time.monotonic()
    erc20 = deploy_unlocked(rpc, deployer, artifacts.load("ERC20PresetMinterPauser").bytecode,
                            ["string", "string"], ["Bench", "BENCH"])
    token_code = rpc.call("eth_getCode", [erc20, "latest"])
    slot = _balance_slot(rpc, token_code)
    mirror = Mirror(rpc.urls[0], slot)
    tokens = sorted({t for p in pools for t in (p.token0, p.token1)})
    calls: list[tuple[str, list[Any]]] = [("anvil_setCode", [t, token_code]) for t in tokens]
    v2_codes = {3000: _v2_code(1000, 3), 2500: _v2_code(400, 1)}
    for fee, code in v2_codes.items():
        _check_v2_fee(rpc, code, fee, token_code, slot)
    v3 = _v3_templates(rpc, deployer, {p.fee_pips for p in pools if isinstance(p, V3PoolState)})
    factories = {p.address: f for p, f in _factories(pools, dexes)}
    for p in pools:
        if isinstance(p, V2PoolState):
            if p.fee_pips not in v2_codes:
                raise ValueError(f"pool {p.address}: a V2 fee of {p.fee_pips} pips has no code here")
            calls.append(("anvil_setCode", [p.address, v2_codes[p.fee_pips]]))
            for name, value in (("factory", _addr(factories[p.address])), ("token0", _addr(p.token0)),
                                ("token1", _addr(p.token1)), ("price0CumulativeLast", 1),
                                ("price1CumulativeLast", 1), ("unlocked", 1)):
                calls.append(("anvil_setStorageAt", [p.address, _word(_V2_SLOTS[name]), _word(value)]))
        else:
            code, factory, template = v3[p.fee_pips]
            code = (code.replace(factory[2:], factories[p.address][2:]).replace(_PLACEHOLDER0[2:], p.token0[2:])
                    .replace(_PLACEHOLDER1[2:], p.token1[2:]).replace(template[2:], p.address[2:]))
            calls.append(("anvil_setCode", [p.address, code]))
            calls.extend(_v3_static(p, slot))
    calls.extend(mirror.writes(pools))
    progress(f"placing {len(tokens):,} tokens and {len(pools):,} pools on the devnet ({len(calls):,} writes)")
    _send(rpc, calls)
    for d in dexes:
        send_unlocked(rpc, deployer, to=executor, data=encode_call(
            "addFactory(uint8,address,bytes32)", [_KIND[d["kind"]], d["factory"], bytes.fromhex(d["init_code_hash"][2:])]))
    _check_sample(rpc, pools)
    progress(f"market on the devnet in {time.monotonic() - t0:.1f} s")
    return mirror


def _send(rpc: RpcClient, calls: Sequence[tuple[str, list[Any]]]) -> None:
    chunk: list[tuple[str, list[Any]]] = []
    size = 0
    for c in calls:
        chunk.append(c)
        size += sum(len(x) for x in c[1] if isinstance(x, str))
        if len(chunk) >= _CHUNK or size > 2_000_000:
            rpc.batch(chunk)
            chunk, size = [], 0
    if chunk:
        rpc.batch(chunk)


def _factories(pools: Sequence[PoolState], dexes: Sequence[dict[str, str]]) -> Iterable[tuple[PoolState, str]]:
    from arbbot.chain.create2 import Factory, factory_of

    fs = [Factory.configured(d["kind"], d["factory"], d["init_code_hash"], d["name"]) for d in dexes]
    for p in pools:
        f = factory_of(p, fs)
        if f is None:
            raise ValueError(f"pool {p.address} is no CREATE2 child of the market's DEXes")
        yield p, f.factory


def _balance_slot(rpc: RpcClient, token_code: str) -> int:
    """The slot of the token code's balances mapping: the one whose entry ``balanceOf`` reads."""
    probe, holder = "0x" + "c3" * 20, "0x" + "d4" * 20
    rpc.call("anvil_setCode", [probe, token_code])
    for slot in range(16):
        rpc.call("anvil_setStorageAt", [probe, _key(_addr(holder), slot), _word(12345)])
        if int(rpc.eth_call(probe, encode_call("balanceOf(address)", [holder])), 16) == 12345:
            return slot
        rpc.call("anvil_setStorageAt", [probe, _key(_addr(holder), slot), _word(0)])
    raise RuntimeError("the ERC20's balances slot was not found in its first 16 slots")


def _v2_code(denominator: int, fee: int) -> str:
    """The genuine pair's runtime, its swap's fee arithmetic over ``denominator`` (``fee``
    of it kept): the genuine code is (1000, 3). The K check of ``swap`` compiles to, in this
    order, PUSH1 3 (amount0In), PUSH2 1000 (shared by both balances), PUSH1 3 (amount1In),
    PUSH3 1000**2: the four immediates rewritten in place (same widths), found as
    instructions, not as bytes that may sit inside another's data."""
    data = json.loads((artifacts._node_modules() / artifacts.ARTIFACTS["UniswapV2Pair"]).read_text())
    code = bytearray.fromhex(data["evm"]["deployedBytecode"]["object"].removeprefix("0x"))
    if (denominator, fee) == (1000, 3):
        return "0x" + code.hex()
    pushes, i = [], 0
    while i < len(code):
        n = code[i] - 0x5F if 0x60 <= code[i] <= 0x7F else 0
        pushes.append((i, bytes(code[i:i + 1 + n])))
        i += 1 + n
    k = [j for j, (_, ins) in enumerate(pushes) if ins == bytes.fromhex("620f4240")]
    if len(k) != 1:
        raise RuntimeError("the V2 pair code is not the genuine one this knows (its K constant)")
    want = [bytes.fromhex("6003"), bytes.fromhex("6103e8"), bytes.fromhex("6003")]
    found = [(at, ins) for at, ins in pushes[max(0, k[0] - 40):k[0]] if ins in want]
    if [ins for _, ins in found] != want:
        raise RuntimeError("the V2 pair code is not the genuine one this knows (its fee arithmetic)")
    for (at, ins), value in zip([*found, (pushes[k[0]][0], b"")], [fee, denominator, fee, denominator**2]):
        width = len(ins) - 1 if ins else 3
        code[at + 1:at + 1 + width] = value.to_bytes(width, "big")
    return "0x" + code.hex()


def _check_v2_fee(rpc: RpcClient, code: str, fee: int, token_code: str, slot: int) -> None:
    """A pair of ``code`` with reserves (1e21, 1e21), paid 1e18: gives the output of ``fee``
    pips exactly, and refuses one wei more."""
    pair, t0, t1 = "0x" + "e5" * 20, "0x" + "e6" * 20, "0x" + "e7" * 20
    r, paid = 10**21, 10**18
    calls: list[tuple[str, list[Any]]] = [("anvil_setCode", [pair, code]), ("anvil_setCode", [t0, token_code]),
                                          ("anvil_setCode", [t1, token_code])]
    calls.extend(Mirror(rpc.urls[0], slot).writes([V2PoolState(pair, t0, t1, r, r, fee, 0)]))
    calls.extend([("anvil_setStorageAt", [pair, _word(_V2_SLOTS[n]), _word(v)])
                  for n, v in (("token0", _addr(t0)), ("token1", _addr(t1)), ("unlocked", 1))])
    calls.append(("anvil_setStorageAt", [t0, _key(_addr(pair), slot), _word(r + paid)]))  # paid in
    _send(rpc, calls)
    kept = paid * (10**6 - fee)
    out = kept * r // (r * 10**6 + kept)
    to = "0x" + "f8" * 20
    ok = rpc.call("eth_call", [{"to": pair, "data": encode_call("swap(uint256,uint256,address,bytes)",
                                                                 [0, out, to, b""])}, "latest"])
    assert ok == "0x", ok
    try:
        rpc.call("eth_call", [{"to": pair, "data": encode_call("swap(uint256,uint256,address,bytes)",
                                                                [0, out + 1, to, b""])}, "latest"])
    except Exception as exc:
        if "UniswapV2: K" not in str(exc):
            raise
    else:
        raise RuntimeError(f"the V2 pair code for {fee} pips gave one wei more than its fee allows")


def _v3_templates(rpc: RpcClient, deployer: str, fees: set[int]) -> dict[int, tuple[str, str, str]]:
    """Fee -> (the runtime of a genuine pool of that tier between the placeholder tokens,
    the factory that made it, the pool's own address: ``NoDelegateCall`` keeps it as an
    immutable, and ``swap`` runs only at that address)."""
    factory = deploy_unlocked(rpc, deployer, artifacts.load("UniswapV3Factory").bytecode)
    spacing = {100: 1}
    out = {}
    for fee in sorted(fees):
        if fee in spacing:
            send_unlocked(rpc, deployer, to=factory, data=encode_call("enableFeeAmount(uint24,int24)", [fee, spacing[fee]]))
        send_unlocked(rpc, deployer, to=factory, gas=6_000_000,
                      data=encode_call("createPool(address,address,uint24)", [_PLACEHOLDER0, _PLACEHOLDER1, fee]))
        pool = "0x" + rpc.eth_call(factory, encode_call("getPool(address,address,uint24)",
                                                         [_PLACEHOLDER0, _PLACEHOLDER1, fee]))[-40:]
        code = rpc.call("eth_getCode", [pool, "latest"])
        for a in (factory, _PLACEHOLDER0, _PLACEHOLDER1, pool):
            if a[2:] not in code:
                raise RuntimeError(f"the V3 pool code of fee {fee} does not hold {a}")
        out[fee] = (code, factory, pool)
    return out


def _v3_static(p: V3PoolState, balance_slot: int) -> list[tuple[str, list[Any]]]:
    """A V3 pool's ticks, bitmap, first observation and token balances."""
    calls = []
    for tick, net in p.ticks:
        base = int(_key(tick, _V3_TICKS), 16)
        calls.append(("anvil_setStorageAt", [p.address, _word(base), _word(abs(net) | (net % 2**128) << 128)]))
        calls.append(("anvil_setStorageAt", [p.address, _word(base + 3), _word(1 << 248)]))
        compressed = tick // p.tick_spacing
        word, bit = compressed >> 8, compressed % 256
        calls.append(("anvil_setStorageAt", [p.address, _key(word, _V3_BITMAP), _word(1 << bit)]))
    calls.append(("anvil_setStorageAt", [p.address, _word(_V3_OBSERVATIONS), _word(1 << 248)]))
    for slot in _V3_FEE_GROWTH:  # a traded pool's: nonzero (its swaps' writes cost what a live pool's do)
        calls.append(("anvil_setStorageAt", [p.address, _word(slot), _word(1)]))
    for t in (p.token0, p.token1):
        calls.append(("anvil_setStorageAt", [t, _key(_addr(p.address), balance_slot), _word(V3_BALANCE)]))
    return calls


def _check_sample(rpc: RpcClient, pools: Sequence[PoolState]) -> None:
    """The node reads back a sample of the pools as the market holds them."""
    sample = list(pools)[:: max(1, len(pools) // 200)]
    calls = [("eth_call", [{"to": p.address, "data": encode_call("getReserves()" if isinstance(p, V2PoolState)
                                                                  else "slot0()")}, "latest"]) for p in sample]
    for p, raw in zip(sample, rpc.batch(calls)):
        words = [int(raw[2 + 64 * i: 66 + 64 * i], 16) for i in range(2)]
        want = [p.reserve0, p.reserve1] if isinstance(p, V2PoolState) else [p.sqrt_price_x96, p.tick % 2**256]
        got = words if isinstance(p, V2PoolState) else [words[0], words[1]]
        if got != want:
            raise RuntimeError(f"pool {p.address} reads {got} on the devnet, the market holds {want}")


__all__ = ["Mirror", "place"]
