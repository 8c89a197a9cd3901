"""ArbExecutor tried as an attacker would, on anvil with the genuine Uniswap V2/V3 contracts
and hostile contracts compiled here (tests/execution/contracts/Attackers.sol, solc-js with
the executor's own settings): a malicious fork's pair as the first hop forging the flash
callback (issue 14, attack A), a fake later pair that never pays (attack B), an unpaid
flash, forged direct callbacks, reentrancy through a token's transfer hook, pairs of
unknown or removed factories. None moves a wei: every balance the executor holds (each
devnet token, the attackers' tokens, native) is compared exactly before and after."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from eth_abi import decode, encode
from eth_utils import keccak

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import LocalSigner, TxFailed, deploy_unlocked, encode_call, send_unlocked
from arbbot.contracts.build import compile_file
from arbbot.devnet.artifacts import load
from arbbot.devnet.record import Deployment
from arbbot.devnet.scenarios import (
    balance_of,
    fund_token,
    plant_v3_price_gap,
    read_signer_key,
    revert_to,
    snapshot,
    v2_state,
)
from arbbot.pools import amount_out
from arbbot.execution.executor import (
    Hop,
    decode_revert,
    encode_add_factory,
    encode_execute,
    encode_remove_factory,
    encode_set_executor,
    encode_withdraw,
)
from tests.execution.executor_helpers import planted_cycle, revert_reason, send, size_cycle

ATTACKERS_SOL = Path(__file__).parent / "contracts" / "Attackers.sol"
NEVER_PAY, REPLAY, FORGE, PAY = 0, 1, 2, 3
HOP_TUPLE = "(address,address,uint8,uint24,uint256)"
INVENTORY = 50_000 * 10**18  # USDC and DAI the executor holds: what the attacks go after


@pytest.fixture(scope="module")
def compiled() -> dict[str, dict[str, Any]]:
    return compile_file(ATTACKERS_SOL)


class World:
    """One test's chain: the executor holds USDC, DAI and some WETH; an attacker account."""

    def __init__(self, rpc: RpcClient, dep: Deployment, signer: LocalSigner, art: dict[str, dict[str, Any]]) -> None:
        self.rpc, self.dep, self.signer, self.art = rpc, dep, signer, art
        self.attacker = rpc.call("eth_accounts")[7].lower()
        self.extra_tokens: list[str] = []
        for symbol in ("USDC", "DAI"):
            fund_token(rpc, dep, symbol, dep.executor, INVENTORY)
        fund_token(rpc, dep, "WETH", dep.executor, 3 * 10**18)

    def holdings(self) -> dict[str, int]:
        """Every balance the executor has: each token it could hold, and native."""
        tokens = [t["address"] for t in self.dep.tokens] + self.extra_tokens
        out = {t: balance_of(self.rpc, t, self.dep.executor) for t in tokens}
        out["native"] = int(self.rpc.call("eth_getBalance", [self.dep.executor, "latest"]), 16)
        return out

    def as_owner(self, data: str) -> None:
        send_unlocked(self.rpc, self.dep.deployer, to=self.dep.executor, data=data)

    def evil_fork(self, *, register: bool = True) -> str:
        """A malicious V2 fork's factory (deployed by the attacker); registered by the owner
        (the mistake the attack needs) unless ``register=False``."""
        factory = deploy_unlocked(self.rpc, self.attacker, self.art["EvilFactory"]["bytecode"])
        init_hash = bytes.fromhex(self.rpc.eth_call(factory, encode_call("pairInitCodeHash()"))[2:])
        if register:
            self.as_owner(encode_add_factory("v2", factory, init_hash))
        return factory

    def evil_pair(self, factory: str, token_a: str, token_b: str) -> str:
        send_unlocked(self.rpc, self.attacker, to=factory,
                      data=encode_call("createPair(address,address)", [token_a, token_b]))
        raw = self.rpc.eth_call(factory, encode_call("getPair(address,address)", [token_a, token_b]))
        return "0x" + raw[-40:]

    def evil_v3_pool(self, token_a: str, token_b: str, fee: int = 3000) -> str:
        """A pool of a malicious V3 fork whose factory the owner registered."""
        factory = deploy_unlocked(self.rpc, self.attacker, self.art["EvilV3Factory"]["bytecode"])
        init_hash = bytes.fromhex(self.rpc.eth_call(factory, encode_call("poolInitCodeHash()"))[2:])
        self.as_owner(encode_add_factory("v3", factory, init_hash))
        send_unlocked(self.rpc, self.attacker, to=factory,
                      data=encode_call("createPool(address,address,uint24)", [token_a, token_b, fee]))
        t0, t1 = sorted((token_a.lower(), token_b.lower()))
        salt = keccak(encode(["address", "address", "uint24"], [t0, t1, fee]))
        pool = "0x" + keccak(b"\xff" + bytes.fromhex(factory[2:]) + salt + init_hash)[-20:].hex()
        assert self.rpc.call("eth_getCode", [pool, "latest"]) not in ("0x", "")
        return pool

    def configure(self, pair: str, reserves: dict[str, int], mode: int, *, bubble: bool = True,
                  target: str = "0x" + "00" * 20, payload: bytes = b"") -> None:
        t0 = "0x" + self.rpc.eth_call(pair, encode_call("token0()"))[-40:]
        t1 = "0x" + self.rpc.eth_call(pair, encode_call("token1()"))[-40:]
        send_unlocked(self.rpc, self.attacker, to=pair, data=encode_call(
            "configure(uint112,uint112,uint8,bool,address,bytes)",
            [reserves.get(t0, 0), reserves.get(t1, 0), mode, bubble, target, payload]))

    def execute(self, token_in: str, amount_in: int, hops: list[Hop], *, flash: bool = True) -> dict[str, Any]:
        return send(self.signer, self.dep.executor, encode_execute(token_in, amount_in, 0, hops, flash=flash))

    def reason(self, token_in: str, amount_in: int, hops: list[Hop], *, flash: bool = True) -> str:
        data = encode_execute(token_in, amount_in, 0, hops, flash=flash)
        return revert_reason(self.rpc, self.signer.address, self.dep.executor, data)


