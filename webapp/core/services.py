"""Writes. Every change to the database goes through a function here, named
``<entity>_<action>``; tasks, views and the admin call these and hold no rules themselves."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable, Iterator, Mapping, Sequence

import orjson
import redis
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from arbbot.chain.backfill import BackfillConflict
from arbbot.chain.create2 import GENUINE_INIT_CODE_HASH
from arbbot.chain.discovery import PoolInfo
from arbbot.execution.follow import TxRecord
from arbbot.execution.runner import Attempt
from arbbot.execution.stage import Unfinished
from arbbot.hotstate import Fleet, HotState
from arbbot.types import ExecutionResult, FeatureRow, ScoredOpportunity, norm_address
from webapp.core import config_schema
from webapp.core.models import (
    BackfillCursor,
    Chain,
    Dex,
    Execution,
    ModelVersion,
    Opportunity,
    Pool,
    PoolFilter,
    Strategy,
    Token,
    Transaction,
)
from webapp.core.validators import validate_address

log = logging.getLogger(__name__)


def _ts(unix: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(unix, tz=dt.timezone.utc) if unix else timezone.now()


# --------------------------------------------------------------------------- configuration


@transaction.atomic
def config_apply(
    data: Mapping[str, Any], *, allow_live: bool = False, source: str = "", onchain: bool = False
) -> dict[str, int]:
    """Apply a configuration file's mapping (schema: ``webapp.core.config_schema``): chains,
    their DEXes, tokens, pool filter and strategy. Checks everything first and raises
    ``ValidationError`` naming the offending entry; nothing is written on error (one
    transaction). A chain that becomes ``live`` here needs ``allow_live`` (the operator's
    explicit yes) and an executor. A devnet's chain (registered from its deployment record)
    keeps its identity: the file may tune it (mode, strategy, filters) but not repoint it.
    With ``onchain`` every chain of the file is checked on the chain itself first
    (``arbbot.execution.chain_check``: Multicall3, each factory and init-code hash, the
    executor and its owner), and so is each cross-chain pair (``chain_check.check_pair``:
    router, tokens and bridge have code, the factory has the traded and the gas-pricing
    pairs); a chain whose RPC cannot be reached is an error too. Returns how many rows of
    each kind were written."""
    spec = config_schema.parse(data)
    _devnets_kept(spec)
    counts = {"chains": 0, "dexes": 0, "tokens": 0, "pool_filters": 0, "strategies": 0}
    for c in spec.chains:
        chain = Chain.objects.select_for_update().filter(chain_id=c.chain_id).first()
        if chain is None and "rpc_urls" not in c.fields:
            raise ValidationError(f"{c.where}: rpc_urls: missing (a new chain needs at least one http(s) URL)")
        was_live = chain is not None and chain.mode == "live"
        chain = chain or Chain(chain_id=c.chain_id)
        for name, value in c.fields.items():
            setattr(chain, name, value)
        _chain_check(chain, c.where, was_live=was_live, allow_live=allow_live)
        chain.save()
        counts["chains"] += 1
        for d in c.dexes:
            _dex_apply(chain, d)
            counts["dexes"] += 1
        if isinstance(c.tokens, list):
            for t in c.tokens:
                _token_apply(chain, t)
                counts["tokens"] += 1
        if c.tokens is not None or c.pool_filter is not None:
            _pool_filter_apply(chain, c.tokens, c.pool_filter)
            counts["pool_filters"] += 1
        if c.strategy is not None and strategy_set(chain, c.strategy, source=source) is not None:
            counts["strategies"] += 1
    for chain_id, d in spec.loose_dexes:
        _dex_apply(_chain_for({"chain_id": chain_id}, d.where), d)
        counts["dexes"] += 1
    for chain_id, t in spec.loose_tokens:
        _token_apply(_chain_for({"chain_id": chain_id}, t.where), t)
        counts["tokens"] += 1
    if spec.xchain is not None:
        counts["xchain_pairs"] = _xchain_apply(spec.xchain)
    else:
        _xchain_pairs_still_valid()  # the file's chains may have changed what a pair in force uses
    if onchain:
        _onchain_check(spec)  # last, on the rows as written: an error rolls all of it back
    return counts


def _xchain_apply(pairs: list[config_schema.PairSpec]) -> int:
    """Replace the cross-chain pairs with the file's (after its chains were written, so a
    pair may name a chain of the same file). Each pair's chains must be configured and carry
    its V2 DEX with a router; a pair left out of the file goes, unless sagas of it are open."""
    from arbbot.crosschain.saga import FINAL
    from webapp.core.models import XChainPair, XChainSaga, XChainTarget, XChainToken

    keep = {p.name for p in pairs}
    for gone in XChainPair.objects.exclude(name__in=keep).order_by("name"):
        open_ = XChainSaga.objects.filter(plan__pair=gone.name).exclude(state__in=FINAL).count()
        if open_:
            raise ValidationError(f"xchain: pair {gone.name!r} is not in the file but {open_} of its saga(s) are "
                                  f"still open: keep it until they end")
        gone.delete()
    for p in pairs:
        chains = [_xchain_side(p.where, chain_id, p.dex) for chain_id in p.chains]
        b = p.bridge
        pair, _ = XChainPair.objects.update_or_create(name=p.name, defaults={
            "chain_a": chains[0], "chain_b": chains[1], "dex": p.dex, "quote": p.quote, "base": p.base,
            "slippage_bps": p.slippage_bps, "stall_blocks": p.stall_blocks, "bridge_kind": b.kind,
            "bridge_contracts": {str(k): v for k, v in b.contracts.items()}, "bridge_endpoint": b.endpoint,
            "bridge_fee_bps": b.fee_bps, "bridge_fixed_fee": {k: str(v) for k, v in b.fixed_fee.items()},
            "bridge_delay_blocks": b.delay_blocks, "bridge_delay_s": b.delay_s,
            "costs": {k: str(v) for k, v in p.costs.items()},
        })
        XChainToken.objects.filter(pair=pair).delete()
        XChainToken.objects.bulk_create([XChainToken(
            pair=pair, symbol=t.symbol, canonical_chain_id=t.canonical_chain, canonical_address=t.canonical_address,
            bridged_chain_id=t.bridged_chain, bridged_address=t.bridged_address) for t in p.tokens])
        XChainTarget.objects.filter(pair=pair).delete()
        XChainTarget.objects.bulk_create([XChainTarget(
            pair=pair, symbol=e.symbol, chain_id=e.chain_id, target_bps=e.target_bps, tolerance_bps=e.tolerance_bps,
            min_transfer=Decimal(e.min_transfer)) for e in p.inventory])
    return len(pairs)


def _xchain_side(where: str, chain_id: int, dex_name: str) -> Chain:
    """A pair's chain as the bridge queue needs it: configured, with WETH and the pair's V2
    DEX with a router; ``ValidationError`` naming ``where`` otherwise."""
    chain = Chain.objects.filter(chain_id=chain_id).first()
    if chain is None:
        raise ValidationError(f"{where}: chains: chain {chain_id} is not configured (give it under chains, or "
                              f"apply its file first)")
    dex = Dex.objects.filter(chain=chain, name=dex_name).first()
    if dex is None:
        raise ValidationError(f"{where}: dex: chain {chain_id} has no dex {dex_name!r}")
    if dex.kind != "v2" or not dex.router:
        raise ValidationError(f"{where}: dex: {dex_name!r} on chain {chain_id} must be a V2 DEX with a router "
                              f"(cross-chain legs swap through it)")
    if not chain.weth:
        raise ValidationError(f"{where}: chains: chain {chain_id} has no weth (gas is priced through its "
                              f"WETH/quote pool)")
    return chain


def _xchain_pairs_still_valid() -> None:
    from webapp.core.models import XChainPair

    for pair in XChainPair.objects.select_related("chain_a", "chain_b"):
        for chain in (pair.chain_a, pair.chain_b):
            _xchain_side(f"xchain pair {pair.name!r} (in force)", chain.chain_id, pair.dex)


#: what a devnet's chain row takes from its deployment record only (``chain_register_deployment``)
DEVNET_IDENTITY = ("rpc_urls", "multicall3", "weth", "executor")


def _devnets_kept(spec: config_schema.ConfigSpec) -> None:
    """A file entry with a devnet's chain id must not turn that devnet into a user chain:
    its URLs, contracts, DEXes and tokens come from the devnet's record."""
    devnets = {c.chain_id: c.name for c in Chain.objects.filter(is_devnet=True)}
    for c in spec.chains:
        if c.chain_id not in devnets:
            continue
        given = [f for f in DEVNET_IDENTITY if f in c.fields] + (["dexes"] if c.dexes else []) + (
            ["tokens"] if isinstance(c.tokens, list) else [])
        if given:
            raise ValidationError(
                f"{c.where}: chain {c.chain_id} is the devnet {devnets[c.chain_id]!r} (registered from its "
                f"deployment record): {', '.join(given)} come from that record, not from a file. A chain of your "
                f"own needs its own chain_id; for the devnet give only mode, strategy or filters"
            )
    for chain_id, d in spec.loose_dexes:
        if chain_id in devnets:
            raise ValidationError(f"{d.where}: chain {chain_id} is the devnet {devnets[chain_id]!r}: its DEXes come "
                                  f"from its deployment record, not from a file")


