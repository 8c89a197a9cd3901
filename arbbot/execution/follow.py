"""A signed transaction from the journal until its outcome is final, one pass at a time.

The journal (``TxJournal``; the fleet's is the Transaction table) holds every transaction
before it is sent: ``ExecutionRunner.submit`` persists the signed bytes, then sends them.
``follow`` runs every second or so per chain (the execute queue's beat task; at most one
pass per chain at a time) and moves each open transaction on. Transactions are taken by
(sender, nonce): the trade and its replacements share one nonce, so at most one of them
can ever be mined.

- **mined**: a receipt exists. Its execution is ``mined``; once the block has the chain's
  number of ``confirmations`` and is still the canonical block at that height, the
  transaction is ``confirmed`` and the execution final: ``success`` or ``reverted`` (the
  realised profit from the receipt, to the wei), or ``cancelled`` for a cancellation. The
  others of the nonce are ``replaced``. A receipt that disappears (a reorg) reopens it:
  ``sent`` again, execution ``sent``, and it is followed as before.
- **nonce used by another**: the account's mined count passed the nonce, no transaction
  of the group has a receipt. Earlier rows of the same nonce (dropped, replaced) are asked
  for a receipt: a late-mined one is reconciled (reopened, then settled as above). None:
  every row is ``dropped`` and the execution final ``dropped`` (nothing of ours was mined).
- **signed, never seen by the node**: its worker died between persisting and sending.
  After ``signed_grace_s``, under the account's nonce lock: known to the node -> ``sent``;
  else ``dropped`` (nothing was sent; its nonce is released by a resync), never sent late.
- **refused**: the node answered the send with an error and its count did not pass the
  nonce, so the runner gave the nonce to its next send and recorded the execution
  ``failed`` with the node's answer. Followed as a signed one: found on the node after all
  -> ``sent``; its nonce taken by the next transaction or ``signed_grace_s`` passed ->
  ``dropped``, the execution ``failed`` with that answer, never "never sent".
- **private**: the relay submission is polled (``arbbot.execution.submit``): included ->
  mined as above; stale (no block of its window took it) -> ``dropped``, nothing paid.
- **not mined after ``replace_after_blocks``**: unknown to the node -> the same bytes are
  re-broadcast, if the node takes them. Otherwise it is replaced under the nonce lock, at the same nonce with both fees
  bumped by ``FEE_BUMP`` (above every client's 10% replacement rule) or to the current
  quote when higher, never above the chain's cap: by the same trade while its exact
  calldata still succeeds on the latest state and fewer than ``max_replacements`` bumps
  were made; otherwise by a cancellation (a 0-value transfer to itself).

A transaction stays *open* in the hot state (its worst-case gas reserved by the loss limit)
until its nonce's group is final. Every transition is logged with the transaction's hash.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence

from arbbot.chain.rawtx import decode_raw_tx
from arbbot.errors import ArbbotError, RpcError
from arbbot.execution import fees
from arbbot.execution.nonces import NOT_SENT, Signed
from arbbot.execution.submit import Submission
from arbbot.types import ExecutionResult

if TYPE_CHECKING:
    from arbbot.execution.runner import Attempt, ExecutionRunner

log = logging.getLogger(__name__)

FEE_BUMP = Fraction(9, 8)  # +12.5%: geth and its forks ask +10% of both fees to replace
CANCEL_GAS = 21_000


@dataclass(frozen=True)
class FollowPolicy:
    """One chain's rules (``Chain.confirmations`` and friends)."""

    confirmations: int = 2
    replace_after_blocks: int = 3
    max_replacements: int = 3
    signed_grace_s: float = 30.0  # a signed row younger than this may still be being sent

    def __post_init__(self) -> None:
        if self.confirmations < 1 or self.replace_after_blocks < 1 or self.max_replacements < 0:
            raise ValueError("confirmations and replace_after_blocks must be >= 1, max_replacements >= 0")


