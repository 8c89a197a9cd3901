"""A backtest's own chain: a local anvil loaded from a recording's state dump, kept at the
pool states of the block being replayed, on which the execute stage's re-validation runs the
executor's exact calldata (``eth_call``, ``eth_estimateGas``), so a paper fill is what the
genuine contracts pay, to the wei, rather than the pool math's prediction of it.

The dump (``anvil_dumpState``, written by ``arbbot.replay.recorder`` when a devnet recording
starts) holds the contracts: the DEXes, the tokens, the executor. Each replayed block's
recorded pool states (and the pools a paper fill moved, ``arbbot.replay.fills``) are given
to the calls that trade through them as ``eth_call``/``eth_estimateGas`` state overrides
(``stateDiff``: each pool's storage words as its newest state has them, kept per pool and
sent with every call through it), never written into the anvil: a call and the pool states
it sees travel in one request, so simulations can be sent in any order, and batched, after
the fact (``verify_later``). The words:

- a V2 pair: ``reserve0``/``reserve1`` in slot 8 (``blockTimestampLast`` 0: it only feeds
  the price oracle), and the pair's balance of each token set equal to its reserve (the
  pair computes the amount paid in from its balance), in the token's ``balanceOf`` mapping
  found once per token by probing (``anvil_dealERC20`` when the probe finds nothing: the one
  write into the anvil, made once every simulation asked before it is answered);
- a V3 pool: ``sqrtPriceX96`` and ``tick`` in slot 0 (the oracle and lock fields kept as the
  dump has them), ``liquidity`` in slot 4, and, when the recorded initialized ticks differ
  from the pool's first recorded ones (which the dump is taken to hold: a mint or burn
  since), each changed tick's ``liquidityNet`` (slot 5's mapping; ``liquidityGross`` kept, at
  least 1 while initialized) and its bit in ``tickBitmap`` (slot 6's). A V3 pool's token balances are the dump's: the pool's math
  never reads them, only that the payer paid.

The executor's re-validation runs from an address of this module's own (``CALLER``), made
an executor of the contract in storage (``isExecutor``, slot 2); the state the calls see is
never changed by them (``eth_call`` only). Pools the recording never mentions keep the
dump's state, which is the chain's at the block the dump was taken.

``verify_later`` queues a simulation for a thread of this module's that sends the queued
ones in batches while the replay goes on (on the machine's other core); ``drain`` waits for
their replies. A simulation's ``eth_estimateGas`` is answered with anvil's own figure but
mostly without its search (about 17 executions a trade): a trace of the call and two
``eth_call``s confirming a guess, exact by construction (``AnvilChain._answer``).
"""

from __future__ import annotations

import gzip
import queue
import tempfile
import threading
import zlib
from pathlib import Path
from typing import Any, Hashable, Iterable, Mapping

from eth_utils import keccak

from arbbot.chain.abi import int_arg, selector
from arbbot.chain.rpc import RpcClient
from arbbot.devnet.anvil import Anvil, start_anvil
from arbbot.errors import ArbbotError, RpcError
from arbbot.types import PoolState, V2PoolState, V3PoolState

CALLER = "0x" + keccak(text="arbbot backtest caller")[-20:].hex()
_V2_RESERVES_SLOT = 8
_V3_SLOT0, _V3_LIQUIDITY, _V3_TICKS, _V3_BITMAP = 0, 4, 5, 6
_EXECUTOR_IS_EXECUTOR = 2
_BALANCE_PROBE_SLOTS = 12  # mapping positions tried for a token's balances
_SEL_BALANCE_OF = selector("balanceOf(address)").hex()
_U128 = (1 << 128) - 1
_SEND_BATCH = 16  # queued simulations sent in one request by the sender thread


_GAS_REFUND_GUESS = 22_700  # a cycle's first estimate: the refund most trades get
_GAS_MARGIN_GUESS = 2_208  # ... and the margin over the frames' need most 63/64-bound ones show
_SSTORE_SENTRY = 2_300  # an SSTORE needs more gas left than this (EIP-2200)