def _onchain_check(spec: config_schema.ConfigSpec) -> None:
    """Each chain of the file checked on-chain (``arbbot.execution.chain_check``) with the
    values it now has (the file's over the stored ones); ``ValidationError`` listing every
    problem, each naming its entry (the caller's transaction then writes nothing)."""
    from arbbot.execution import chain_check

    problems: list[str] = []
    for c in spec.chains:
        row = Chain.objects.get(chain_id=c.chain_id)
        tokens = [row.weth, *Token.objects.filter(chain=row).order_by("id").values_list("address", flat=True)[:8]]
        if c.strategy is not None:
            tokens += c.strategy.start_tokens
        target = chain_check.ChainToCheck(
            where=c.where, chain_id=c.chain_id, rpc_urls=row.rpc_url_list(), multicall3=row.multicall3,
            weth=row.weth, executor=row.executor, executor_owner=c.executor_owner,
            dexes=[chain_check.DexToCheck(d.where, d.kind, d.factory, d.init_code_hash) for d in c.dexes],
            tokens=tokens,
        )
        try:
            problems += chain_check.check_chain(target)
        except chain_check.Unreachable as exc:
            raise ValidationError(f"{exc}: check rpc_urls, or pass --offline to apply without the on-chain "
                                  f"checks") from None
    for p in spec.xchain or []:
        try:
            problems += chain_check.check_pair(p.where, [_pair_side(p, chain_id) for chain_id in p.chains])
        except chain_check.Unreachable as exc:
            raise ValidationError(f"{p.where}: {exc}: check the chain's rpc_urls, or pass --offline to apply "
                                  f"without the on-chain checks") from None
    if problems:
        raise ValidationError("; ".join(problems))


def _pair_side(p: config_schema.PairSpec, chain_id: int) -> Any:
    """One chain of a cross-chain pair as ``chain_check.check_pair`` takes it (rows as written)."""
    from arbbot.execution import chain_check

    row = Chain.objects.get(chain_id=chain_id)
    dex = Dex.objects.get(chain=row, name=p.dex)
    address = {t.symbol: t.address_on(chain_id) for t in p.tokens}
    return chain_check.PairSideToCheck(
        chain=chain_check.ChainToCheck(where=f"chain {chain_id}", chain_id=chain_id, rpc_urls=row.rpc_url_list(),
                                       multicall3=row.multicall3),
        router=dex.router, factory=dex.factory, weth=row.weth,
        tokens=[(t.where, t.address_on(chain_id)) for t in p.tokens],
        quote=address[p.quote], base=address[p.base], bridge=p.bridge.contracts.get(chain_id, ""),
    )


def _chain_check(chain: Chain, where: str, *, was_live: bool, allow_live: bool) -> None:
    """The rules a chain row must meet before it is saved (the model's validators and the
    mode rules); ``ValidationError`` naming ``where``."""
    if chain.mode == "live" and not was_live:
        if not allow_live:
            raise ValidationError(
                f"{where}: mode: live sends real transactions; it needs the operator's explicit yes (--yes-live)"
            )
        if not chain.executor:
            raise ValidationError(f"{where}: mode: live needs an executor on this chain (deploy one first)")
    if chain.submission_route == "private" and not chain.relay_urls.strip():
        raise ValidationError(f"{where}: relay_urls: the private route needs at least one relay URL")
    try:
        chain.full_clean()
    except ValidationError as exc:
        raise ValidationError(f"{where}: {_flatten(exc)}") from exc


def _dex_apply(chain: Chain, d: config_schema.DexSpec) -> Dex:
    dex = Dex.objects.filter(chain=chain, name=d.name).first() or Dex(chain=chain, name=d.name)
    for name in ("kind", "factory", "init_code_hash", "fee_pips", "start_block", "router", "quoter"):
        setattr(dex, name, getattr(d, name))
    other = Dex.objects.filter(chain=chain, factory=d.factory).exclude(pk=dex.pk).first()
    if other is not None:
        raise ValidationError(f"{d.where}: factory: {d.factory} is already the factory of dex {other.name!r}")
    try:
        dex.full_clean()
    except ValidationError as exc:
        raise ValidationError(f"{d.where}: {_flatten(exc)}") from exc
    dex.save()
    return dex


def _token_apply(chain: Chain, t: config_schema.TokenSpec) -> Token:
    try:
        return token_register(chain, t.address, t.symbol, t.decimals)
    except ValidationError as exc:
        raise ValidationError(f"{t.where}: {_flatten(exc)}") from exc


def _pool_filter_apply(
    chain: Chain, tokens: str | list[Any] | None, spec: config_schema.PoolFilterSpec | None
) -> PoolFilter:
    row = PoolFilter.objects.filter(chain=chain).first() or PoolFilter(chain=chain)
    if tokens is not None:
        row.discover_tokens = tokens == "discover"
    if spec is not None:
        row.allow_tokens = spec.allow_tokens
        row.deny_tokens = spec.deny_tokens
        row.min_liquidity_token = spec.min_liquidity_token
        row.min_liquidity = Decimal(spec.min_liquidity)
    row.save()
    return row


def strategy_set(chain: Chain, spec: config_schema.StrategySpec, *, source: str = "") -> Strategy | None:
    """Put ``spec`` in force for ``chain`` as a new version; ``None`` (nothing written) if it
    equals the version in force. Workers see the new version from their next block."""
    with transaction.atomic():
        Chain.objects.select_for_update().filter(pk=chain.pk).first()  # one writer of versions at a time
        current = Strategy.objects.filter(chain=chain).order_by("-version").first()
        fields = spec.as_fields()
        if current is not None and all(_same(getattr(current, k), v) for k, v in fields.items()):
            return None
        return Strategy.objects.create(
            chain=chain, version=(current.version + 1) if current else 1, source=source[:200], **fields
        )


