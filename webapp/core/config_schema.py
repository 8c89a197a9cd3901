"""The configuration file's schema: a YAML/JSON mapping checked and turned into plain
records, without touching the database. ``services.config_apply`` (the one writer) calls
``parse`` first, so a file with any bad entry writes nothing.

Every error is a ``ValidationError`` whose message names the entry and the field, e.g.
``chains[0] (ethereum).dexes[2] (sushiswap): init_code_hash: not 32 bytes of hex``. Unknown
fields are errors too (a typo must not silently become a default).

The file (``examples/*.yaml`` are complete ones)::

    chains:
      - chain_id: 1
        name: ethereum
        rpc_urls: [https://..., https://...]   # http(s) only, tried in order (failover)
        ws_urls: [wss://...]                   # newHeads for the block follower
        multicall3: 0x...
        weth: 0x...
        executor: 0x...                        # optional
        executor_owner: 0x...                  # optional: config apply checks the executor's owner() on-chain
        mode: dry-run                          # dry-run | paper | live (live needs --yes-live)
        confirmations: 2
        replace_after_blocks: 3
        max_replacements: 3
        submission_route: public               # public | private (then relay_urls)
        relay_urls: []
        public_fallback: false
        explorer_url: https://etherscan.io
        dexes:
          - {name: uniswap-v2, kind: v2, factory: 0x..., init_code_hash: 0x..., fee_pips: 3000, start_block: 10000835}
        tokens: discover                       # or a list of {address, symbol, decimals}
        pool_filter:
          allow_tokens: []                     # if set, only pools of these tokens
          deny_tokens: []
          min_liquidity: {token: 0x..., amount: "1000000000000000000"}
        strategy:
          start_tokens: [0x...]                # empty: the chain's WETH
          max_hops: 3                          # 2..4
          min_profit_wei: 0
          margin: "1.5"                        # gross profit > gas x margin
          max_amount_in: {0x...: "10000000000000000000"}
          max_fee_per_gas_wei: 100000000000
          max_sends_per_block: 8               # 1..256: a block's best this many go to execute

    xchain:                                    # cross-chain arbitrage (see below)
      pairs:
        - name: base-arbitrum                  # unique; the pair's sagas are keyed under it
          chains: [8453, 42161]                # two chains of this file or already configured
          dex: uniswap-v2                      # a V2 DEX of this name (with a router) on both
          quote: USDC                          # the traded pair: symbols of ``tokens`` below
          base: WETH
          slippage_bps: 30                     # each leg's floor below its predicted output
          stall_blocks: 20                     # a leg or transfer this late is compensated
          bridge:
            kind: across                       # devnet | across | stargate | cctp
            contracts: {8453: 0x..., 42161: 0x...}   # devnet: its DevBridge on each chain (required)
            endpoint: https://...              # optional: the bridge's quote API (shown redacted)
            fee_bps: 5                         # the bridge's fee on the amount
            fixed_fee: {USDC: "1000000"}       # per transfer, base units of the token
            delay_blocks: 2                    # source-chain blocks before delivery
            delay_s: 900                       # production kinds: the expected delivery time
          tokens:                              # the same asset on both chains
            - symbol: USDC
              canonical: {chain_id: 8453, address: 0x...}
              bridged: {chain_id: 42161, address: 0x...}
          inventory:                           # per chain and token; absent: 50 % +- 15 %
            - {symbol: USDC, chain_id: 8453, target_bps: 5000, tolerance_bps: 1500, min_transfer: "1"}
          costs: {trades_per_rebalance: 4, risk_bps_per_sqrt_block: 2, min_profit: "1"}

Top-level ``dexes`` and ``tokens`` lists whose entries carry a ``chain_id`` are accepted
too (the earlier flat form). A field left out of a chain keeps its current value (a new
chain gets the model's default); a ``strategy`` or ``pool_filter`` given is taken whole,
and so is ``xchain`` (a pair not in it is removed, unless sagas of it are still open).
Only the ``devnet`` bridge kind sends in this version: a production kind (across,
stargate, cctp) is configured and quoted, and a rebalance that would need its transfer is
refused with that reason (trades, which move no funds across chains, still run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

from django.core.exceptions import ValidationError

from arbbot.scoring.rule import MAX_SENDS_PER_BLOCK, MAX_SENDS_PER_BLOCK_LIMIT

from webapp.core.validators import (
    redact_url,
    validate_address,
    validate_hash32,
    validate_http_urls,
    validate_rpc_urls,
    validate_ws_urls,
)

MODES = ("dry-run", "paper", "live")
ROUTES = ("public", "private")
KINDS = ("v2", "v3")
UINT256_MAX = 2**256 - 1
SMALL_MAX = 32767  # PositiveSmallIntegerField

TOP_FIELDS = ("chains", "dexes", "tokens", "xchain")
CHAIN_FIELDS = (
    "chain_id", "name", "rpc_urls", "ws_urls", "multicall3", "weth", "executor", "executor_owner", "is_active", "mode",
    "confirmations", "replace_after_blocks", "max_replacements", "submission_route", "relay_urls",
    "public_fallback", "explorer_url", "dexes", "tokens", "pool_filter", "strategy",
)
DEX_FIELDS = ("name", "kind", "factory", "init_code_hash", "fee_pips", "start_block", "router", "quoter")
TOKEN_FIELDS = ("address", "symbol", "decimals")
POOL_FILTER_FIELDS = ("allow_tokens", "deny_tokens", "min_liquidity")
BRIDGE_KINDS = ("devnet", "across", "stargate", "cctp")
BPS = 10_000
XCHAIN_FIELDS = ("pairs",)
PAIR_FIELDS = ("name", "chains", "dex", "quote", "base", "slippage_bps", "stall_blocks", "bridge", "tokens",
               "inventory", "costs")
BRIDGE_FIELDS = ("kind", "contracts", "endpoint", "fee_bps", "fixed_fee", "delay_blocks", "delay_s")
XTOKEN_FIELDS = ("symbol", "canonical", "bridged")
XSIDE_FIELDS = ("chain_id", "address")
INVENTORY_FIELDS = ("symbol", "chain_id", "target_bps", "tolerance_bps", "min_transfer")
COSTS_FIELDS = ("trades_per_rebalance", "risk_bps_per_sqrt_block", "min_profit")
STRATEGY_FIELDS = ("start_tokens", "max_hops", "min_profit_wei", "margin", "max_amount_in", "max_fee_per_gas_wei",
                   "max_sends_per_block", "mode")


@dataclass
class DexSpec:
    where: str
    name: str
    kind: str
    factory: str
    init_code_hash: str
    fee_pips: int
    start_block: int
    router: str
    quoter: str


@dataclass
class TokenSpec:
    where: str
    address: str
    symbol: str
    decimals: int | None


@dataclass
class PoolFilterSpec:
    allow_tokens: list[str]
    deny_tokens: list[str]
    min_liquidity_token: str
    min_liquidity: int


@dataclass
class StrategySpec:
    start_tokens: list[str]
    max_hops: int
    min_profit_wei: int
    margin: Decimal
    max_amount_in: dict[str, int]
    max_fee_per_gas_wei: int | None
    max_sends_per_block: int = MAX_SENDS_PER_BLOCK

    def as_fields(self) -> dict[str, Any]:
        """The Strategy row's fields (JSON-safe: amounts as decimal strings)."""
        return {
            "start_tokens": list(self.start_tokens),
            "max_hops": self.max_hops,
            "min_profit_wei": Decimal(self.min_profit_wei),
            "margin": self.margin,
            "max_amount_in": {t: str(v) for t, v in self.max_amount_in.items()},
            "max_fee_per_gas_wei": None if self.max_fee_per_gas_wei is None else Decimal(self.max_fee_per_gas_wei),
            "max_sends_per_block": self.max_sends_per_block,
        }


