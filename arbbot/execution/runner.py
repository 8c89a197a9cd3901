"""One opportunity's execution: risk checks, re-validation by simulation, fees, signing,
sending, receipt tracking and the measured (realised) profit. Free of Celery and Django;
``arbbot.execution.stage`` runs it over a batch and records what it returns.

Order of checks, cheapest first; every refusal is a result that says why:

1. risk: orphaned block (reorg), kill switch (fails closed: state unknown means no send),
   mode, daily loss limit, per-token input cap, pool cooldown after a revert. In the fleet
   (``reads``: ``HotState.send_reads``) what these read of the hot state comes in one round
   trip with the pools' states (the cycle's and its price pools') and, when the batch's
   turn already holds the nonce lock, the pools' last trades for step 4;
2. re-sizing on the newest pool states (the hot state): the path stage's own exact sizing
   (``arbbot.paths.resize``), under the input cap; a cycle that no longer pays is dropped.
   Both the path stage's prediction and this final one are recorded;
   re-validation: one JSON-RPC batch runs ``eth_call`` of the exact ``execute`` calldata
   (the contract's own profit guard included) against the latest state, and reads the fee
   data (``arbbot.execution.fees``). The ``eth_call`` carries ``"gas"``, a bound its
   success proves enough on that state (the executor never reads ``gasleft()`` and any
   failed inner call reverts the whole), and the transaction gets the gas limit of that
   bound (``RiskLimits.gas_limit_multiplier`` over it). The bound is the node's last
   ``eth_estimateGas`` of the cycle times ``GAS_MEMORY_SLACK`` when the runner remembers one
   (its path id, ``gas_memory`` of them, least recently used forgotten, each kept
   ``GAS_MEMORY_TTL_S``; shared with the chain's other execute processes through the hot
   state, read once per batch), else the executor's modelled gas of the cycle's hops
   (``modelled_gas``: ``executor.gas_estimate``, measured figures rounded up, the ones the
   path stage priced the cycle with) times the same slack, so a first-seen cycle's limit is
   about a remembered one's, and no ``eth_estimateGas`` (a search that runs the
   trade ~17 times) lies on the way to a decision. A call that fails otherwise than by the
   executor's own amount checks (``ProfitTooLow``, ``HopOutputTooLow``) may have been short
   of gas: the cycle is asked again, unbounded and with ``eth_estimateGas`` (a second round
   trip), and the node's estimate remembered; nothing is signed on a limit no call
   confirmed. A cycle that moved against us comes back
   reverted (``dropped``, nothing sent); a fee above the chain's cap is refused;
3. the profit check at the fee actually offered: the simulated profit must exceed the
   worst case, gas limit x ``maxFeePerGas`` in native wei, converted into the profit token
   with its native price at the newest state (``arbbot.paths.pricing`` over the hot
   state's ``Opportunity.price_pools``: the path stage's rule, on fresher states); a profit
   token with no price there is refused. The result's extra records the native value
   (``profit_native``) and the price (``native_price``: numerator, denominator);
4. ``dry-run`` stops there (``simulated``, no profit); ``paper`` records the simulated
   profit as if executed; ``live`` takes the account's nonce lock (``arbbot.execution.nonces``;
   once for a batch's sends, at the first: ``turn``) and, inside it, right before signing,
   checks again (the kill switch and the pools' last trades as step 1 read them under this
   lock when no round trip to the node came between, else read again): kill switch, daily
   loss with the worst-case gas of every open transaction
   reserved (read once a turn, the turn's own sends counted on top), max open transactions, the fee
   (re-quoted when the lock took long), and that no trade of ours through one of its pools
   was still unmined at the simulated block (it would land first and make this one revert:
   ``HotState.note_traded``), nor goes in this turn's sends already; then signs with
   ``minProfit`` = the re-validated profit, so any further adverse move reverts on-chain
   instead of losing money, persists the signed bytes in the journal, and only then sends
   them: to the node, or as a bundle to the chain's private relays (``submitter``). The
   execute stage checks a batch's opportunities first and sends the turn's live ones
   together (``TurnSends.flush``): the kill switch read once more, then signed at
   consecutive nonces, recorded in one commit, their pools noted in one round trip, and
   sent in nonce order, the first that fails stopping the ones after it;
5. ``arbbot.execution.follow`` takes it from there; ``outcome`` reads a receipt: the
   ``Executed`` event gives the realised profit, to the wei; a revert puts the cycle's
   pools in cooldown.

The mode is read for every opportunity (``mode`` may be a callable: the chain's setting,
changed while the fleet runs) and recorded on its result.

A send is never blindly retried: a failed one re-reads the nonce from the node.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Iterator, Mapping, Sequence, TypedDict

from eth_utils import keccak

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import LocalSigner, TxFailed, wait_receipt
from arbbot.errors import ArbbotError, RpcError
from arbbot.execution import fees
from arbbot.execution.executor import (
    EncodingError,
    Hop,
    decode_revert,
    encode_execute,
    executor_error,
    gas_estimate,
    hops_for_cycle,
)
from arbbot.execution.modes import live_refusal
from arbbot.execution.nonces import NOT_SENT, LocalNonces, NonceLockBusy, Nonces, Session, Signed
from arbbot.execution.submit import Submission, Submitter
from arbbot.hotstate import HotState, SendReads, renewals
from arbbot.paths.pricing import NativePricer
from arbbot.paths.resize import BadCycle, Sized, resize
from arbbot.types import ExecutionResult, ExecutionStatus, Opportunity, PoolState, ScoredOpportunity

if TYPE_CHECKING:
    from arbbot.execution.follow import TxJournal, TxRecord

log = logging.getLogger(__name__)

EXECUTED_TOPIC = "0x" + keccak(text="Executed(address,uint256,uint256)").hex()
FEE_REQUOTE_AFTER_S = 1.0  # a fee quoted before waiting longer than this for the lock is quoted again
AHEAD_TTL_S = 0.5  # re-validation replies taken ahead of a batch serve its opportunities this long
GAS_MEMORY = 100_000  # cycles whose last gas estimate a runner remembers (~20 MB when full)
#: A remembered estimate is asked again after this long: one that has grown too high (a
#: stricter worst-case check than the cycle needs) does not stay. (The signed calldata,
#: ``minProfit`` set, costs at most 32 x 30 gas more than the simulated one, by calldata
#: pricing; measured on anvil 1.7.1: +12 a non-zero byte. The multiplier's margin covers it,
#: as it covers it over a fresh estimate.)
GAS_MEMORY_TTL_S = 300.0
#: A remembered cycle's call is bounded by its estimate times this: a cycle's gas moves a
#: little from trade to trade (storage slots zero or not, ticks crossed), and a call bounded
#: by the bare estimate would fail, and be asked again, each time it grew by a gas.
GAS_MEMORY_SLACK = 1.1
#: Reverts a gas-bounded call reaches only once every inner call returned: never for want
#: of gas. Any other failure of it may be (no revert data, the node's out-of-gas, or a
#: failed inner call's reason: ``BadHop`` from a ``factory()`` read, a pair's
#: ``TRANSFER_FAILED``).
AMOUNT_CHECKS = frozenset({"ProfitTooLow", "HopOutputTooLow"})


@dataclass(frozen=True)
class RiskLimits:
    """Hard limits checked before anything is sent."""

    max_amount_in: Mapping[str, int] = field(default_factory=dict)  # token -> cap (base units)
    default_max_amount_in: int | None = None
    gas_limit_multiplier: float = 1.25
    max_gas: int = 3_000_000
    daily_loss_limit_wei: int | None = None  # stop once today's PnL <= -limit
    max_open_txs: int | None = None  # sent and unsettled, per account
    pool_cooldown_s: float = 0.0  # after a revert, its pools are not traded for this long (0: off)

    def gas_limit(self, estimate: Any) -> int:
        """A trade's gas limit from the node's ``eth_estimateGas`` reply (an error or none:
        ``max_gas``, the most a trade is ever given)."""
        if not isinstance(estimate, str):
            return self.max_gas
        return self.limit_for(int(estimate, 16))

    def limit_for(self, estimate: int) -> int:
        """A trade's gas limit for an estimate of ``estimate`` gas units."""
        return min(int(estimate * self.gas_limit_multiplier), self.max_gas)