def _same(stored: Any, wanted: Any) -> bool:
    if isinstance(wanted, Decimal) or isinstance(stored, Decimal):
        return stored is not None and wanted is not None and Decimal(stored) == Decimal(wanted)
    return bool(stored == wanted)


@transaction.atomic
def chain_mode_set(chain_id: int, mode: str, *, confirm_live: bool = False) -> Chain:
    """Set how a chain trades (``dry-run``, ``paper`` or ``live``). Nothing trades live unless
    someone chose it: ``live`` needs ``confirm_live`` and an executor on the chain."""
    if mode not in config_schema.MODES:
        raise ValidationError(f"mode: {mode!r} is not one of {', '.join(config_schema.MODES)}")
    chain = Chain.objects.select_for_update().filter(chain_id=chain_id).first()
    if chain is None:
        raise ValidationError(f"unknown chain {chain_id} (configure it first: arbbot config apply)")
    was_live = chain.mode == "live"
    chain.mode = mode
    _chain_check(chain, f"chain {chain_id} ({chain.name})", was_live=was_live, allow_live=confirm_live)
    chain.save(update_fields=["mode"])
    log.warning("chain %s: mode set to %s", chain_id, mode)
    return chain


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


# --------------------------------------------------------------------------- logins


@transaction.atomic
def user_set_role(name: str, role: str, *, keep_password: bool = False) -> tuple[Any, str | None]:
    """Create the login ``name`` (or change its role) with ``role`` as its only role
    (``webapp.core.roles``); returns the user and its new generated password, ``None`` when
    an existing user kept theirs. An admin may use the Django admin (``is_staff``)."""
    import secrets

    from django.contrib.auth.models import Group, User

    from webapp.core.roles import ROLES, roles_setup

    name = name.strip()
    if not name or len(name) > 150:
        raise ValidationError(f"user name: {name!r} must be 1 to 150 characters")
    if role not in ROLES:
        raise ValidationError(f"role: {role!r} is not one of {', '.join(ROLES)}")
    roles_setup()
    user, created = User.objects.get_or_create(username=name)
    password = None
    if created or not keep_password:
        password = secrets.token_urlsafe(18)
        user.set_password(password)
    user.is_staff = role == "admin"
    user.save()
    user.groups.remove(*Group.objects.filter(name__in=list(ROLES)))
    user.groups.add(Group.objects.get(name=role))
    return user, password


def user_token(name: str, *, rotate: bool = False) -> str:
    """The API token of ``name`` (``Authorization: Token <key>``), created if missing;
    ``rotate`` replaces it, so the old one stops working."""
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token as ApiToken

    user = User.objects.filter(username=name).first()
    if user is None:
        raise ValidationError(f"unknown user {name!r} (create it: arbbot roles user NAME --role ROLE)")
    if rotate:
        ApiToken.objects.filter(user=user).delete()
    return str(ApiToken.objects.get_or_create(user=user)[0].key)


# --------------------------------------------------------------------------- exclusions
# The path stage reads these back (``selectors.exclusions``, kept a second by the workers):
# an exclusion written here takes effect within a second, and lifting one puts its pools back.


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
    previous = Chain.objects.select_for_update().filter(chain_id=chain_id).first()
    if previous is not None and not previous.is_devnet:
        raise ValidationError(
            f"chain {chain_id} ({previous.name}) is a chain of your own (configured with `arbbot config apply`), "
            f"not a devnet: registering a devnet under the same chain id would overwrite its RPC URLs, "
            f"contracts and DEXes. Nothing was recorded: give your chain its real chain id (the devnet "
            f"always uses {chain_id}), or delete that chain first"
        )
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
            # Its own blocks, no competing miners: a receipt is final (with automine, no
            # further block may ever come to confirm it).
            "confirmations": 1,
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
                # the devnet deploys the genuine npm contracts: older records without the
                # field get the genuine hash of their kind (the pool guard checks against it)
                "init_code_hash": (d.get("init_code_hash")
                                   or "0x" + GENUINE_INIT_CODE_HASH[d.get("kind", "v2")].hex()).lower(),
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


@transaction.atomic
def xchain_devnet_apply(records: Sequence[Mapping[str, Any]], config: Mapping[str, Any]) -> dict[str, int]:
    """The two-chain devnet configures itself as a user would: its chains registered from
    their deployment records (``arbbot.devnet.twochain.chain_records``), then its ``xchain``
    section (``twochain.xchain_config``) through ``config_apply``; all or nothing."""
    for record in records:
        chain_register_deployment(record)
    return config_apply(config, source="two-chain devnet")


def chain_history_forget(chain_id: int) -> int:
    """Delete a chain's opportunities, executions and their transactions; the number of
    opportunity and execution rows removed."""
    with transaction.atomic():
        Transaction.objects.filter(chain_id=chain_id).delete()
        executions, _ = Execution.objects.filter(chain_id=chain_id).delete()
        opportunities, _ = Opportunity.objects.filter(chain_id=chain_id).delete()
    log.info("chain %s: removed %d executions and %d opportunities", chain_id, executions, opportunities)
    return executions + opportunities


def chain_set_executor(chain_id: int, address: str) -> Chain:
    """Record the chain's executor contract (``arbbot executor deploy`` after it checked the
    code and the setup on-chain). ``ValidationError`` for a malformed address."""
    validate_address(address)
    with transaction.atomic():
        chain = Chain.objects.select_for_update().get(chain_id=chain_id)
        chain.executor = address.lower()
        chain.save(update_fields=["executor"])
    log.info("chain %s: executor set to %s", chain_id, chain.executor)
    return chain


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


#: The analytics stage's columns, in the order ``opportunities_record`` streams them.
_OPPORTUNITY_COLUMNS = (
    "created_at", "chain_id", "block_number", "block_hash", "path_id", "pools", "tokens", "profit_token",
    "amount_in", "amount_out", "gas_cost", "net_profit", "profit_native", "net_profit_native", "score",
    "decision", "reason", "latency_ms", "features",
)


def _address_array(addresses: Iterable[str]) -> str:
    """A JSON array of lower-case addresses; each checked (``norm_address``: hex digits
    only, nothing to escape), so joining them is the whole encoding."""
    return '["' + '","'.join(map(norm_address, addresses)) + '"]'


def _features_json(features: Mapping[str, float]) -> str | None:
    """A verdict's features as the JSON object the ``features`` column holds; ``None`` for
    none. A row of a ``FeatureTable`` (finite floats, in its names' order: the ml stage's,
    or a batch decoded by ``scored_from_wire``) is written by orjson, whose shortest
    round-trip floats are the same numbers ``json.dumps`` writes (``1e-06`` is ``1e-6``
    there; the column holds the number, not the text): ~2 µs a row of 21 against ~14 for
    ``float.__repr__`` value by value (``bench/pipeline/README.md``, session 48)."""
    if not features:
        return None
    if isinstance(features, FeatureRow):
        table = features.table
        # numpy's floats too (orjson refuses them without the option): a table's rows are
        # Python floats where the fleet makes them, but a FeatureTable says only "floats"
        return orjson.dumps(dict(zip(table.names, table.rows()[features.index])),
                            option=orjson.OPT_SERIALIZE_NUMPY).decode()
    return json.dumps(dict(features))