@dataclass
class ChainSpec:
    where: str
    chain_id: int
    #: only the fields the file gives (model field name -> value); the rest keep their value
    fields: dict[str, Any]
    dexes: list[DexSpec] = field(default_factory=list)
    #: "discover", a list of tokens, or None (not given)
    tokens: str | list[TokenSpec] | None = None
    pool_filter: PoolFilterSpec | None = None
    strategy: StrategySpec | None = None
    #: the cold owner the executor must have (checked on-chain by ``config apply``, not stored)
    executor_owner: str = ""


@dataclass
class BridgeSpec:
    kind: str
    contracts: dict[int, str]  # chain id -> the bridge's contract there
    endpoint: str
    fee_bps: int
    fixed_fee: dict[str, int]  # symbol -> base units per transfer
    delay_blocks: int
    delay_s: int


@dataclass
class XTokenSpec:
    where: str
    symbol: str
    canonical_chain: int
    canonical_address: str
    bridged_chain: int
    bridged_address: str

    def address_on(self, chain_id: int) -> str:
        return self.canonical_address if chain_id == self.canonical_chain else self.bridged_address


@dataclass
class InventorySpec:
    where: str
    symbol: str
    chain_id: int
    target_bps: int
    tolerance_bps: int
    min_transfer: int


@dataclass
class PairSpec:
    where: str
    name: str
    chains: tuple[int, int]
    dex: str
    quote: str
    base: str
    slippage_bps: int
    stall_blocks: int
    bridge: BridgeSpec
    tokens: list[XTokenSpec]
    inventory: list[InventorySpec]
    costs: dict[str, int]