@pytest.fixture()
def world(devnet: Any, compiled: dict[str, dict[str, Any]]) -> Iterator[World]:
    anvil, dep, directory = devnet
    rpc = anvil.rpc()
    snap = snapshot(rpc)
    try:
        yield World(rpc, dep, LocalSigner(rpc, read_signer_key(directory)), compiled)
    finally:
        revert_to(rpc, snap)


def flash_data(amount_in: int, min_profit: int, hops: list[Hop]) -> bytes:
    """What the contract itself passes to a flash swap: abi.encode(amountIn, minProfit, hops)."""
    return encode(["uint256", "uint256", f"{HOP_TUPLE}[]"], [amount_in, min_profit, [h.as_tuple() for h in hops]])


def assert_unmoved(w: World, before: dict[str, int], receipt: dict[str, Any]) -> None:
    assert int(receipt["status"], 16) == 0  # mined and reverted
    assert w.holdings() == before  # exact, every token and native


# --------------------------------------------------------------------------- attack A


@pytest.mark.parametrize("bubble", [True, False], ids=["callback-reverts", "pair-swallows-the-revert"])
@pytest.mark.parametrize("loot", ["USDC", "DAI"])
def test_attack_a_forged_flash_callback_from_a_registered_fork(world: World, loot: str, bubble: bool) -> None:
    """A fork's pair as the first hop calls uniswapV2Call back with forged hops and amounts
    that would send the executor's whole `loot` inventory to a second evil pair."""
    w, dep = world, world.dep
    loot_token, weth = dep.token(loot), dep.weth
    factory = w.evil_fork()
    first = w.evil_pair(factory, weth, loot_token)
    sink = w.evil_pair(factory, loot_token, dep.token("LINK"))
    w.configure(sink, {loot_token: 1, dep.token("LINK"): 10**30}, NEVER_PAY)
    forged_hops = [Hop(first, loot_token), Hop(sink, dep.token("LINK"))]
    forged = encode_call("uniswapV2Call(address,uint256,uint256,bytes)",
                         [dep.executor, INVENTORY, 0, flash_data(0, 0, forged_hops)])
    w.configure(first, {weth: 10**30, loot_token: 10**30}, FORGE, bubble=bubble, target=dep.executor,
                payload=bytes.fromhex(forged[2:]))
    hops = [Hop(first, loot_token), Hop(dep.pool("uniswap", weth, loot_token)["address"], weth)]
    before = w.holdings()
    assert w.reason(weth, 10**18, hops) == "BadCallback()"
    assert_unmoved(w, before, w.execute(weth, 10**18, hops))
    assert balance_of(w.rpc, loot_token, sink) == 0