@dataclass(frozen=True)
class TxRecord:
    """One journal row: a signed transaction of an execution."""

    attempt: Attempt
    tx_hash: str
    sender: str
    nonce: int
    raw_tx: str = field(repr=False)
    kind: str  # trade | cancel
    state: str  # signed | refused | sent | mined | confirmed | replaced | dropped
    route: str  # public | private | public-fallback
    gas_limit: int
    max_fee_per_gas: int  # legacy: the gas price
    max_priority_fee_per_gas: int | None  # None: legacy
    worst_gas_wei: int
    sent_block: int | None = None
    simulated_profit: int = 0
    pools: tuple[str, ...] = ()
    mined_block: int | None = None
    mined_block_hash: str = ""
    submission: Mapping[str, Any] = field(default_factory=dict)
    created_at: float = 0.0  # unix seconds
    final_amount_in: int = 0  # as re-sized right before signing (0: unknown)
    final_predicted_profit: int = 0
    error: str = ""  # refused: the node's answer to the send


class TxJournal(Protocol):
    def tx_signed(self, *recs: TxRecord) -> None:
        """Persist signed transactions (state ``signed``) before they are sent: all or none."""

    def tx_refused(self, tx_hash: str, error: str) -> None:
        """The node answered its send with ``error`` and its count did not pass the nonce:
        ``refused``, followed as a signed one is (a node that answered an error may have it)."""

    def tx_sent(self, tx_hash: str, *, sent_block: int | None, submission: Mapping[str, Any] | None) -> None:
        """It was sent (or re-broadcast at ``sent_block``); its execution is ``sent``."""

    def tx_mined(self, tx_hash: str, block: int, block_hash: str) -> None:
        """It has a receipt in ``block``; its execution is ``mined``."""

    def tx_reopened(self, tx_hash: str) -> None:
        """Its receipt is gone (reorg): ``sent`` again, and so is its execution."""

    def tx_state(self, tx_hashes: Sequence[str], state: str) -> None:
        """Set ``confirmed``, ``replaced`` or ``dropped``."""

    def tx_confirmed(self, tx_hash: str, replaced: Sequence[str], result: ExecutionResult) -> None:
        """It is ``confirmed``, the others of its nonce (``replaced``) ``replaced``, and its
        execution final with ``result``: all or nothing (everything here is read again from
        the chain by the next pass if it is lost)."""

    def txs_open(self, chain_id: int) -> list[TxRecord]:
        """Every ``signed``, ``refused``, ``sent`` and ``mined`` transaction of the chain."""

    def txs_of_nonce(self, chain_id: int, sender: str, nonce: int) -> list[TxRecord]:
        """Every transaction of that nonce, whatever its state."""

    def finished(self, result: ExecutionResult) -> None:
        """Record an execution's final outcome."""