@dataclass
class ConfigSpec:
    chains: list[ChainSpec]
    #: flat-form entries: DEXes of chains not in the file, and every flat token (chain_id, spec)
    loose_dexes: list[tuple[int, DexSpec]] = field(default_factory=list)
    loose_tokens: list[tuple[int, TokenSpec]] = field(default_factory=list)
    #: the cross-chain pairs (``None``: the file has no ``xchain``, the pairs in force stay)
    xchain: list[PairSpec] | None = None


class _Bad(Exception):
    """A field's problem, before the entry's name is put in front of it."""


def parse(data: Any) -> ConfigSpec:
    """Check the whole file; ``ValidationError`` naming the first bad entry."""
    if not isinstance(data, Mapping):
        raise ValidationError("configuration must be a mapping with 'chains' (and optionally 'dexes', 'tokens')")
    _unknown(data, TOP_FIELDS, "configuration")
    chains: list[ChainSpec] = []
    by_id: dict[int, ChainSpec] = {}
    for i, entry in enumerate(_list(data, "chains", "configuration")):
        spec = _chain(entry, i)
        if spec.chain_id in by_id:
            raise ValidationError(f"{spec.where}: chain_id {spec.chain_id} is already declared by {by_id[spec.chain_id].where}")
        by_id[spec.chain_id] = spec
        chains.append(spec)
    out = ConfigSpec(chains)
    # The flat form only adds rows: its tokens are registered, discovery is left as it is.
    for i, entry in enumerate(_list(data, "dexes", "configuration")):
        where = f"dexes[{i}]"
        chain_id = _flat_chain_id(entry, where)
        dex = _dex(_without(entry, "chain_id"), where)
        if chain_id in by_id:
            by_id[chain_id].dexes.append(dex)
        else:
            out.loose_dexes.append((chain_id, dex))
    tokens = data.get("tokens")
    if tokens is not None and not isinstance(tokens, list):
        raise ValidationError("tokens: the top-level 'tokens' must be a list of entries with chain_id "
                              "(use tokens: discover inside a chain)")
    for i, entry in enumerate(tokens or []):
        where = f"tokens[{i}]"
        out.loose_tokens.append((_flat_chain_id(entry, where), _token(_without(entry, "chain_id"), where)))
    for spec in chains:
        _unique([(d.where, d.name) for d in spec.dexes], "name")
        _unique([(d.where, d.factory) for d in spec.dexes], "factory")
    if data.get("xchain") is not None:
        out.xchain = _xchain(data["xchain"])
    return out


def parse_strategy(data: Any, chain_id: int) -> StrategySpec:
    """The strategy of ``chain_id`` in ``data``: a whole configuration file (its chain's
    ``strategy``), a mapping with a ``strategy``, or the strategy's fields themselves."""
    if isinstance(data, Mapping) and "chains" in data:
        spec = next((c for c in parse(data).chains if c.chain_id == chain_id), None)
        if spec is None:
            raise ValidationError(f"the configuration names no chain {chain_id}")
        if spec.strategy is None:
            raise ValidationError(f"{spec.where}: no strategy for chain {chain_id}")
        return spec.strategy
    if isinstance(data, Mapping) and set(data) == {"strategy"}:
        return _strategy(data["strategy"], "strategy")[0]
    return _strategy(data, "strategy")[0]


# --------------------------------------------------------------------------- entries


def _entry(entry: Any, where: str, fields: tuple[str, ...], *, named_by: str = "name", expect: str = "a mapping") -> str:
    """Check that ``entry`` is a mapping of ``fields`` only; the place errors name: ``where``
    with the entry's ``named_by`` value when it has one (``dexes[1] (sushi)``)."""
    if not isinstance(entry, Mapping):
        raise ValidationError(f"{where}: must be {expect}")
    if isinstance(entry.get(named_by), str) and entry[named_by]:
        where = f"{where} ({entry[named_by]})"
    _unknown(entry, fields, where)
    return where