def test_unpaid_flash_replaying_the_exact_callback_cannot_spend_inventory(world: World) -> None:
    """The fork's pair calls back with exactly our arguments (the binding holds) but never
    sent the borrowed USDC: the rest of the cycle would pay with the executor's own USDC
    and the WETH profit guard would pass; the balance rule refuses."""
    w, dep = world, world.dep
    usdc, weth = dep.token("USDC"), dep.weth
    first = w.evil_pair(w.evil_fork(), weth, usdc)
    # reserves that make 1 WETH "buy" 20,000 USDC, which then sells on sushiswap for ~6 WETH
    w.configure(first, {weth: 1, usdc: 20_000 * 10**18 + 1}, REPLAY)
    hops = [Hop(first, usdc), Hop(dep.pool("sushiswap", weth, usdc)["address"], weth)]
    before = w.holdings()
    reason = w.reason(weth, 10**18, hops)
    assert reason.startswith(f"BalanceDecreased({_addr(usdc)}, {INVENTORY}, ")
    assert_unmoved(w, before, w.execute(weth, 10**18, hops))


# --------------------------------------------------------------------------- attack B


def attack_b_cycle(w: World, mode: int) -> tuple[str, list[Hop]]:
    """WETH -(genuine uniswap V2, flash)-> DAI -(fork pair)-> USDC -(genuine V3)-> WETH; the
    fork pair's reserves promise 3,300 USDC for the ~3,000 DAI it receives."""
    dep = w.dep
    usdc, dai, weth = dep.token("USDC"), dep.token("DAI"), dep.weth
    fake = w.evil_pair(w.evil_fork(), dai, usdc)
    w.configure(fake, {dai: 1, usdc: 3_300 * 10**18 + 1}, mode)
    hops = [
        Hop(dep.pool("uniswap", weth, dai)["address"], dai),
        Hop(fake, usdc),
        Hop(dep.pool("uniswap-v3", usdc, weth, 3000)["address"], weth, "v3", 3000),
    ]
    return fake, hops


def test_attack_b_a_later_pair_that_never_pays(world: World) -> None:
    w, dep = world, world.dep
    usdc = dep.token("USDC")
    fake, hops = attack_b_cycle(w, NEVER_PAY)
    before = w.holdings()
    reason = w.reason(dep.weth, 10**18, hops)
    # the V3 hop would have been paid 3,300 USDC from inventory while WETH showed a profit
    assert reason.startswith(f"BalanceDecreased({_addr(usdc)}, {INVENTORY}, ")
    assert_unmoved(w, before, w.execute(dep.weth, 10**18, hops))
    assert balance_of(w.rpc, dep.token("DAI"), fake) == 0  # the bait never left


