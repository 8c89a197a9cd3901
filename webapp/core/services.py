"""Writes. Every change to the database goes through a function here, named
``<entity>_<action>``; tasks, views and the admin call these and hold no rules themselves."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable, Mapping, Sequence

import redis
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from arbbot.chain.backfill import BackfillConflict
from arbbot.chain.discovery import PoolInfo
from arbbot.execution.runner import Attempt, Pending
from arbbot.execution.stage import Unfinished
from arbbot.hotstate import Fleet, HotState
from arbbot.types import ExecutionResult, ScoredOpportunity
from webapp.core.models import BackfillCursor, Chain, Dex, Execution, Opportunity, Pool, Token
from webapp.core.validators import validate_address

log = logging.getLogger(__name__)


def _ts(unix: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(unix, tz=dt.timezone.utc) if unix else timezone.now()


# --------------------------------------------------------------------------- configuration


@transaction.atomic
def config_apply(data: Mapping[str, Any]) -> dict[str, int]:
    """Apply a YAML/JSON configuration (chains, dexes, tokens). Validates everything and
    raises ``ValidationError`` naming the offending entry; nothing is written on error."""
    if not isinstance(data, Mapping):
        raise ValidationError("configuration must be a mapping with 'chains', 'dexes', 'tokens'")
    counts = {"chains": 0, "dexes": 0, "tokens": 0}
    for i, c in enumerate(data.get("chains") or []):
        where = f"chains[{i}]"
        try:
            chain_id = int(c["chain_id"])
            chain = Chain.objects.filter(chain_id=chain_id).first() or Chain(chain_id=chain_id)
            chain.name = str(c.get("name") or f"chain-{chain_id}")
            urls = c.get("rpc_urls") or []
            chain.rpc_urls = ",".join(urls) if isinstance(urls, list) else str(urls)
            for field in ("multicall3", "weth", "executor"):
                setattr(chain, field, str(c.get(field) or "").lower())
            chain.full_clean()
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"{where}: missing or invalid field ({exc})") from exc
        except ValidationError as exc:
            raise ValidationError(f"{where}: {_flatten(exc)}") from exc
        chain.save()
        counts["chains"] += 1
    for i, d in enumerate(data.get("dexes") or []):
        chain = _chain_for(d, f"dexes[{i}]")
        dex = Dex.objects.filter(chain=chain, name=d.get("name")).first() or Dex(chain=chain)
        try:
            dex.name = str(d["name"])
            dex.kind = str(d.get("kind", "v2"))
            dex.factory = str(d["factory"]).lower()
            dex.router = str(d.get("router") or "").lower()
            dex.fee_pips = int(d.get("fee_pips", 3000))
            dex.full_clean()
            if dex.router:
                validate_address(dex.router)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"dexes[{i}]: missing or invalid field ({exc})") from exc
        except ValidationError as exc:
            raise ValidationError(f"dexes[{i}] ({d.get('name')}): {_flatten(exc)}") from exc
        dex.save()
        counts["dexes"] += 1
    for i, t in enumerate(data.get("tokens") or []):
        chain = _chain_for(t, f"tokens[{i}]")
        try:
            token_register(chain, str(t["address"]), str(t.get("symbol", "")), t.get("decimals"))
        except KeyError as exc:
            raise ValidationError(f"tokens[{i}]: missing field {exc}") from exc
        except ValidationError as exc:
            raise ValidationError(f"tokens[{i}]: {_flatten(exc)}") from exc
        counts["tokens"] += 1
    return counts


def _chain_for(entry: Mapping[str, Any], where: str) -> Chain:
    try:
        chain_id = int(entry["chain_id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(f"{where}: chain_id missing or not an integer") from exc
    chain = Chain.objects.filter(chain_id=chain_id).first()
    if chain is None:
        raise ValidationError(f"{where}: unknown chain {chain_id} (declare it under 'chains' first)")
    return chain


def _flatten(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    return " ".join(exc.messages)


def token_register(chain: Chain, address: str, symbol: str = "", decimals: int | None = None) -> Token:
    validate_address(address)
    token, _ = Token.objects.update_or_create(
        chain=chain, address=address.lower(), defaults={"symbol": symbol[:64], "decimals": decimals}
    )
    return token


# --------------------------------------------------------------------------- exclusions
# The path stage reads these back each block (``selectors.exclusions``): an exclusion
# written here takes effect on the next block, and lifting one puts its pools back.


@transaction.atomic
def token_exclude(chain_id: int, address: str, reason: str, symbol: str = "") -> Token:
    """Record why a token is not traded (e.g. fee-on-transfer), registering it if it was
    discovered on-chain rather than configured; its known pools are marked too."""
    from django.db.models import Q

    address = address.lower()
    validate_address(address)
    reason = _reason(reason)
    chain = Chain.objects.get(chain_id=chain_id)
    token, created = Token.objects.get_or_create(
        chain=chain, address=address, defaults={"symbol": symbol[:64], "excluded_reason": reason}
    )
    if not created:
        token.excluded_reason = reason
        token.save(update_fields=["excluded_reason"])

    Pool.objects.filter(Q(token0__address=address) | Q(token1__address=address), chain__chain_id=chain_id).update(
        excluded_reason=_token_mark(address, reason)
    )
    return token


@transaction.atomic
def token_include(chain_id: int, address: str) -> Token:
    """Lift a token's exclusion: it is traded again from the next block. The marks it left
    on its pools go too, except where the pool's other token is still excluded (then that
    token's mark replaces it)."""
    token = Token.objects.select_for_update().get(chain__chain_id=chain_id, address=address.lower())
    token.excluded_reason = ""
    token.save(update_fields=["excluded_reason"])
    _hotstate(chain_id).clear_token_flag(token.address)
    marked = Pool.objects.filter(
        chain__chain_id=chain_id, excluded_reason__startswith=_token_mark(token.address, "")
    ).select_related("token0", "token1")
    for pool in marked:
        other = pool.token1 if pool.token0_id == token.pk else pool.token0
        pool.excluded_reason = _token_mark(other.address, other.excluded_reason) if other.excluded_reason else ""
        pool.save(update_fields=["excluded_reason"])
    return token