def opportunities_record(scored: Iterable[ScoredOpportunity], *, now: float | None = None) -> int:
    """Record a batch of scored opportunities (the analytics stage) in one ``COPY``; the
    number recorded.

    One statement per batch, rows streamed by psycopg: no model instance, no per-row
    parameter list (``bench/pipeline``: several times the rows/s of ``bulk_create``). Money
    columns get the ``int`` itself, written as its decimal digits into ``NUMERIC``: exact
    at any size. Addresses are lower-cased here, as ``AddressField`` would. All or nothing:
    a batch that fails is not partly written (the task is redelivered whole). Idempotent: an
    opportunity already recorded (chain, block, block hash, path) is not recorded again, so
    a batch the broker delivers twice (its worker killed before the ack) counts once: the
    unique constraint ``opportunity_once`` decides, no pre-query (batches of one block
    written side by side cannot both get in).

    The rows go straight into the table; only when one of them is there already (a
    redelivered batch, the constraint refuses the ``COPY``) does the batch go again through
    a staging table and ``INSERT ... ON CONFLICT DO NOTHING``, which skips those. The
    staging way, always taken before, costs the server a second copy of every row: 28 ->
    21 µs a row of 500, client and server (``bench/pipeline/README.md``)."""
    import time

    from psycopg import errors as pg_errors

    now = now or time.time()
    created_at = _ts(now)
    rows = []
    for s in scored:
        o = s.opportunity
        rows.append((
            created_at, o.chain_id, o.block_number, o.block_hash, o.path_id,
            _address_array(o.pools), _address_array(o.tokens), norm_address(o.tokens[0]), o.amount_in, o.amount_out, o.gas_cost, o.net_profit,
            o.profit_native, o.net_profit_native, s.score, s.decision, s.reason[:200],
            (now - o.observed_at) * 1000 if o.observed_at else None, _features_json(s.features),
        ))
    if not rows:
        return 0
    from django.db import connection

    cols = ", ".join(_OPPORTUNITY_COLUMNS)
    table = Opportunity._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        try:
            with transaction.atomic():  # a savepoint: a refused COPY leaves the outer transaction usable
                with cursor.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                return len(rows)
        except pg_errors.UniqueViolation:  # psycopg's own: the raw cursor's COPY is not wrapped by Django
            pass
        # the batch streams into a session-local staging table (its columns' types, no
        # constraints), then moves over in one INSERT that skips what is recorded already.
        # Its rows go at each commit; the DELETE empties it of an earlier batch written in
        # the same outer transaction.
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS opportunity_stage ON COMMIT DELETE ROWS AS "
                       f"SELECT {cols} FROM {table} WITH NO DATA; DELETE FROM opportunity_stage")
        with cursor.cursor.copy(f"COPY opportunity_stage ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM opportunity_stage "
                       f"ON CONFLICT DO NOTHING")
        return cursor.rowcount


def execution_claim(scored: ScoredOpportunity) -> Execution | None:
    """Create the ``pending`` row for an opportunity; ``None`` if it was already claimed
    (the unique (chain, block, path) constraint makes a second execution impossible)."""
    try:
        with transaction.atomic():
            row = _claim_row(scored)
            row.save(force_insert=True)
            return row
    except IntegrityError:
        return None


def executions_claim(batch: Sequence[ScoredOpportunity]) -> list[bool]:
    """``execution_claim`` of each of ``batch`` at once: True for each claimed here. One
    insert and one commit when none was claimed before (the execute stage claims a block's
    batch before deciding the first); else (a redelivery, or a cycle named twice) one by
    one, each in its savepoint. In autocommit (the worker) the insert and the setting of its
    commit go as one query string, one round trip instead of four: the stage's other thread
    re-validates the batch meanwhile, and each reply the claim waited for also waited for
    that thread to give back the GIL (in the fleet 17.4 -> 10.9 ms p50 to the claim's end,
    ``bench/latency/README.md``). (One raw ``INSERT ... ON CONFLICT DO NOTHING`` was tried:
    200 rows took 17-20 ms against ``bulk_create``'s 14-23, so the ORM stays for the rest.)"""
    if not batch:
        return []
    from django.db import connection

    try:
        if connection.vendor == "postgresql" and connection.get_autocommit():
            # one round trip: PostgreSQL runs the query string as one implicit transaction,
            # its commit not waiting for the disk (``_commit_without_flush``'s reasons)
            sql, params = _insert_sql([_claim_row(s) for s in batch], connection)
            with connection.cursor() as cur:
                cur.execute(f"{_NO_FLUSH}; {sql}", params)
        else:
            with transaction.atomic():
                _commit_without_flush()
                Execution.objects.bulk_create([_claim_row(s) for s in batch])
        return [True] * len(batch)
    except IntegrityError:
        with transaction.atomic():
            _commit_without_flush()
            return [execution_claim(s) is not None for s in batch]


#: The current transaction's commit does not wait for its WAL to reach the disk: that
#: transaction only, an explicit one or the implicit one of a query string.
_NO_FLUSH = "SET LOCAL synchronous_commit TO OFF"


def _commit_without_flush() -> None:
    """The current transaction's commit returns without waiting for its WAL to reach the
    disk (PostgreSQL's ``synchronous_commit = off``, for this transaction only): an fsync
    took 8 ms (p50) of the execute stage's way to its first decision here. Only for rows
    that need no durability of their own: a claim, or the outcome of an attempt that
    signed nothing. A PostgreSQL crash may forget the last few such commits (never more
    than ``wal_writer_delay``'s worth; it never corrupts): a claim it forgot had nothing
    signed, because signing writes the transaction's journal row with a durable commit,
    which flushes every earlier WAL record, this claim's included; a forgotten outcome
    leaves the claim ``pending``, which ``reconcile`` finishes as failed, nothing sent."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_NO_FLUSH)


def _claim_row(scored: ScoredOpportunity) -> Execution:
    o = scored.opportunity
    return Execution(
        created_at=timezone.now(),
        chain_id=o.chain_id,
        block_number=o.block_number,
        path_id=o.path_id,
        status="pending",
        profit_token=o.tokens[0],
        amount_in=Decimal(o.amount_in),
        predicted_profit=Decimal(o.profit),
        profit_native=None if o.profit_native is None else Decimal(o.profit_native),
    )


@transaction.atomic
def execution_finish(result: ExecutionResult, *, durable: bool = True) -> Execution:
    """Record the outcome on the claimed row (created here if no claim exists), with the
    realised profit converted to native wei: at the price the execute stage read at the
    newest state when the result carries it (``extra["native_price"]``), else at the
    opportunity's own (its ``profit_native`` over its predicted profit, recorded at claim);
    null when neither is known (the daily PnL then leaves it out). ``durable=False``: the
    commit does not wait for the disk (``_commit_without_flush``), for an attempt that
    signed nothing."""
    if not durable and transaction.get_autocommit():
        with transaction.atomic():  # SET LOCAL holds inside a transaction only
            return execution_finish(result, durable=False)
    if not durable:
        _commit_without_flush()
    known = _realised_native_of(result)  # most results: no need to read the row first
    row, _ = Execution.objects.update_or_create(
        chain_id=result.chain_id,
        block_number=result.block_number,
        path_id=result.path_id,
        defaults={**_outcome_fields(result), **({} if known is _FROM_ROW else {"realised_profit_native": known})},
    )
    if known is _FROM_ROW:
        native = _realised_native_from_row(result.realised_profit, row)
        if native != row.realised_profit_native:
            row.realised_profit_native = native
            row.save(update_fields=["realised_profit_native"])
    return row


def _outcome_fields(result: ExecutionResult) -> dict[str, Any]:
    """The fields an outcome sets on its claimed row (but the realised native value)."""
    return {
        "created_at": timezone.now(),
        "status": result.status,
        "mode": str(result.extra.get("mode", ""))[:8],
        **{k: Decimal(int(result.extra[k])) for k in ("final_amount_in", "final_predicted_profit") if k in result.extra},
        "tx_hash": result.tx_hash or "",
        "gas_used": result.gas_used,
        "gas_price_wei": Decimal(result.gas_price_wei),
        "mined_block": result.mined_block,
        "profit_token": result.profit_token,
        "amount_in": Decimal(result.amount_in),
        "predicted_profit": Decimal(result.predicted_profit),
        "realised_profit": Decimal(result.realised_profit),
        "reason": result.reason[:300],
        **_decision_latency(result),
    }


def signed_nothing(result: ExecutionResult) -> bool:
    """Whether ``result`` is of an attempt that signed nothing (dropped or simulated, no
    transaction): its outcome's commit need not wait for the disk."""
    return result.status in ("dropped", "simulated") and not result.tx_hash