def test_attack_b_control_the_same_cycle_runs_when_the_pair_pays(world: World) -> None:
    """The same route with the fork pair paying its promised output executes: the refusal
    above is the balance rule, not a broken route. USDC ends exactly where it started."""
    w, dep = world, world.dep
    fake, hops = attack_b_cycle(w, PAY)
    fund_token(w.rpc, dep, "USDC", fake, 10_000 * 10**18)
    before = w.holdings()
    receipt = w.execute(dep.weth, 10**18, hops)
    assert int(receipt["status"], 16) == 1
    after = w.holdings()
    assert after[dep.weth] > before[dep.weth]
    assert {k: v for k, v in after.items() if k != dep.weth} == {k: v for k, v in before.items() if k != dep.weth}


# --------------------------------------------------------------------------- V3 fork pools


def v3_fork_cycle(w: World) -> tuple[str, list[Hop], int, int]:
    """WETH -(genuine uniswap V2, flash 1 WETH)-> USDC -(a registered V3 fork's pool)-> WETH.
    Returns the pool, the hops, the USDC amount the pool is sent into and 1 WETH."""
    dep = w.dep
    usdc, weth = dep.token("USDC"), dep.weth
    pool = w.evil_v3_pool(usdc, weth)
    first = dep.pool("uniswap", weth, usdc)
    usdc_in = amount_out(v2_state(w.rpc, first), weth, 10**18)
    hops = [Hop(first["address"], usdc), Hop(pool, weth, "v3", 3000)]
    return pool, hops, usdc_in, 10**18


def deltas(w: World, pool: str, **by_token: int) -> tuple[int, int]:
    """(amount0, amount1) of a V3 swap from per-token amounts (token order of the pool)."""
    t0 = "0x" + w.rpc.eth_call(pool, encode_call("token0()"))[-40:]
    t1 = "0x" + w.rpc.eth_call(pool, encode_call("token1()"))[-40:]
    named = {w.dep._addr(k): v for k, v in by_token.items()}
    return named.get(t0, 0), named.get(t1, 0)


def configure_v3(w: World, pool: str, mode: int, cb: tuple[int, int], ret: tuple[int, int], payload: bytes = b"") -> None:
    send_unlocked(w.rpc, w.attacker, to=pool, data=encode_call(
        "configure(uint8,int256,int256,int256,int256,bytes)", [mode, cb[0], cb[1], ret[0], ret[1], payload]))


def test_a_v3_fork_pool_forging_its_callback_data(world: World) -> None:
    """The pool calls back owing 1 USDC, "paying" INVENTORY, with flash-style data of its own whose hops send
    the executor's DAI (a token of no hop of ours, so only the binding guards it) to a fork
    pair, and really pays 1.1 WETH so the route looks profitable."""
    w, dep = world, world.dep
    dai, link = dep.token("DAI"), dep.token("LINK")
    pool, hops, usdc_in, weth_in = v3_fork_cycle(w)
    sink = w.evil_pair(w.evil_fork(), dai, link)
    w.configure(sink, {dai: 1, link: 10**30}, NEVER_PAY)
    forged = flash_data(0, 0, [Hop(pool, dai, "v3", 3000), Hop(sink, link)])
    fund_token(w.rpc, dep, "WETH", pool, 2 * 10**18)
    configure_v3(w, pool, 0, deltas(w, pool, USDC=1, WETH=-INVENTORY),
                 deltas(w, pool, USDC=usdc_in, WETH=-(weth_in + 10**17)), forged)
    before = w.holdings()
    assert w.reason(dep.weth, weth_in, hops) == "BadCallback()"
    assert_unmoved(w, before, w.execute(dep.weth, weth_in, hops))
    assert balance_of(w.rpc, dai, sink) == 0


def test_a_v3_fork_pool_asking_more_than_the_input(world: World) -> None:
    w, dep = world, world.dep
    pool, hops, usdc_in, weth_in = v3_fork_cycle(w)
    fund_token(w.rpc, dep, "WETH", pool, 2 * 10**18)
    configure_v3(w, pool, 1, (0, 0), deltas(w, pool, USDC=usdc_in, WETH=-(weth_in + 10**17)))
    before = w.holdings()
    assert w.reason(dep.weth, weth_in, hops) == "BadCallback()"
    assert_unmoved(w, before, w.execute(dep.weth, weth_in, hops))