def pool_exclude(chain_id: int, address: str, reason: str) -> Pool:
    """Record why a known pool is not traded (e.g. an operator's decision)."""
    pool = Pool.objects.get(chain__chain_id=chain_id, address=address.lower())
    pool.excluded_reason = _reason(reason)
    pool.save(update_fields=["excluded_reason"])
    return pool


def pool_include(chain_id: int, address: str) -> Pool:
    """Lift a pool's own exclusion: traded again from the next block, unless one of its
    tokens is excluded."""
    pool = Pool.objects.get(chain__chain_id=chain_id, address=address.lower())
    pool.excluded_reason = ""
    pool.save(update_fields=["excluded_reason"])
    return pool


def _hotstate(chain_id: int) -> HotState:
    from django.conf import settings

    return HotState(redis.Redis.from_url(settings.ARBBOT.redis_url), settings.ARBBOT.redis_prefix, chain_id)


def fleet_hotstate() -> Fleet:
    """The fleet-wide hot state (the kill switch)."""
    from django.conf import settings

    return Fleet(redis.Redis.from_url(settings.ARBBOT.redis_url), settings.ARBBOT.redis_prefix)


def _reason(reason: str) -> str:
    reason = reason.strip()[:200]
    if not reason:
        raise ValidationError("an exclusion needs a reason")
    return reason


def _token_mark(address: str, reason: str) -> str:
    """A pool's exclusion reason when it comes from one of its tokens."""
    return f"token {address}: {reason}"[:200]