def call_profit(reply: Any) -> int:
    """The profit an executor ``eth_call`` reply (not an error) returns."""
    return int(reply, 16) if reply not in ("0x", None) else 0


class Attempt(TypedDict):
    """An opportunity's execution as it is claimed, before any outcome: the fields every
    ``ExecutionResult`` of it carries."""

    chain_id: int
    block_number: int
    path_id: str
    predicted_profit: int
    profit_token: str
    amount_in: int


def attempt_of(opp: Opportunity) -> Attempt:
    return Attempt(
        chain_id=opp.chain_id,
        block_number=opp.block_number,
        path_id=opp.path_id,
        predicted_profit=opp.profit,
        profit_token=opp.tokens[0],
        amount_in=opp.amount_in,
    )


@dataclass(frozen=True)
class Pending:
    """A transaction that was sent and awaits its receipt."""

    attempt: Attempt
    tx_hash: str
    calldata: str
    simulated_profit: int
    pools: tuple[str, ...] = ()  # the cycle's pools (cooled down if it reverts); () when unknown
    sent_block: int | None = None  # the head when it was sent
    submission: Mapping[str, Any] | None = None  # private route: the relay submission's state


class Turn:
    """One turn of the account's nonce lock over a batch's submits (``ExecutionRunner.turn``):
    the lock taken at the turn's first live send and held until the batch is done, so its
    sends follow one another without giving it back; the open transactions and the day's
    PnL read once, at the first send, and the turn's own sends counted on top of them. A
    lock not free within its wait fails the turn's other sends at once, without waiting
    again."""

    def __init__(self, nonces: Nonces) -> None:
        self._nonces = nonces
        self._stack = contextlib.ExitStack()
        self._session: Session | None = None
        self._busy: NonceLockBusy | None = None
        self.opened: dict[str, tuple[int, int]] | None = None  # the account's, at the first send
        self.pruned = False
        self.pnl: int | str | None = None  # the day's PnL, or why it is unknown; None: not read
        self.sends = 0  # sent, or ready to be, in this turn
        self.sent_gas = 0  # their worst-case gas, wei
        self.trading: dict[str, str] = {}  # the pools their cycles go through -> the cycle's path id
        self.sent: set[str] = set()  # the hashes of its sends that left (open, counted in ``sends``)
        #: the hot state's reads of its batch, taken together (``TurnSends.read_ahead``): the
        #: block hash they asked about, whether the lock was held, the reads
        self.ahead: tuple[str, bool, SendReads] | None = None

    def holds_lock(self) -> bool:
        """Whether the turn has taken the lock (primed, or at an earlier send)."""
        return self._session is not None

    def session(self) -> Session:
        """The nonce session, the lock taken at the first call."""
        if self._busy is not None:
            raise self._busy
        if self._session is None:
            try:
                self._session = self._stack.enter_context(self._nonces.session())
            except NonceLockBusy as exc:
                self._busy = exc
                raise
        return self._session

    def prime(self, pnl: Callable[[], int] | None) -> None:
        """What the turn's first live send reads under the lock, read now: the lock, the
        open transactions and the day's PnL (``pnl``). The execute stage calls it while the
        batch's re-validation ahead is still under way, so the first send does not wait for
        them after it. Nothing raises: a busy lock fails the turn's sends as at their first
        call, an unreadable PnL refuses them (fails closed), and open transactions not read
        are read by the first send."""
        try:
            session = self.session()
        except NonceLockBusy:
            return  # kept: each send of the turn is dropped with it
        except Exception:  # Redis: the first send takes the lock itself
            log.exception("could not take the nonce lock ahead of the batch's first send")
            return
        try:
            self.opened = session.open_txs()
        except Exception:
            log.exception("could not read the open transactions ahead of the batch's first send")
        if pnl is not None:  # else no daily loss limit: nothing reads it
            self.read_pnl(pnl)

    def read_pnl(self, pnl: Callable[[], int]) -> int | str:
        """The day's PnL, or why it is unknown (which refuses every send), kept in ``self.pnl``."""
        try:
            self.pnl = pnl()
        except Exception as exc:
            self.pnl = f"daily loss state unknown: {type(exc).__name__}: {exc}"
        return self.pnl

    def close(self) -> None:
        self._stack.close()


@dataclass
class Ready:
    """A live send that passed every check under its turn's lock, not signed yet: its turn
    signs, records and sends it (``TurnSends``)."""

    attempt: Attempt
    opp: Opportunity
    tx: dict[str, Any]  # to, data (the guarded calldata), gas and the fee fields
    worst_gas_wei: int
    quote: fees.FeeQuote
    gas_limit: int
    sized: Sized
    simulated_profit: int
    head: int  # the block re-validated at
    extra: dict[str, Any]
    mode: str

    def result(self, status: ExecutionStatus, reason: str) -> ExecutionResult:
        """Its result when it was not sent: ``dropped`` before anything was signed, or ``failed``."""
        return ExecutionResult(status=status, reason=reason, extra={**self.extra, "mode": self.mode}, **self.attempt)


class TurnSends:
    """The submits of one ``Turn`` (``ExecutionRunner.turn``). ``__call__`` takes an
    opportunity through every check and, live, sends it at once: signed, recorded, sent,
    before it returns. ``defer`` takes it through the same checks and keeps a live send
    ready; ``flush`` then signs the ready ones at consecutive nonces, records them in one
    commit, notes their pools in one round trip and sends them in order
    (``Session.send_many``): a block's later sends no longer wait for each earlier one's
    commit and notes. The turn's checks count the ready ones as sent (the limits, the pools
    in flight)."""

    def __init__(self, runner: ExecutionRunner, journal: TxJournal | None, turn: Turn) -> None:
        self._runner, self._journal, self._turn = runner, journal, turn
        self._ready: list[Ready] = []

    def __call__(self, scored: ScoredOpportunity) -> ExecutionResult | Pending:
        outcome = self.defer(scored)
        if not isinstance(outcome, Ready):
            return outcome
        return next(sent for ready, sent, _ in self.flush() if ready is outcome)

    def read_ahead(self, batch: Sequence[ScoredOpportunity]) -> None:
        """Read what every submit of ``batch`` checks of the hot state in one round trip
        (the runner's ``reads``), each submit then taking its part instead of a round trip
        of its own (the turn's sends are then checked one after another in well under a
        millisecond each). Read under the lock when the turn holds it (primed), so the
        checks under the lock take them as read while no round trip to the node comes
        between (``ExecutionRunner._locked_reads``); the turn's sends read the kill switch
        once more before they leave. Nothing is read ahead for fewer than two opportunities,
        opportunities of different blocks, a runner without ``reads``, or a mode that cannot
        be read; a failure leaves each submit to read its own."""
        self._runner._read_ahead(batch, self._turn)

    def defer(self, scored: ScoredOpportunity) -> ExecutionResult | Ready:
        """The opportunity's final result, or its send made ready for ``flush``."""
        outcome = self._runner._submit(scored, self._journal, self._turn)
        if isinstance(outcome, Ready):
            self._runner._forget_ahead(outcome.opp.pools)
            self._ready.append(outcome)
        return outcome

    def flush(self) -> list[tuple[Ready, ExecutionResult | Pending, float]]:
        """Send what is ready: each with its outcome and when its send was done with."""
        ready, self._ready = self._ready, []
        if not ready:
            return []
        return [(r, *done) for r, done in zip(ready, self._runner._send(ready, self._journal, self._turn))]