def executions_finish_unsigned(results: Sequence[ExecutionResult]) -> None:
    """``execution_finish(r, durable=False)`` of each of ``results`` (``signed_nothing``: the
    execute stage's dropped and simulated) in one transaction whose commit does not wait for
    the disk: one pipelined ``UPDATE`` per set of fields (psycopg's ``executemany``) instead
    of a read, an update and a commit per row (~1.5 ms each, 0.3 s for a block's 200). A
    result whose realised profit needs its claimed row's price, or whose row was never
    claimed, goes through ``execution_finish``."""
    if not results:
        return
    if any(not signed_nothing(r) for r in results):
        raise ValueError("only the outcomes of attempts that signed nothing are finished together")
    from django.db import connection

    with transaction.atomic():
        _commit_without_flush()
        groups: dict[tuple[str, ...], list[tuple[dict[str, Any], ExecutionResult]]] = {}
        one_by_one = []
        for r in results:
            known = _realised_native_of(r)
            if known is _FROM_ROW:
                one_by_one.append(r)
                continue
            fields = {**_outcome_fields(r), "realised_profit_native": known}
            groups.setdefault(tuple(fields), []).append((fields, r))
        meta = Execution._meta
        for names, items in groups.items():
            columns = [meta.get_field(n) for n in names]
            sql = (f"UPDATE {meta.db_table} SET " + ", ".join(f"{c.column} = %s" for c in columns)
                   + " WHERE chain_id = %s AND block_number = %s AND path_id = %s")
            rows = [[*f.values(), r.chain_id, r.block_number, r.path_id] for f, r in items]  # psycopg adapts them
            with connection.cursor() as cursor:
                cursor.executemany(sql, rows)
                updated = cursor.rowcount
            if updated != len(items):  # a row never claimed: each made or updated in turn
                one_by_one.extend(r for _, r in items)
        for r in one_by_one:
            execution_finish(r, durable=False)


_FROM_ROW = object()  # the realised profit's native value needs the claimed row's prices