@dataclass(frozen=True)
class DeploymentRegistered:
    chain: Chain
    #: opportunity and execution rows removed because they belonged to the devnet this one replaced
    history_removed: int = 0


@transaction.atomic
def chain_register_deployment(deployment: Mapping[str, Any]) -> DeploymentRegistered:
    """Record a devnet deployment (``.devnet/deployment.json``) as Chain/Dex/Token/Pool rows.

    A devnet restarted under the same chain id is a new chain: its genesis hash differs from
    the one recorded. The history of the chain it replaces (opportunities, executions) names
    blocks and transactions that no longer exist, and its executions, keyed on (chain, block,
    path), would make the new chain's opportunities at the same block numbers look already
    executed; so that history is removed. A record without a genesis hash (older files)
    removes nothing."""
    chain_id = int(deployment["chain_id"])
    genesis = str(deployment.get("genesis_hash") or "").lower()
    previous = Chain.objects.filter(chain_id=chain_id).first()
    removed = 0
    if previous is not None and previous.is_devnet and previous.genesis_hash and genesis \
            and previous.genesis_hash != genesis:
        removed = chain_history_forget(chain_id)
    chain, _ = Chain.objects.update_or_create(
        chain_id=chain_id,
        defaults={
            "genesis_hash": genesis or (previous.genesis_hash if previous else ""),
            "name": deployment.get("name", "devnet"),
            "rpc_urls": deployment["rpc_url"],
            "multicall3": deployment.get("multicall3", ""),
            "weth": deployment.get("weth", ""),
            "executor": deployment.get("executor", ""),
            "is_devnet": True,
            "is_active": True,
        },
    )
    dexes = {}
    for d in deployment.get("dexes", []):
        dexes[d["name"]], _ = Dex.objects.update_or_create(
            chain=chain,
            name=d["name"],
            defaults={
                "kind": d.get("kind", "v2"),
                "factory": d["factory"].lower(),
                "router": (d.get("router") or d.get("swap_router") or "").lower(),
                "quoter": (d.get("quoter") or "").lower(),
                "fee_pips": d.get("fee_pips", 3000),
            },
        )
    tokens = {}
    for t in deployment.get("tokens", []):
        tokens[t["address"].lower()] = token_register(chain, t["address"], t.get("symbol", ""), t.get("decimals"))
    weth = deployment.get("weth")
    if weth and weth.lower() not in tokens:
        tokens[weth.lower()] = token_register(chain, weth, "WETH", 18)
    for p in deployment.get("pools", []):
        Pool.objects.update_or_create(
            chain=chain,
            address=p["address"].lower(),
            defaults={
                "dex": dexes[p["dex"]],
                "kind": p.get("kind", "v2"),
                "token0": tokens[p["token0"].lower()],
                "token1": tokens[p["token1"].lower()],
                "fee_pips": p.get("fee_pips", 3000),
                "tick_spacing": p.get("tick_spacing"),
            },
        )
    return DeploymentRegistered(chain, removed)


def chain_history_forget(chain_id: int) -> int:
    """Delete a chain's opportunities and executions; the number of rows removed."""
    with transaction.atomic():
        executions, _ = Execution.objects.filter(chain_id=chain_id).delete()
        opportunities, _ = Opportunity.objects.filter(chain_id=chain_id).delete()
    log.info("chain %s: removed %d executions and %d opportunities", chain_id, executions, opportunities)
    return executions + opportunities


# --------------------------------------------------------------------------- backfill


