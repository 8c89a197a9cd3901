"""The runner's risk checks, in their documented order: orphaned block, kill switch,
decision, daily loss limit (live only), input cap, pool cooldown, signing key. Each drop gives its
documented status and reason, and none of them reaches the node: the runner talks to a
real RpcClient on a closed port, so any request would raise, and the client's own request
counter stays at zero. The orphan and kill switch checks read the real hot state."""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import time
from typing import Any, Callable, Iterator, Mapping

import pytest
import redis
from eth_account import Account
from prometheus_client import REGISTRY

from arbbot.chain.rpc import RpcClient, endpoint_label
from arbbot.chain.tx import LocalSigner
from arbbot.config import DEFAULT_MAX_FEE_PER_GAS_WEI, Settings
from arbbot.devnet.anvil import free_port, start_anvil
from arbbot.errors import ConfigError, RpcError
from arbbot.execution import fees
from arbbot.execution.fees import FeePolicy
from arbbot.execution.nonces import NonceManager, NonceSession
from arbbot.execution.runner import (
    FEE_REQUOTE_AFTER_S,
    ExecutionRunner,
    Pending,
    RiskLimits,
    attempt_of,
)
from arbbot.hotstate import HotState
from arbbot.types import ExecutionResult, Opportunity, PoolState, ScoredOpportunity, V2PoolState
from tests.execution.executor_helpers import stand_in_executor, two_price_pools

WETH, USDC = "0x" + "e0" * 20, "0x" + "c0" * 20
P1, P2 = "0x" + "01" * 20, "0x" + "02" * 20
EXECUTOR = "0x" + "ee" * 20
ORPHAN, CANONICAL = "0x" + "0a" * 32, "0x" + "0b" * 32
CAP = 10**18
LOSS_LIMIT = 10**17
KEY = "0x" + "42" * 32


_BEFORE: dict[str, float] = {}  # endpoint -> requests counted before its test began


def rpc_requests(rpc: RpcClient) -> float:
    """Requests the client made (attempted) to its endpoint, all methods, since its fixture
    made it (a port can be handed out again, and the counters live for the whole run)."""
    return _requests_total(rpc) - _BEFORE.get(endpoint_label(rpc.url), 0.0)


def _requests_total(rpc: RpcClient) -> float:
    label = endpoint_label(rpc.url)
    return sum(
        s.value
        for m in REGISTRY.collect()
        if m.name == "arbbot_rpc_requests"
        for s in m.samples
        if s.name == "arbbot_rpc_requests_total" and s.labels.get("endpoint") == label
    )


class Risky:
    """Everything a risk check reads, each set so that it trips."""

    def __init__(self, hot: HotState) -> None:
        self.hot = hot
        self.pnl_wei = -LOSS_LIMIT
        self.pool_reads: list[list[str]] = []
        hot.put_pools([], 8, CANONICAL, orphaned=[ORPHAN])
        hot.fleet.set_kill_switch(True)
        self.scored = ScoredOpportunity(
            opportunity=Opportunity(
                chain_id=31337, block_number=7, block_hash=ORPHAN, path_id="cycle-1", pools=(P1, P2),
                tokens=(WETH, USDC, WETH), amount_in=CAP + 1, amount_out=CAP + 10**16,
                gas_estimate=200_000, gas_price_wei=10**9, gas_cost=2 * 10**14,
            ),
            score=0.2,
            decision="skip",
            reason="score below the margin",
        )

    def pools(self, addresses: list[str]) -> Mapping[str, PoolState]:
        self.pool_reads.append(addresses)
        return {
            P1: V2PoolState(P1, USDC, WETH, 105 * 10**22, 10**21, 3000, 7),  # WETH -P1-> USDC -P2-> WETH pays
            P2: V2PoolState(P2, USDC, WETH, 100 * 10**22, 10**21, 3000, 7),
        }

    def runner(self, rpc: RpcClient, mode: str = "live", signer: LocalSigner | None = None) -> ExecutionRunner:
        return ExecutionRunner(
            rpc=rpc,
            executor=EXECUTOR,
            mode=mode,
            pools=self.pools,
            signer=signer,
            limits=RiskLimits(default_max_amount_in=CAP, daily_loss_limit_wei=LOSS_LIMIT, pool_cooldown_s=30),
            kill_switch=self.hot.fleet.kill_switch_engaged,
            is_orphaned=self.hot.is_orphaned,
            daily_pnl_wei=lambda: self.pnl_wei,
            hot=self.hot,
        )

    def opportunity(self, **changes: Any) -> None:
        self.scored = dataclasses.replace(
            self.scored, opportunity=dataclasses.replace(self.scored.opportunity, **changes)
        )