def _need_in(r: int) -> int:
    """The least gas ``y`` left to a frame at an inner call for the call to get ``r``
    (it gets ``y - y // 64``)."""
    y = r + r // 63
    while y - y // 64 < r:
        y += 1
    while y > 0 and (y - 1) - (y - 1) // 64 >= r:
        y -= 1
    return y


def _frames_need(trace: Mapping[str, Any], gas_limit: int) -> int:
    """The gas limit a call's inner calls need by the 63/64 rule, from its ``callTracer``
    trace at ``gas_limit`` (every inner call given all but a 64th of what was left): at
    inner call k a frame had used ``gas - _need_in(k's gas)``, k needs its own use or what
    its inner calls need, whichever is more; the transaction's intrinsic gas on top."""

    def need(frame: Mapping[str, Any], own: int) -> int:
        given = int(frame["gas"], 16)
        r = own
        for inner in frame.get("calls") or ():
            r = max(r, given - _need_in(int(inner["gas"], 16)) + _need_in(need(inner, int(inner["gasUsed"], 16))))
        return r

    return gas_limit - int(trace["gas"], 16) + need(trace, 0)


def _word(value: int) -> str:
    return "0x" + (value % (1 << 256)).to_bytes(32, "big").hex()


def _slot(key: bytes, position: int) -> str:
    """The storage slot of ``mapping[key]`` for a mapping at ``position``."""
    return _word(int.from_bytes(keccak(key + position.to_bytes(32, "big")), "big"))


def _address_key(address: str) -> bytes:
    return bytes.fromhex(address.lower().removeprefix("0x")).rjust(32, b"\0")


class ChainError(ArbbotError):
    """The backtest's anvil cannot be built or kept in step; the message says why."""


