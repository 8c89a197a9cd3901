"""The path engine: token graph, cycle index, vectorised screening, exact sizing.

It owns the path stage's state between blocks: the latest pool states, the arrays the
screen reads (per directed edge ``p``/``q``, see ``screen``), and the cycle index. The
Celery path task feeds it ``PoolDelta`` states with ``upsert`` and asks ``evaluate`` for
the ``Opportunity`` batch; nothing here does I/O.

Guarantees of ``evaluate``: every returned opportunity's ``amount_out`` is the exact
integer chain of ``arbbot.pools.amount_out`` over its hops for its ``amount_in`` (it is
recomputed that way before leaving), its net profit in the native token exceeds
``min_net_profit`` (native wei; gas is native), and a pool that is empty, absurd, removed
or excluded can neither crash an evaluation nor appear in a profitable cycle.

One unit of value: each evaluation prices the start tokens in the native token (the
chain's wrapped native, ``weth``) from the engine's own pool states
(``arbbot.paths.pricing``), fills ``Opportunity.profit_native`` and converts gas into the
start token with that price. A start token with no price gives opportunities with
``profit_native=None`` and no gas cost (it cannot be converted), ranked last (logged once
per token); the scorer does not execute them.

Start tokens: the configured ones, the native token first; none configured, every token
whose pools against the native token hold at least ``min_native_liquidity_wei`` of native
(``arbbot.paths.pricing.DEFAULT_MIN_NATIVE_LIQUIDITY_WEI``), added as their pools arrive.
A configured start token with no pools is reported once (``missing_start_tokens``).

Over 500 lines: one stateful object whose methods share its per-pool and per-edge arrays
(the math it calls lives in ``screen``, ``v2_exact`` and ``exact_search``).
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from typing import Callable, Iterable, Mapping

import numpy as np
import numpy.typing as npt

from arbbot import pools as pool_models
from arbbot.errors import ArbbotError, ConfigError
from arbbot.paths.cycles import CycleGroup, EdgeGraph, enumerate_cycles
from arbbot.paths.gas import GasModel
from arbbot.paths.exact_search import size_cycle
from arbbot.paths.pricing import DEFAULT_MIN_NATIVE_LIQUIDITY_WEI, NativePrice, NativePricer
from arbbot.paths.screen import edge_coefficients, screen_profitable, unit_level_cut
from arbbot.paths.v2_closed import Hop, v2_edge_row
from arbbot.paths.v2_exact import size_v2_table
from arbbot.types import UINT256_MAX, Opportunity, PoolState, V2PoolState, V3PoolState

log = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]

DEFAULT_MAX_CYCLES = 10_000_000  # ~1.5 GB at its peak; ARBBOT_PATH_MAX_CYCLES in the fleet

# Float screening error is ~1e-12 relative; keep anything within this margin of the
# threshold for the exact check rather than risk dropping a real opportunity.
_SCREEN_REL_SLACK = 1e-7
_SCREEN_ABS_SLACK = 4.0


def rank_key(opp: Opportunity) -> tuple[bool, int, str]:
    """Best first: net profit in native descending, unpriced last, then ``path_id``."""
    net = opp.net_profit_native
    return (net is None, -(net or 0), opp.path_id)


def path_id_for(pools: Iterable[str], tokens_in: Iterable[str]) -> str:
    """Stable id of a directed cycle: a short hash of its pools and input tokens."""
    text = "|".join(f"{p.lower()}:{t.lower()}" for p, t in zip(pools, tokens_in))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def hop_amounts(opportunity: Opportunity, states: Mapping[str, PoolState] | Iterable[PoolState]) -> list[int]:
    """Exact output of each hop of ``opportunity`` (the last equals ``amount_out``).

    ``states`` maps pool address -> state (or is an iterable of states). Raises
    ``ArbbotError`` (e.g. ``InsufficientLiquidity``) if a hop would revert.
    """
    if not isinstance(states, Mapping):
        states = {s.address.lower(): s for s in states}
    by_addr = {a.lower(): s for a, s in states.items()}
    amounts = []
    x = opportunity.amount_in
    for pool, token_in in zip(opportunity.pools, opportunity.tokens):
        state = by_addr.get(pool.lower())
        if state is None:
            raise ArbbotError(f"no state for pool {pool}")
        x = pool_models.amount_out(state, _state_token(state, token_in), x)
        amounts.append(x)
    return amounts


def _state_token(state: PoolState, token: str) -> str:
    """The state's own spelling of ``token`` (addresses may differ in case)."""
    low = token.lower()
    if state.token0.lower() == low:
        return state.token0
    if state.token1.lower() == low:
        return state.token1
    return token