def _chain(entry: Any, i: int) -> ChainSpec:
    where = _entry(entry, f"chains[{i}]", CHAIN_FIELDS)
    if "chain_id" not in entry:
        raise ValidationError(f"{where}: chain_id: missing")
    fields: dict[str, Any] = {}
    try:
        chain_id = _field(where, "chain_id", lambda: _int(entry["chain_id"], low=1, high=2**63 - 1))
        fields["name"] = _field(where, "name", lambda: _text(entry.get("name") or f"chain-{chain_id}", 64))
        if "rpc_urls" in entry:
            fields["rpc_urls"] = _field(where, "rpc_urls", lambda: _urls(entry["rpc_urls"], validate_rpc_urls))
        if "ws_urls" in entry:
            fields["ws_urls"] = _field(where, "ws_urls", lambda: _urls(entry["ws_urls"], validate_ws_urls))
        if "relay_urls" in entry:
            fields["relay_urls"] = _field(where, "relay_urls", lambda: _urls(entry["relay_urls"], validate_http_urls))
        for name in ("multicall3", "weth", "executor"):
            if name in entry:
                fields[name] = _field(where, name, lambda name=name: _address(entry[name], blank=True))
        if "mode" in entry:
            fields["mode"] = _field(where, "mode", lambda: _choice(entry["mode"], MODES))
        if "submission_route" in entry:
            fields["submission_route"] = _field(where, "submission_route", lambda: _choice(entry["submission_route"], ROUTES))
        for name in ("confirmations", "replace_after_blocks", "max_replacements"):
            if name in entry:
                fields[name] = _field(where, name, lambda name=name: _int(entry[name], low=0, high=SMALL_MAX))
        for name in ("public_fallback", "is_active"):
            if name in entry:
                fields[name] = _field(where, name, lambda name=name: _bool(entry[name]))
        if "explorer_url" in entry:
            fields["explorer_url"] = _field(where, "explorer_url", lambda: _explorer(entry["explorer_url"]))
    except _Located as exc:
        raise ValidationError(str(exc)) from None
    spec = ChainSpec(where, chain_id, fields)
    if entry.get("executor_owner"):
        try:
            spec.executor_owner = _field(where, "executor_owner", lambda: _address(entry["executor_owner"]))
        except _Located as exc:
            raise ValidationError(str(exc)) from None
    spec.dexes = [_dex(d, f"{where}.dexes[{j}]") for j, d in enumerate(_list(entry, "dexes", where))]
    tokens = entry.get("tokens")
    if tokens == "discover":
        spec.tokens = "discover"
    elif isinstance(tokens, list):
        spec.tokens = [_token(t, f"{where}.tokens[{j}]") for j, t in enumerate(tokens)]
    elif tokens is not None:
        raise ValidationError(f"{where}: tokens: must be 'discover' or a list of tokens")
    if entry.get("pool_filter") is not None:
        spec.pool_filter = _pool_filter(entry["pool_filter"], f"{where}.pool_filter")
    if entry.get("strategy") is not None:
        spec.strategy, mode = _strategy(entry["strategy"], f"{where}.strategy")
        if mode is not None:
            if "mode" in fields and fields["mode"] != mode:
                raise ValidationError(
                    f"{where}: mode: {fields['mode']!r} here but {mode!r} in strategy.mode; give it once"
                )
            fields["mode"] = mode
    return spec


def _dex(entry: Any, where: str) -> DexSpec:
    where = _entry(entry, where, DEX_FIELDS)
    for required in ("name", "factory"):
        if not entry.get(required):
            raise ValidationError(f"{where}: {required}: missing")
    try:
        kind = _field(where, "kind", lambda: _choice(entry.get("kind", "v2"), KINDS))
        return DexSpec(
            where=where,
            name=_field(where, "name", lambda: _text(entry["name"], 64)),
            kind=kind,
            factory=_field(where, "factory", lambda: _address(entry["factory"])),
            init_code_hash=_field(where, "init_code_hash", lambda: _hash32(entry.get("init_code_hash") or "")),
            fee_pips=_field(where, "fee_pips", lambda: _int(entry.get("fee_pips", 3000), low=0, high=999_999)),
            start_block=_field(where, "start_block", lambda: _int(entry.get("start_block", 0), low=0, high=2**63 - 1)),
            router=_field(where, "router", lambda: _address(entry.get("router") or "", blank=True)),
            quoter=_field(where, "quoter", lambda: _address(entry.get("quoter") or "", blank=True)),
        )
    except _Located as exc:
        raise ValidationError(str(exc)) from None


def _token(entry: Any, where: str) -> TokenSpec:
    where = _entry(entry, where, TOKEN_FIELDS, named_by="symbol", expect="a mapping with address, symbol, decimals")
    if not entry.get("address"):
        raise ValidationError(f"{where}: address: missing")
    try:
        decimals = entry.get("decimals")
        return TokenSpec(
            where=where,
            address=_field(where, "address", lambda: _address(entry["address"])),
            symbol=_field(where, "symbol", lambda: _text(entry.get("symbol") or "", 64)),
            decimals=None if decimals is None else _field(where, "decimals", lambda: _int(decimals, low=0, high=255)),
        )
    except _Located as exc:
        raise ValidationError(str(exc)) from None