@pytest.fixture
def closed_rpc() -> RpcClient:
    rpc = RpcClient(f"http://127.0.0.1:{free_port()}", timeout_s=2.0, retries=0)
    _BEFORE[endpoint_label(rpc.url)] = _requests_total(rpc)
    return rpc


@pytest.fixture
def risky(hot: HotState) -> Iterator[Risky]:
    r = Risky(hot)
    yield r
    hot.fleet.set_kill_switch(False)


def test_each_risk_check_beats_the_next_and_none_reaches_the_node(risky: Risky, closed_rpc: RpcClient) -> None:
    runner = risky.runner(closed_rpc)

    def outcome() -> tuple[str, str]:
        result = runner.submit(risky.scored)
        assert isinstance(result, ExecutionResult)
        return result.status, result.reason

    assert outcome() == ("dropped", "computed on an orphaned block (reorg)")
    risky.opportunity(block_hash=CANONICAL)
    assert outcome() == ("dropped", "kill switch engaged")
    risky.hot.fleet.set_kill_switch(False)
    assert outcome() == ("dropped", "decision was skip: score below the margin")
    risky.scored = dataclasses.replace(risky.scored, decision="execute", reason="")
    assert outcome() == (
        "dropped",
        f"daily loss limit reached: PnL today {-LOSS_LIMIT} wei, limit -{LOSS_LIMIT} wei",
    )
    risky.pnl_wei = -LOSS_LIMIT + 1
    assert outcome() == ("dropped", f"amount_in {CAP + 1} above the risk cap {CAP}")
    risky.opportunity(amount_in=CAP)
    risky.hot.cooldown_pools([P2], 30, "reverted in 0xabc: ProfitTooLow")
    assert outcome() == ("dropped", f"pool {P2} cooling down: reverted in 0xabc: ProfitTooLow")
    risky.hot.redis.delete(risky.hot.key(f"cooldown:{P2}"))
    assert outcome() == (
        "dropped",
        "live mode refused, nothing sent: no signing key "
        "(set ARBBOT_SIGNER_KEY, ARBBOT_SIGNER_KEY_FILE or ARBBOT_SIGNER_KEYSTORE_FILE)",
    )

    assert risky.pool_reads == [] and rpc_requests(closed_rpc) == 0
    # With a key every check passes: re-validation reads the pools and asks the node,
    # which here is not there. The drops above were the risk checks' doing alone.
    signed = risky.runner(closed_rpc, signer=LocalSigner(closed_rpc, KEY, chain_id=31337))
    with pytest.raises(RpcError):
        signed.submit(risky.scored)
    assert risky.pool_reads == [[P1, P2]] and rpc_requests(closed_rpc) > 0


def test_the_daily_loss_limit_binds_live_trading_only(risky: Risky, closed_rpc: RpcClient) -> None:
    risky.hot.fleet.set_kill_switch(False)
    risky.opportunity(block_hash=CANONICAL)
    risky.scored = dataclasses.replace(risky.scored, decision="execute", reason="")
    for mode in ("paper", "dry-run"):
        result = risky.runner(closed_rpc, mode=mode).submit(risky.scored)
        assert isinstance(result, ExecutionResult)
        assert (result.status, result.reason) == ("dropped", f"amount_in {CAP + 1} above the risk cap {CAP}")
    assert rpc_requests(closed_rpc) == 0



# --------------------------------------------------------------------------- live, on anvil
# A stand-in executor (raw EVM code set with anvil_setCode) answers every call with PROFIT
# and logs Executed(token, amountIn, profit) as ArbExecutor does: what is under test is the
# runner's limits, fees and nonces, not the contract (tests/execution/test_executor_contract.py).

PROFIT = 3 * 10**15
REVERTER = "0x" + "dd" * 20  # code: revert(0, 0)
POOLS = ["0x" + f"{i:02x}" * 20 for i in range(0x11, 0x19)]