def test_a_v3_fork_pool_that_never_calls_back(world: World) -> None:
    """It claims (and even sends) the output without collecting: refused, since a swap that
    was not paid for through the bound callback is not one this contract made."""
    w, dep = world, world.dep
    pool, hops, usdc_in, weth_in = v3_fork_cycle(w)
    configure_v3(w, pool, 2, (0, 0), deltas(w, pool, USDC=usdc_in, WETH=-(weth_in + 10**17)))
    before = w.holdings()
    assert w.reason(dep.weth, weth_in, hops) == "BadCallback()"
    assert_unmoved(w, before, w.execute(dep.weth, weth_in, hops))


# --------------------------------------------------------------------------- forged callbacks


def test_forged_direct_callbacks_from_a_contract_and_an_eoa(world: World) -> None:
    w, dep = world, world.dep
    caller = deploy_unlocked(w.rpc, w.attacker, w.art["DirectCaller"]["bytecode"])
    usdc = dep.token("USDC")
    hops = [Hop(dep.pool("uniswap", dep.weth, usdc)["address"], usdc),
            Hop(dep.pool("sushiswap", dep.weth, usdc)["address"], dep.weth)]
    forged = [
        encode_call("uniswapV2Call(address,uint256,uint256,bytes)", [dep.executor, INVENTORY, 0, flash_data(0, 0, hops)]),
        encode_call("uniswapV2Call(address,uint256,uint256,bytes)", [caller, 0, INVENTORY, b""]),
        encode_call("uniswapV3SwapCallback(int256,int256,bytes)", [INVENTORY, -1, b""]),
        encode_call("uniswapV3SwapCallback(int256,int256,bytes)", [-1, INVENTORY, flash_data(0, 0, hops)]),
    ]
    before = w.holdings()
    for data in forged:
        via_contract = encode_call("call(address,bytes)", [dep.executor, bytes.fromhex(data[2:])])
        assert revert_reason(w.rpc, w.attacker, caller, via_contract) == "BadCallback()"
        assert revert_reason(w.rpc, w.attacker, dep.executor, data) == "BadCallback()"
        with pytest.raises(TxFailed):
            send_unlocked(w.rpc, w.attacker, to=caller, data=via_contract, gas=500_000)
    assert w.holdings() == before


@pytest.mark.parametrize("position", ["first", "later"])
def test_a_fork_pair_forging_the_v3_callback_mid_execute(world: World, position: str) -> None:
    """While an execute() is in flight (no V3 swap bound), a pair calls the V3 callback
    asking to be paid the executor's USDC; or, as a later hop, replays a V2 callback."""
    w, dep = world, world.dep
    usdc, weth = dep.token("USDC"), dep.weth
    pair = w.evil_pair(w.evil_fork(), weth, usdc)
    v3_forged = encode_call("uniswapV3SwapCallback(int256,int256,bytes)", [INVENTORY, INVENTORY, b""])
    reserves = {weth: 10**24, usdc: 3 * 10**27}
    if position == "first":
        w.configure(pair, reserves, FORGE, target=dep.executor, payload=bytes.fromhex(v3_forged[2:]))
        hops = [Hop(pair, usdc), Hop(dep.pool("sushiswap", weth, usdc)["address"], weth)]
    else:
        w.configure(pair, reserves, REPLAY)
        hops = [Hop(dep.pool("sushiswap", weth, usdc)["address"], usdc), Hop(pair, weth)]
    before = w.holdings()
    assert w.reason(weth, 10**18, hops) == "BadCallback()"
    assert_unmoved(w, before, w.execute(weth, 10**18, hops))


# --------------------------------------------------------------------------- reentrancy