def _pool_filter(entry: Any, where: str) -> PoolFilterSpec:
    if not isinstance(entry, Mapping):
        raise ValidationError(f"{where}: must be a mapping")
    _unknown(entry, POOL_FILTER_FIELDS, where)
    try:
        allow = _field(where, "allow_tokens", lambda: _addresses(entry.get("allow_tokens") or []))
        deny = _field(where, "deny_tokens", lambda: _addresses(entry.get("deny_tokens") or []))
        both = sorted(set(allow) & set(deny))
        if both:
            raise _Located(f"{where}: deny_tokens: {both[0]} is also in allow_tokens")
        token, amount = "", 0
        minimum = entry.get("min_liquidity")
        if minimum is not None:
            if not isinstance(minimum, Mapping) or set(minimum) != {"token", "amount"}:
                raise _Located(f"{where}: min_liquidity: must be {{token: 0x..., amount: base units}}")
            token = _field(where, "min_liquidity.token", lambda: _address(minimum["token"]))
            amount = _field(where, "min_liquidity.amount", lambda: _int(minimum["amount"], low=0, high=UINT256_MAX))
        return PoolFilterSpec(allow, deny, token, amount)
    except _Located as exc:
        raise ValidationError(str(exc)) from None


def _strategy(entry: Any, where: str) -> tuple[StrategySpec, str | None]:
    if not isinstance(entry, Mapping):
        raise ValidationError(f"{where}: must be a mapping")
    _unknown(entry, STRATEGY_FIELDS, where)
    try:
        caps_raw = entry.get("max_amount_in") or {}
        if not isinstance(caps_raw, Mapping):
            raise _Located(f"{where}: max_amount_in: must be a mapping token -> base units")
        caps: dict[str, int] = {}
        for token, cap in caps_raw.items():
            key = _field(where, "max_amount_in", lambda token=token: _address(token))
            caps[key] = _field(where, f"max_amount_in[{key}]", lambda cap=cap: _int(cap, low=0, high=UINT256_MAX))
        fee_cap = entry.get("max_fee_per_gas_wei")
        spec = StrategySpec(
            start_tokens=_field(where, "start_tokens", lambda: _addresses(entry.get("start_tokens") or [])),
            max_hops=_field(where, "max_hops", lambda: _int(entry.get("max_hops", 3), low=2, high=4)),
            min_profit_wei=_field(where, "min_profit_wei", lambda: _int(entry.get("min_profit_wei", 0), low=0, high=UINT256_MAX)),
            margin=_field(where, "margin", lambda: _margin(entry.get("margin", "1.5"))),
            max_amount_in=caps,
            max_fee_per_gas_wei=None if fee_cap is None else _field(
                where, "max_fee_per_gas_wei", lambda: _int(fee_cap, low=1, high=UINT256_MAX)
            ),
            max_sends_per_block=_field(where, "max_sends_per_block", lambda: _int(
                entry.get("max_sends_per_block", MAX_SENDS_PER_BLOCK), low=1, high=MAX_SENDS_PER_BLOCK_LIMIT,
            )),
        )
        mode = None if entry.get("mode") is None else _field(where, "mode", lambda: _choice(entry["mode"], MODES))
    except _Located as exc:
        raise ValidationError(str(exc)) from None
    return spec, mode


# --------------------------------------------------------------------------- cross-chain


def _xchain(entry: Any) -> list[PairSpec]:
    where = "xchain"
    if not isinstance(entry, Mapping):
        raise ValidationError(f"{where}: must be a mapping with 'pairs'")
    _unknown(entry, XCHAIN_FIELDS, where)
    pairs = [_pair(p, f"{where}.pairs[{i}]") for i, p in enumerate(_list(entry, "pairs", where))]
    _unique([(p.where, p.name) for p in pairs], "name")
    return pairs