@pytest.fixture(scope="module")
def node() -> Iterator[RpcClient]:
    anvil = start_anvil()
    rpc = anvil.rpc()
    rpc.call("anvil_setCode", [EXECUTOR, stand_in_executor(PROFIT)])
    rpc.call("anvil_setCode", [REVERTER, "0x60006000fd"])
    yield rpc
    anvil.stop()


class Live:
    """A live runner on anvil with the fleet's nonces (Redis) and a fresh funded key; the
    hot state read in one round trip a submit (``together``, as the fleet reads it) or
    through each callable."""

    def __init__(self, node: RpcClient, hot: HotState, together: bool = True) -> None:
        self.node, self.hot, self.together = node, hot, together
        key = "0x" + secrets.token_hex(32)
        node.call("anvil_setBalance", [Account.from_key(key).address, hex(10**20)])
        self.signer = LocalSigner(node, key)
        self.nonces = NonceManager(hot, node, self.signer.address)
        self.pnl_wei = 0
        hot.put_pools(two_price_pools(POOLS, USDC, WETH), 7, CANONICAL)

    def runner(self, **kw: Any) -> ExecutionRunner:
        args: dict[str, Any] = dict(
            rpc=self.node, executor=EXECUTOR, mode="live", pools=self.hot.get_pools, signer=self.signer,
            kill_switch=self.hot.fleet.kill_switch_engaged, is_orphaned=self.hot.is_orphaned,
            nonces=self.nonces, daily_pnl_wei=lambda: self.pnl_wei, receipt_timeout_s=20.0,
            native_token=WETH, hot=self.hot, reads=self.hot.send_reads if self.together else None,
        )
        args.update(kw)
        return ExecutionRunner(**args)

    def sent(self) -> int:
        return int(self.node.call("eth_getTransactionCount", [self.signer.address, "pending"]), 16)


def live_scored(n: int, *, token: str = WETH, gas_cost: int = 2 * 10**14,
                pools: tuple[str, str] | None = None, price_pools: tuple[str, ...] | None = None) -> ScoredOpportunity:
    if pools is None:
        pools = (POOLS[2 * n], POOLS[2 * n + 1]) if token == WETH else (POOLS[2 * n + 1], POOLS[2 * n])
    tokens = (token, USDC if token == WETH else WETH, token)
    return ScoredOpportunity(
        opportunity=Opportunity(
            chain_id=31337, block_number=7, block_hash=CANONICAL, path_id=f"cycle-{n}", pools=pools,
            tokens=tokens, amount_in=10**18, amount_out=10**18 + PROFIT, gas_estimate=200_000,
            gas_price_wei=10**9, gas_cost=gas_cost,
            # as the path stage prices a start token: the pools against WETH it read
            profit_native=PROFIT if token == WETH else None,
            price_pools=price_pools if price_pools is not None else () if token == WETH else pools[:1],
        ),
        score=1.0,
        decision="execute",
    )


@pytest.fixture(params=["read together", "read apart"])
def live(node: RpcClient, hot: HotState, request: pytest.FixtureRequest) -> Iterator[Live]:
    yield Live(node, hot, together=request.param == "read together")
    hot.fleet.set_kill_switch(False)
    node.call("evm_setAutomine", [True])
    node.call("anvil_setNextBlockBaseFeePerGas", [hex(10**9)])
    node.call("evm_mine")


@pytest.mark.parametrize("together", [True, False], ids=["read together", "read apart"])
def test_the_kill_switch_fails_closed(risky: Risky, closed_rpc: RpcClient, together: bool) -> None:
    dead = HotState(redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1), "x", 31337)
    risky.opportunity(block_hash=CANONICAL)
    runner = dataclasses.replace(risky.runner(closed_rpc), kill_switch=dead.fleet.kill_switch_engaged,
                                 reads=dead.send_reads if together else None)
    result = runner.submit(risky.scored)
    assert isinstance(result, ExecutionResult) and result.status == "dropped"
    assert result.reason.startswith("kill switch state unknown: ConnectionError")
    assert rpc_requests(closed_rpc) == 0


class Tripping(NonceManager):
    """The fleet's nonces, with something happening the moment the lock is taken: after the
    runner's first checks and its simulation, before it signs."""

    def __init__(self, base: NonceManager, on_enter: Callable[[], None]) -> None:
        super().__init__(base.hot, base.rpc, base.address)
        self.on_enter = on_enter

    @contextlib.contextmanager
    def session(self) -> Iterator[NonceSession]:
        with super().session() as s:
            self.on_enter()
            yield s