class AnvilChain:
    """The pools of the block being replayed on an anvil loaded from a state dump."""

    def __init__(self, rpc: RpcClient, executor: str, anvil: Anvil | None = None) -> None:
        self.rpc = rpc
        self.executor = executor.lower()
        self.anvil = anvil
        self._balance_slot: dict[str, int | None] = {}  # token -> balances mapping position (None: deal)
        self._slot0_high: dict[str, int] = {}  # V3 pool -> slot 0 above sqrtPriceX96 and tick
        self._ticks: dict[str, dict[int, int]] = {}  # V3 pool -> the initialized ticks written
        self._dirty: dict[str, PoolState] = {}  # the newest state of each pool not written yet
        #: pool -> the storage words its newest written state overrides: (contract, slot) -> word
        self._words: dict[str, dict[tuple[str, str], str]] = {}
        self.writes = 0  # storage words written, for the report
        #: estimates confirmed from a guess / asked of anvil's own search
        self.gas_confirmed = self.gas_asked = 0
        self._gas_offsets: dict[str, tuple[int | None, int | None]] = {}  # cycle -> (refund, margin)
        self.guess_gas = True  # estimates from a confirmed guess (False: anvil's search each time)
        self._gas_limit: int | None = None  # the latest block's, the traces' gas limit
        self._queue: queue.Queue[tuple[Hashable, list[tuple[str, list[Any]]]] | None] = queue.Queue()
        self._replies: dict[Hashable, list[Any]] = {}
        self._failure: BaseException | None = None
        self._sender: threading.Thread | None = None

    @classmethod
    def start(cls, dump: Path, chain_id: int, executor: str, *, log_path: Path | None = None) -> AnvilChain:
        """A fresh anvil with ``chain_id`` started on ``dump`` (``anvil --load-state``: a
        devnet's dump is too big for ``anvil_loadState``'s request), ``CALLER`` an executor."""
        try:
            state = dump.read_bytes()
            if state[:2] == b"\x1f\x8b":  # anvil_dumpState gives gzip; --load-state reads JSON
                state = gzip.decompress(state)
        except (OSError, EOFError, zlib.error) as exc:
            raise ChainError(f"{dump}: the recording's state dump cannot be read: {exc}") from None
        with tempfile.NamedTemporaryFile(prefix="arbbot-backtest-", suffix=".json", delete=False) as f:
            f.write(state)
            loaded = Path(f.name)
        try:
            anvil = start_anvil(chain_id=chain_id, log_path=log_path, extra_args=["--load-state", str(loaded)])
        except ArbbotError as exc:
            raise ChainError(f"{dump}: anvil did not start on the state dump: {exc}") from None
        finally:
            loaded.unlink(missing_ok=True)
        try:
            rpc = RpcClient(anvil.url, timeout_s=60)
            chain = cls(rpc, executor, anvil)
            if rpc.call("eth_getCode", [chain.executor, "latest"]) in ("0x", "", None):
                raise ChainError(f"{dump}: the state dump holds no executor contract at {executor}")
            rpc.call("anvil_setStorageAt", [chain.executor, _slot(_address_key(CALLER), _EXECUTOR_IS_EXECUTOR), _word(1)])
            return chain
        except BaseException:
            anvil.stop()
            raise

    def close(self) -> None:
        if self._sender is not None:
            self._queue.put(None)
            self._sender.join()
            self._sender = None
        if self.anvil is not None:
            self.anvil.stop()

    def reset(self) -> None:
        """Forget every pool state given since the start (the anvil's storage is still the
        dump's: states travel as overrides), for a replay from the first block again."""
        self.drain()
        self._dirty.clear()
        self._ticks.clear()
        self._words.clear()

    def simulate(self, call: Mapping[str, Any], pools: Iterable[str] | None = None) -> list[Any]:
        """``eth_call`` and ``eth_estimateGas`` of ``call`` from ``CALLER`` at the pools as
        ``write`` gave them; a revert comes back as the ``RpcError`` the node gave.
        ``pools``: the only ones the call trades through (a call reads no other pool);
        None: every pool given so far."""
        return self._answer([self.simulation(call, pools)])[0]

    def _answer(self, simulations: list[list[tuple[str, list[Any]]]]) -> list[list[Any]]:
        """The replies anvil gives ``simulations`` (each a ``simulation``), with fewer EVM
        runs than its ``eth_estimateGas`` search (about 17 executions): the call is traced
        once (``callTracer``: its output, which is ``eth_call``'s, and each frame's gas),
        the estimate guessed from the trace (``_gas_guess``) and confirmed by two
        ``eth_call``s, at the guess (must succeed) and one gas below (must fail). anvil's
        estimate is its binary search's boundary, the least gas limit at which the call
        succeeds (``do_estimate_gas_with_state``: the same ``call_with_state`` as
        ``eth_call``'s), and the executor's success only grows with the gas limit (no
        ``gasleft`` branch, every failed inner call reverts the whole): so a confirmed
        guess IS anvil's figure, to the gas. A call that fails, or a guess not confirmed,
        is asked of anvil as it stands (``eth_call``, ``eth_estimateGas``), as every
        simulation is with ``guess_gas`` off (the previous path, a benchmark's baseline)."""
        if not self.guess_gas:
            replies = self.rpc.batch([r for sim in simulations for r in sim], raise_errors=False)
            return [replies[2 * i:2 * i + 2] for i in range(len(simulations))]
        if self._gas_limit is None:
            self._gas_limit = int(self.rpc.call("eth_getBlockByNumber", ["latest", False])["gasLimit"], 16)
        traces = self.rpc.batch([("debug_traceCall", [{**p[0], "gas": hex(self._gas_limit)}, p[1],
                                                      {"tracer": "callTracer", "stateOverrides": p[2]}])
                                 for (_, p), _ in simulations], raise_errors=False)
        out: list[list[Any] | None] = [None] * len(simulations)
        probes: list[tuple[str, list[Any]]] = []
        guessed: list[tuple[int, int, str]] = []  # simulation, guess, cycle
        for i, (sim, trace) in enumerate(zip(simulations, traces)):
            if not isinstance(trace, dict) or "error" in trace or not isinstance(trace.get("output"), str):
                continue
            call, block, overrides = sim[0][1]
            key = str(call.get("to")) + str(call.get("data", ""))[138:]  # the hops, not the amounts
            g = self._gas_guess(trace, key)
            guessed.append((i, g, key))
            probes += [("eth_call", [{**call, "gas": hex(g)}, block, overrides]),
                       ("eth_call", [{**call, "gas": hex(g - 1)}, block, overrides])]
            out[i] = [trace["output"], hex(g)]
        replies = self.rpc.batch(probes, raise_errors=False) if probes else []
        for n, (i, g, key) in enumerate(guessed):
            at, below = replies[2 * n], replies[2 * n + 1]
            if at == traces[i]["output"] and isinstance(below, RpcError):
                self.gas_confirmed += 1
            else:
                out[i] = None
        asked = [i for i, o in enumerate(out) if o is None]
        if asked:
            again = self.rpc.batch([r for i in asked for r in simulations[i]], raise_errors=False)
            for n, i in enumerate(asked):
                out[i] = again[2 * n:2 * n + 2]
                self.gas_asked += 1
        for i, _, key in guessed:
            self._learn_gas(traces[i], key, out[i][1])  # type: ignore[index]
        return out  # type: ignore[return-value]

    def _gas_guess(self, trace: Mapping[str, Any], key: str) -> int:
        """anvil's estimate as a trace of the call at the block's gas limit suggests it: the
        larger of the gas used before refunds (the gas used plus the refund the cycle's last
        estimate showed) and what the inner calls need with the 63/64 rule (each frame's own
        use, an inner call given at least ``x - x // 64`` of what is left; plus the margin
        the cycle's last estimate showed, the sentry of a frame's last ``SSTORE``)."""
        used = int(trace["gasUsed"], 16)
        refund, margin = self._gas_offsets.get(key, (None, None))
        return max(used + (_GAS_REFUND_GUESS if refund is None else refund),
                   _frames_need(trace, self._gas_limit or 0) + (_GAS_MARGIN_GUESS if margin is None else margin))

    def _learn_gas(self, trace: Mapping[str, Any], key: str, estimate: Any) -> None:
        """Keep what bound this cycle's estimate, for the next guess of the same hops."""
        if not isinstance(estimate, str):
            return
        e = int(estimate, 16)
        refund, margin = self._gas_offsets.get(key, (None, None))
        by_frames = e - _frames_need(trace, self._gas_limit or 0)
        if 0 <= by_frames <= _SSTORE_SENTRY:
            margin = by_frames
        else:
            refund = e - int(trace["gasUsed"], 16)
        self._gas_offsets[key] = (refund, margin)

    def simulation(self, call: Mapping[str, Any], pools: Iterable[str] | None = None) -> list[tuple[str, list[Any]]]:
        """The requests of ``simulate``, with the pool states as they are now: answered the
        same whenever they are sent."""
        wanted = list(self._words.keys() | self._dirty.keys()) if pools is None else [p.lower() for p in pools]
        self.flush(wanted)
        overrides: dict[str, dict[str, dict[str, str]]] = {}
        for pool in wanted:
            for (contract, slot), word in self._words.get(pool, {}).items():
                overrides.setdefault(contract, {"stateDiff": {}})["stateDiff"][slot] = word
        call = {**call, "from": CALLER}
        return [("eth_call", [call, "latest", overrides]), ("eth_estimateGas", [call, "latest", overrides])]

    def verify_later(self, ticket: Hashable, requests: list[tuple[str, list[Any]]]) -> None:
        """Send ``requests`` (a ``simulation``) in the background; ``drain`` gives the
        replies under ``ticket``."""
        if self._failure is not None:
            raise ChainError(f"the backtest's anvil failed: {self._failure}")
        if self._sender is None:
            self._sender = threading.Thread(target=self._send_queued, name="backtest-anvil", daemon=True)
            self._sender.start()
        self._queue.put((ticket, requests))

    def drain(self) -> dict[Hashable, list[Any]]:
        """Wait for every ``verify_later`` simulation; their replies by ticket (then forgotten)."""
        self._wait()
        replies, self._replies = self._replies, {}
        return replies

    def _wait(self) -> None:
        self._queue.join()
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise ChainError(f"the backtest's anvil failed: {failure}")

    def _send_queued(self) -> None:
        """The sender thread: what is queued, up to ``_SEND_BATCH`` simulations a request."""
        while True:
            item = self._queue.get()
            if item is None:
                self._queue.task_done()
                return
            items = [item]
            while len(items) < _SEND_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # seen after this batch
                    self._queue.task_done()
                    break
                items.append(more)
            try:
                if self._failure is None:
                    for (ticket, _), replies in zip(items, self._answer([requests for _, requests in items])):
                        self._replies[ticket] = replies
            except BaseException as exc:  # kept for ``drain`` to raise in the replay's thread
                self._failure = exc
            finally:
                for _ in items:
                    self._queue.task_done()

    def write(self, states: Iterable[PoolState]) -> None:
        """Make the anvil's pools hold ``states`` for the next ``simulation``: a pool's
        words are computed whole, so only its newest state is, when a call needs it (blocks
        with no trade cost nothing)."""
        for s in states:
            pool = s.address.lower()
            if isinstance(s, V3PoolState) and pool not in self._ticks:
                self._ticks[pool] = dict(s.ticks)  # the first recorded ticks are the dump's
            self._dirty[pool] = s

    def flush(self, pools: Iterable[str] | None = None) -> None:
        """Compute the storage words of the pending states of ``pools`` (None: of every
        pool); one batch of reads on first sight of a pool or token, a changed tick or a
        token whose balances are dealt."""
        wanted = list(self._dirty) if pools is None else [p.lower() for p in pools if p.lower() in self._dirty]
        if not wanted:
            return
        states = [self._dirty.pop(p) for p in wanted]
        self._learn(states)
        deals: list[tuple[str, list[Any]]] = []
        tick_states = []
        for s in states:
            pool = s.address.lower()
            words = self._words.setdefault(pool, {})
            if isinstance(s, V2PoolState):
                words[(pool, _word(_V2_RESERVES_SLOT))] = _word(s.reserve0 | s.reserve1 << 112)
                for token, amount in ((s.token0, s.reserve0), (s.token1, s.reserve1)):
                    position = self._balance_slot[token.lower()]
                    if position is None:
                        deals.append(("anvil_dealERC20", [pool, token.lower(), hex(amount)]))
                    else:
                        words[(token.lower(), _slot(_address_key(pool), position))] = _word(amount)
            elif isinstance(s, V3PoolState):
                tick24 = s.tick % (1 << 24)
                words[(pool, _word(_V3_SLOT0))] = _word(self._slot0_high[pool] | tick24 << 160 | s.sqrt_price_x96)
                words[(pool, _word(_V3_LIQUIDITY))] = _word(s.liquidity)
                if dict(s.ticks) != self._ticks[pool]:
                    tick_states.append(s)
        for s in tick_states:
            self._words[s.address.lower()].update(self._tick_words(s))
        self.writes += sum(len(self._words[s.address.lower()]) for s in states) + len(deals)
        if deals:  # a write into the anvil: every simulation asked before it first
            self._wait()
            for reply in self.rpc.batch(deals, raise_errors=False):
                if isinstance(reply, RpcError):
                    raise ChainError(f"the backtest's anvil refused a pool write: {reply}")

    def _learn(self, states: list[PoolState]) -> None:
        """Read, once, what the writes keep: each V3 pool's slot 0 above the price and tick,
        and each V2 token's balances mapping position."""
        reads: list[tuple[str, list[Any]]] = []
        what: list[tuple[str, Any]] = []
        for s in states:
            pool = s.address.lower()
            if isinstance(s, V3PoolState) and pool not in self._slot0_high:
                reads.append(("eth_getStorageAt", [pool, _word(_V3_SLOT0), "latest"]))
                what.append(("slot0", s))
            elif isinstance(s, V2PoolState):
                for token in (s.token0.lower(), s.token1.lower()):
                    if token in self._balance_slot or any(k == "token" and v[0] == token for k, v in what):
                        continue
                    data = "0x" + _SEL_BALANCE_OF + _address_key(pool).hex()
                    reads.append(("eth_call", [{"to": token, "data": data}, "latest"]))
                    reads += [("eth_getStorageAt", [token, _slot(_address_key(pool), k), "latest"])
                              for k in range(_BALANCE_PROBE_SLOTS)]
                    what.append(("token", (token, pool)))
        if not reads:
            return
        replies = self.rpc.batch(reads, raise_errors=False)
        i = 0
        for kind, item in what:
            if kind == "slot0":
                word = int(replies[i], 16)
                pool = item.address.lower()
                self._slot0_high[pool] = (word >> 184) << 184
                i += 1
            else:
                balance = replies[i]
                probes = replies[i + 1:i + 1 + _BALANCE_PROBE_SLOTS]
                i += 1 + _BALANCE_PROBE_SLOTS
                found = None
                if isinstance(balance, str) and int(balance, 16) != 0:
                    found = next((k for k, p in enumerate(probes) if isinstance(p, str) and int(p, 16) == int(balance, 16)),
                                 None)
                self._balance_slot[item[0]] = found

    def _tick_words(self, s: V3PoolState) -> dict[tuple[str, str], str]:
        """The words that make the pool's initialized ticks the recorded ones: a changed
        tick's ``liquidityNet`` (``liquidityGross`` kept, at least 1 while initialized) and
        the ``tickBitmap`` bits of ticks that appear or disappear; read as the pool's words
        so far give them, else as the dump has them."""
        pool = s.address.lower()
        old, new = self._ticks[pool], dict(s.ticks)
        changed = [t for t in set(old) | set(new) if old.get(t) != new.get(t)]
        words = sorted({(t // s.tick_spacing) >> 8 for t in changed})
        slots = [_slot(int_arg(t), _V3_TICKS) for t in changed] + [_slot(int_arg(w), _V3_BITMAP) for w in words]
        given = self._words.get(pool, {})
        unknown = [slot for slot in slots if (pool, slot) not in given]
        read = dict(zip(unknown, self.rpc.batch([("eth_getStorageAt", [pool, slot, "latest"]) for slot in unknown])))
        value = {slot: int(given[(pool, slot)] if (pool, slot) in given else read[slot], 16) for slot in slots}
        infos = {t: value[_slot(int_arg(t), _V3_TICKS)] for t in changed}
        bitmap = {w: value[_slot(int_arg(w), _V3_BITMAP)] for w in words}
        out: dict[tuple[str, str], str] = {}
        for t in changed:
            gross = infos[t] & _U128
            compressed = t // s.tick_spacing
            bit = 1 << (compressed % 256)
            if t in new:
                word0 = max(gross, abs(new[t]), 1) | (new[t] & _U128) << 128
                bitmap[compressed >> 8] |= bit
            else:
                word0 = 0
                bitmap[compressed >> 8] &= ~bit
            out[(pool, _slot(int_arg(t), _V3_TICKS))] = _word(word0)
        out.update(((pool, _slot(int_arg(w), _V3_BITMAP)), _word(v)) for w, v in bitmap.items())
        self._ticks[pool] = new
        return out