def _realised_native_of(result: ExecutionResult) -> Decimal | object:
    """The realised profit in native wei from the result alone: 0 when nothing was
    realised, else at the price the execute stage read (``extra["native_price"]``);
    ``_FROM_ROW`` when it carries no usable price."""
    realised = result.realised_profit
    if realised == 0:
        return Decimal(0)
    price = result.extra.get("native_price")
    if price is not None:
        num, den = (int(x) for x in price)
        if num > 0 and den > 0:
            return Decimal(realised * num // den)  # rounds down: a profit is never overstated
    return _FROM_ROW


def _realised_native_from_row(realised: int, row: Execution) -> Decimal | None:
    """At the opportunity's own price (its ``profit_native`` over its predicted profit,
    recorded at claim); None when that is unknown (the daily PnL then leaves it out)."""
    predicted = int(row.predicted_profit)
    if row.profit_native is not None and predicted > 0:
        return Decimal(realised * int(row.profit_native) // predicted)
    return None


def execution_decided(result: ExecutionResult) -> None:
    """Keep the decision latency of a ``sent`` execution; its outcome is recorded later
    (``execution_finish`` from the follow pass, which leaves this field as it is)."""
    fields = _decision_latency(result)
    if fields:
        Execution.objects.filter(
            chain_id=result.chain_id, block_number=result.block_number, path_id=result.path_id
        ).update(**fields)


def _decision_latency(result: ExecutionResult) -> dict[str, float]:
    """``decision_latency_ms`` when the execute stage measured it (``arbbot.execution.stage``)."""
    latency_s = result.extra.get("decision_latency_s")
    return {} if latency_s is None else {"decision_latency_ms": float(latency_s) * 1000.0}


# --------------------------------------------------------------------------- transactions
# The journal of signed transactions (``arbbot.execution.follow.TxJournal``): a row is
# written before its bytes are sent, and moved on by the follow task.


def transactions_signed(recs: Sequence[TxRecord]) -> None:
    """Persist signed transactions before they are sent, with their executions' final
    sizing: each execution's ``UPDATE`` and the rows' one ``INSERT`` in one query string,
    which PostgreSQL runs as one implicit transaction (all or none) in one round trip and one
    durable commit (``bench/execution/signed_rows.py``, same run, one row: 1.86 ms p50
    against 2.44 for the two statements in an atomic block and 2.88 for the ORM's update and
    create). A turn's sends are recorded together, before the first leaves."""
    from django.db import connection

    if not recs:
        return
    sql, params = _insert_sql([_signed_row(rec) for rec in recs], connection)
    sized = [rec for rec in recs if rec.final_amount_in]
    update = (f"UPDATE {Execution._meta.db_table} SET final_amount_in = %s, final_predicted_profit = %s "
              "WHERE chain_id = %s AND block_number = %s AND path_id = %s; ")
    update_params = [v for rec in sized for v in (
        Decimal(rec.final_amount_in), Decimal(rec.final_predicted_profit), rec.attempt["chain_id"],
        rec.attempt["block_number"], rec.attempt["path_id"])]
    with connection.cursor() as cur:  # Django's psycopg cursors bind client-side: several statements allowed
        cur.execute(update * len(sized) + sql, [*update_params, *params])


def _insert_sql(rows: Sequence[models.Model], connection: Any) -> tuple[str, list[Any]]:
    """One ``INSERT`` of ``rows`` (of one model; primary keys left to the database) and its
    parameters, each field's value prepared as the ORM's insert prepares it."""
    meta = rows[0]._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    cols = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    params = [f.get_db_prep_save(f.pre_save(row, True), connection) for row in rows for f in fields]
    values = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * len(rows))
    return f"INSERT INTO {meta.db_table} ({cols}) VALUES {values}", params


def _signed_row(rec: TxRecord) -> Transaction:
    a = rec.attempt
    return Transaction(
        created_at=_ts(rec.created_at),
        chain_id=a["chain_id"],
        block_number=a["block_number"],
        path_id=a["path_id"],
        sender=rec.sender,
        nonce=rec.nonce,
        tx_hash=rec.tx_hash.lower(),
        raw_tx=rec.raw_tx,
        kind=rec.kind,
        state="signed",
        route=rec.route,
        gas_limit=rec.gas_limit,
        max_fee_per_gas=Decimal(rec.max_fee_per_gas),
        max_priority_fee_per_gas=None if rec.max_priority_fee_per_gas is None else Decimal(rec.max_priority_fee_per_gas),
        worst_gas_wei=Decimal(rec.worst_gas_wei),
        sent_block=rec.sent_block,
        simulated_profit=Decimal(rec.simulated_profit),
        pools=list(rec.pools),
        submission=dict(rec.submission),
    )


def transaction_refused(tx_hash: str, error: str) -> None:
    """The node answered its send with ``error`` and did not take it: ``refused``, still
    followed (``arbbot.execution.follow``). Its execution's outcome is the stage's."""
    Transaction.objects.filter(tx_hash=tx_hash.lower(), state="signed").update(state="refused", error=error[:300])


@transaction.atomic
def transaction_sent(tx_hash: str, *, sent_block: int | None, submission: Mapping[str, Any] | None) -> None:
    """Sent (or re-broadcast at ``sent_block``); its execution is ``sent`` unless final by a receipt."""
    tx = Transaction.objects.select_for_update().get(tx_hash=tx_hash.lower())
    tx.state = "sent" if tx.state in ("signed", "refused", "sent") else tx.state
    tx.sent_block = sent_block if sent_block is not None else tx.sent_block
    if submission is not None:
        tx.submission = dict(submission)
    tx.save(update_fields=["state", "sent_block", "submission"])
    _execution_of(tx).filter(status__in=("pending", "sent", "failed")).update(
        status="sent", tx_hash=tx.tx_hash, mode="live"
    )


@transaction.atomic
def transaction_mined(tx_hash: str, block: int, block_hash: str) -> None:
    tx = Transaction.objects.select_for_update().get(tx_hash=tx_hash.lower())
    tx.state, tx.mined_block, tx.mined_block_hash = "mined", block, block_hash.lower()
    tx.save(update_fields=["state", "mined_block", "mined_block_hash"])
    _execution_of(tx).update(status="mined", tx_hash=tx.tx_hash, mined_block=block)


@transaction.atomic
def transaction_reopened(tx_hash: str) -> None:
    """Its receipt is gone (a reorg), or it was mined late after being given up: open again."""
    tx = Transaction.objects.select_for_update().get(tx_hash=tx_hash.lower())
    tx.state, tx.mined_block, tx.mined_block_hash = "sent", None, ""
    tx.save(update_fields=["state", "mined_block", "mined_block_hash"])
    _execution_of(tx).update(status="sent", tx_hash=tx.tx_hash, mined_block=None)


def transactions_set_state(tx_hashes: Iterable[str], state: str) -> None:
    if state not in ("confirmed", "replaced", "dropped"):
        raise ValueError(f"not a state to set: {state!r}")
    Transaction.objects.filter(tx_hash__in=[h.lower() for h in tx_hashes]).update(state=state)


@transaction.atomic
def transaction_confirmed(tx_hash: str, replaced: Sequence[str], result: ExecutionResult) -> None:
    """The follower's last word on a nonce: ``tx_hash`` confirmed, ``replaced`` (the others
    of its nonce) replaced, its execution final with ``result``; one durable commit (the
    follower then releases the nonce's open transactions and their reserved gas, which the
    day's loss then finds here)."""
    transactions_set_state([tx_hash], "confirmed")
    if replaced:
        transactions_set_state(replaced, "replaced")
    execution_finish(result)


def _execution_of(tx: Transaction) -> Any:
    return Execution.objects.filter(chain_id=tx.chain_id, block_number=tx.block_number, path_id=tx.path_id)


def _executions_of(txs: Sequence[Transaction]) -> dict[tuple[int, int, str], Execution]:
    """The executions of ``txs`` by (chain, block, path), in one query."""
    if not txs:
        return {}
    rows = Execution.objects.filter(
        chain_id__in={t.chain_id for t in txs}, block_number__in={t.block_number for t in txs},
        path_id__in={t.path_id for t in txs},
    )
    return {(e.chain_id, e.block_number, e.path_id): e for e in rows}


class DbJournal:
    """The execute stage's ``Journal`` (``arbbot.execution.stage``) on the Execution and
    Transaction tables: one Execution row per (chain, block, path), claimed ``pending``;
    one Transaction row per signed transaction, written before it is sent."""

    def claim(self, scored: ScoredOpportunity) -> bool:
        return execution_claim(scored) is not None

    def claim_all(self, batch: Sequence[ScoredOpportunity]) -> list[bool]:
        return executions_claim(batch)

    def finished(self, result: ExecutionResult) -> None:
        # dropped and simulated attempts signed nothing: their commit need not wait for the disk
        execution_finish(result, durable=not signed_nothing(result))

    def finished_all(self, results: Sequence[ExecutionResult]) -> None:
        executions_finish_unsigned([r for r in results if signed_nothing(r)])
        for r in results:
            if not signed_nothing(r):
                execution_finish(r)

    def decided(self, result: ExecutionResult) -> None:
        execution_decided(result)

    def stale_pending(self, older_than_s: float) -> list[Unfinished]:
        from webapp.core.selectors import executions_stale_pending

        return [Unfinished(_attempt(row)) for row in executions_stale_pending(older_than_s)]

    def tx_signed(self, *recs: TxRecord) -> None:
        transactions_signed(recs)

    def tx_refused(self, tx_hash: str, error: str) -> None:
        transaction_refused(tx_hash, error)

    def tx_sent(self, tx_hash: str, *, sent_block: int | None, submission: Mapping[str, Any] | None) -> None:
        transaction_sent(tx_hash, sent_block=sent_block, submission=submission)

    def tx_mined(self, tx_hash: str, block: int, block_hash: str) -> None:
        transaction_mined(tx_hash, block, block_hash)

    def tx_reopened(self, tx_hash: str) -> None:
        transaction_reopened(tx_hash)

    def tx_state(self, tx_hashes: Sequence[str], state: str) -> None:
        transactions_set_state(tx_hashes, state)

    def tx_confirmed(self, tx_hash: str, replaced: Sequence[str], result: ExecutionResult) -> None:
        transaction_confirmed(tx_hash, replaced, result)

    def txs_open(self, chain_id: int) -> list[TxRecord]:
        from webapp.core.selectors import transactions_open

        return self._records(transactions_open(chain_id))

    def txs_of_nonce(self, chain_id: int, sender: str, nonce: int) -> list[TxRecord]:
        from webapp.core.selectors import transactions_of_nonce

        return self._records(transactions_of_nonce(chain_id, sender, nonce))

    @staticmethod
    def _records(txs: Sequence[Transaction]) -> list[TxRecord]:
        executions = _executions_of(txs)
        return [DbJournal._record(t, executions.get((t.chain_id, t.block_number, t.path_id))) for t in txs]

    @staticmethod
    def _record(t: Transaction, execution: Execution | None) -> TxRecord:
        attempt = _attempt(execution) if execution is not None else Attempt(
            chain_id=t.chain_id, block_number=t.block_number, path_id=t.path_id, predicted_profit=0,
            profit_token="", amount_in=0,
        )
        return TxRecord(
            attempt=attempt, tx_hash=t.tx_hash, sender=t.sender, nonce=t.nonce, raw_tx=t.raw_tx, kind=t.kind,
            state=t.state, route=t.route, gas_limit=t.gas_limit, max_fee_per_gas=int(t.max_fee_per_gas),
            max_priority_fee_per_gas=None if t.max_priority_fee_per_gas is None else int(t.max_priority_fee_per_gas),
            worst_gas_wei=int(t.worst_gas_wei), sent_block=t.sent_block, simulated_profit=int(t.simulated_profit),
            pools=tuple(t.pools or ()), mined_block=t.mined_block, mined_block_hash=t.mined_block_hash,
            submission=t.submission or {}, created_at=t.created_at.timestamp(), error=t.error,
        )


def _attempt(row: Execution) -> Attempt:
    return Attempt(
        chain_id=row.chain_id,
        block_number=row.block_number,
        path_id=row.path_id,
        predicted_profit=int(row.predicted_profit),
        profit_token=row.profit_token,
        amount_in=int(row.amount_in),
    )


# --------------------------------------------------------------------------- model registry


def model_version_record(
    model: Any, *, metrics: dict[str, Any], train: Any, holdout: Any, seed: int, name: str = "",
) -> ModelVersion:
    """Store a trained model (``arbbot.scoring.model.LearnedModel``) with its artefact, its
    digest and what it was trained and judged on (``Dataset``s); not promoted."""
    from arbbot.scoring.model import digest, dump

    blob = dump(model)
    h = hashlib.sha256((train.digest() + holdout.digest()).encode()).hexdigest()
    row = ModelVersion.objects.create(
        name=name or f"hgb-{timezone.now():%Y%m%d-%H%M%S}",
        features=list(model.features),
        params={**model.params, "seed": seed},
        metrics=metrics,
        train_blocks=[int(train.block.min()), int(train.block.max())],
        holdout_blocks=[int(holdout.block.min()), int(holdout.block.max())],
        n_train=len(train),
        n_holdout=len(holdout),
        data_sha256=h,
        artefact=blob,
        artefact_sha256=digest(blob),
    )
    return row


def model_version_promote(version_id: int, decision: str) -> ModelVersion:
    """Make a version the champion (the previous one steps down), in one transaction: the
    ml workers use it from their next batch. ``ModelVersion.DoesNotExist`` if unknown."""
    with transaction.atomic():
        row = ModelVersion.objects.select_for_update().get(id=version_id)
        ModelVersion.objects.filter(is_champion=True).exclude(id=version_id).update(is_champion=False)
        row.is_champion, row.promoted_at, row.decision = True, timezone.now(), decision[:300]
        row.save(update_fields=["is_champion", "promoted_at", "decision"])
    return row


def model_version_demote_all() -> int:
    """No champion: the rule decides again."""
    return ModelVersion.objects.filter(is_champion=True).update(is_champion=False)


def ev_curve(model: Any, holdout: Any, rule_ev: float) -> dict[str, Any]:
    """EV captured on the holdout at each P(success) threshold (the dashboard's plot)."""
    from arbbot.scoring.model import ev_curve as curve

    thresholds = [round(i / 20, 2) for i in range(21)]
    return {"thresholds": thresholds, "model": curve(model, holdout, thresholds), "rule": rule_ev}


@dataclass(frozen=True)
class TrainingResult:
    version: ModelVersion | None
    metrics: dict[str, Any]
    promoted: bool
    decision: str


def ml_recordings(chain_id: int | None = None, since: dt.datetime | None = None) -> list[Any]:
    """The recordings under ``ARBBOT_RECORD_DIR`` (``chain-<id>-<block>.arbrec``, the chain's
    only when given), by name, those written to since ``since`` only (their modification
    time); none when recording is off."""
    from arbbot.config import get_settings
    from arbbot.replay.recording import SUFFIX

    directory = get_settings().record_dir
    if directory is None or not directory.is_dir():
        return []
    found = sorted(directory.glob(f"chain-{chain_id if chain_id is not None else '*'}-*{SUFFIX}"))
    if since is not None:
        found = [p for p in found if dt.datetime.fromtimestamp(p.stat().st_mtime, tz=dt.timezone.utc) >= since]
    return found


def ml_paper_dataset(
    recordings: Sequence[Any], *, chain_id: int | None = None, land_after: int = 1, progress: Any = None,
) -> tuple[Any, list[str]]:
    """Paper labels (``arbbot.scoring.labels.paper_dataset``) from backtesting each recording
    with the strategy it was recorded under (``arbbot.replay.backtest``, ``labels=True``), in
    block order, and the names of the recordings they came from. A recording that cannot be
    read (one still being written ends in a torn frame), of another chain, or with nothing
    to label is left out, and said so."""
    from arbbot.errors import ArbbotError
    from arbbot.replay import backtest, labels
    from arbbot.replay.recording import Recording
    from arbbot.scoring.labels import paper_dataset
    from arbbot.scoring.model import Dataset, ModelError
    from arbbot.scoring.rule import RuleScorer

    say = progress or (lambda _m: None)
    parts, used = [], []
    for path in recordings:
        try:
            recording = Recording.open(path)
        except ArbbotError as exc:
            say(f"recording {path}: left out: {exc}")
            continue
        if chain_id is not None and recording.chain_id != chain_id:
            continue
        strategy = backtest.BacktestStrategy.from_wire(recording.meta.get("strategy") or {})
        try:
            rows = labels.outcomes(backtest.run(recording, strategy, labels=True))
            part = paper_dataset(rows, rule=RuleScorer(margin=strategy.margin, min_net_profit=strategy.min_profit_wei),
                                 land_after=land_after)
        except (ArbbotError, ValueError) as exc:
            say(f"recording {recording.path.name}: left out: {exc}")
            continue
        say(f"recording {recording.path.name}: {len(rows)} decided opportunities, {len(part)} labelled "
            f"({int(part.y.sum())} pay {land_after} block(s) later)")
        parts.append(part)
        used.append(recording.path.name)
    if not parts:
        raise ModelError("no paper labels: no recording to back-test (set ARBBOT_RECORD_DIR, or name one)")
    return Dataset.concat(parts), used


def ml_training_data(
    labels: str | None = None, *, chain_id: int | None = None, since: dt.datetime | None = None,
    recordings: Sequence[Any] | None = None, progress: Any = None,
) -> tuple[Any, dict[str, Any]]:
    """The labelled opportunities a model trains and is judged on (``Dataset``, block
    order) and where they came from: ``labels`` (default ``ARBBOT_ML_LABELS``, itself
    ``live`` by default) ``live``, the fleet's recorded executions
    (``selectors.ml_dataset``); ``paper``, backtests of ``recordings`` (default: those under
    ``ARBBOT_RECORD_DIR`` written to since ``since``, ``ml_paper_dataset``); ``all``, both."""
    from arbbot.config import ML_LABELS, get_settings
    from arbbot.scoring.model import Dataset, ModelError
    from webapp.core import selectors

    labels = labels or get_settings().ml_labels
    if labels not in ML_LABELS:
        raise ModelError(f"labels must be one of {ML_LABELS}, not {labels!r}")
    say = progress or (lambda _m: None)
    parts, source = [], {"labels": labels, "rows": {}, "recordings": []}
    if labels in ("live", "all"):
        live = selectors.ml_dataset(chain_id, since=since)
        say(f"live labels: {len(live)} executed opportunities ({int(live.y.sum())} successes)")
        source["rows"]["live"] = len(live)
        parts.append(live)
    if labels in ("paper", "all"):
        found = list(recordings) if recordings is not None else ml_recordings(chain_id, since)
        try:
            paper, used = ml_paper_dataset(found, chain_id=chain_id, progress=say)
        except ModelError:
            if labels == "paper":
                raise
            paper, used = None, []
            say("paper labels: none (no recording to back-test): live labels only")
        if paper is not None:
            source["rows"]["paper"] = len(paper)
            source["recordings"] = used
            parts.append(paper)
    return Dataset.concat(parts), source


def model_train(
    *, seed: int = 0, holdout_frac: float = 0.3, chain_id: int | None = None, promote: bool = False,
    since: dt.datetime | None = None, progress: Any = None, labels: str | None = None,
    recordings: Sequence[Any] | None = None,
) -> TrainingResult:
    """Train a challenger on the labelled outcomes (``ml_training_data``: ``labels``
    ``live``, ``paper`` or ``all``; time-ordered split), judge it, the rule and the current
    champion on the same holdout, record it (with where its labels came from:
    ``metrics["labels"]``), and promote it when asked and only if it beats the champion
    (the rule when there is none). ``ModelError`` when the data cannot train a model."""
    from arbbot.scoring import drift, model as ml
    from arbbot.scoring.stage import ChampionCache
    from webapp.core import selectors

    say = progress or (lambda _m: None)
    data, source = ml_training_data(labels, chain_id=chain_id, since=since, recordings=recordings, progress=say)
    say(f"{len(data)} labelled opportunities ({int(data.y.sum())} successes; labels: {source['labels']})")
    train, holdout = data.split(holdout_frac)
    say(f"train: {len(train)} rows, blocks {int(train.block.min())}-{int(train.block.max())}; "
        f"holdout: {len(holdout)} rows, blocks {int(holdout.block.min())}-{int(holdout.block.max())}")
    challenger = ml.train(train, seed=seed, progress=say)
    metrics = ml.evaluate(challenger, holdout)
    reference, of = selectors.ml_reference(train)  # what drift is measured against
    metrics["reference"] = drift.reference(reference, train.features)
    metrics["reference_of"] = of
    say(f"drift reference: {of}")
    metrics["ev_curve"] = ev_curve(challenger, holdout, metrics["rule"]["ev_captured_wei"])
    metrics["labels"] = source
    current = ChampionCache(selectors.model_champion_ref, selectors.model_artefact).current()
    if current is not None:
        metrics["champion"] = {"version": current[0].version_id, **ml.evaluate(current[1], holdout)["model"]}
    incumbent = metrics.get("champion", metrics["rule"])
    wins, why = ml.beats(metrics["model"], incumbent)
    against = f"champion {current[0].name}" if current is not None else "the rule"
    decision = f"{'beats' if wins else 'does not beat'} {against}: {why}"
    row = model_version_record(challenger, metrics=metrics, train=train, holdout=holdout, seed=seed)
    say(f"recorded model version {row.id} ({row.name}): {decision}")
    if promote and wins:
        row = model_version_promote(row.id, decision)
        say(f"promoted version {row.id}: the ml workers use it from their next batch")
    else:
        row.decision = decision[:300]
        row.save(update_fields=["decision"])
    return TrainingResult(row, metrics, promote and wins, decision)


# --------------------------------------------------------------------------- cross-chain

_LEG_FIELDS = ("index", "role", "chain_id", "token_in", "token_out", "amount_in", "predicted_out", "min_out", "pool",
               "router", "state", "nonce", "tx_hash", "raw_tx", "realised_out", "gas_used", "gas_price_wei")
_INT_FIELDS = {"amount_in", "predicted_out", "min_out", "realised_out", "gas_price_wei"}


def _saga_from_row(row: Any) -> Any:
    from arbbot.crosschain.saga import Leg, Saga

    legs = [
        Leg(**{f: (int(getattr(leg, f)) if f in _INT_FIELDS and getattr(leg, f) is not None else getattr(leg, f))
               for f in _LEG_FIELDS}, id=leg.id)
        for leg in row.legs.order_by("index")
    ]
    return Saga(kind=row.kind, key=row.key, state=row.state, plan=dict(row.plan), legs=legs,
                predicted_profit=int(row.predicted_profit),
                realised_profit=None if row.realised_profit is None else int(row.realised_profit),
                alert=row.alert, error=row.error, wallet=row.wallet, id=row.id)


class DbSagaStore:
    """``arbbot.crosschain.saga.SagaStore`` on the XChainSaga/XChainLeg rows."""

    def create(self, saga: Any) -> Any:
        from webapp.core.models import XChainSaga

        with transaction.atomic():
            row, created = XChainSaga.objects.get_or_create(key=saga.key, defaults={
                "kind": saga.kind, "state": saga.state, "wallet": saga.wallet, "plan": saga.plan,
                "predicted_profit": Decimal(saga.predicted_profit)})
            if created:
                saga.id = row.id
                self._save_legs(row, saga)
        return _saga_from_row(row)

    def get(self, saga_id: int) -> Any:
        from webapp.core.models import XChainSaga

        return _saga_from_row(XChainSaga.objects.get(id=saga_id))

    @contextlib.contextmanager
    def step(self, saga_id: int) -> Iterator[Any]:
        from django.db import connection

        from webapp.core.models import XChainSaga

        with transaction.atomic():
            row = XChainSaga.objects.select_for_update().get(id=saga_id)
            # one signer per wallet at a time: two sagas never take the same nonce
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", [_advisory_key("xchain-wallet:" + row.wallet)])
            yield _saga_from_row(row)

    def save(self, saga: Any) -> None:
        from arbbot.crosschain.saga import FINAL
        from webapp.core.models import XChainSaga

        row = XChainSaga.objects.get(id=saga.id)
        row.state, row.plan, row.alert, row.error = saga.state, saga.plan, saga.alert, saga.error[:2000]
        row.realised_profit = None if saga.realised_profit is None else Decimal(saga.realised_profit)
        if saga.state in FINAL and row.finished_at is None:
            row.finished_at = timezone.now()
        row.save()
        self._save_legs(row, saga)

    def _save_legs(self, row: Any, saga: Any) -> None:
        from webapp.core.models import XChainLeg

        for leg in saga.legs:
            values = {f: (Decimal(getattr(leg, f)) if f in _INT_FIELDS and getattr(leg, f) is not None
                          else getattr(leg, f)) for f in _LEG_FIELDS}
            XChainLeg.objects.update_or_create(saga=row, index=leg.index, defaults=values)

    def next_nonce(self, chain_id: int, wallet: str) -> int:
        """Past the legs of open sagas only: a final saga's legs are all settled on the
        chain (mined or dropped), so the chain's own count covers them."""
        from django.db.models import Max

        from arbbot.crosschain.saga import FINAL
        from webapp.core.models import XChainLeg, XChainSaga

        open_sagas = XChainSaga.objects.filter(wallet=wallet.lower()).exclude(state__in=FINAL)
        top = XChainLeg.objects.filter(chain_id=chain_id, saga__in=open_sagas,
                                       nonce__isnull=False).aggregate(m=Max("nonce"))["m"]
        return 0 if top is None else int(top) + 1


def _advisory_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def xchain_sagas_record(sagas: Iterable[Any]) -> list[int]:
    """Record new sagas (a key already recorded keeps its saga); their ids."""
    store = DbSagaStore()
    return [int(store.create(s).id) for s in sagas]


def xchain_sagas_abandon(reason: str) -> int:
    """Hold every open saga with ``reason`` (its chains are gone: a devnet torn down and
    started again); an operator sees them under the ``abandoned`` alert. The number held."""
    from arbbot.crosschain.saga import FINAL
    from webapp.core.models import XChainSaga

    return XChainSaga.objects.exclude(state__in=FINAL).update(
        state="held", alert="abandoned", error=reason[:2000], finished_at=timezone.now())


def xchain_inventory_record(inventory: Mapping[str, Mapping[int, int]], tokens: Mapping[str, Mapping[int, str]],
                            wallet: str) -> int:
    """Upsert the wallet's holdings per chain and token; the number of rows written."""
    from webapp.core.models import XChainInventory

    n = 0
    for symbol, by_chain in inventory.items():
        for chain_id, amount in by_chain.items():
            XChainInventory.objects.update_or_create(
                chain_id=chain_id, symbol=symbol, wallet=wallet.lower(),
                defaults={"token": tokens[symbol][chain_id], "balance": Decimal(amount)})
            n += 1
    return n