def hook_pairs(w: World) -> tuple[str, str, str]:
    """HookToken with a genuine pair against WETH on each registered V2 DEX, priced 10%
    apart: HOOK is cheap on sushiswap."""
    dep = w.dep
    hook = deploy_unlocked(w.rpc, dep.deployer, w.art["HookToken"]["bytecode"])
    w.extra_tokens.append(hook)
    pairs = []
    for dex, hook_per_weth in (("uniswap", 1000), ("sushiswap", 1100)):
        factory = dep.dex(dex)["factory"]
        send_unlocked(w.rpc, dep.deployer, to=factory, data=encode_call("createPair(address,address)", [hook, dep.weth]))
        pair = "0x" + w.rpc.eth_call(factory, encode_call("getPair(address,address)", [hook, dep.weth]))[-40:]
        send_unlocked(w.rpc, dep.deployer, to=hook,
                      data=encode_call("mint(address,uint256)", [pair, 100 * hook_per_weth * 10**18]))
        fund_token(w.rpc, dep, "WETH", pair, 100 * 10**18)
        send_unlocked(w.rpc, dep.deployer, to=pair, data=encode_call("mint(address)", [dep.deployer]))
        pairs.append(pair)
    return hook, pairs[0], pairs[1]


@pytest.mark.parametrize("hook_is_executor", [False, True], ids=["hook-not-executor", "hook-granted-executor"])
def test_reentrancy_through_a_token_transfer_hook(world: World, hook_is_executor: bool) -> None:
    """A profitable cycle through a token whose transfer calls back into the executor: every
    reentrant call fails (a misconfigured executor role on the token meets the lock) and the
    cycle still realises exactly its predicted profit; nothing else moves."""
    w, dep = world, world.dep
    usdc = dep.token("USDC")
    hook, uni, sushi = hook_pairs(w)
    if hook_is_executor:
        w.as_owner(encode_set_executor(hook, True))
    pools = [{"address": sushi, "kind": "v2", "fee_pips": 3000, "token0": min(hook, dep.weth),
              "token1": max(hook, dep.weth)},
             {"address": uni, "kind": "v2", "fee_pips": 3000, "token0": min(hook, dep.weth),
              "token1": max(hook, dep.weth)}]
    tokens = [dep.weth, hook, dep.weth]
    states = [v2_state(w.rpc, p) for p in pools]
    amount_in, amounts = size_cycle(states, tokens, 10**19)
    predicted = amounts[-1] - amount_in
    assert predicted > 0
    drain = encode_execute(usdc, INVENTORY, 0, [Hop(dep.pool("uniswap", usdc, dep.weth)["address"], dep.weth),
                                                Hop(dep.pool("sushiswap", usdc, dep.weth)["address"], usdc)],
                           flash=False)
    calls = [
        drain,
        encode_call("uniswapV2Call(address,uint256,uint256,bytes)", [dep.executor, 0, amounts[0], b""]),
        encode_call("uniswapV3SwapCallback(int256,int256,bytes)", [INVENTORY, -1, b""]),
        encode_withdraw(usdc, hook, INVENTORY),
    ]
    send_unlocked(w.rpc, dep.deployer, to=hook, data=encode_call(
        "arm(address[],bytes[])", [[dep.executor] * len(calls), [bytes.fromhex(c[2:]) for c in calls]]))
    before = w.holdings()
    receipt = w.execute(dep.weth, amount_in, [Hop(sushi, hook), Hop(uni, dep.weth)])
    assert int(receipt["status"], 16) == 1
    after = w.holdings()
    assert after[dep.weth] - before[dep.weth] == predicted
    assert {k: v for k, v in after.items() if k != dep.weth} == {k: v for k, v in before.items() if k != dep.weth}
    runs, oks, datas = decode(["uint256", "bool[]", "bytes[]"],
                              bytes.fromhex(w.rpc.eth_call(hook, encode_call("results()"))[2:]))
    assert runs >= 2  # the hook fired on the pair's transfer and on the repayment
    assert list(oks) == [False] * 4
    first = "Reentrancy()" if hook_is_executor else "NotExecutor()"
    assert [decode_revert(bytes(d)) for d in datas] == [first, "BadCallback()", "BadCallback()", "NotOwner()"]