def _pair(entry: Any, where: str) -> PairSpec:
    where = _entry(entry, where, PAIR_FIELDS)
    for required in ("name", "chains", "dex", "quote", "base", "bridge", "tokens"):
        if entry.get(required) in (None, "", []):
            raise ValidationError(f"{where}: {required}: missing")
    try:
        name = _field(where, "name", lambda: _symbol(entry["name"]))
        chains = _field(where, "chains", lambda: _two_chains(entry["chains"]))
        dex = _field(where, "dex", lambda: _text(entry["dex"], 64))
        quote = _field(where, "quote", lambda: _symbol(entry["quote"]))
        base = _field(where, "base", lambda: _symbol(entry["base"]))
        if quote == base:
            raise _Located(f"{where}: base: {base!r} is the quote token too")
        slippage = _field(where, "slippage_bps", lambda: _int(entry.get("slippage_bps", 0), low=0, high=BPS - 1))
        stall = _field(where, "stall_blocks", lambda: _int(entry.get("stall_blocks", 20), low=1, high=1_000_000))
    except _Located as exc:
        raise ValidationError(str(exc)) from None
    tokens = [_xtoken(t, f"{where}.tokens[{j}]", chains) for j, t in enumerate(_list(entry, "tokens", where))]
    _unique([(t.where, t.symbol) for t in tokens], "symbol")
    for chain_id in chains:  # one address is one token on its chain
        _unique([(t.where, t.address_on(chain_id)) for t in tokens], f"address on chain {chain_id}")
    symbols = {t.symbol for t in tokens}
    for role, symbol in (("quote", quote), ("base", base)):
        if symbol not in symbols:
            raise ValidationError(f"{where}: {role}: {symbol!r} is not one of the pair's tokens "
                                  f"({', '.join(sorted(symbols))})")
    bridge = _bridge(entry["bridge"], f"{where}.bridge", chains, symbols)
    inventory = [_inventory(e, f"{where}.inventory[{j}]", chains, symbols)
                 for j, e in enumerate(_list(entry, "inventory", where))]
    _inventory_consistent(inventory)
    costs = _costs(entry.get("costs") or {}, f"{where}.costs")
    return PairSpec(where, name, chains, dex, quote, base, slippage, stall, bridge, tokens, inventory, costs)


def _two_chains(value: Any) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise _Bad("must be a list of two chain ids")
    a, b = (_int(v, low=1, high=2**63 - 1) for v in value)
    if a == b:
        raise _Bad(f"the two chains must differ (both are {a})")
    return a, b


def _symbol(value: Any) -> str:
    text = _text(value, 32)
    if not text:
        raise _Bad("must not be empty")
    return text


def _xtoken(entry: Any, where: str, chains: tuple[int, int]) -> XTokenSpec:
    where = _entry(entry, where, XTOKEN_FIELDS, named_by="symbol", expect="a mapping with symbol, canonical, bridged")
    for required in XTOKEN_FIELDS:
        if not entry.get(required):
            raise ValidationError(f"{where}: {required}: missing")
    try:
        symbol = _field(where, "symbol", lambda: _symbol(entry["symbol"]))
        sides = []
        for side in ("canonical", "bridged"):
            value = entry[side]
            if not isinstance(value, Mapping) or set(value) != set(XSIDE_FIELDS):
                raise _Located(f"{where}: {side}: must be {{chain_id: ..., address: 0x...}}")
            chain_id = _field(where, f"{side}.chain_id", lambda value=value: _int(value["chain_id"], low=1,
                                                                                  high=2**63 - 1))
            if chain_id not in chains:
                raise _Located(f"{where}: {side}.chain_id: {chain_id} is not one of the pair's chains "
                               f"{list(chains)}")
            sides.append((chain_id, _field(where, f"{side}.address", lambda value=value: _address(value["address"]))))
        if sides[0][0] == sides[1][0]:
            raise _Located(f"{where}: bridged.chain_id: the bridged representation must be on the other chain "
                           f"than the canonical token ({sides[0][0]})")
    except _Located as exc:
        raise ValidationError(str(exc)) from None
    return XTokenSpec(where, symbol, sides[0][0], sides[0][1], sides[1][0], sides[1][1])


def _bridge(entry: Any, where: str, chains: tuple[int, int], symbols: set[str]) -> BridgeSpec:
    if not isinstance(entry, Mapping):
        raise ValidationError(f"{where}: must be a mapping with kind")
    _unknown(entry, BRIDGE_FIELDS, where)
    try:
        kind = _field(where, "kind", lambda: _choice(entry.get("kind"), BRIDGE_KINDS))
        raw = entry.get("contracts") or {}
        if not isinstance(raw, Mapping):
            raise _Located(f"{where}: contracts: must be a mapping chain id -> address")
        contracts: dict[int, str] = {}
        for chain, address in raw.items():
            chain_id = _field(where, "contracts", lambda chain=chain: _int(chain, low=1, high=2**63 - 1))
            if chain_id not in chains:
                raise _Located(f"{where}: contracts: {chain_id} is not one of the pair's chains {list(chains)}")
            contracts[chain_id] = _field(where, f"contracts[{chain_id}]", lambda address=address: _address(address))
        if kind == "devnet":
            missing = [c for c in chains if c not in contracts]
            if missing:
                raise _Located(f"{where}: contracts: the devnet bridge needs its DevBridge on both chains "
                               f"(missing {missing[0]})")
        endpoint = _field(where, "endpoint", lambda: _explorer(entry.get("endpoint")))
        fee_bps = _field(where, "fee_bps", lambda: _int(entry.get("fee_bps", 0), low=0, high=BPS))
        fixed_raw = entry.get("fixed_fee") or {}
        if not isinstance(fixed_raw, Mapping):
            raise _Located(f"{where}: fixed_fee: must be a mapping symbol -> base units")
        fixed: dict[str, int] = {}
        for symbol, amount in fixed_raw.items():
            if symbol not in symbols:
                raise _Located(f"{where}: fixed_fee: {symbol!r} is not one of the pair's tokens")
            fixed[str(symbol)] = _field(where, f"fixed_fee[{symbol}]",
                                        lambda amount=amount: _int(amount, low=0, high=UINT256_MAX))
        delay_blocks = _field(where, "delay_blocks", lambda: _int(entry.get("delay_blocks", 2), low=0, high=1_000_000))
        if kind != "devnet" and entry.get("delay_s") is None:
            raise _Located(f"{where}: delay_s: missing (a {kind} bridge is priced with its expected delivery time)")
        delay_s = _field(where, "delay_s", lambda: _int(entry.get("delay_s", 0), low=0, high=86_400 * 7))
    except _Located as exc:
        raise ValidationError(str(exc)) from None
    return BridgeSpec(kind, contracts, endpoint, fee_bps, fixed, delay_blocks, delay_s)