def test_kill_switch_and_daily_loss_are_checked_again_inside_the_lock(live: Live) -> None:
    engage = Tripping(live.nonces, lambda: live.hot.fleet.set_kill_switch(True))
    result = live.runner(nonces=engage).submit(live_scored(0))
    assert isinstance(result, ExecutionResult)
    assert (result.status, result.reason) == ("dropped", "kill switch engaged")
    assert live.sent() == 0
    live.hot.fleet.set_kill_switch(False)

    def lose() -> None:
        live.pnl_wei = -LOSS_LIMIT

    losing = live.runner(nonces=Tripping(live.nonces, lose), limits=RiskLimits(daily_loss_limit_wei=LOSS_LIMIT))
    result = losing.submit(live_scored(0))
    assert isinstance(result, ExecutionResult) and result.status == "dropped"
    assert result.reason.startswith(f"daily loss limit: PnL today {-LOSS_LIMIT} wei, 0 wei reserved")
    assert live.sent() == 0

    live.pnl_wei = 0
    sent = live.runner().submit(live_scored(0))  # nothing tripped: it is sent
    assert isinstance(sent, Pending) and live.sent() == 1


def test_the_loss_limit_reserves_the_worst_case_gas_of_open_transactions(live: Live) -> None:
    live.node.call("evm_setAutomine", [False])
    runner = live.runner(limits=RiskLimits(daily_loss_limit_wei=LOSS_LIMIT))
    first = runner.submit(live_scored(0))
    assert isinstance(first, Pending)
    [(nonce, worst)] = live.hot.open_txs(live.signer.address).values()
    assert nonce == 0 and worst > 0
    live.pnl_wei = -LOSS_LIMIT + worst + worst // 2  # room for the open one and half another
    second = runner.submit(live_scored(1))
    assert isinstance(second, ExecutionResult) and second.status == "dropped"
    assert f"{worst} wei reserved by 1 open transactions" in second.reason
    live.node.call("evm_mine")
    assert runner.settle(first).status == "success"
    assert live.hot.open_txs(live.signer.address) == {}  # settled: the reservation is gone


def test_profit_is_checked_at_the_fee_offered_never_at_the_messages_gas_cost(live: Live) -> None:
    # The message says gas costs more than the profit: it is not what decides.
    sent = live.runner().submit(live_scored(0, gas_cost=10**18))
    assert isinstance(sent, Pending)
    assert live.runner().settle(sent).realised_profit == PROFIT
    # A base fee so high that the worst case (gas limit x max fee) exceeds the profit.
    live.node.call("anvil_setNextBlockBaseFeePerGas", [hex(10**12)])
    live.node.call("evm_mine")
    result = live.runner().submit(live_scored(1))
    assert isinstance(result, ExecutionResult) and result.status == "dropped"
    gas_limit = result.extra["gas_limit"]
    quote = fees.quote(live.node, FeePolicy())
    assert result.reason == (
        f"re-validated profit {PROFIT} wei does not exceed the worst-case gas cost "
        f"{gas_limit * quote.max_fee_per_gas} wei (gas limit {gas_limit} x {quote.describe()})"
    )
    # And the cap refuses whatever the profit.
    capped = live.runner(fee_policy=FeePolicy(max_fee_per_gas_wei=10**11)).submit(live_scored(2, token=USDC))
    assert isinstance(capped, ExecutionResult) and capped.status == "dropped"
    assert capped.reason.startswith("fees: fee needed (max fee ") and "exceeds the cap of 100000000000 wei" in capped.reason
    assert live.sent() == 1


GOLD = "0x" + "90" * 20  # a token dear in WETH: 1 base unit = 1000 wei
GOLD_POOLS = ("0x" + "21" * 20, "0x" + "22" * 20, "0x" + "23" * 20)