@transaction.atomic
def backfill_chunk_record(
    chain_id: int, factory: str, from_block: int, to_block: int, pools: Iterable[PoolInfo]
) -> int:
    """Record one backfill chunk of a DEX: the pools its factory created in
    ``[from_block, to_block]`` (Pool rows, their tokens registered as needed) and the cursor
    moved to ``to_block``, in one transaction. The chunk must start right after the cursor
    (at the DEX's start block before the first chunk): otherwise another backfill moved it
    meanwhile, ``BackfillConflict`` is raised and nothing is written. Returns the number of
    Pool rows created (pools already known, e.g. a devnet's, are left as they are)."""
    factory = factory.lower()
    pools = list(pools)
    if to_block < from_block:
        raise ValidationError(f"backfill chunk {from_block}-{to_block}: the range is empty")
    try:
        dex = Dex.objects.select_related("chain").get(chain__chain_id=chain_id, factory=factory)
    except Dex.DoesNotExist as exc:
        raise ValidationError(f"chain {chain_id} has no DEX with factory {factory}") from exc
    cursor = BackfillCursor.objects.select_for_update().filter(dex=dex).first()
    expected = dex.start_block if cursor is None else cursor.last_block + 1
    if from_block != expected:
        raise BackfillConflict(
            f"backfill of {dex.name} (chain {chain_id}): chunk starts at {from_block}, the cursor expects "
            f"{expected}; another backfill of this DEX ran meanwhile, nothing written"
        )
    for p in pools:
        if p.factory and p.factory.lower() != factory:
            raise ValidationError(f"pool {p.address} was created by {p.factory}, not {dex.name}'s factory {factory}")
        if not from_block <= p.created_block <= to_block:
            raise ValidationError(f"pool {p.address} created at block {p.created_block}, outside {from_block}-{to_block}")
    chain = dex.chain
    token_addrs = sorted({a.lower() for p in pools for a in (p.token0, p.token1)})
    for a in token_addrs:
        validate_address(a)
    tokens = {t.address: t for t in Token.objects.filter(chain=chain, address__in=token_addrs)}
    missing = [Token(chain=chain, address=a) for a in token_addrs if a not in tokens]
    if missing:
        Token.objects.bulk_create(missing, ignore_conflicts=True)
        tokens = {t.address: t for t in Token.objects.filter(chain=chain, address__in=token_addrs)}
    known = set(
        Pool.objects.filter(chain=chain, address__in=[p.address.lower() for p in pools]).values_list("address", flat=True)
    )
    new = []
    for p in pools:
        address = p.address.lower()
        if address in known:
            continue
        validate_address(address)
        known.add(address)
        new.append(
            Pool(
                chain=chain, dex=dex, address=address, kind=p.kind, token0=tokens[p.token0.lower()],
                token1=tokens[p.token1.lower()], fee_pips=p.fee_pips,
                tick_spacing=p.tick_spacing if p.kind == "v3" else None,
            )
        )
    Pool.objects.bulk_create(new)
    if cursor is None:
        BackfillCursor.objects.create(dex=dex, last_block=to_block, pools_found=len(pools))
    else:
        cursor.last_block = to_block
        cursor.pools_found += len(pools)
        cursor.save(update_fields=["last_block", "pools_found", "updated_at"])
    return len(new)


def backfill_cursors_reset(chain_id: int) -> int:
    """Forget the chain's backfill cursors (a chain reset under the same id, or a start block
    moved earlier): the next backfill starts again at each DEX's start block. Pools already
    recorded stay. Returns the number of cursors removed."""
    removed, _ = BackfillCursor.objects.filter(dex__chain__chain_id=chain_id).delete()
    return removed


class DbBackfillLedger:
    """The backfill's ``BackfillLedger`` (``arbbot.chain.backfill``) on the BackfillCursor
    and Pool tables of one chain."""

    def __init__(self, chain_id: int) -> None:
        self.chain_id = chain_id
        self.created = 0  # Pool rows created by this ledger

    def cursor(self, factory: str) -> int | None:
        from webapp.core.selectors import backfill_cursors

        return backfill_cursors(self.chain_id).get(factory.lower())

    def record(self, factory: str, from_block: int, to_block: int, pools: Sequence[PoolInfo]) -> None:
        self.created += backfill_chunk_record(self.chain_id, factory, from_block, to_block, pools)