@dataclass
class FollowReport:
    """What one pass did, by transition (for logs and tests), and the executions it made final."""

    counts: dict[str, int] = field(default_factory=dict)
    results: list[ExecutionResult] = field(default_factory=list)

    def add(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1


def follow(runner: ExecutionRunner, journal: TxJournal, policy: FollowPolicy, *, now: float | None = None) -> FollowReport:
    """One pass over the chain's open transactions; see the module docstring."""
    now = time.time() if now is None else now
    report = FollowReport()
    chain_id = runner.chain()
    records = journal.txs_open(chain_id)
    if not records:
        return report
    rpc = runner.rpc
    head = rpc.block_number()
    groups: dict[tuple[str, int], list[TxRecord]] = {}
    for r in records:
        groups.setdefault((r.sender, r.nonce), []).append(r)
    senders = sorted({r.sender for r in records})
    calls: list[tuple[str, Sequence[Any]]] = [("eth_getTransactionCount", [s, "latest"]) for s in senders]
    calls += [("eth_getTransactionReceipt", [r.tx_hash]) for r in records]
    replies = rpc.batch(calls, raise_errors=False)
    for reply in replies:
        if isinstance(reply, RpcError):
            raise reply  # the node is unwell: try the whole pass again next time
    mined_count = {s: int(replies[i], 16) for i, s in enumerate(senders)}
    receipts = {r.tx_hash: replies[len(senders) + i] for i, r in enumerate(records)}
    ctx = _Pass(runner, journal, policy, head, now, report)
    for (sender, nonce), group in sorted(groups.items(), key=lambda kv: kv[0][1]):
        try:
            ctx.group(group, receipts, mined_count[sender])
        except Exception:  # one nonce must not stop the others; it is tried again next pass
            log.exception("following nonce %s of %s failed", nonce, sender)
            report.add("error")
    if report.counts:
        log.info("follow chain %s at block %s: %s", chain_id, head, report.counts)
    return report


@dataclass
class _Pass:
    runner: ExecutionRunner
    journal: TxJournal
    policy: FollowPolicy
    head: int
    now: float
    report: FollowReport
    #: block number -> its canonical hash, asked once a pass (a block often mined several of ours)
    canonical: dict[int, str] = field(default_factory=dict)

    def group(self, group: list[TxRecord], receipts: Mapping[str, Any], mined_count: int) -> None:
        mined = [r for r in group if receipts.get(r.tx_hash)]
        if mined:
            self._mined(group, mined[0], receipts[mined[0].tx_hash])
            return
        for r in group:
            if r.state == "mined":  # its receipt is gone: reorged out
                log.warning("tx %s was mined in block %s and is gone from the chain: reopened", r.tx_hash, r.mined_block)
                self.journal.tx_reopened(r.tx_hash)
                self.report.add("reopened")
        newest = max(group, key=lambda r: (r.created_at, r.max_fee_per_gas))
        if mined_count > newest.nonce:
            self._nonce_used(group)
        elif newest.state in ("signed", "refused"):
            self._signed(group, newest)
        elif newest.route == "private":
            self._private(group, newest)
        elif newest.sent_block is not None and self.head - newest.sent_block >= self.policy.replace_after_blocks:
            self._stuck(group, newest)

    # ------------------------------------------------------------------ mined

    def _mined(self, group: list[TxRecord], rec: TxRecord, receipt: Mapping[str, Any]) -> None:
        block, block_hash = int(receipt["blockNumber"], 16), str(receipt["blockHash"]).lower()
        if rec.state != "mined" or rec.mined_block_hash != block_hash:
            self.journal.tx_mined(rec.tx_hash, block, block_hash)
            self.report.add("mined")
        if self.head - block + 1 < self.policy.confirmations:
            return
        if block not in self.canonical:
            canonical = self.runner.rpc.call("eth_getBlockByNumber", [hex(block), False])
            self.canonical[block] = str(canonical["hash"]).lower() if canonical else ""
        if self.canonical[block] != block_hash:
            return  # its block is being replaced: the next pass sees where it lands
        others = [r.tx_hash for r in group if r.tx_hash != rec.tx_hash]
        result = self.runner.outcome(rec, dict(receipt))
        self.journal.tx_confirmed(rec.tx_hash, others, result)
        self.report.results.append(result)
        # Another execution's transaction at the same nonce (a holder whose nonce lock
        # expired mid-send) can never be mined now: that execution ends here too.
        for key, attempt in _executions(group).items():
            if key != _key(rec.attempt):
                self._lost(group, attempt, f"nonce {rec.nonce} was taken by {rec.tx_hash} of another execution; "
                           "nothing of this one was mined")
        self._close(group)
        self.report.add("confirmed")
        log.info("tx %s confirmed (%s): %s %s", rec.tx_hash, rec.kind, result.status, result.reason)

    def _nonce_used(self, group: list[TxRecord]) -> None:
        first = group[0]
        earlier = [
            r for r in self.journal.txs_of_nonce(first.attempt["chain_id"], first.sender, first.nonce)
            if r.state in ("dropped", "replaced")
        ]
        # The group's own receipts are asked again: the pass read the mined count and the
        # receipts in one JSON-RPC batch, which a node may answer in any order, so a block
        # mined between the two (the count says used, the receipt was not there yet) must not
        # make our own mined transaction "not in the journal".
        asked = [*group, *earlier]
        replies = self.runner.rpc.batch(
            [("eth_getTransactionReceipt", [r.tx_hash]) for r in asked], raise_errors=False
        )
        for r, receipt in zip(asked, replies):
            if not receipt or isinstance(receipt, RpcError):
                continue
            if r in group:
                self._mined(group, r, receipt)
                return
            log.warning("tx %s (%s) was mined late, in block %s: reconciled", r.tx_hash, r.state,
                        int(receipt["blockNumber"], 16))
            self.journal.tx_reopened(r.tx_hash)
            self.report.add("late-mined")
            self._mined([*group, r], replace(r, state="sent"), receipt)
            return
        why = f"nonce {first.nonce} was used by a transaction not in the journal; nothing of this execution was mined"
        self._drop(group, why)

    # ------------------------------------------------------------------ not mined

    def _signed(self, group: list[TxRecord], rec: TxRecord) -> None:
        if self.now - rec.created_at < self.policy.signed_grace_s:
            return
        nonces = self.runner.nonces
        assert nonces is not None
        with nonces.session() as session:
            known = self.runner.rpc.call("eth_getTransactionByHash", [rec.tx_hash])
            if known:
                if rec.state == "refused":
                    log.warning("tx %s was refused at send (%s), and the node has it: followed as sent", rec.tx_hash,
                                rec.error)
                self.journal.tx_sent(rec.tx_hash, sent_block=self.head, submission=None)
                session.note_sent(rec.nonce, rec.tx_hash, rec.worst_gas_wei)
                self.report.add("sent-found")
                return
            self.journal.tx_state([rec.tx_hash], "dropped")
            rest = [r for r in group if r.tx_hash != rec.tx_hash]
            if not any(_key(r.attempt) == _key(rec.attempt) for r in rest):
                self._lost([rec], rec.attempt, "signed but never sent (its worker stopped before sending); nothing was "
                           "paid")
            if not rest:  # its nonce is nobody's: released
                session.resync()
            self.report.add("never-sent")

    def _private(self, group: list[TxRecord], rec: TxRecord) -> None:
        submitter = self.runner.submitter
        if submitter is None:
            raise ArbbotError(f"tx {rec.tx_hash} went to a private relay, and this chain has no relay configured")
        out = submitter.poll(Submission.from_wire(rec.submission))
        if out.state == "included":
            assert out.receipt is not None
            self._mined(group, rec, out.receipt)
        elif out.state == "stale":
            self._drop(group, f"private: {out.reason}; nothing was paid")
            nonces = self.runner.nonces
            assert nonces is not None
            with nonces.session() as session:
                session.resync()
        elif out.submission != Submission.from_wire(rec.submission):
            self.journal.tx_sent(rec.tx_hash, sent_block=rec.sent_block, submission=out.submission.to_wire())

    def _stuck(self, group: list[TxRecord], rec: TxRecord) -> None:
        rpc = self.runner.rpc
        if not rpc.call("eth_getTransactionByHash", [rec.tx_hash]):
            try:
                rpc.call("eth_sendRawTransaction", [rec.raw_tx])
            except RpcError as exc:  # e.g. its fee is below the base fee now: replace it
                log.warning("re-broadcast of %s refused: %s", rec.tx_hash, exc)
            else:
                self.journal.tx_sent(rec.tx_hash, sent_block=self.head, submission=None)
                self.report.add("rebroadcast")
                return
        bumps = len(group) - 1
        tx = decode_raw_tx(rec.raw_tx)
        kind = "trade" if rec.kind == "trade" and bumps < self.policy.max_replacements and self._still_pays(tx) else "cancel"
        quote = fees.quote(rpc, self.runner.fee_policy, cap=False)
        bumped = _bump(rec, quote)
        cap = self.runner.fee_policy.max_fee_per_gas_wei
        if cap is not None and bumped.max_fee_per_gas > cap:
            log.error("tx %s (nonce %s) is stuck: replacing it needs max fee %s wei, above the cap %s wei",
                      rec.tx_hash, rec.nonce, bumped.max_fee_per_gas, cap)
            self.report.add("stuck-at-cap")
            return
        if kind == "trade":
            to, data, gas = tx.to or "", tx.data, rec.gas_limit
        else:
            to, data, gas = rec.sender, "0x", CANCEL_GAS
        signer, nonces = self.runner.signer, self.runner.nonces
        assert signer is not None and nonces is not None
        worst = bumped.worst_case_cost(gas)

        def record(signed: Signed) -> None:
            self.journal.tx_signed(replace(
                rec, tx_hash=signed.tx_hash, raw_tx=signed.raw, kind=kind, state="signed", gas_limit=gas,
                max_fee_per_gas=bumped.max_fee_per_gas,
                max_priority_fee_per_gas=None if bumped.kind == "legacy" else bumped.max_priority_fee_per_gas,
                worst_gas_wei=worst, sent_block=self.head, mined_block=None, mined_block_hash="", submission={},
                created_at=time.time(),
            ))

        with nonces.session() as session:
            new_hash = session.send_at(
                signer, rec.nonce, worst_gas_wei=worst, before_send=record, broadcast=None, to=to, data=data, gas=gas,
                **bumped.signer_fields(),
            )
        self.journal.tx_sent(new_hash, sent_block=self.head, submission=None)
        self.report.add("replaced" if kind == "trade" else "cancel-sent")
        log.warning("tx %s not mined after %s blocks: %s %s sent at nonce %s (%s)", rec.tx_hash,
                    self.head - (rec.sent_block or self.head), "replacement" if kind == "trade" else "cancellation",
                    new_hash, rec.nonce, bumped.describe())

    def _still_pays(self, tx: Any) -> bool:
        """The trade's exact transaction still succeeds on the latest state (its on-chain
        ``minProfit`` guard included)."""
        call = tx.as_call()
        call.pop("nonce", None)
        try:
            self.runner.rpc.call("eth_call", [call, "latest"])
        except RpcError:
            return False
        return True

    # ------------------------------------------------------------------ endings

    def _drop(self, group: list[TxRecord], reason: str) -> None:
        self.journal.tx_state([r.tx_hash for r in group], "dropped")
        for attempt in _executions(group).values():
            self._lost(group, attempt, reason)
        self._close(group)
        self.report.add("dropped")
        log.warning("nonce %s of %s: %s", group[0].nonce, group[0].sender, reason)

    def _lost(self, group: Sequence[TxRecord], attempt: Attempt, reason: str) -> None:
        """Make final an execution of ``group`` none of whose transactions was mined:
        ``dropped`` for ``reason``, or, when the node refused each of its sends, ``failed``
        with the node's answer (what the runner recorded at the send)."""
        mine = [r for r in group if _key(r.attempt) == _key(attempt)]
        refused = bool(mine) and all(r.state == "refused" for r in mine)
        if refused:
            error = mine[-1].error
            reason = f"{error if error.startswith(NOT_SENT) else f'send failed: {error}'}; nothing was paid"
        result = ExecutionResult(
            status="failed" if refused else "dropped", reason=reason[:300], extra={"mode": "live"}, **attempt,
        )
        self.journal.finished(result)
        self.report.results.append(result)

    def _close(self, group: list[TxRecord]) -> None:
        nonces = self.runner.nonces
        for r in group:
            try:
                if nonces is not None:
                    nonces.closed(r.tx_hash)
            except Exception:
                log.exception("could not close open transaction %s", r.tx_hash)


def _key(attempt: Attempt) -> tuple[int, int, str]:
    return attempt["chain_id"], attempt["block_number"], attempt["path_id"]


def _executions(group: Sequence[TxRecord]) -> dict[tuple[int, int, str], Attempt]:
    """The executions a nonce's transactions belong to (usually one)."""
    return {_key(r.attempt): r.attempt for r in group}


def _bump(rec: TxRecord, quote: fees.FeeQuote) -> fees.FeeQuote:
    """Fees for a replacement of ``rec``: each at least ``FEE_BUMP`` x its own (rounded up),
    or the current quote's when higher."""

    def up(v: int) -> int:
        return -(-v * FEE_BUMP.numerator // FEE_BUMP.denominator)

    if rec.max_priority_fee_per_gas is None or quote.kind == "legacy":
        price = max(up(rec.max_fee_per_gas), quote.max_fee_per_gas)
        return fees.FeeQuote("legacy", price, price)
    prio = max(up(rec.max_priority_fee_per_gas), quote.max_priority_fee_per_gas)
    max_fee = max(up(rec.max_fee_per_gas), quote.max_fee_per_gas, prio)
    return fees.FeeQuote("eip1559", max_fee, prio, quote.base_fee_next)