def test_another_profit_token_pays_for_the_worst_case_gas_converted_at_the_newest_price(live: Live) -> None:
    # The stand-in executor returns PROFIT (3e15) in whatever token. USDC is cheap (1/1000
    # wei a unit at the pool the path stage priced it by): 3e15 USDC is 3e12 wei; GOLD
    # is dear (1000 wei a unit): 3e15 GOLD is 3e18 wei. The message's own gas cost (0)
    # decides nothing: the worst case, converted, does.
    live.hot.put_pools([V2PoolState(GOLD_POOLS[0], GOLD, WETH, 10**18, 10**21, 3000, 7),
                        V2PoolState(GOLD_POOLS[1], GOLD, WETH, 105 * 10**16, 10**21, 3000, 7),
                        V2PoolState(GOLD_POOLS[2], GOLD, WETH, 10**20, 10**23, 3000, 7)], 7, CANONICAL)
    live.node.call("anvil_setNextBlockBaseFeePerGas", [hex(10**11)])
    live.node.call("evm_mine")
    cheap = live.runner().submit(live_scored(1, token=USDC, gas_cost=0))
    assert isinstance(cheap, ExecutionResult) and cheap.status == "dropped"
    gas_limit = cheap.extra["gas_limit"]
    worst = gas_limit * fees.quote(live.node, FeePolicy()).max_fee_per_gas
    profit_native = PROFIT * 10**21 // (100 * 10**22)  # POOLS[3]: the USDC price read from the hot state
    assert cheap.extra["profit_native"] == profit_native and cheap.extra["native_price"] == (1, 1000)
    assert cheap.reason.startswith(
        f"re-validated profit {PROFIT} ({profit_native} wei) does not exceed the worst-case gas cost {worst} wei = "
        f"{worst * 1000} of {USDC} (gas limit {gas_limit} x "
    )
    assert worst > profit_native  # it would have lost money in native
    gold = {"token": GOLD, "gas_cost": 0, "pools": GOLD_POOLS[:2], "price_pools": GOLD_POOLS[2:]}
    dear = live.runner().submit(live_scored(2, **gold))  # type: ignore[arg-type]
    assert isinstance(dear, Pending)  # 3e18 wei of profit covers the worst case
    assert live.sent() == 1
    assert dear.attempt["profit_token"] == GOLD
    # No price at the newest state (its pricing pool is gone from the hot state): refused.
    live.hot.delete_pools([GOLD_POOLS[2]])
    gone = live.runner().submit(live_scored(3, **gold))  # type: ignore[arg-type]
    assert isinstance(gone, ExecutionResult) and (gone.status, gone.reason) == (
        "dropped", f"no price in the native token for profit token {GOLD} at the newest state: gas cannot be weighed",
    )
    assert live.sent() == 1


def test_max_open_transactions_per_account(live: Live) -> None:
    live.node.call("evm_setAutomine", [False])
    runner = live.runner(limits=RiskLimits(max_open_txs=2))
    first, second = runner.submit(live_scored(0)), runner.submit(live_scored(1))
    assert isinstance(first, Pending) and isinstance(second, Pending)
    refused = runner.submit(live_scored(2))
    assert isinstance(refused, ExecutionResult)
    assert (refused.status, refused.reason) == ("dropped", "2 open transactions of the account, the maximum is 2")
    live.node.call("evm_mine")
    assert runner.settle(first).status == "success"  # settled: its slot is free
    assert set(live.hot.open_txs(live.signer.address)) == {second.tx_hash}
    # The second was mined too but is not settled (its receipt timed out, say): at the
    # limit, open transactions whose nonce the account's mined count passed are forgotten.
    third = runner.submit(live_scored(2))
    assert isinstance(third, Pending)
    fourth = runner.submit(live_scored(3))
    assert isinstance(fourth, Pending)
    assert set(live.hot.open_txs(live.signer.address)) == {third.tx_hash, fourth.tx_hash}
    full = runner.submit(live_scored(0))
    assert isinstance(full, ExecutionResult) and full.reason.startswith("2 open transactions")
    assert live.sent() == 4


def test_a_revert_cools_its_pools_down(live: Live) -> None:
    runner = live.runner(limits=RiskLimits(pool_cooldown_s=30))
    tx_hash = live.signer.send(to=REVERTER, data="0x", gas=50_000, max_fee_per_gas=10**11,
                               max_priority_fee_per_gas=10**9)
    scored = live_scored(0)
    pending = Pending(attempt_of(scored.opportunity), tx_hash, "", 0, scored.opportunity.pools)
    assert runner.settle(pending).status == "reverted"
    assert set(live.hot.cooling_pools(list(scored.opportunity.pools))) == set(scored.opportunity.pools)
    assert 0 < live.hot.redis.pttl(live.hot.key(f"cooldown:{POOLS[0]}")) <= 30_000
    result = runner.submit(scored)
    assert isinstance(result, ExecutionResult)
    assert (result.status, result.reason) == ("dropped", f"pool {POOLS[0]} cooling down: reverted in {tx_hash}: reverted on-chain")
    assert isinstance(runner.submit(live_scored(1)), Pending)  # other pools trade on
    off = live.runner(limits=RiskLimits(pool_cooldown_s=0))
    assert isinstance(off.submit(scored), Pending)