# --------------------------------------------------------------------------- history


def opportunities_record(scored: Iterable[ScoredOpportunity], *, now: float | None = None) -> int:
    """Bulk-insert a batch of scored opportunities (the analytics stage)."""
    import time

    now = now or time.time()
    rows = []
    for s in scored:
        o = s.opportunity
        rows.append(
            Opportunity(
                created_at=_ts(now),
                chain_id=o.chain_id,
                block_number=o.block_number,
                block_hash=o.block_hash,
                path_id=o.path_id,
                pools=list(o.pools),
                tokens=list(o.tokens),
                profit_token=o.tokens[0],
                amount_in=Decimal(o.amount_in),
                amount_out=Decimal(o.amount_out),
                gas_cost=Decimal(o.gas_cost),
                net_profit=Decimal(o.net_profit),
                score=s.score,
                decision=s.decision,
                reason=s.reason[:200],
                latency_ms=(now - o.observed_at) * 1000 if o.observed_at else None,
            )
        )
    Opportunity.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def execution_claim(scored: ScoredOpportunity) -> Execution | None:
    """Create the ``pending`` row for an opportunity; ``None`` if it was already claimed
    (the unique (chain, block, path) constraint makes a second execution impossible)."""
    o = scored.opportunity
    try:
        with transaction.atomic():
            return Execution.objects.create(
                created_at=timezone.now(),
                chain_id=o.chain_id,
                block_number=o.block_number,
                path_id=o.path_id,
                status="pending",
                profit_token=o.tokens[0],
                amount_in=Decimal(o.amount_in),
                predicted_profit=Decimal(o.profit),
            )
    except IntegrityError:
        return None


def execution_sent(chain_id: int, block_number: int, path_id: str, tx_hash: str) -> None:
    """Note the hash as soon as a transaction is sent, so a crash before its receipt leaves a
    row that the reconcile task can finish from the chain."""
    Execution.objects.filter(chain_id=chain_id, block_number=block_number, path_id=path_id).update(tx_hash=tx_hash)


def execution_finish(result: ExecutionResult) -> Execution:
    """Record the outcome on the claimed row (created here if no claim exists)."""
    row, _ = Execution.objects.update_or_create(
        chain_id=result.chain_id,
        block_number=result.block_number,
        path_id=result.path_id,
        defaults={
            "created_at": timezone.now(),
            "status": result.status,
            "tx_hash": result.tx_hash or "",
            "gas_used": result.gas_used,
            "gas_price_wei": Decimal(result.gas_price_wei),
            "mined_block": result.mined_block,
            "profit_token": result.profit_token,
            "amount_in": Decimal(result.amount_in),
            "predicted_profit": Decimal(result.predicted_profit),
            "realised_profit": Decimal(result.realised_profit),
            "reason": result.reason[:300],
        },
    )
    return row


class DbJournal:
    """The execute stage's ``Journal`` (``arbbot.execution.stage``) on the Execution table:
    one row per (chain, block, path), claimed ``pending``, then finished."""

    def claim(self, scored: ScoredOpportunity) -> bool:
        return execution_claim(scored) is not None

    def sent(self, pending: Pending) -> None:
        a = pending.attempt
        execution_sent(a["chain_id"], a["block_number"], a["path_id"], pending.tx_hash)

    def finished(self, result: ExecutionResult) -> None:
        execution_finish(result)

    def stale_pending(self, older_than_s: float) -> list[Unfinished]:
        from webapp.core.selectors import executions_stale_pending

        return [
            Unfinished(
                Attempt(
                    chain_id=row.chain_id,
                    block_number=row.block_number,
                    path_id=row.path_id,
                    predicted_profit=int(row.predicted_profit),
                    profit_token=row.profit_token,
                    amount_in=int(row.amount_in),
                ),
                tx_hash=row.tx_hash or None,
            )
            for row in executions_stale_pending(older_than_s)
        ]