# --------------------------------------------------------------------------- unknown pools


def test_a_pair_of_an_unknown_factory_is_refused_anywhere_in_the_cycle(world: World) -> None:
    """A genuine UniswapV2Factory nobody registered, a fork not registered, and a pair that
    names a registered factory it was not created by: BadHop at their position."""
    w, dep = world, world.dep
    usdc, weth = dep.token("USDC"), dep.weth
    factory = deploy_unlocked(w.rpc, dep.deployer, load("UniswapV2Factory").bytecode, ["address"], [dep.deployer])
    send_unlocked(w.rpc, dep.deployer, to=factory, data=encode_call("createPair(address,address)", [weth, usdc]))
    unknown = "0x" + w.rpc.eth_call(factory, encode_call("getPair(address,address)", [weth, usdc]))[-40:]
    fund_token(w.rpc, dep, "WETH", unknown, 100 * 10**18)
    fund_token(w.rpc, dep, "USDC", unknown, 330_000 * 10**18)  # WETH 10% dearer than elsewhere
    send_unlocked(w.rpc, dep.deployer, to=unknown, data=encode_call("mint(address)", [dep.deployer]))
    unregistered = w.evil_pair(w.evil_fork(register=False), weth, usdc)
    liar = w.evil_pair(w.evil_fork(register=False), weth, usdc)
    send_unlocked(w.rpc, w.attacker, to=liar, data=encode_call("setFactory(address)", [dep.dex("uniswap")["factory"]]))
    genuine = dep.pool("uniswap", weth, usdc)["address"]
    before = w.holdings()
    for pool in (unknown, unregistered, liar):
        assert w.reason(usdc, 3_000 * 10**18, [Hop(genuine, weth), Hop(pool, usdc)]) == "BadHop(1)"
        assert w.reason(weth, 10**18, [Hop(pool, usdc), Hop(genuine, weth)]) == "BadHop(0)"
        assert w.reason(weth, 10**18, [Hop(pool, usdc), Hop(genuine, weth)], flash=False) == "BadHop(0)"
    assert_unmoved(w, before, w.execute(usdc, 3_000 * 10**18, [Hop(genuine, weth), Hop(unknown, usdc)]))


def test_removed_factories_are_refused(world: World) -> None:
    """The owner's list is what counts: a removed V2 or V3 factory's pools stop executing."""
    w, dep = world, world.dep
    usdc, weth = dep.token("USDC"), dep.weth
    pools, tokens = planted_cycle(w.rpc, dep)
    states = [v2_state(w.rpc, p) for p in pools]
    amount_in, _ = size_cycle(states, tokens, states[0].reserve0 // 5)
    hops = [Hop(pools[0]["address"], usdc), Hop(pools[1]["address"], weth)]
    w.rpc.call("eth_call", [{"from": w.signer.address, "to": dep.executor,
                             "data": encode_execute(weth, amount_in, 0, hops)}, "latest"])  # runs today
    w.as_owner(encode_remove_factory("v2", dep.dex("sushiswap")["factory"]))
    assert w.reason(weth, amount_in, hops) == "BadHop(1)"
    plant_v3_price_gap(w.rpc, dep, "WETH", "USDC", 3000, 3.0)
    v3_hops = [Hop(dep.pool("uniswap-v3", usdc, weth, 3000)["address"], weth, "v3", 3000),
               Hop(dep.pool("uniswap", weth, usdc)["address"], usdc)]
    w.rpc.call("eth_call", [{"from": w.signer.address, "to": dep.executor,
                             "data": encode_execute(usdc, 10**21, 0, v3_hops)}, "latest"])
    w.as_owner(encode_remove_factory("v3", dep.dex("uniswap-v3")["factory"]))
    assert w.reason(usdc, 10**21, v3_hops) == "BadHop(0)"


def _addr(address: str) -> str:
    """How decode_revert prints an address (eth_abi decodes to lower case)."""
    return address.lower()