def test_input_caps_are_read_from_the_setting_and_enforced(risky: Risky, closed_rpc: RpcClient,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBBOT_MAX_AMOUNT_IN", f" {WETH.upper().replace('0X', '0x')}=5, {USDC}=7 ,*=9")
    settings = Settings.from_env()
    assert (settings.max_amount_in, settings.default_max_amount_in) == ({WETH: 5, USDC: 7}, 9)
    risky.hot.fleet.set_kill_switch(False)
    risky.opportunity(block_hash=CANONICAL, amount_in=6)
    risky.scored = dataclasses.replace(risky.scored, decision="execute", reason="")
    runner = dataclasses.replace(
        risky.runner(closed_rpc),
        limits=RiskLimits(max_amount_in=settings.max_amount_in, default_max_amount_in=settings.default_max_amount_in),
    )
    result = runner.submit(risky.scored)
    assert isinstance(result, ExecutionResult) and (result.status, result.reason) == (
        "dropped", "amount_in 6 above the risk cap 5",
    )
    for raw, error in [
        ("0x12=5", "entry '0x12=5': '0x12' is not a token address"),
        (f"{WETH}=1e18", f"entry '{WETH}=1e18': '1e18' is not a whole number"),
        (f"{WETH}", f"entry '{WETH}' is not key=value"),
        (f"{WETH}=-1", "the amount must be >= 0"),
        (f"{WETH}=1,{WETH}=2", f"token {WETH} given twice"),
    ]:
        monkeypatch.setenv("ARBBOT_MAX_AMOUNT_IN", raw)
        with pytest.raises(ConfigError) as caught:
            Settings.from_env()
        assert str(caught.value).startswith("ARBBOT_MAX_AMOUNT_IN: ") and error in str(caught.value)


def test_the_fee_cap_setting_is_per_chain_and_never_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBBOT_MAX_FEE_PER_GAS_WEI", "1=100,31337=200")
    s = Settings.from_env()
    assert (s.max_fee_cap(1), s.max_fee_cap(31337), s.max_fee_cap(10)) == (100, 200, DEFAULT_MAX_FEE_PER_GAS_WEI)
    monkeypatch.setenv("ARBBOT_MAX_FEE_PER_GAS_WEI", "300")
    assert Settings.from_env().max_fee_cap(5) == 300
    monkeypatch.setenv("ARBBOT_MAX_FEE_PER_GAS_WEI", "mainnet=3")
    with pytest.raises(ConfigError, match="'mainnet' is not a chain id"):
        Settings.from_env()


def test_a_fee_quoted_before_a_long_wait_for_the_lock_is_quoted_again(live: Live) -> None:
    def base_fee_soars_while_waiting() -> None:
        live.node.call("anvil_setNextBlockBaseFeePerGas", [hex(10**12)])
        live.node.call("evm_mine")
        time.sleep(FEE_REQUOTE_AFTER_S + 0.1)

    result = live.runner(nonces=Tripping(live.nonces, base_fee_soars_while_waiting)).submit(live_scored(0))
    assert isinstance(result, ExecutionResult) and result.status == "dropped"
    assert result.reason.startswith(f"re-validated profit {PROFIT} wei does not exceed the worst-case gas cost")
    assert live.sent() == 0


@pytest.mark.django_db
def test_the_daily_pnl_counts_every_tokens_realised_profit_in_native_minus_gas(live: Live) -> None:
    from webapp.core import services
    from webapp.core.selectors import pnl_today_wei

    live.hot.put_pools([V2PoolState(GOLD_POOLS[0], GOLD, WETH, 10**18, 10**21, 3000, 7),
                        V2PoolState(GOLD_POOLS[1], GOLD, WETH, 105 * 10**16, 10**21, 3000, 7),
                        V2PoolState(GOLD_POOLS[2], GOLD, WETH, 10**20, 10**23, 3000, 7)], 7, CANONICAL)
    gold = live_scored(0, token=GOLD, gas_cost=0, pools=GOLD_POOLS[:2], price_pools=GOLD_POOLS[2:])
    # as the path stage values it: 1000 wei a GOLD unit
    gold = dataclasses.replace(gold, opportunity=dataclasses.replace(gold.opportunity, profit_native=PROFIT * 1000))
    assert services.execution_claim(gold) is not None
    pending = live.runner().submit(gold)
    assert isinstance(pending, Pending)
    settled = live.runner().settle(pending)
    assert (settled.status, settled.realised_profit, settled.extra) == ("success", PROFIT, {"mode": "live"})
    row = services.execution_finish(settled)
    assert int(row.realised_profit_native) == PROFIT * 1000  # at the opportunity's own price
    gas = settled.gas_used * settled.gas_price_wei
    assert gas > 0 and pnl_today_wei(31337, WETH) == PROFIT * 1000 - gas
    # paper: the price the execute stage read at the newest state converts it
    paper = live.runner(mode="paper").submit(live_scored(1, token=GOLD, gas_cost=0, pools=GOLD_POOLS[:2],
                                                        price_pools=GOLD_POOLS[2:]))
    assert isinstance(paper, ExecutionResult) and paper.extra["native_price"] == (1000, 1)
    assert int(services.execution_finish(paper).realised_profit_native) == PROFIT * 1000
    # a profit token with no price counts nothing; a WETH profit counts as itself
    unpriced = dataclasses.replace(settled, path_id="cycle-x", profit_token=USDC, realised_profit=10**30)
    assert services.execution_finish(unpriced).realised_profit_native is None
    weth = dataclasses.replace(paper, path_id="cycle-w", status="success", profit_token=WETH, realised_profit=7,
                               tx_hash="0x" + "77" * 32, extra={"native_price": (1, 1)})  # a success has a tx
    services.execution_finish(weth)
    assert pnl_today_wei(31337, WETH) == PROFIT * 1000 - gas + 7 - gas  # cycle-x's tx hash paid gas too


def test_warm_reads_what_a_first_batch_reads_and_never_raises(risky: Risky, closed_rpc: RpcClient) -> None:
    """``ExecutionRunner.warm`` (a worker's start): the mode, the pool guard, the kill switch
    and the day's PnL read once each, off the first batch's way; nothing else is asked: no
    pool read (nothing is sized, signed or sent), not the node (one that hangs would hold a
    starting process). A read that raises is logged, not raised. Without a daily loss limit
    the PnL is not read."""
    asked: list[str] = []
    runner = risky.runner(closed_rpc)
    runner.chain_id = 31337
    runner.mode = lambda: asked.append("mode") or "live"  # type: ignore[func-returns-value]
    runner.pool_guard = lambda pools: asked.append(f"guard of {len(pools)}")  # type: ignore[func-returns-value]
    runner.kill_switch = lambda: asked.append("kill switch") or False  # type: ignore[func-returns-value]
    runner.daily_pnl_wei = lambda: asked.append("pnl") or 0  # type: ignore[func-returns-value]
    runner.warm()
    assert sorted(asked) == ["guard of 0", "kill switch", "mode", "pnl"]
    assert risky.pool_reads == [] and rpc_requests(closed_rpc) == 0
    asked.clear()
    runner.daily_pnl_wei = lambda: 1 // 0  # type: ignore[assignment]
    runner.warm()  # logged
    asked.clear()
    runner.limits = dataclasses.replace(runner.limits, daily_loss_limit_wei=None)
    runner.warm()
    assert sorted(asked) == ["guard of 0", "kill switch", "mode"]


def test_warm_makes_a_first_sends_first_calls_and_sends_nothing(risky: Risky, closed_rpc: RpcClient) -> None:
    """With a signer, ``warm`` also makes what a first live send does the first time: the
    calldata encoder (a cycle encoded), a signature, the lock renewal thread. Nothing goes
    to the node and the signer's nonce is not touched."""
    import secrets
    import threading

    from arbbot.execution import executor

    signer = LocalSigner(closed_rpc, "0x" + secrets.token_hex(32), chain_id=31337)
    runner = risky.runner(closed_rpc, signer=signer)
    executor._execute_template.cache_clear()
    runner.warm()
    assert executor._execute_template.cache_info().currsize == 1
    assert "lock-renewal" in [t.name for t in threading.enumerate()]
    assert signer._nonce is None and rpc_requests(closed_rpc) == 0
