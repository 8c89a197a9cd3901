"""A backtest's own chain: a local anvil loaded from a recording's state dump, kept at the
pool states of the block being replayed, on which the execute stage's re-validation runs the
executor's exact calldata (``eth_call``, ``eth_estimateGas``), so a paper fill is what the
genuine contracts pay, to the wei, rather than the pool math's prediction of it.

The dump (``anvil_dumpState``, written by ``arbbot.replay.recorder`` when a devnet recording
starts) holds the contracts: the DEXes, the tokens, the executor. Each replayed block's
recorded pool states (and the pools a paper fill moved, ``arbbot.replay.fills``) are written
into the pools' storage with ``anvil_setStorageAt`` when a call trades through them, one
JSON-RPC batch for the call's pools changed since they were last written (their newest
state only):

- a V2 pair: ``reserve0``/``reserve1`` in slot 8 (``blockTimestampLast`` 0: it only feeds
  the price oracle), and the pair's balance of each token set equal to its reserve (the
  pair computes the amount paid in from its balance), in the token's ``balanceOf`` mapping
  found once per token by probing (``anvil_dealERC20`` when the probe finds nothing);
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
"""

from __future__ import annotations

import gzip
import tempfile
import zlib
from pathlib import Path
from typing import Any, Iterable, Mapping

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
        self.writes = 0  # storage writes made, for the report

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
        if self.anvil is not None:
            self.anvil.stop()

    def simulate(self, call: Mapping[str, Any], pools: Iterable[str] | None = None) -> list[Any]:
        """``eth_call`` and ``eth_estimateGas`` of ``call`` from ``CALLER`` at the pools as
        ``write`` gave them; a revert comes back as the ``RpcError`` the node gave.
        ``pools``: the only ones the call trades through (only their pending states need
        writing first: a call reads no other pool); None: every pending one."""
        self.flush(pools)
        call = {**call, "from": CALLER}
        return self.rpc.batch([("eth_call", [call, "latest"]), ("eth_estimateGas", [call, "latest"])],
                              raise_errors=False)

    def write(self, states: Iterable[PoolState]) -> None:
        """Make the anvil's pools hold ``states`` before the next ``simulate``: a pool's
        storage is written whole, so only its newest state is, when a call needs it (blocks
        with no trade cost nothing)."""
        for s in states:
            pool = s.address.lower()
            if isinstance(s, V3PoolState) and pool not in self._ticks:
                self._ticks[pool] = dict(s.ticks)  # the first recorded ticks are the dump's
            self._dirty[pool] = s

    def flush(self, pools: Iterable[str] | None = None) -> None:
        """Write the pending states of ``pools`` (None: of every pool); one batch of reads
        on first sight of a pool or token, one batch of writes."""
        wanted = list(self._dirty) if pools is None else [p.lower() for p in pools if p.lower() in self._dirty]
        if not wanted:
            return
        states = [self._dirty.pop(p) for p in wanted]
        self._learn(states)
        writes: list[tuple[str, list[Any]]] = []
        deals: list[tuple[str, list[Any]]] = []
        tick_states = []
        for s in states:
            pool = s.address.lower()
            if isinstance(s, V2PoolState):
                writes.append(("anvil_setStorageAt", [pool, _word(_V2_RESERVES_SLOT),
                                                      _word(s.reserve0 | s.reserve1 << 112)]))
                for token, amount in ((s.token0, s.reserve0), (s.token1, s.reserve1)):
                    position = self._balance_slot[token.lower()]
                    if position is None:
                        deals.append(("anvil_dealERC20", [pool, token.lower(), hex(amount)]))
                    else:
                        writes.append(("anvil_setStorageAt", [token.lower(), _slot(_address_key(pool), position),
                                                              _word(amount)]))
            elif isinstance(s, V3PoolState):
                tick24 = s.tick % (1 << 24)
                writes.append(("anvil_setStorageAt", [pool, _word(_V3_SLOT0),
                                                      _word(self._slot0_high[pool] | tick24 << 160 | s.sqrt_price_x96)]))
                writes.append(("anvil_setStorageAt", [pool, _word(_V3_LIQUIDITY), _word(s.liquidity)]))
                if dict(s.ticks) != self._ticks[pool]:
                    tick_states.append(s)
        if tick_states:
            writes += self._tick_writes(tick_states)
        self.writes += len(writes) + len(deals)
        for reply in self.rpc.batch(writes + deals, raise_errors=False):
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

    def _tick_writes(self, states: list[V3PoolState]) -> list[tuple[str, list[Any]]]:
        """Writes that make each pool's initialized ticks the recorded ones: a changed
        tick's ``liquidityNet`` (``liquidityGross`` kept, at least 1 while initialized) and
        the ``tickBitmap`` bits of ticks that appear or disappear."""
        reads: list[tuple[str, list[Any]]] = []
        plan = []
        for s in states:
            pool = s.address.lower()
            old, new = self._ticks[pool], dict(s.ticks)
            changed = [t for t in set(old) | set(new) if old.get(t) != new.get(t)]
            words = sorted({(t // s.tick_spacing) >> 8 for t in changed})
            for t in changed:
                reads.append(("eth_getStorageAt", [pool, _slot(int_arg(t), _V3_TICKS), "latest"]))
            for w in words:
                reads.append(("eth_getStorageAt", [pool, _slot(int_arg(w), _V3_BITMAP), "latest"]))
            plan.append((s, pool, old, new, changed, words))
        replies = iter(self.rpc.batch(reads))
        writes: list[tuple[str, list[Any]]] = []
        for s, pool, old, new, changed, words in plan:
            infos = {t: int(next(replies), 16) for t in changed}
            bitmap = {w: int(next(replies), 16) for w in words}
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
                writes.append(("anvil_setStorageAt", [pool, _slot(int_arg(t), _V3_TICKS), _word(word0)]))
            writes += [("anvil_setStorageAt", [pool, _slot(int_arg(w), _V3_BITMAP), _word(v)]) for w, v in bitmap.items()]
            self._ticks[pool] = new
        return writes