@dataclass
class ExecutionRunner:
    rpc: RpcClient
    executor: str  # the ArbExecutor address
    mode: str | Callable[[], str]  # dry-run | paper | live, or where to read it each time
    pools: Callable[[list[str]], Mapping[str, PoolState]]  # pool addresses -> current states
    signer: LocalSigner | None = None
    limits: RiskLimits = field(default_factory=RiskLimits)
    kill_switch: Callable[[], bool] = lambda: False
    is_orphaned: Callable[[str], bool] = lambda block_hash: False
    #: Without ``nonces``: the lock the signer's own nonce is re-read under (one process).
    nonce_lock: Callable[[], ContextManager[Any]] = contextlib.nullcontext
    nonces: Nonces | None = None  # the fleet's: ``NonceManager`` of the signer's account
    daily_pnl_wei: Callable[[], int] = lambda: 0
    receipt_timeout_s: float = 60.0
    fee_policy: fees.FeePolicy = field(default_factory=fees.FeePolicy)
    native_token: str | None = None  # the chain's WETH: gas is compared with profit in it
    hot: HotState | None = None  # pool cooldowns
    #: The hot state's reads of a submit in one round trip (``HotState.send_reads``: the kill
    #: switch, the orphaned block, the pools, their cooldowns and last trades); None: each
    #: through ``kill_switch``, ``is_orphaned``, ``pools`` and ``hot``, one after another.
    reads: Callable[..., SendReads] | None = None
    chain_id: int = 0  # the chain this runner sends on (0: read from the node)
    submitter: Submitter | None = None  # None: public, to ``rpc``'s node
    #: Defence in depth: the cycle's pools (as read) -> a reason to drop it, or None
    #: (``arbbot.chain.create2.PoolGuard``: each pool a CREATE2 child of a configured DEX).
    pool_guard: Callable[[Sequence[PoolState]], str | None] | None = None
    #: Where re-validation asks (step 2): the requests (``eth_call`` of the exact calldata,
    #: ``eth_estimateGas``, ``eth_blockNumber``, the fee data), the cycle as re-sized, and the
    #: opportunity -> one reply per request. None: one JSON-RPC batch to ``rpc``'s node. A
    #: backtest answers from the recorded block (``arbbot.replay.backtest``): every cycle is
    #: then estimated, none remembered.
    revalidate: Callable[[list[tuple[str, list[Any]]], Sized, Opportunity], Sequence[Any]] | None = None
    ahead_ttl_s: float = AHEAD_TTL_S  # how long ``revalidate_ahead``'s replies serve
    #: The gas to bound a cycle's first call by, from its hop kinds (the executor's measured
    #: model); None: a cycle the runner remembers no estimate of is estimated on its way.
    modelled_gas: Callable[[Sequence[str]], int] | None = gas_estimate
    gas_memory: int = GAS_MEMORY  # how many cycles' last gas estimate are remembered
    #: ``revalidate_ahead``'s replies: calldata -> (when, the cycle's pools, the gas its call
    #: was bounded by (``_bound``) or None when it was estimated, replies)
    _ahead: dict[str, tuple[float, frozenset[str], int | None, list[Any]]] = field(
        default_factory=dict, init=False, repr=False)
    #: ``revalidate_ahead``'s re-sizing: path id -> (the cycle's pool states it was sized on,
    #: the input cap, ``_revalidation_call``'s answer), taken by the cycle's ``submit`` when
    #: the newest states are the same
    _prepared: dict[str, tuple[tuple[PoolState, ...], int | None, tuple[Sized, Any, dict[str, Any]]]] = field(
        default_factory=dict, init=False, repr=False)
    #: path id -> the node's last ``eth_estimateGas`` of the cycle (gas units) and when it
    #: was learned (monotonic), least recently used first
    _gas: OrderedDict[str, tuple[int, float]] = field(default_factory=OrderedDict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.nonces is None:
            self.nonces = LocalNonces(self.rpc, self.nonce_lock)

    def chain(self) -> int:
        """The chain id (asked of the node once, when not given)."""
        if not self.chain_id:
            self.chain_id = self.rpc.chain_id()
        return self.chain_id

    def current_mode(self) -> str:
        mode = self.mode() if callable(self.mode) else self.mode
        if mode not in ("dry-run", "paper", "live"):
            raise ArbbotError(f"unknown mode {mode!r}")
        return mode

    def warm(self) -> None:
        """What a batch's first decision reads, read now (a process's start) on this
        thread: the mode, the pool guard's DEXes, the kill switch over the hot state's
        connection, and the day's PnL when a daily loss limit asks for it; and what its
        first send does the first time, done now: the executor's calldata encoder built (a
        cycle of no pools encoded), the signer's first signature (``LocalSigner.warm``: a
        transaction no chain includes, dropped) and the lock renewal thread started (a
        start waits for the new thread's first run: 7 ms beside a busy thread). Nothing is
        written or sent. A read that fails here is the first batch's to make. Not the node:
        one that hangs would hold a starting process for its timeouts."""
        reads: list[Callable[[], Any]] = [self.current_mode, self.kill_switch, _warm_encoder]
        if self.pool_guard is not None:
            reads.append(lambda: self.pool_guard([]))  # type: ignore[misc]
        if self.limits.daily_loss_limit_wei is not None:
            reads.append(self.daily_pnl_wei)
        if self.signer is not None:
            reads += [self.signer.warm, renewals.start]
        for read in reads:
            try:
                read()
            except Exception as exc:
                log.warning("execute: could not read ahead of the first batch: %s: %s", type(exc).__name__, exc)

    def submit(self, scored: ScoredOpportunity, journal: TxJournal | None = None) -> ExecutionResult | Pending:
        """Everything up to and including the send; a final result when nothing was sent.
        Live, the signed transaction is recorded in ``journal`` before it is sent."""
        with self.turn(journal) as submit:
            return submit(scored)

    @contextlib.contextmanager
    def turn(self, journal: TxJournal | None = None, *, prime: bool = False) -> Iterator[TurnSends]:
        """A batch's submits (``TurnSends``: one after another, or their sends together) in
        one ``Turn`` of the account's nonce lock (taken at the first live send, given back
        when the batch is done), without a lock turn each. With ``prime`` and the mode live,
        the lock, the open transactions and the day's PnL are taken at once (``Turn.prime``),
        before the first submit. Sends made ready and not flushed are never sent."""
        assert self.nonces is not None  # set in __post_init__
        turn = Turn(self.nonces)
        if prime and self.signer is not None:
            try:
                live = self.current_mode() == "live"
            except Exception:  # each submit reads it again and drops what it cannot tell
                live = False
            if live:
                turn.prime(self.daily_pnl_wei if self.limits.daily_loss_limit_wei is not None else None)

        try:
            yield TurnSends(self, journal, turn)
        finally:
            turn.close()

    def _read_ahead(self, batch: Sequence[ScoredOpportunity], turn: Turn) -> None:
        opps = [s.opportunity for s in batch if s.decision == "execute"]
        if self.reads is None or len(opps) < 2 or len({o.block_hash for o in opps}) != 1:
            return
        try:
            locked = self.current_mode() == "live" and turn.holds_lock()
        except Exception:  # each submit reads the mode again and drops what it cannot tell
            return
        cycles = list(dict.fromkeys(p for o in opps for p in o.pools))
        pools = list(dict.fromkeys([*cycles, *(p for o in opps for p in o.price_pools)]))
        cooling = cycles if self._cools() else []
        try:
            read = self.reads(block_hash=opps[0].block_hash, pools=pools, cooling=cooling,
                              traded=cycles if locked else None)
        except Exception as exc:  # each submit reads its own, and refuses if it cannot
            log.warning("the batch's hot state reads failed: %s: %s", type(exc).__name__, exc)
            return
        turn.ahead = (opps[0].block_hash, locked, read)

    def _cools(self) -> bool:
        """Whether a submit reads its pools' cooldowns (a hot state, and cooldowns set)."""
        return self.hot is not None and self.limits.pool_cooldown_s > 0

    def _forget_ahead(self, pools: Sequence[str]) -> None:
        """A cycle through a pool a transaction of ours now trades may simulate otherwise:
        the replies taken ahead for such cycles are no longer used."""
        if self._ahead:
            traded = set(pools)
            self._ahead = {k: v for k, v in self._ahead.items() if not traded & v[1]}

    def revalidate_ahead(self, batch: Sequence[ScoredOpportunity]) -> int:
        """Re-validate a batch's opportunities in one JSON-RPC batch before they are submitted
        one after another: each ``submit`` then takes its own replies from it (the same exact
        calldata, at most ``ahead_ttl_s`` old) instead of a round trip after the previous
        one's send, so a block's last decision no longer waits for each earlier re-validation.
        Replies are never used for a cycle through a pool that a transaction sent since
        trades (``submit`` forgets them), nor once the newest pool states give other calldata
        (a new block: ``submit`` then asks the node itself). ``prepare_ahead`` then its
        round trip; the number re-validated ahead."""
        return self.prepare_ahead(batch)()

    def prepare_ahead(self, batch: Sequence[ScoredOpportunity]) -> Callable[[], int]:
        """``revalidate_ahead``'s reading and computing, done now: the batch's pools read
        once, each cycle re-sized and encoded (kept for its ``submit`` while its pools' states
        stay the same). The callable returned makes the round trip and keeps the replies; it
        does no more than ask the node, so it may run in another thread while that one waits
        on something else (the execute stage's claim), as long as no ``submit`` runs before
        it returned."""
        self._ahead, self._prepared = {}, {}
        if self.revalidate is not None:  # answered elsewhere (a backtest's recorded block)
            return lambda: 0
        wanted = []
        for s in batch:
            opp = s.opportunity
            cap = self.limits.max_amount_in.get(opp.tokens[0].lower(), self.limits.default_max_amount_in)
            if s.decision != "execute" or (cap is not None and opp.amount_in > cap):
                continue  # dropped before re-validation
            wanted.append((opp, cap))
        if len(wanted) < 2:
            return lambda: 0  # one round trip either way
        try:
            states = self.pools(sorted({p for opp, _ in wanted for p in opp.pools}))
        except Exception as exc:  # each submit reads its own
            log.warning("pools for re-validation ahead of the batch unreadable: %s: %s", type(exc).__name__, exc)
            return lambda: 0
        self._recall([opp for opp, _ in wanted])
        calls: list[tuple[Opportunity, dict[str, Any], frozenset[str], int | None]] = []
        for opp, cap in wanted:
            prepared = self._revalidation_call(opp, cap, states)
            if not isinstance(prepared, str):
                self._prepared[opp.path_id] = (tuple(states[p] for p in opp.pools), cap, prepared)
                calls.append((opp, prepared[2], frozenset(opp.pools), self._bound(opp, prepared[1])))
        if len(calls) < 2:
            return lambda: 0
        shared_requests = self._shared_requests(fees.fee_requests(self.fee_policy))

        def round_trip() -> int:
            nonlocal calls
            answers = self._round_trip(calls, shared_requests)
            if answers is None:
                return 0
            short = [k for k, ((opp, *_), (known, replies)) in enumerate(zip(calls, answers))
                     if self._short_of_gas(opp, known, replies)]
            if short:  # those again, unbounded and estimated, in one round trip
                again = self._round_trip([(o, c, p, None) for o, c, p, _ in (calls[k] for k in short)],
                                         shared_requests)
                for k, answer in zip(short, again or []):
                    answers[k] = answer
                if again is None:  # each of them asks the node itself in its submit
                    kept = [k for k in range(len(calls)) if k not in short]
                    calls, answers = [calls[k] for k in kept], [answers[k] for k in kept]
            at = time.monotonic()
            self._ahead = {call["data"]: (at, pools, known, replies)
                           for (_, call, pools, _), (known, replies) in zip(calls, answers)}
            return len(calls)

        return round_trip

    def _round_trip(
        self, calls: Sequence[tuple[Opportunity, dict[str, Any], frozenset[str], int | None]],
        shared_requests: list[tuple[str, Any]],
    ) -> list[tuple[int | None, list[Any]]] | None:
        """One JSON-RPC batch of the re-validations of ``calls`` (each bounded by its gas, or
        estimated when None) and the shared reads: per call, its bound and its replies
        followed by the shared ones; the estimates learned. None when the node failed."""
        simulations = [_simulation(call, known) for _, call, _, known in calls]
        try:
            replies = self.rpc.batch([*(r for sim in simulations for r in sim), *shared_requests],
                                     raise_errors=False)
        except Exception as exc:  # each submit asks the node itself
            log.warning("re-validation ahead of the batch failed: %s: %s", type(exc).__name__, exc)
            return None
        n = sum(len(sim) for sim in simulations)
        shared, out, i = replies[n:], [], 0
        for (opp, _, _, known), sim in zip(calls, simulations):
            own = replies[i:i + len(sim)]
            if known is None:
                self._learn(opp, own[1])
            out.append((known, [*own, *shared]))
            i += len(sim)
        return out

    def _shared_requests(self, fee_requests: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        """What every re-validation reads besides its simulation: the head, the fee data and
        the sender's mined count at the simulated block (which of its own trades the
        simulation already saw: ``_stacked_refusal``)."""
        sender = [("eth_getTransactionCount", [self.signer.address, "latest"])] if self.signer else []
        return [("eth_blockNumber", []), *fee_requests, *sender]

    def _ahead_replies(self, call: Mapping[str, Any]) -> tuple[int | None, list[Any]] | None:
        """The replies taken ahead for ``call``, with the gas its call was bounded by."""
        ahead = self._ahead.pop(call["data"], None)
        if ahead is None or time.monotonic() - ahead[0] > self.ahead_ttl_s:
            return None
        return ahead[2], ahead[3]

    def _bound(self, opp: Opportunity, hops: Sequence[Hop]) -> int | None:
        """The gas to bound the cycle's call by, never above ``RiskLimits.max_gas``: its
        remembered estimate (``_remembered_gas``), else the modelled gas of its hops
        (``modelled_gas``) times ``GAS_MEMORY_SLACK`` (the model prices the gas a trade uses,
        below what its call needs at its peak: ~245k for a V2+V2 cycle that uses ~220k,
        modelled at 245k); None (estimate it) without either, or when a backtest answers."""
        if self.revalidate is not None:
            return None
        known = self._remembered_gas(opp)
        if known is None and self.modelled_gas is not None:
            try:  # the model prices the gas used; a call needs more at its peak (refunds, 63/64)
                known = math.ceil(self.modelled_gas([h.kind for h in hops]) * GAS_MEMORY_SLACK)
            except EncodingError:  # a kind the model does not price: the node estimates it
                return None
        return None if known is None else min(known, self.limits.max_gas)

    def _short_of_gas(self, opp: Opportunity, known: int | None, replies: Sequence[Any]) -> bool:
        """Whether the cycle's call, bounded by ``known`` gas, failed in a way that may be for
        want of it (``_maybe_short_of_gas``): it is to be asked again, unbounded (logged)."""
        failed = replies[0]
        if known is None or not isinstance(failed, RpcError) or not _maybe_short_of_gas(failed):
            return False
        log.info("re-validation of %s bounded by %d gas failed (%s): estimated again", opp.path_id, known, failed)
        return True

    def _remembered_gas(self, opp: Opportunity) -> int | None:
        """The gas to bound the cycle's call by: its remembered estimate times
        ``GAS_MEMORY_SLACK``; None when the node has not estimated it for this runner in the
        last ``GAS_MEMORY_TTL_S`` (or a backtest answers: ``revalidate``)."""
        known = self._gas.get(opp.path_id) if self.revalidate is None else None
        if known is None or time.monotonic() - known[1] > GAS_MEMORY_TTL_S:
            return None
        self._gas.move_to_end(opp.path_id)
        return math.ceil(known[0] * GAS_MEMORY_SLACK)

    def _learn(self, opp: Opportunity, estimate: Any) -> None:
        """Remember the node's ``eth_estimateGas`` reply for the cycle (an error: nothing),
        here and in the hot state, where the chain's other execute processes find it."""
        if self.revalidate is not None or not isinstance(estimate, str):
            return
        gas = int(estimate, 16)
        self._keep(opp.path_id, gas, time.monotonic())
        if self.hot is not None and self.executor:
            try:
                self.hot.remember_gas(self.executor, opp.path_id, gas, GAS_MEMORY_TTL_S)
            except Exception as exc:  # a measurement to share: never worth a decision
                log.warning("could not share the gas estimate of %s: %s: %s", opp.path_id, type(exc).__name__, exc)

    def _recall(self, opps: Sequence[Opportunity]) -> None:
        """Take from the hot state the estimates the chain's other execute processes learned
        of the cycles of ``opps`` this runner does not remember (one read, none when it
        remembers them all): a batch's ahead of it, a lone submit's for itself."""
        if self.hot is None or not self.executor or self.revalidate is not None:
            return
        missing = [o.path_id for o in opps if self._remembered_gas(o) is None]
        if not missing:
            return
        try:
            shared = self.hot.remembered_gas(self.executor, missing)
        except Exception as exc:  # each is estimated again, as if never learned
            log.warning("could not read the shared gas estimates: %s: %s", type(exc).__name__, exc)
            return
        now = time.monotonic()
        for path_id, (gas, age_s) in shared.items():
            if age_s < GAS_MEMORY_TTL_S:
                self._keep(path_id, gas, now - age_s)

    def _keep(self, path_id: str, gas: int, learned_at: float) -> None:
        self._gas[path_id] = (gas, learned_at)
        self._gas.move_to_end(path_id)
        while len(self._gas) > self.gas_memory:
            self._gas.popitem(last=False)

    def _revalidation_call(
        self, opp: Opportunity, cap: int | None, states: Mapping[str, PoolState] | None = None,
    ) -> tuple[Any, Any, dict[str, Any]] | str:
        """The cycle re-sized on the newest pool states (``states``: read for it just now, or
        read here), its hops and the ``eth_call`` of its exact calldata (no profit guard); or
        why it is dropped before any call."""
        try:
            if states is None:
                states = self.pools(list(opp.pools))
            ordered = [states[p] for p in opp.pools]
            refused = self.pool_guard(ordered) if self.pool_guard is not None else None
            if refused:
                return refused
            kept = self._prepared.pop(opp.path_id, None)
            if kept is not None and kept[0] == tuple(ordered) and kept[1] == cap:
                return kept[2]  # sized and encoded ahead of the batch on these very states
            sized = resize(ordered, opp.tokens, max_amount_in=cap)
            if sized is None:
                return "stale: the cycle no longer pays on the newest pool states"
            hops = hops_for_cycle(ordered, opp.tokens)
            calldata = encode_execute(opp.tokens[0], sized.amount_in, 0, hops, flash=True)
        except (EncodingError, KeyError, BadCycle) as exc:
            return f"cannot encode: {exc}"
        call: dict[str, Any] = {"to": self.executor, "data": calldata}
        if self.signer:
            call["from"] = self.signer.address
        return sized, hops, call

    def _submit(
        self, scored: ScoredOpportunity, journal: TxJournal | None, turn: Turn,
    ) -> ExecutionResult | Ready:
        opp = scored.opportunity
        attempt = attempt_of(opp)
        try:
            mode = self.current_mode()
        except Exception as exc:  # fails closed: a mode that cannot be read sends nothing
            return ExecutionResult(status="dropped", reason=f"mode unknown: {exc}"[:300], **attempt)

        def result(status: str, reason: str, **kw: Any) -> ExecutionResult:
            extra = {**kw.pop("extra", {}), "mode": mode}
            return ExecutionResult(status=status, reason=reason, extra=extra, **attempt, **kw)  # type: ignore[arg-type]

        # 1. risk
        read = self._read(opp, locked=mode == "live" and turn.holds_lock(), ahead=turn.ahead)
        if isinstance(read, str):
            return result("dropped", read)
        if read.orphaned:
            return result("dropped", "computed on an orphaned block (reorg)")
        if read.killed:
            return result("dropped", "kill switch engaged")
        if scored.decision != "execute":
            return result("dropped", f"decision was {scored.decision}: {scored.reason}")
        limit = self.limits.daily_loss_limit_wei
        if limit is not None and mode == "live":
            # the turn's, once its first send read it under the lock (the check that counts)
            pnl = turn.pnl if turn.pnl is not None else self.daily_pnl_wei()
            if isinstance(pnl, str):  # the turn could not read it: fails closed
                return result("dropped", pnl)
            if pnl <= -limit:
                return result("dropped", f"daily loss limit reached: PnL today {pnl} wei, limit -{limit} wei")
        cap = self.limits.max_amount_in.get(opp.tokens[0].lower(), self.limits.default_max_amount_in)
        if cap is not None and opp.amount_in > cap:
            return result("dropped", f"amount_in {opp.amount_in} above the risk cap {cap}")
        if read.cooling:
            pool, why = next(iter(read.cooling.items()))
            return result("dropped", f"pool {pool} cooling down: {why}")
        if mode == "live":
            refused = live_refusal(has_signer=self.signer is not None, executor=self.executor, chain_id=opp.chain_id)
            if refused:
                return result("dropped", refused)

        # 2. re-validation by simulation of the exact calldata, with the fee data
        prepared = self._revalidation_call(opp, cap, read.states or None)
        if isinstance(prepared, str):
            return result("dropped", prepared)
        sized, hops, call = prepared
        resized = {"final_amount_in": sized.amount_in, "final_predicted_profit": sized.profit}
        fee_requests = fees.fee_requests(self.fee_policy)
        shared = self._shared_requests(fee_requests)
        known: int | None = None  # the gas the call was bounded by (``_bound``); None: estimated
        asked = True  # whether a round trip was made since ``read``
        if self.revalidate is not None:
            replies = list(self.revalidate([*_simulation(call), *shared], sized, opp))
        else:
            ahead = self._ahead_replies(call)
            if ahead is not None:
                known, replies = ahead  # an estimate among them was learned there
                asked = False
            else:
                self._recall([opp])
                known = self._bound(opp, hops)
                replies = self.rpc.batch([*_simulation(call, known), *shared], raise_errors=False)
                if known is None:
                    self._learn(opp, replies[1])
            if self._short_of_gas(opp, known, replies):  # the bound may be short on this state
                known, asked = None, True
                replies = self.rpc.batch([*_simulation(call), *shared], raise_errors=False)
                self._learn(opp, replies[1])
        if known is None:
            sim, est, rest = replies[0], replies[1], replies[2:]
        else:
            sim, est, rest = replies[0], None, replies[1:]
        head_raw, fee_replies = rest[0], rest[1:1 + len(fee_requests)]
        mined_count = rest[1 + len(fee_requests)] if self.signer else None
        if isinstance(sim, RpcError):
            why = decode_revert(_revert_data(sim))
            if why.startswith("ProfitTooLow"):
                return result("dropped", f"stale: the cycle no longer pays on re-validation ({why})")
            return result("dropped", f"re-validation reverted: {why}")
        simulated_profit = call_profit(sim)
        # bounded: the limit of the gas the call just succeeded within
        gas_limit = self.limits.limit_for(known) if known is not None else self.limits.gas_limit(est)
        extra = {"simulated_profit": simulated_profit, "gas_limit": gas_limit, **resized}

        # 3. the profit check at the fee offered
        try:
            quote = fees.quote_from_replies(fee_replies, self.fee_policy)
        except fees.FeeError as exc:
            return result("dropped", f"fees: {exc}", extra=extra)
        refused = self._unprofitable(opp, simulated_profit, gas_limit, quote, extra, read.states or None)
        if refused:
            return result("dropped", refused, extra=extra)
        if mode == "dry-run":
            return result("simulated", f"dry-run: simulated profit {simulated_profit}", extra=extra)
        if mode == "paper":
            return result("simulated", "paper trade", realised_profit=simulated_profit, extra=extra)
        head = int(head_raw, 16) if isinstance(head_raw, str) else self.rpc.block_number()

        # 4. live: checks again inside the nonce lock; signed and sent with the guard by the turn
        guarded = encode_execute(opp.tokens[0], sized.amount_in, simulated_profit, hops, flash=True)
        quoted_at = time.monotonic()
        try:
            session = turn.session()  # the turn holds the lock from its first send on
            if time.monotonic() - quoted_at > FEE_REQUOTE_AFTER_S:
                try:
                    quote = fees.quote(self.rpc, self.fee_policy)
                except fees.FeeError as exc:
                    return result("dropped", f"fees: {exc}", extra=extra)
                refused = self._unprofitable(opp, simulated_profit, gas_limit, quote, extra)
                if refused:
                    return result("dropped", refused, extra=extra)
            worst = quote.worst_case_cost(gas_limit)
            killed, traded = self._locked_reads(opp, read, fresh=read.traded is not None and not asked)
            refused = (
                killed or self._locked_refusal(session, turn, worst)
                or self._stacked_refusal(opp.pools, mined_count, traded)
                or (_trading_refusal(opp.pools, turn) if self.hot is not None else None)
            )
            if refused:
                return result("dropped", refused, extra=extra)
        except NonceLockBusy as exc:
            return result("dropped", str(exc), extra=extra)
        except Exception as exc:  # the hot state, a fee re-quote
            return result("failed", f"not sent: {type(exc).__name__}: {exc}"[:300], extra=extra)
        turn.sends += 1  # counted by the turn's next checks from here
        turn.sent_gas += worst
        turn.trading.update(dict.fromkeys(opp.pools, opp.path_id))
        return Ready(attempt, opp, dict(to=self.executor, data=guarded, gas=gas_limit, **quote.signer_fields()),
                     worst, quote, gas_limit, sized, simulated_profit, head, extra, mode)

    def _send(
        self, ready: Sequence[Ready], journal: TxJournal | None, turn: Turn,
    ) -> list[tuple[ExecutionResult | Pending, float]]:
        """Sign ``ready`` at consecutive nonces, record them in one commit and note their
        pools in one round trip, then send them in order, stopping at the first that fails
        (``Session.send_many``); each one's outcome and when its send was done with. A
        failed send's pools are free again (``_refused``), as are those of the ones after it,
        which never left."""
        signer = self.signer
        assert signer is not None
        if len(ready) > 1:  # the first one's check under the lock came a few submits ago
            blocks = {r.opp.block_hash for r in ready}
            stop = (self._reads_refusal(blocks.pop() if len(blocks) == 1 else None) if self.reads is not None
                    else self._kill_switch_refusal())
            if stop:
                for r in ready:
                    _untrade(turn, r.opp.pools)
                now = time.time()
                return [(r.result("dropped", f"{stop} before the turn's sends left"), now) for r in ready]
        route = "private" if self.submitter is not None else "public"
        submitted: dict[str, Submission] = {}
        at: dict[str, float] = {}
        of: dict[str, Ready] = {}

        def before_send(signed: Sequence[Signed]) -> None:
            of.update((s.tx_hash, r) for r, s in zip(ready, signed))
            if journal is not None:
                journal.tx_signed(*(self._record(r, s, route) for r, s in zip(ready, signed)))
            if self.hot is not None:
                self.hot.note_trades([(r.opp.pools, s.sender, s.nonce, s.tx_hash) for r, s in zip(ready, signed)])

        def broadcast(signed: Signed) -> None:
            if self.submitter is None:
                self.rpc.call("eth_sendRawTransaction", [signed.raw])
            else:
                submitted[signed.tx_hash] = self.submitter.submit(signed.raw, of[signed.tx_hash].head + 1,
                                                                  sender=signer.address)
            at[signed.tx_hash] = time.time()

        try:
            out = turn.session().send_many(signer, [(r.worst_gas_wei, r.tx) for r in ready],
                                           before_send=before_send, broadcast=broadcast)
        except Exception as exc:  # the journal or the hot state failed before any send, or the lock
            for r in ready:
                _untrade(turn, r.opp.pools)
            why = f"not sent: {type(exc).__name__}: {exc}"[:300]
            now = time.time()
            return [(r.result("failed", why), now) for r in ready]
        outcomes: list[tuple[ExecutionResult | Pending, float]] = []
        for k, (r, s) in enumerate(zip(ready, out.signed)):
            pools = tuple(r.opp.pools)
            if k < out.sent:
                turn.sent.add(s.tx_hash.lower())
                sub = submitted.get(s.tx_hash)
                outcomes.append((Pending(r.attempt, s.tx_hash, r.tx["data"], r.simulated_profit, pools,
                                         sent_block=r.head, submission=sub.to_wire() if sub else None),
                                 at.get(s.tx_hash) or time.time()))
                continue
            _untrade(turn, pools)
            if k == out.failed and isinstance(out.error, RpcError):  # the node's count did not pass it
                self._refused(s, journal, pools, str(out.error))
                outcomes.append((r.result("failed", f"send failed: {out.error}"), time.time()))
            elif k == out.failed:  # a relay failed: its row stays signed, the follow pass finds its fate
                why = f"not sent: {type(out.error).__name__}: {out.error}"[:300]
                outcomes.append((r.result("failed", why), time.time()))
            else:  # never tried: a send before it failed
                stopped = out.signed[out.sent - 1 if out.failed is None else out.failed].nonce
                why = f"{NOT_SENT}the send of nonce {stopped} before it failed: {out.error}"[:300]
                self._refused(s, journal, pools, why)
                outcomes.append((r.result("failed", why), time.time()))
        return outcomes

    @staticmethod
    def _record(r: Ready, signed: Signed, route: str) -> TxRecord:
        from arbbot.execution.follow import TxRecord

        return TxRecord(
            attempt=r.attempt, tx_hash=signed.tx_hash, sender=signed.sender, nonce=signed.nonce, raw_tx=signed.raw,
            kind="trade", state="signed", route=route, gas_limit=r.gas_limit, max_fee_per_gas=r.quote.max_fee_per_gas,
            max_priority_fee_per_gas=None if r.quote.kind == "legacy" else r.quote.max_priority_fee_per_gas,
            worst_gas_wei=signed.worst_gas_wei, sent_block=r.head, simulated_profit=r.simulated_profit,
            pools=tuple(r.opp.pools), created_at=time.time(), final_amount_in=r.sized.amount_in,
            final_predicted_profit=r.sized.profit,
        )

    def _refused(self, signed: Signed, journal: TxJournal | None, pools: Sequence[str], error: str) -> None:
        """The node refused ``signed`` and its nonce went back: its row says so (still
        followed, in case the node has it after all), and its pools are free for the next
        send instead of waiting for its nonce to be mined."""
        try:
            if journal is not None:
                journal.tx_refused(signed.tx_hash, error)
            if self.hot is not None:
                self.hot.forget_traded(pools, signed.tx_hash)
        except Exception:  # the row stays ``signed`` and the notes expire: safe, only slower
            log.exception("could not record that the node refused %s", signed.tx_hash)

    def _read(
        self, opp: Opportunity, *, locked: bool, ahead: tuple[str, bool, SendReads] | None = None,
    ) -> SendReads | str:
        """What step 1 checks of the hot state, or why it cannot tell (which refuses the
        send: fails closed). With ``reads``, in one round trip: the kill switch, the orphaned
        block, the cycle's and its price pools' states, their cooldowns, and (``locked``: the
        turn already holds the nonce lock) the pools' last trades, which the checks under the
        lock then take as read when no round trip came between. Without: through each
        callable, the states left to step 2."""
        cooling = list(opp.pools) if self._cools() else []
        if ahead is not None and ahead[0] == opp.block_hash and ahead[1] == locked:  # the batch's, read together
            return ahead[2].part([*opp.pools, *opp.price_pools], opp.pools)
        if self.reads is not None:
            try:
                return self.reads(block_hash=opp.block_hash, pools=list(dict.fromkeys([*opp.pools, *opp.price_pools])),
                                  cooling=cooling, traded=list(opp.pools) if locked else None)
            except Exception as exc:  # Redis down, a timeout: the kill switch's state is unknown
                return f"kill switch state unknown: {type(exc).__name__}: {exc}"
        if self.is_orphaned(opp.block_hash):
            return SendReads(killed=False, orphaned=True)
        refused = self._kill_switch_refusal()
        if refused:
            return refused
        return SendReads(killed=False, cooling=self.hot.cooling_pools(cooling) if self.hot is not None and cooling else {})

    def _locked_reads(
        self, opp: Opportunity, read: SendReads, *, fresh: bool,
    ) -> tuple[str | None, dict[str, tuple[str, int, str]] | None]:
        """Under the nonce lock, right before signing: why the kill switch refuses (or
        None), and the cycle's pools' last trades (None: ``_stacked_refusal`` reads them). As
        ``read`` took them when it did so under this lock with no round trip since
        (``fresh``), else read now (one round trip with ``reads``)."""
        if self.reads is None:
            return self._kill_switch_refusal(), None
        if not fresh:
            try:
                read = self.reads(traded=list(opp.pools))
            except Exception as exc:
                return f"kill switch state unknown: {type(exc).__name__}: {exc}", None
        return ("kill switch engaged" if read.killed else None), read.traded

    def _reads_refusal(self, block_hash: str | None) -> str | None:
        """The kill switch through ``reads``, and whether ``block_hash`` was orphaned since;
        fails closed."""
        assert self.reads is not None
        try:
            read = self.reads(block_hash=block_hash)
        except Exception as exc:
            return f"kill switch state unknown: {type(exc).__name__}: {exc}"
        return "kill switch engaged" if read.killed else "computed on an orphaned block (reorg)" if read.orphaned else None

    def _kill_switch_refusal(self) -> str | None:
        """Why not to send as far as the kill switch goes; fails closed."""
        try:
            engaged = self.kill_switch()
        except Exception as exc:  # Redis down, a timeout, anything: the state is unknown
            return f"kill switch state unknown: {type(exc).__name__}: {exc}"
        return "kill switch engaged" if engaged else None

    def _unprofitable(
        self, opp: Opportunity, simulated_profit: int, gas_limit: int, quote: fees.FeeQuote, extra: dict[str, Any],
        states: Mapping[str, PoolState] | None = None,
    ) -> str | None:
        """Why the simulated profit does not pay for the worst-case gas, converted into the
        profit token at the newest state (its price pools' ``states`` as read for this
        submit, else read here); records the native value and price in ``extra``."""
        native = self.native_token
        worst = quote.worst_case_cost(gas_limit)
        if native is None:  # a runner told no native token (tools): the path stage's gas rule
            if simulated_profit <= opp.gas_cost:
                return f"stale: re-validated profit {simulated_profit} does not cover gas {opp.gas_cost}"
            return None
        token = opp.tokens[0].lower()
        if token == native.lower():
            extra.update(profit_native=simulated_profit, native_price=(1, 1))
            if simulated_profit <= worst:
                return (
                    f"re-validated profit {simulated_profit} wei does not exceed the worst-case gas cost "
                    f"{worst} wei (gas limit {gas_limit} x {quote.describe()})"
                )
            return None
        if states is not None:
            states = {p: states[p] for p in opp.price_pools if p in states}
        else:
            states = self.pools(list(opp.price_pools)) if opp.price_pools else {}
        price = NativePricer.from_states(states.values(), native).price(token)
        if price is None:
            return f"no price in the native token for profit token {token} at the newest state: gas cannot be weighed"
        profit_native = price.to_native(simulated_profit)
        extra.update(profit_native=profit_native, native_price=(price.price.numerator, price.price.denominator))
        worst_in_token = price.from_native(worst)
        if simulated_profit <= worst_in_token:
            return (
                f"re-validated profit {simulated_profit} ({profit_native} wei) does not exceed the worst-case gas "
                f"cost {worst} wei = {worst_in_token} of {token} (gas limit {gas_limit} x {quote.describe()})"
            )
        return None

    def _locked_refusal(self, session: Session, turn: Turn, worst_gas_wei: int) -> str | None:
        """Daily loss (open transactions' worst-case gas reserved) and max open transactions,
        read under the nonce lock (no other sender of this account moves them meanwhile),
        once a turn: the turn's own sends are counted on top."""
        if turn.opened is None:
            turn.opened = session.open_txs()
        max_open = self.limits.max_open_txs
        if max_open is not None and len(turn.opened) + turn.sends >= max_open:
            if not turn.pruned:  # the turn's own sends stay counted in ``turn.sends``, not twice
                session.prune_open()
                turn.opened = {h: v for h, v in session.open_txs().items() if h not in turn.sent}
                turn.pruned = True
            opened = len(turn.opened) + turn.sends
            if opened >= max_open:
                return f"{opened} open transactions of the account, the maximum is {max_open}"
        limit = self.limits.daily_loss_limit_wei
        if limit is not None:
            pnl = turn.pnl if turn.pnl is not None else turn.read_pnl(self.daily_pnl_wei)
            if isinstance(pnl, str):
                return pnl
            reserved = sum(gas for _, gas in turn.opened.values()) + turn.sent_gas
            opened = len(turn.opened) + turn.sends
            if pnl - reserved - worst_gas_wei < -limit:
                return (
                    f"daily loss limit: PnL today {pnl} wei, {reserved} wei reserved by {opened} open "
                    f"transactions, this one may cost {worst_gas_wei} wei, limit -{limit} wei"
                )
        return None

    def _stacked_refusal(
        self, pools: Sequence[str], mined_count: Any, last: Mapping[str, tuple[str, int, str]] | None = None,
    ) -> str | None:
        """Why not to send a trade through a pool that one of our trades, not yet mined when
        this one was simulated, goes through: simulated on the state before that trade, it
        would revert on-chain (paying gas) once that trade lands first. Read under the
        nonce lock (``last``: as read there already), so two senders of the account cannot
        both pass."""
        if self.hot is None:
            return None
        me = self.signer.address.lower() if self.signer else None
        try:
            if last is None:
                last = self.hot.last_trades(list(pools))
            # another signer's open transactions, read once per signer (not per pool)
            others_open = {s: self.hot.open_txs(s) for s in {s for s, _, _ in last.values() if s != me}}
        except Exception as exc:  # fails closed: unknown is not "free"
            return f"in-flight trades unknown: {type(exc).__name__}: {exc}"
        for pool, (signer, nonce, tx_hash) in last.items():
            if signer == me and isinstance(mined_count, str) and int(mined_count, 16) > nonce:
                continue  # mined before the simulated block: the simulation saw it
            if signer != me and tx_hash not in others_open[signer]:
                continue  # another account's trade, settled
            return (
                f"pool {pool} is in flight: trade {tx_hash} (nonce {nonce}) through it was not mined at the "
                "block this one was simulated on"
            )
        return None

    def settle(self, pending: Pending, *, timeout_s: float | None = None) -> ExecutionResult:
        """Wait here for a sent transaction's receipt and read its outcome: for tools and
        tests that send one transaction. The fleet follows receipts asynchronously
        (``arbbot.execution.follow``) and never waits inside a task."""
        try:
            receipt = wait_receipt(self.rpc, pending.tx_hash, timeout_s=timeout_s or self.receipt_timeout_s)
        except TxFailed as exc:
            # Not mined yet is not settled: it stays open (its gas reserved) until its nonce is used.
            return ExecutionResult.failed(pending.attempt, str(exc), tx_hash=pending.tx_hash)
        self._closed(pending.tx_hash)
        return self._from_receipt(pending.attempt, pending.tx_hash, receipt, "trade", pending.calldata,
                                  pending.simulated_profit, pending.pools)

    def outcome(self, rec: TxRecord, receipt: Mapping[str, Any]) -> ExecutionResult:
        """The final result of a journal transaction from its (confirmed) receipt."""
        from arbbot.chain.rawtx import own_calldata

        calldata = own_calldata(rec.raw_tx) if rec.kind == "trade" else ""  # our own signed bytes
        return self._from_receipt(rec.attempt, rec.tx_hash, receipt, rec.kind, calldata, rec.simulated_profit,
                                  rec.pools)

    def _from_receipt(
        self, attempt: Attempt, tx_hash: str, receipt: Mapping[str, Any], kind: str, calldata: str,
        simulated_profit: int, pools: tuple[str, ...],
    ) -> ExecutionResult:
        def result(status: str, reason: str, **kw: Any) -> ExecutionResult:
            return ExecutionResult(status=status, reason=reason, tx_hash=tx_hash, extra={"mode": "live"}, **attempt, **kw)  # type: ignore[arg-type]

        gas = {
            "gas_used": int(receipt["gasUsed"], 16),
            "gas_price_wei": int(receipt.get("effectiveGasPrice", "0x0"), 16),
            "mined_block": int(receipt["blockNumber"], 16),
        }
        if kind == "cancel":
            return result("cancelled", "not mined in time: its nonce was taken by a cancellation", **gas)
        if int(receipt["status"], 16) != 1:
            reason = self._revert_reason(calldata, gas["mined_block"]) if calldata else "reverted on-chain"
            self._cool_down(pools, f"reverted in {tx_hash}: {reason}")
            return result("reverted", reason, **gas)
        realised = _executed_profit(receipt, self.executor)
        return result(
            "success",
            f"re-validated profit {simulated_profit}" if simulated_profit else "reconciled from receipt",
            realised_profit=realised, **gas,
        )

    def _closed(self, tx_hash: str) -> None:
        try:
            assert self.nonces is not None
            self.nonces.closed(tx_hash)
        except Exception:  # it is pruned once its nonce is mined; the receipt matters more
            log.exception("could not close open transaction %s", tx_hash)

    def _cool_down(self, pools: tuple[str, ...], reason: str) -> None:
        if self.hot is None or self.limits.pool_cooldown_s <= 0 or not pools:
            return
        try:
            self.hot.cooldown_pools(pools, self.limits.pool_cooldown_s, reason[:200])
        except Exception:
            log.exception("could not cool down pools %s", pools)

    def _revert_reason(self, calldata: str, block: int) -> str:
        """Replay the call at the block it was mined in to read the revert reason."""
        try:
            call = {"to": self.executor, "data": calldata, "from": self.signer.address if self.signer else None}
            self.rpc.call("eth_call", [call, hex(block)])
        except RpcError as exc:
            return f"reverted on-chain: {decode_revert(_revert_data(exc))}"
        except ArbbotError as exc:
            return f"reverted on-chain: {exc}"
        return "reverted on-chain (state differed inside the block)"


def _trading_refusal(pools: Sequence[str], turn: Turn) -> str | None:
    """Why not to send a trade through a pool that a send of this turn trades already (not
    in the hot state's notes yet while the turn's sends wait to go together): as
    ``_stacked_refusal``, for a runner with a hot state."""
    shared = [p for p in pools if p in turn.trading]
    if not shared:
        return None
    return f"pool {shared[0]} is in flight: the trade of {turn.trading[shared[0]]} through it goes in this turn"


def _untrade(turn: Turn, pools: Sequence[str]) -> None:
    """A send of the turn that did not leave: its pools are free for the turn's next ones."""
    for p in pools:
        turn.trading.pop(p, None)


def _simulation(call: Mapping[str, Any], gas: int | None = None) -> list[tuple[str, list[Any]]]:
    """The re-validation of one exact call: its result (the profit) and its gas; given
    ``gas`` (``ExecutionRunner._bound``), the call alone, bounded to that much gas (its
    success proves it enough)."""
    if gas is None:
        return [("eth_call", [call, "latest"]), ("eth_estimateGas", [call, "latest"])]
    return [("eth_call", [{**call, "gas": hex(gas)}, "latest"])]


def _maybe_short_of_gas(failed: RpcError) -> bool:
    """Whether a gas-bounded call's failure may be for want of gas (``AMOUNT_CHECKS``)."""
    return executor_error(_revert_data(failed)) not in AMOUNT_CHECKS


def _revert_data(exc: RpcError) -> str | None:
    data = exc.data
    if isinstance(data, dict):
        data = data.get("data")
    return data if isinstance(data, str) else None


def _executed_profit(receipt: Mapping[str, Any], executor: str) -> int:
    for entry in receipt.get("logs", []):
        if entry["address"].lower() == executor.lower() and entry["topics"][0] == EXECUTED_TOPIC:
            data = bytes.fromhex(entry["data"][2:])
            return int.from_bytes(data[32:64], "big")  # (amountIn, profit); token is indexed
    raise ArbbotError("receipt has no Executed event from the executor")


def _warm_encoder() -> None:
    """``encode_execute``'s first call (its ABI encoder built, ~1.6 ms) made on a cycle of
    no pool (addresses of zeros): its calldata is dropped."""
    nowhere = "0x" + "00" * 20
    encode_execute(nowhere, 1, 0, [Hop(pool=nowhere, token_out=nowhere)])