class PathEngine:
    """Token graph + cycle index + sizing. Not thread-safe: one engine per worker process."""

    def __init__(
        self,
        *,
        base_tokens: Iterable[str],
        weth: str,
        max_hops: int = 3,
        gas_model: GasModel | None = None,
        min_net_profit: int = 0,
        max_per_pool: int | None = None,
        min_native_liquidity_wei: int = DEFAULT_MIN_NATIVE_LIQUIDITY_WEI,
        max_cycles: int | None = DEFAULT_MAX_CYCLES,
    ) -> None:
        if not 2 <= max_hops <= 4:
            raise ConfigError(f"max_hops must be 2..4, got {max_hops}")
        if min_native_liquidity_wei < 0:
            raise ConfigError(f"min_native_liquidity_wei must be >= 0, got {min_native_liquidity_wei}")
        self.weth = weth.lower()
        self.min_native_liquidity_wei = min_native_liquidity_wei
        configured = [t.lower() for t in base_tokens]
        #: no start token configured: every token liquid enough against the native token
        self.auto_start = not configured
        # Priority order for a cycle's start: the native token first (profit needs no
        # conversion), then the configured order (auto: the order they became liquid).
        order: list[str] = [self.weth]
        for t in configured:
            if t not in order:
                order.append(t)
        self.configured_start_tokens: tuple[str, ...] = tuple(configured)
        self._base_tokens: list[str] = order  # appended to: auto start tokens join as they become liquid
        self._warned: set[tuple[str, str]] = set()  # (what, token) logged once: no price, no pools
        self.max_hops = max_hops
        self.gas_model = gas_model or GasModel()
        self.min_net_profit = min_net_profit
        if max_per_pool is not None and max_per_pool < 1:
            raise ConfigError(f"max_per_pool must be >= 1 or None, got {max_per_pool}")
        if max_cycles is not None and max_cycles < 1:
            raise ConfigError(f"max_cycles must be >= 1 or None, got {max_cycles}")
        # The cycle index holds at most this many cycles (~150 bytes each at the build's
        # peak: 20M four-hop cycles of the 102k-pool bench market took 3.45 GB): on a dense
        # 100k-pool market four hops are hundreds of millions of cycles, more than memory.
        self.max_cycles = max_cycles
        # Opportunities through one pool exclude each other on-chain (once one executes, the
        # pool's price has moved for the rest): per evaluation, at most this many per pool,
        # best float net profit first, and the exact sizing of the rest is skipped.
        self.max_per_pool = max_per_pool
        self.excluded: dict[str, str] = {}
        self.stats: dict[str, int] = defaultdict(int)

        self._tok_id: dict[str, int] = {}
        self._tok_addr: list[str] = []
        self._pid: dict[str, int] = {}
        self._states: list[PoolState | None] = []
        self._t0 = np.zeros(0, dtype=np.int64)
        self._t1 = np.zeros(0, dtype=np.int64)
        self._live = np.zeros(0, dtype=bool)
        self._v3 = np.zeros(0, dtype=bool)
        self._p = np.zeros(0, dtype=np.float64)  # per directed edge 2*pid + dir
        self._q = np.zeros(0, dtype=np.float64)
        # Per directed edge: the V2 hop's exact integer row for the sizing (None for V3 or
        # an unusable pool), extracted once per state change, not per verification.
        self._tab: list[tuple[int, int, int, int] | None] = []
        self._n_pools = 0
        self._pairs: dict[tuple[int, int], set[int]] = defaultdict(set)
        self._adj: dict[int, set[int]] = defaultdict(set)  # token -> tokens sharing a pool (ever)
        self._groups = {k: CycleGroup(k) for k in range(2, max_hops + 1)}
        self._starts = [self._token(t) for t in self._base_tokens]
        self._start_set = set(self._starts)
        # Compile the sizing's float kernels now (once per process, about a second), not
        # inside the first evaluation a pool change is waiting on; the V3 math too (its
        # imports took 6 of the first evaluation's 12 ms). Imported here: processes that
        # only import arbbot.paths (every worker, the web app) need neither.
        from arbbot.paths import _kernels
        from arbbot.pools import v3  # noqa: F401 - imported for its side effect: loaded

        _kernels.warm()
        self._kernels = _kernels

    # ------------------------------------------------------------------ registry

    def _token(self, addr: str) -> int:
        tid = self._tok_id.get(addr)
        if tid is None:
            tid = len(self._tok_addr)
            self._tok_id[addr] = tid
            self._tok_addr.append(addr)
        return tid

    def _reserve(self, need: int) -> None:
        cap = self._t0.size
        if need <= cap:
            return
        new_cap = max(need, 2 * cap, 256)
        for name in ("_t0", "_t1", "_live", "_v3"):
            old = getattr(self, name)
            arr = np.zeros(new_cap, dtype=old.dtype)
            arr[:cap] = old
            setattr(self, name, arr)
        for name in ("_p", "_q"):
            old = getattr(self, name)
            arr = np.zeros(2 * new_cap, dtype=np.float64)
            arr[: 2 * cap] = old
            setattr(self, name, arr)

    def _set_coefficients(self, pid: int, state: PoolState) -> None:
        p01, q01, p10, q10 = edge_coefficients(state)
        self._p[2 * pid], self._q[2 * pid] = p01, q01
        self._p[2 * pid + 1], self._q[2 * pid + 1] = p10, q10
        if len(self._tab) < 2 * pid + 2:
            self._tab.extend([None] * (2 * pid + 2 - len(self._tab)))
        self._tab[2 * pid] = v2_edge_row(state, True)
        self._tab[2 * pid + 1] = v2_edge_row(state, False)

    @property
    def base_tokens(self) -> tuple[str, ...]:
        """The start tokens in priority order: the native token, the configured ones, then
        (auto) those that became liquid, in that order."""
        return tuple(self._base_tokens)

    @property
    def states(self) -> dict[str, PoolState]:
        """Current pool states by lower-case address (a copy)."""
        return {a: s for a, pid in self._pid.items() if (s := self._states[pid]) is not None}

    @property
    def pools_known(self) -> int:
        """Pools the engine has ever indexed (it only grows)."""
        return len(self._pid)

    @property
    def cycle_count(self) -> int:
        return sum(int(g.alive[: g.n].sum()) for g in self._groups.values())

    def cycle_counts(self) -> dict[int, int]:
        return {k: int(g.alive[: g.n].sum()) for k, g in self._groups.items()}

    def iter_cycles(self) -> Iterable[tuple[str, tuple[str, ...], tuple[str, ...]]]:
        """Every live cycle as ``(path_id, pools, tokens)`` (inspection and tests; slow)."""
        for k, g in self._groups.items():
            for row in np.flatnonzero(g.alive[: g.n]).tolist():
                hops, tokens = self._hops(k, row)
                pools = tuple(s.address.lower() for s, _ in hops)
                yield path_id_for(pools, tokens[:-1]), pools, tuple(tokens)

    # ------------------------------------------------------------------ public API

    def upsert(self, states: Iterable[PoolState]) -> set[str]:
        """Add or update pools; returns the addresses whose state changed (new included).

        New pools extend the cycle index in place (only cycles through them are
        enumerated). A state that cannot be a pool (same token twice, unknown kind) or
        touches an excluded address is skipped and counted, never raised.
        """
        changed: set[str] = set()
        new_pids: list[int] = []
        for state in states:
            try:
                addr = state.address.lower()
                tok0, tok1 = state.token0.lower(), state.token1.lower()
                if not isinstance(state, (V2PoolState, V3PoolState)) or tok0 == tok1:
                    raise ArbbotError("not a pool")
            except (AttributeError, ArbbotError):
                self.stats["upsert_rejected"] += 1
                continue
            if addr in self.excluded or tok0 in self.excluded or tok1 in self.excluded:
                self.stats["upsert_excluded"] += 1
                continue
            pid = self._pid.get(addr)
            if pid is not None:
                old = self._states[pid]
                assert old is not None
                same_shape = (
                    type(old) is type(state)
                    and old.token0.lower() == tok0
                    and old.token1.lower() == tok1
                )
                if same_shape:
                    if old != state:
                        self._states[pid] = state
                        self._set_coefficients(pid, state)
                        changed.add(addr)
                    continue
                self.remove([addr])  # a different pool behind the same address
            pid = self._n_pools
            self._reserve(pid + 1)
            self._n_pools += 1
            self._pid[addr] = pid
            self._states.append(state)
            t0, t1 = self._token(tok0), self._token(tok1)
            self._t0[pid], self._t1[pid] = t0, t1
            self._live[pid] = True
            self._v3[pid] = isinstance(state, V3PoolState)
            self._set_coefficients(pid, state)
            self._pairs[(min(t0, t1), max(t0, t1))].add(pid)
            self._adj[t0].add(t1)
            self._adj[t1].add(t0)
            new_pids.append(pid)
            changed.add(addr)
        known = len(self._starts)
        if self.auto_start and changed:
            self._grow_starts(changed)
        if new_pids:
            self._extend_cycles(new_pids, range(known))
        if len(self._starts) > known:
            self._extend_cycles(None, range(known, len(self._starts)))
        return changed

    def _grow_starts(self, changed: set[str]) -> None:
        """Auto start tokens: those of ``changed`` pools against the native token whose
        native-side liquidity now reaches the floor join, at the lowest priority."""
        native = self._tok_id.get(self.weth)
        if native is None:
            return
        pricer = self.pricer()
        starts = self._start_set
        for addr in sorted(changed):
            pid = self._pid.get(addr)
            if pid is None:
                continue
            t0, t1 = int(self._t0[pid]), int(self._t1[pid])
            if native not in (t0, t1):
                continue
            other = t1 if t0 == native else t0
            if other in starts:
                continue
            if pricer.direct(self._tok_addr[other]) is not None:
                self._starts.append(other)
                starts.add(other)
                self._base_tokens.append(self._tok_addr[other])

    def pricer(self) -> NativePricer:
        """Native prices at the engine's current states (``arbbot.paths.pricing``); memoised
        inside, so take one per evaluation."""
        return NativePricer(
            self.weth, self._pair_states, self._neighbours, self.min_native_liquidity_wei,
        )

    def _pair_states(self, a: str, b: str) -> list[PoolState]:
        ta, tb = self._tok_id.get(a), self._tok_id.get(b)
        if ta is None or tb is None:
            return []
        pids = sorted(self._pairs.get((min(ta, tb), max(ta, tb)), ()))
        return [s for pid in pids if (s := self._states[pid]) is not None]

    def _neighbours(self, token: str) -> list[str]:
        tid = self._tok_id.get(token)
        return [] if tid is None else sorted(self._tok_addr[t] for t in self._adj.get(tid, ()))

    def missing_start_tokens(self) -> list[str]:
        """Configured start tokens (and the native token) with no live pool: no cycle can
        start there. Each is logged once as a warning the first time it is found missing."""
        n = self._n_pools
        live_tokens = set(self._t0[:n][self._live[:n]].tolist()) | set(self._t1[:n][self._live[:n]].tolist())
        missing = [t for t in self._base_tokens if self._tok_id.get(t) not in live_tokens]
        for t in missing:
            if ("pools", t) in self._warned:
                continue
            self._warned.add(("pools", t))
            if t == self.weth:
                log.warning(
                    "the chain's native token %s (the weth setting) has no pools: no profit can be valued in "
                    "native and gas cannot be converted; check the weth setting", t,
                )
            else:
                log.warning("start token %s has no pools on this chain: no cycle starts there", t)
        return missing

    def remove(self, addresses: Iterable[str]) -> None:
        """Forget pools; their cycles die (the index rows stay, flagged dead)."""
        pids = []
        for a in addresses:
            pid = self._pid.pop(a.lower(), None)
            if pid is None:
                continue
            pids.append(pid)
            self._states[pid] = None
            self._live[pid] = False
            self._p[2 * pid : 2 * pid + 2] = 0.0
            self._q[2 * pid : 2 * pid + 2] = 0.0
            self._tab[2 * pid] = self._tab[2 * pid + 1] = None
            t0, t1 = int(self._t0[pid]), int(self._t1[pid])
            self._pairs[(min(t0, t1), max(t0, t1))].discard(pid)
        if pids:
            arr = np.asarray(pids, dtype=np.int64)
            for g in self._groups.values():
                g.kill_pools(arr)

    def exclude(self, address: str, reason: str) -> None:
        """Exclude a pool or a token (e.g. fee-on-transfer) until ``include``; see
        ``.excluded``. Its pools leave the graph and ``upsert`` skips them from now on."""
        addr = address.lower()
        self.excluded[addr] = reason
        if addr in self._pid:
            self.remove([addr])
            return
        tid = self._tok_id.get(addr)
        if tid is not None:
            n = self._n_pools
            hit = np.flatnonzero(self._live[:n] & ((self._t0[:n] == tid) | (self._t1[:n] == tid)))
            hit_pids = set(hit.tolist())
            addrs = [a for a, pid in self._pid.items() if pid in hit_pids]
            self.remove(addrs)

    def include(self, addresses: Iterable[str]) -> set[str]:
        """Lift the exclusion of pools or tokens; returns those that were excluded. The
        pools removed meanwhile come back only when their states are upserted again (the
        engine forgot them): the path stage re-reads them from the hot state."""
        lifted = set()
        for a in addresses:
            addr = a.lower()
            if self.excluded.pop(addr, None) is not None:
                lifted.add(addr)
        return lifted

    def evaluate(
        self,
        changed: set[str] | None,
        *,
        chain_id: int,
        block_number: int,
        block_hash: str,
        gas_price_wei: int,
        observed_at: float = 0.0,
        limit: int | None = None,
        first_part: int | None = None,
        on_first_part: Callable[[list[Opportunity]], None] | None = None,
        first_part_enough: Callable[[list[Opportunity]], bool] | None = None,
        first_part_most: int | None = None,
    ) -> list[Opportunity]:
        """Opportunities among cycles through ``changed`` pools (``None``: all cycles).

        Sorted by net profit in the native token, descending, those whose start token has
        no price last; only ``net_profit_native > min_net_profit`` (unpriced: gross profit
        above 0). ``limit`` caps how many screened candidates get the (Python, exact)
        re-check, best first. With ``max_per_pool``, candidates are re-checked best float net
        first and one through a pool that already has that many opportunities is skipped.

        In two parts: when more than ``first_part`` candidates screened, the opportunities
        of the first ``first_part`` (sorted as above) go to ``on_first_part`` as soon as they
        are sized, and only the rest are returned; the per-pool cap counts both. With
        ``first_part_enough``, a first part it finds short (of the block's sends, say) grows
        by another ``first_part`` candidates, and again, up to ``first_part_most``
        candidates (or the last but one), before it goes.
        """
        pricer = self.pricer()
        prices: dict[int, NativePrice | None] = {}

        def price_of(tid: int) -> NativePrice | None:
            if tid not in prices:
                prices[tid] = pricer.price(self._tok_addr[tid])
            return prices[tid]

        candidates = self.screen(changed, gas_price_wei=gas_price_wei, price_of=price_of)
        if limit is not None:
            candidates = candidates[:limit]
        out: list[Opportunity] = []
        per_pool: dict[int, int] = defaultdict(int)
        cap = self.max_per_pool
        split = first_part if on_first_part is not None and first_part is not None and first_part < len(candidates) else -1
        for i, (k, row, x_float) in enumerate(candidates):
            if i == split:
                out.sort(key=rank_key)
                grown = i + first_part  # type: ignore[operator]  # split >= 0 only with a first part
                if (first_part_enough is not None and grown < len(candidates) and grown <= (first_part_most or 0)
                        and not first_part_enough(out)):
                    split = grown
                else:
                    on_first_part(out)  # type: ignore[misc]  # split >= 0 only with a callback
                    out = []
            if cap is not None:
                pids = [e >> 1 for e in self._groups[k].row_edges(row)]
                if any(per_pool[p] >= cap for p in pids):
                    self.stats["skipped_per_pool"] += 1
                    continue
            try:
                opp = self._verify(
                    k, row, x_float, price_of(self._groups[k].start[row].item()), gas_price_wei,
                    chain_id=chain_id, block_number=block_number,
                    block_hash=block_hash, observed_at=observed_at,
                )
            except (ArbbotError, ArithmeticError, ValueError) as exc:
                # One bad cycle must not sink the batch: count it and go on.
                self.stats["verify_errors"] += 1
                log.warning("path verify failed for %s/%s: %s", k, row, exc)
                continue
            if opp is not None:
                out.append(opp)
                if cap is not None:
                    for p in pids:
                        per_pool[p] += 1
        out.sort(key=rank_key)
        return out

    def hop_amounts(self, opportunity: Opportunity) -> list[int]:
        """``hop_amounts`` against the engine's current states."""
        return hop_amounts(opportunity, self.states)

    # ------------------------------------------------------------------ internals

    def _edge_graph(self) -> EdgeGraph:
        n = self._n_pools
        src = np.empty(2 * n, dtype=np.int64)
        dst = np.empty(2 * n, dtype=np.int64)
        src[0::2], src[1::2] = self._t0[:n], self._t1[:n]
        dst[0::2], dst[1::2] = self._t1[:n], self._t0[:n]
        live = np.repeat(self._live[:n], 2)
        return EdgeGraph(src=src, dst=dst, live=live, n_tokens=len(self._tok_addr))

    def _extend_cycles(self, new_pids: list[int] | None, ranks: range) -> None:
        """Index the cycles through ``new_pids`` (``None``: every pool) that start at the
        start tokens of ``ranks``."""
        if not ranks:
            return
        n = self._n_pools
        if new_pids is None:
            new = None
        else:
            mask = np.zeros(n, dtype=bool)
            mask[new_pids] = True
            new = None if bool(mask[self._live[:n]].all()) else mask
        budget = None
        if self.max_cycles is not None:
            budget = self.max_cycles - sum(g.n for g in self._groups.values())
        batches = enumerate_cycles(self._edge_graph(), self._starts, self.max_hops, new, ranks, budget)
        for k, batch in batches.items():
            self._groups[k].append(batch, self._v3[:n], n)
        if budget is not None and sum(b.start.size for b in batches.values()) >= budget:
            self.stats["index_full"] += 1
            if ("index", "full") not in self._warned:
                self._warned.add(("index", "full"))
                log.warning(
                    "cycle index full at %d cycles (ARBBOT_PATH_MAX_CYCLES): cycles of lower-priority start "
                    "tokens and through pools added from now on are not indexed; lower max_hops, name the "
                    "start tokens, or tighten the pool filter", self.max_cycles,
                )

    def screen(
        self,
        changed: set[str] | None,
        *,
        gas_price_wei: int,
        price_of: Callable[[int], NativePrice | None] | None = None,
    ) -> list[tuple[int, int, float]]:
        """Vectorised screen: ``(hops, row, x_float)`` of cycles that may clear the
        threshold, best float net profit in native first (each cycle once), those whose
        start token has no price last (screened on gross profit: gas cannot be converted).
        ``price_of`` prices a start token id (default: a fresh ``pricer()``)."""
        if price_of is None:
            pricer = self.pricer()

            def price_of(tid: int) -> NativePrice | None:
                return pricer.price(self._tok_addr[tid])

        pids: IntArray | None = None
        if changed is not None:
            ids = [self._pid[a] for a in (c.lower() for c in changed) if a in self._pid]
            if not ids:
                return []
            pids = np.asarray(ids, dtype=np.int64)
        gm = self.gas_model
        v2_gas, v3_gas = gm.hop_gas("v2"), gm.hop_gas("v3")
        screened = []
        for k, g in self._groups.items():
            if g.n == 0:
                continue
            if pids is None:
                rows = None
            else:
                rows = g.rows_for_pools(pids)
                if rows.size == 0:
                    continue
            cyc, x_opt, profit = self.screen_rows(k, rows)
            if cyc.size:
                screened.append((k, g, cyc, x_opt, profit))
        if not screened:
            return []
        # Price only the start tokens of cycles that pay before gas (a handful per block).
        n_tok = len(self._tok_addr)
        tok_per_wei = np.zeros(n_tok)  # gas conversion; 0 where unpriced (gas unknown)
        wei_per_tok = np.zeros(n_tok)
        priced = np.zeros(n_tok, dtype=bool)
        for tid in np.unique(np.concatenate([g.start[cyc] for _, g, cyc, _, _ in screened])).tolist():
            price = price_of(tid)
            if price is None:
                self._warn_unpriced(self._tok_addr[tid])
                continue
            priced[tid] = True
            wei_per_tok[tid] = float(price.price)
            tok_per_wei[tid] = 1.0 / wei_per_tok[tid] if wei_per_tok[tid] > 0 else np.inf
        found_k, found_rows, found_x, found_net = [], [], [], []
        for k, g, cyc, x_opt, profit in screened:
            start = g.start[cyc]
            if gas_price_wei:
                units = gm.base + k * v2_gas + g.n_v3[cyc].astype(np.float64) * (v3_gas - v2_gas)
                with np.errstate(all="ignore"):
                    gas = units * float(gas_price_wei) * tok_per_wei[start]
                net = profit - gas
            else:
                net = profit
            with np.errstate(all="ignore"):
                floor = self.min_net_profit * tok_per_wei[start] if self.min_net_profit else 0.0
                ok = net + np.abs(profit) * _SCREEN_REL_SLACK + _SCREEN_ABS_SLACK > floor
                # unpriced: gross profit only (its value and its gas are unknown)
                ok = np.where(priced[start], ok, profit + np.abs(profit) * _SCREEN_REL_SLACK + _SCREEN_ABS_SLACK > 0)
                net_native = np.where(priced[start], net * wei_per_tok[start], -np.inf)
            sel = np.flatnonzero(ok)
            if sel.size:
                found_k.append(np.full(sel.size, k))
                found_rows.append(cyc[sel])
                found_x.append(x_opt[sel])
                found_net.append(net_native[sel])
        if not found_k:
            return []
        ks = np.concatenate(found_k)
        rs = np.concatenate(found_rows)
        xs = np.concatenate(found_x)
        nets = np.nan_to_num(np.concatenate(found_net), nan=-np.inf)
        # A cycle through two changed pools was gathered twice: keep one.
        key = rs * 8 + ks
        _, first = np.unique(key, return_index=True)
        order = first[np.argsort(-nets[first], kind="stable")]
        return [(int(ks[i]), int(rs[i]), float(xs[i])) for i in order]

    def _warn_unpriced(self, token: str) -> None:
        self.stats["unpriced_start"] += 1
        if ("price", token) not in self._warned:
            self._warned.add(("price", token))
            log.warning(
                "start token %s has no price in the native token %s (no pool against it, or through one "
                "other token, with %d wei of native-side liquidity): its cycles are ranked last and not "
                "executed", token, self.weth, self.min_native_liquidity_wei,
            )

    def screen_rows(
        self, k: int, rows: IntArray | None
    ) -> tuple[IntArray, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Float screen of ``k``-hop cycles ``rows`` (``None``: all): ``(rows, x_opt,
        gross_profit)`` of those that may be profitable before gas. Dead cycles need no
        mask: a removed pool's p is 0, so P = 0 drops them."""
        g = self._groups[k]
        if rows is None:
            hop_edges = g.hop_edges(rows)
            idx, x_opt, profit = screen_profitable([hop_edges[:, j] for j in range(k)], self._p, self._q)
            cyc = idx
        else:
            # a subset (the cycles through changed pools): one compiled pass over the
            # rows, without gathering their edges first
            idx, x_opt, profit = self._kernels.screen_rows(g.edges, np.asarray(rows, dtype=np.int64), self._p, self._q)
            cyc = rows[idx]
        if idx.size == 0:
            return cyc, x_opt, profit
        v2 = np.flatnonzero(g.n_v3[cyc] == 0)
        if v2.size:
            # a coarse token no integer trade can reach profitably: out before the
            # exact stage (V2 hops only: see unit_level_cut)
            sub = g.edges[cyc[v2]]
            profit[v2] = unit_level_cut([sub[:, j] for j in range(k)], self._p, self._q, x_opt[v2], profit[v2])
            live = np.flatnonzero(profit > -np.inf)
            if live.size < cyc.size:
                cyc, x_opt, profit = cyc[live], x_opt[live], profit[live]
        return cyc, x_opt, profit

    def size_v2_row(self, k: int, row: int, x_float: float) -> tuple[int, int] | None:
        """Exact integer optimum ``(amount_in, amount_out)`` of V2-only cycle ``row`` from
        the cached per-edge integer rows; ``None`` if a pool in it is unusable."""
        tab = [self._tab[e] for e in self._groups[k].row_edges(row)]
        if None in tab:
            return None
        return size_v2_table(tab, x_float)  # type: ignore[arg-type]

    def _hops(self, k: int, row: int) -> tuple[list[Hop], list[str]]:
        g = self._groups[k]
        hops: list[Hop] = []
        tokens: list[str] = []
        for e in g.row_edges(row):
            state = self._states[e >> 1]
            if state is None:
                raise ArbbotError("cycle through a removed pool")
            token_in = state.token0 if e & 1 == 0 else state.token1
            hops.append((state, token_in))
            tokens.append(token_in.lower())
        tokens.append(tokens[0])
        return hops, tokens

    def _verify(
        self,
        k: int,
        row: int,
        x_float: float,
        price: NativePrice | None,
        gas_price_wei: int,
        *,
        chain_id: int,
        block_number: int,
        block_hash: str,
        observed_at: float,
    ) -> Opportunity | None:
        hops, tokens = self._hops(k, row)
        kinds = tuple(s.kind for s, _ in hops)
        edges = self._groups[k].row_edges(row)
        if all(kind == "v2" for kind in kinds):
            tab = [self._tab[e] for e in edges]
            if None in tab:
                return None  # an unusable pool (empty, broken fee, reserve at uint112)
            amount_in, amount_out = size_cycle(hops, x_float, tab=tab)
            self.stats["verified_v2"] += 1
        else:
            coeffs = [(float(self._p[e]), float(self._q[e])) for e in edges]
            amount_in, amount_out = size_cycle(hops, x_float, coeffs)
            self.stats["verified_search"] += 1
        if amount_in <= 0 or amount_out <= amount_in:
            return None
        # The contract: amount_out is the exact chain of arbbot.pools.amount_out.
        x = amount_in
        for state, token_in in hops:
            x = pool_models.amount_out(state, token_in, x)
        if x != amount_out:
            self.stats["verify_mismatch"] += 1
            amount_out = x
        gas_estimate = self.gas_model.estimate(kinds)
        gas_native = gas_estimate * gas_price_wei
        profit_native: int | None = None
        gas_cost = 0  # unpriced: gas cannot be converted (the scorer does not execute it)
        if price is not None:
            profit_native = price.to_native(amount_out - amount_in)  # rounds down
            if profit_native > UINT256_MAX:
                profit_native = None  # an absurd price: treat as none rather than trust it
            else:
                gas_cost = price.from_native(gas_native)  # rounds up
                if profit_native - gas_native <= self.min_net_profit:
                    return None
        pools = tuple(s.address.lower() for s, _ in hops)
        return Opportunity(
            chain_id=chain_id,
            block_number=block_number,
            block_hash=block_hash,
            path_id=path_id_for(pools, tokens[:-1]),
            pools=pools,
            tokens=tuple(tokens),
            amount_in=amount_in,
            amount_out=amount_out,
            gas_estimate=gas_estimate,
            gas_price_wei=gas_price_wei,
            gas_cost=gas_cost,
            hop_kinds=kinds,
            observed_at=observed_at,
            profit_native=profit_native,
            price_pools=price.pools if price is not None and profit_native is not None else (),
        )