def _inventory(entry: Any, where: str, chains: tuple[int, int], symbols: set[str]) -> InventorySpec:
    if not isinstance(entry, Mapping):
        raise ValidationError(f"{where}: must be a mapping with symbol, chain_id, target_bps, tolerance_bps")
    if isinstance(entry.get("symbol"), str) and entry["symbol"]:
        where = f"{where} ({entry['symbol']}@{entry.get('chain_id')})"
    _unknown(entry, INVENTORY_FIELDS, where)
    for required in ("symbol", "chain_id", "target_bps"):
        if entry.get(required) is None:
            raise ValidationError(f"{where}: {required}: missing")
    try:
        symbol = _field(where, "symbol", lambda: _symbol(entry["symbol"]))
        if symbol not in symbols:
            raise _Located(f"{where}: symbol: {symbol!r} is not one of the pair's tokens")
        chain_id = _field(where, "chain_id", lambda: _int(entry["chain_id"], low=1, high=2**63 - 1))
        if chain_id not in chains:
            raise _Located(f"{where}: chain_id: {chain_id} is not one of the pair's chains {list(chains)}")
        return InventorySpec(
            where, symbol, chain_id,
            target_bps=_field(where, "target_bps", lambda: _int(entry["target_bps"], low=0, high=BPS)),
            tolerance_bps=_field(where, "tolerance_bps", lambda: _int(entry.get("tolerance_bps", 1_500), low=0,
                                                                      high=BPS)),
            min_transfer=_field(where, "min_transfer", lambda: _int(entry.get("min_transfer", 1), low=1,
                                                                    high=UINT256_MAX)),
        )
    except _Located as exc:
        raise ValidationError(str(exc)) from None


def _inventory_consistent(entries: list[InventorySpec]) -> None:
    """One entry per chain and token; a token given on both chains has targets that add up
    to the whole and the same tolerance and minimum (one chain's share drifts exactly as
    far as the other's)."""
    seen: dict[tuple[str, int], InventorySpec] = {}
    for e in entries:
        if (e.symbol, e.chain_id) in seen:
            raise ValidationError(f"{e.where}: {e.symbol} on chain {e.chain_id} is already given by "
                                  f"{seen[(e.symbol, e.chain_id)].where}")
        other = next((o for (s, _c), o in seen.items() if s == e.symbol), None)
        seen[(e.symbol, e.chain_id)] = e
        if other is None:
            continue
        if e.target_bps + other.target_bps != BPS:
            raise ValidationError(f"{e.where}: target_bps: {e.target_bps} here and {other.target_bps} on chain "
                                  f"{other.chain_id} must add up to {BPS}")
        for name in ("tolerance_bps", "min_transfer"):
            if getattr(e, name) != getattr(other, name):
                raise ValidationError(f"{e.where}: {name}: {getattr(e, name)} here but {getattr(other, name)} on "
                                      f"chain {other.chain_id}; give the same on both chains")


def _costs(entry: Any, where: str) -> dict[str, int]:
    if not isinstance(entry, Mapping):
        raise ValidationError(f"{where}: must be a mapping")
    _unknown(entry, COSTS_FIELDS, where)
    limits = {"trades_per_rebalance": (1, 1_000_000), "risk_bps_per_sqrt_block": (0, BPS),
              "min_profit": (1, UINT256_MAX)}
    try:
        return {name: _field(where, name, lambda name=name: _int(entry[name], low=limits[name][0],
                                                                 high=limits[name][1]))
                for name in COSTS_FIELDS if name in entry}
    except _Located as exc:
        raise ValidationError(str(exc)) from None


# --------------------------------------------------------------------------- values


class _Located(Exception):
    """A problem with its full location already in the message."""


def _field(where: str, name: str, read: Any) -> Any:
    try:
        return read()
    except _Bad as exc:
        raise _Located(f"{where}: {name}: {exc}") from None
    except ValidationError as exc:
        message = " ".join(exc.messages)
        # a list validator names the item as "[i] ...": rpc_urls[1] 'wss://...' is ...
        raise _Located(f"{where}: {name}{'' if message.startswith('[') else ': '}{message}") from None


def _unknown(entry: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in entry:
        if key not in allowed:
            raise ValidationError(f"{where}: unknown field {key!r} (expected one of: {', '.join(allowed)})")


def _list(entry: Mapping[str, Any], name: str, where: str) -> list[Any]:
    value = entry.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(f"{where}: {name}: must be a list")
    return value


def _without(entry: Any, key: str) -> Any:
    return {k: v for k, v in entry.items() if k != key} if isinstance(entry, Mapping) else entry


def _flat_chain_id(entry: Any, where: str) -> int:
    if not isinstance(entry, Mapping):
        raise ValidationError(f"{where}: must be a mapping")
    try:
        return _int(entry.get("chain_id"), low=1, high=2**63 - 1)
    except _Bad as exc:
        raise ValidationError(f"{where}: chain_id: {exc}") from None


def _unique(items: list[tuple[str, str]], what: str) -> None:
    seen: dict[str, str] = {}
    for where, value in items:
        if value in seen:
            raise ValidationError(f"{where}: {what}: {value} is also used by {seen[value]}")
        seen[value] = where


def _int(value: Any, *, low: int, high: int) -> int:
    """A whole number (YAML int, or a decimal string for big amounts); never a bool or float."""
    if isinstance(value, bool) or value is None:
        raise _Bad(f"{value!r} is not a whole number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    elif isinstance(value, str) and value.strip().startswith("-") and value.strip()[1:].isdigit():
        number = int(value.strip())
    else:
        raise _Bad(f"{value!r} is not a whole number")
    if number < low:
        raise _Bad(f"{number} is below the minimum {low}")
    if number > high:
        raise _Bad(f"{number} is above the maximum {high}")
    return number


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"{value!r} is not true or false")
    return value


def _text(value: Any, max_length: int) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise _Bad(f"{value!r} is not text")
    text = str(value).strip()
    if len(text) > max_length:
        raise _Bad(f"longer than {max_length} characters")
    return text


def _choice(value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _Bad(f"{value!r} is not one of {', '.join(choices)}")
    return str(value)


def _address(value: Any, *, blank: bool = False) -> str:
    if blank and (value is None or value == ""):
        return ""
    if not isinstance(value, str):
        # YAML reads an unquoted 0x... as an int: say so rather than "not an address"
        hint = " (quote it: YAML read it as a number)" if isinstance(value, int) and not isinstance(value, bool) else ""
        raise _Bad(f"{value!r} is not a valid EVM address{hint}")
    try:
        validate_address(value)
    except ValidationError:
        raise _Bad(f"{value!r} is not a valid EVM address (0x and 40 hex digits)") from None
    return value.lower()


def _addresses(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise _Bad("must be a list of addresses")
    out: list[str] = []
    for i, item in enumerate(value):
        try:
            address = _address(item)
        except _Bad as exc:
            raise _Bad(f"[{i}] {exc}") from None
        if address not in out:
            out.append(address)
    return out


def _hash32(value: Any) -> str:
    if value == "":
        return ""
    try:
        validate_hash32(value)
    except ValidationError:
        raise _Bad("not 32 bytes of hex (0x and 64 hex digits)") from None
    return str(value).lower()


def _margin(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _Bad(f"{value!r} is not a number")
    try:
        margin = Decimal(str(value))  # str() first: 1.1 as written, not its binary float
    except InvalidOperation:
        raise _Bad(f"{value!r} is not a number") from None
    if not margin.is_finite() or margin < 1:
        raise _Bad(f"{value!r} must be a number >= 1 (gross profit must cover gas)")
    if margin != margin.quantize(Decimal("0.0001")) or margin >= 10_000:
        raise _Bad(f"{value!r} must have at most 4 decimals and stay below 10000")
    return margin


def _urls(value: Any, validate: Any) -> str:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
        raise _Bad("must be a list of URLs")
    joined = ",".join(u.strip() for u in value)
    validate(joined)
    return joined


def _explorer(value: Any) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str):
        raise _Bad(f"{value!r} is not a URL")
    try:
        validate_http_urls(value)
    except ValidationError:
        raise _Bad(f"{redact_url(value)!r} is not an http(s) URL") from None
    return value[:200]
