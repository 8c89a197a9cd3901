"""Persistent records: configuration (Chain, Dex, Strategy, PoolFilter, Token, Pool, and the
cross-chain pairs XChainPair, XChainToken, XChainTarget) and history (Opportunity,
Execution), the model registry (ModelVersion), and the cross-chain sagas and inventory
(XChainSaga, XChainLeg, XChainInventory). uint256 amounts are
NUMERIC(78,0); addresses are stored lower-case.

Models hold no business rules: writes go through ``services``, reads through ``selectors``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from arbbot.scoring.rule import MAX_SENDS_PER_BLOCK, MAX_SENDS_PER_BLOCK_LIMIT
from webapp.core.validators import validate_address, validate_http_urls, validate_rpc_urls, validate_ws_urls

UINT256 = {"max_digits": 78, "decimal_places": 0}


class AddressField(models.CharField):
    """A 0x address, validated and stored lower-case."""

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("max_length", 42)
        kwargs.setdefault("validators", [validate_address])
        super().__init__(*args, **kwargs)

    def get_prep_value(self, value):  # type: ignore[no-untyped-def]
        value = super().get_prep_value(value)
        return value.lower() if isinstance(value, str) else value


class Chain(models.Model):
    chain_id = models.PositiveBigIntegerField(unique=True)
    name = models.CharField(max_length=64)
    rpc_urls = models.TextField(
        validators=[validate_rpc_urls], help_text="http(s) JSON-RPC URLs, comma or newline separated, tried in order",
    )
    ws_urls = models.TextField(
        blank=True, default="", validators=[validate_ws_urls],
        help_text="ws(s) URLs for newHeads subscriptions (the block follower), comma or newline separated",
    )
    multicall3 = AddressField(blank=True, default="", validators=[])
    weth = AddressField(blank=True, default="", validators=[])
    executor = AddressField(blank=True, default="", validators=[], help_text="the project's ArbExecutor")
    is_active = models.BooleanField(default=True)
    is_devnet = models.BooleanField(default=False)
    genesis_hash = models.CharField(
        max_length=66, blank=True, default="",
        help_text="hash of block 0, set for a devnet: a new one means a new chain under the same id",
    )
    MODES = [("", "the fleet's ARBBOT_MODE (dry-run unless set)"), ("dry-run", "dry-run"), ("paper", "paper"),
             ("live", "live")]
    mode = models.CharField(
        max_length=8, blank=True, default="", choices=MODES,
        help_text="how this chain trades; blank: the fleet's ARBBOT_MODE, which is dry-run unless set",
    )
    confirmations = models.PositiveSmallIntegerField(
        default=2, help_text="blocks on top of a mined transaction before its outcome is final",
    )
    replace_after_blocks = models.PositiveSmallIntegerField(
        default=3, help_text="a transaction not mined after this many blocks is replaced (same nonce, higher fee)",
    )
    max_replacements = models.PositiveSmallIntegerField(
        default=3, help_text="after this many fee bumps a transaction still not mined is cancelled",
    )
    ROUTES = [("public", "public mempool"), ("private", "private relay (bundles)")]
    submission_route = models.CharField(max_length=8, default="public", choices=ROUTES)
    relay_urls = models.TextField(
        blank=True, default="", validators=[validate_http_urls], help_text="private route: relay URLs, comma separated",
    )
    public_fallback = models.BooleanField(
        default=False, help_text="private route: broadcast publicly when no relay included the bundle in time",
    )
    explorer_url = models.CharField(max_length=200, blank=True, default="", help_text="e.g. https://etherscan.io")
    created_at = models.DateTimeField(auto_now_add=True)

    def clean(self) -> None:
        for field in ("multicall3", "weth", "executor"):
            value = getattr(self, field)
            if value:
                validate_address(value)

    def mode_in_force(self, fleet_mode: str) -> str:
        """The mode this chain trades in: its own ``mode``, else the fleet's (ARBBOT_MODE,
        ``arbbot.config``: dry-run unless set). The one place that rule is written, with
        ``mode_from``."""
        return self.mode or fleet_mode

    def mode_from(self) -> Literal["chain", "fleet"]:
        """Where ``mode_in_force`` takes the mode from: the chain's own setting, or the fleet's."""
        return "chain" if self.mode else "fleet"

    def rpc_url_list(self) -> list[str]:
        return [u.strip() for u in self.rpc_urls.replace("\n", ",").split(",") if u.strip()]

    def ws_url_list(self) -> list[str]:
        return [u.strip() for u in self.ws_urls.replace("\n", ",").split(",") if u.strip()]

    def __str__(self) -> str:
        return f"{self.name} ({self.chain_id})"


class Dex(models.Model):
    KINDS = [("v2", "Uniswap V2"), ("v3", "Uniswap V3")]
    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="dexes")
    name = models.CharField(max_length=64)
    kind = models.CharField(max_length=4, choices=KINDS, default="v2")
    factory = AddressField()
    router = AddressField(blank=True, default="", validators=[])
    quoter = AddressField(blank=True, default="", validators=[])
    fee_pips = models.PositiveIntegerField(default=3000)
    init_code_hash = models.CharField(
        max_length=66, blank=True, default="", help_text="V2: keccak of the pair's init code (CREATE2 check)",
    )
    start_block = models.PositiveBigIntegerField(default=0, help_text="the factory's deployment block")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chain", "name"], name="dex_unique_name"),
            models.UniqueConstraint(fields=["chain", "factory"], name="dex_unique_factory"),
        ]
        verbose_name_plural = "dexes"

    def __str__(self) -> str:
        return f"{self.name} on {self.chain.name}"


class Strategy(models.Model):
    """How a chain trades, versioned: a change is a new row with the next ``version`` and the
    newest row is in force (``selectors.strategy_for``). Workers compare the version once per
    block and rebuild what depends on it, so an edit takes effect without a restart, and the
    rows keep the history of what was in force when. Written by ``services.strategy_set``."""

    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="strategies")
    version = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=200, blank=True, default="", help_text="what wrote it, e.g. a file name")
    start_tokens = models.JSONField(
        default=list, blank=True, help_text="addresses cycles may start at; empty: the chain's WETH only",
    )
    max_hops = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(2), MaxValueValidator(4)])
    min_profit_wei = models.DecimalField(
        **UINT256, default=0, help_text="minimum net profit in the native token (wei)",
    )
    margin = models.DecimalField(
        max_digits=8, decimal_places=4, default=Decimal("1.5"), validators=[MinValueValidator(Decimal(1))],
        help_text="gross profit must exceed the gas cost times this",
    )
    max_amount_in = models.JSONField(
        default=dict, blank=True, help_text="per-token input caps: address -> base units (decimal string)",
    )
    max_fee_per_gas_wei = models.DecimalField(
        **UINT256, null=True, blank=True, help_text="fee cap of a sent transaction; blank: the fleet's default",
    )
    max_sends_per_block = models.PositiveSmallIntegerField(
        default=MAX_SENDS_PER_BLOCK, validators=[MinValueValidator(1), MaxValueValidator(MAX_SENDS_PER_BLOCK_LIMIT)],
        help_text="at most this many of a block's opportunities go to execute, the best first",
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chain", "version"], name="strategy_unique_version")]
        verbose_name_plural = "strategies"

    def __str__(self) -> str:
        return f"{self.chain.name} strategy v{self.version}"


class PoolFilter(models.Model):
    """Which pools of a chain are watched: token discovery or the configured tokens only,
    token allow/deny lists, and a minimum liquidity in a quote token. One row per chain
    (none: discover every token, no minimum). Written by ``services.config_apply``."""

    chain = models.OneToOneField(Chain, on_delete=models.CASCADE, related_name="pool_filter")
    discover_tokens = models.BooleanField(
        default=True, help_text="on: any token a factory pairs; off: only the chain's configured tokens",
    )
    allow_tokens = models.JSONField(default=list, blank=True, help_text="if set, only pools of these tokens")
    deny_tokens = models.JSONField(default=list, blank=True, help_text="never pools of these tokens")
    min_liquidity_token = AddressField(blank=True, default="", validators=[], help_text="the quote token")
    min_liquidity = models.DecimalField(
        **UINT256, default=0, help_text="a pool's reserve of the quote token must reach this (base units)",
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.chain.name} pool filter"


class Token(models.Model):
    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="tokens")
    address = AddressField()
    symbol = models.CharField(max_length=64, blank=True, default="")
    decimals = models.PositiveSmallIntegerField(null=True, blank=True)
    excluded_reason = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chain", "address"], name="token_unique_address")]

    def __str__(self) -> str:
        return self.symbol or self.address


class Pool(models.Model):
    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="pools")
    dex = models.ForeignKey(Dex, on_delete=models.CASCADE, related_name="pools")
    address = AddressField()
    kind = models.CharField(max_length=4, choices=Dex.KINDS, default="v2")
    token0 = models.ForeignKey(Token, on_delete=models.CASCADE, related_name="+")
    token1 = models.ForeignKey(Token, on_delete=models.CASCADE, related_name="+")
    fee_pips = models.PositiveIntegerField(default=3000)
    tick_spacing = models.IntegerField(null=True, blank=True)
    excluded_reason = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chain", "address"], name="pool_unique_address")]

    def __str__(self) -> str:
        return f"{self.token0}/{self.token1} {self.dex.name} {self.address[:10]}"


class BackfillCursor(models.Model):
    """How far ``arbbot backfill`` has discovered a DEX's pools: every pool its factory
    created up to ``last_block`` is in the Pool table. Written with each chunk's pools in one
    transaction (``services.backfill_chunk_record``), so a run killed at any point resumes
    after ``last_block`` without a gap or a repeat; the scan stage discovers from there."""

    dex = models.OneToOneField(Dex, on_delete=models.CASCADE, related_name="backfill_cursor")
    last_block = models.PositiveBigIntegerField(help_text="the last block whose pool creations are recorded")
    pools_found = models.PositiveBigIntegerField(
        default=0, help_text="creation events recorded so far (each chunk counted once)",
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.dex} through block {self.last_block}"


class Opportunity(models.Model):
    """A scored opportunity (a TimescaleDB hypertable where the extension exists)."""

    created_at = models.DateTimeField(db_index=True)
    chain_id = models.PositiveBigIntegerField()
    block_number = models.PositiveBigIntegerField()
    block_hash = models.CharField(max_length=66)
    path_id = models.CharField(max_length=64)
    pools = models.JSONField()
    tokens = models.JSONField()
    profit_token = AddressField()
    amount_in = models.DecimalField(**UINT256)
    amount_out = models.DecimalField(**UINT256)
    gas_cost = models.DecimalField(**UINT256)
    net_profit = models.DecimalField(max_digits=79, decimal_places=0)
    #: gross and net profit in the chain's native token (wei), priced from the pools at its
    #: block; null: the start token had no price (ranked last, never executed)
    profit_native = models.DecimalField(max_digits=79, decimal_places=0, null=True, blank=True)
    net_profit_native = models.DecimalField(max_digits=79, decimal_places=0, null=True, blank=True)
    score = models.FloatField()
    decision = models.CharField(max_length=8)
    reason = models.CharField(max_length=200, blank=True, default="")
    latency_ms = models.FloatField(null=True)
    #: the features the ml stage decided on, by name (``arbbot.scoring.features``): what a
    #: model is trained on, exactly as serving computed them; null: recorded before them
    features = models.JSONField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "opportunities"
        indexes = [models.Index(fields=["chain_id", "block_number"])]
        # the analytics write's idempotency guard (ON CONFLICT DO NOTHING); on a TimescaleDB
        # hypertable it also holds created_at (migration 0012)
        constraints = [
            models.UniqueConstraint(fields=["chain_id", "block_number", "block_hash", "path_id"],
                                    name="opportunity_once"),
        ]


class Execution(models.Model):
    """What the execute stage did with one opportunity; one row per (chain, block, path):
    the unique constraint is the idempotency guard of last resort."""

    #: pending: claimed, nothing sent yet; sent: a transaction is out (see its Transaction
    #: rows); mined: included, waiting for the chain's confirmations; then final: success,
    #: reverted, cancelled (its nonce taken by a cancellation), dropped, failed, simulated.
    STATUSES = [
        (s, s)
        for s in ("pending", "sent", "mined", "success", "reverted", "cancelled", "dropped", "failed", "simulated")
    ]
    FINAL = ("success", "reverted", "cancelled", "dropped", "failed", "simulated")
    created_at = models.DateTimeField(db_index=True)
    mode = models.CharField(max_length=8, blank=True, default="", help_text="dry-run, paper or live at the time")
    chain_id = models.PositiveBigIntegerField()
    block_number = models.PositiveBigIntegerField()
    path_id = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=STATUSES)
    tx_hash = models.CharField(max_length=66, blank=True, default="")
    gas_used = models.PositiveBigIntegerField(default=0)
    gas_price_wei = models.DecimalField(**UINT256, default=0)
    mined_block = models.PositiveBigIntegerField(null=True, blank=True)
    profit_token = AddressField(blank=True, default="", validators=[])
    amount_in = models.DecimalField(**UINT256, default=0)
    predicted_profit = models.DecimalField(max_digits=79, decimal_places=0, default=0)
    #: Re-sized on the newest state right before signing (0: not re-sized).
    final_amount_in = models.DecimalField(**UINT256, default=0)
    final_predicted_profit = models.DecimalField(max_digits=79, decimal_places=0, default=0)
    realised_profit = models.DecimalField(max_digits=79, decimal_places=0, default=0)
    #: the opportunity's predicted gross profit in native wei (null: no price)
    profit_native = models.DecimalField(max_digits=79, decimal_places=0, null=True, blank=True)
    #: the realised profit converted to native wei when recorded (null: no price): the
    #: daily PnL sums it, whatever the profit token
    realised_profit_native = models.DecimalField(max_digits=79, decimal_places=0, null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True, default="")
    #: From the block's arrival (the follower's stamp) to the execute stage's decision
    #: (``arbbot.execution.stage``: dropped, simulated, failed or sent); null: arrival unknown.
    decision_latency_ms = models.FloatField(
        null=True, blank=True, help_text="block arrival to the execute decision, ms",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chain_id", "block_number", "path_id"], name="execution_once")
        ]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            # the daily PnL (``selectors.pnl_today_wei``, asked twice per live send) reads the
            # day's sent executions only, not the far more numerous dropped and simulated ones
            models.Index(fields=["chain_id", "created_at"], name="execution_sent_by_day", condition=~Q(tx_hash="")),
        ]


class Transaction(models.Model):
    """The journal of signed transactions: written before the bytes are sent, so nothing
    sent goes unrecorded. A replacement (same nonce, higher fee) or a cancellation is a new
    row of the same execution; at most one row per (chain, sender, nonce) ends mined.

    Its execution is named by (chain_id, block_number, path_id), not a foreign key: the
    Execution table is a hypertable where TimescaleDB exists, keyed (id, block_number)."""

    #: ``refused``: the node answered its send with an error and its count did not pass the
    #: nonce; followed all the same, since a node that answered an error may have it after all
    STATES = [(s, s) for s in ("signed", "refused", "sent", "mined", "confirmed", "replaced", "dropped")]
    OPEN_STATES = ("signed", "refused", "sent", "mined")  # followed until final
    KINDS = [("trade", "trade"), ("cancel", "cancel")]
    created_at = models.DateTimeField()
    chain_id = models.PositiveBigIntegerField()
    block_number = models.PositiveBigIntegerField(help_text="the execution's: its opportunity's block")
    path_id = models.CharField(max_length=64)
    sender = AddressField()
    nonce = models.PositiveBigIntegerField()
    tx_hash = models.CharField(max_length=66, unique=True)
    raw_tx = models.TextField(help_text="the signed bytes: a retry re-broadcasts exactly these")
    kind = models.CharField(max_length=6, choices=KINDS, default="trade")
    state = models.CharField(max_length=9, choices=STATES, default="signed")
    route = models.CharField(max_length=16, default="public")
    gas_limit = models.PositiveBigIntegerField()
    max_fee_per_gas = models.DecimalField(**UINT256, help_text="legacy: the gas price")
    max_priority_fee_per_gas = models.DecimalField(**UINT256, null=True, blank=True)
    worst_gas_wei = models.DecimalField(**UINT256, help_text="gas limit x max fee: reserved in the loss limit")
    target_block = models.PositiveBigIntegerField(null=True, blank=True)
    sent_block = models.PositiveBigIntegerField(null=True, blank=True, help_text="the head when it was sent")
    mined_block = models.PositiveBigIntegerField(null=True, blank=True)
    mined_block_hash = models.CharField(max_length=66, blank=True, default="")
    submission = models.JSONField(default=dict, blank=True, help_text="private route: the relay submission state")
    simulated_profit = models.DecimalField(max_digits=79, decimal_places=0, default=0)
    pools = models.JSONField(default=list, blank=True, help_text="the cycle's pools: cooled down if it reverts")
    error = models.CharField(max_length=300, blank=True, default="", help_text="refused: the node's answer to the send")

    class Meta:
        indexes = [
            models.Index(fields=["state", "chain_id"]),
            models.Index(fields=["chain_id", "block_number", "path_id"]),
            models.Index(fields=["chain_id", "sender", "nonce"]),
        ]


class ModelVersion(models.Model):
    """A trained scorer (``arbbot.scoring.model``): its artefact, what it was trained on and
    how it did on its time-ordered holdout. At most one is the champion: the model the ml
    stage decides with (none: the rule). The artefact is loaded only from this row, and only
    when its bytes hash to ``artefact_sha256``."""

    created_at = models.DateTimeField(auto_now_add=True)
    name = models.CharField(max_length=64, help_text="e.g. hgb-20261204-1")
    kind = models.CharField(max_length=32, default="hgb-calibrated")
    features = models.JSONField(help_text="the feature names, in the model's column order")
    params = models.JSONField(default=dict, blank=True, help_text="hyper-parameters and seed")
    metrics = models.JSONField(default=dict, blank=True, help_text="holdout metrics: model and rule")
    train_blocks = models.JSONField(default=list, blank=True, help_text="[first, last] block trained on")
    holdout_blocks = models.JSONField(default=list, blank=True, help_text="[first, last] block of the holdout")
    n_train = models.PositiveIntegerField(default=0)
    n_holdout = models.PositiveIntegerField(default=0)
    data_sha256 = models.CharField(max_length=64, help_text="SHA-256 of the training and holdout data")
    artefact = models.BinaryField()
    artefact_sha256 = models.CharField(max_length=64)
    is_champion = models.BooleanField(default=False)
    promoted_at = models.DateTimeField(null=True, blank=True)
    decision = models.CharField(max_length=300, blank=True, default="", help_text="why it was or was not promoted")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["is_champion"], condition=models.Q(is_champion=True), name="one_champion_model"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name}{' (champion)' if self.is_champion else ''}"


class XChainSaga(models.Model):
    """A cross-chain trade or rebalance as a persisted state machine (``arbbot.crosschain.saga``
    owns the states). ``key`` is its idempotency key, also the bridge transfer's key."""

    KINDS = [("trade", "trade"), ("rebalance", "rebalance")]

    kind = models.CharField(max_length=16, choices=KINDS)
    key = models.CharField(max_length=128, unique=True)
    state = models.CharField(max_length=16, default="planned", db_index=True)
    wallet = AddressField()
    plan = models.JSONField(default=dict, blank=True)
    predicted_profit = models.DecimalField(default=Decimal(0), **UINT256)
    realised_profit = models.DecimalField(null=True, blank=True, **UINT256)
    alert = models.CharField(max_length=32, blank=True, default="", help_text="set when an operator must look")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind} saga {self.key} ({self.state})"


class XChainLeg(models.Model):
    """One transaction of a saga: signed and recorded (nonce, hash, raw bytes) before it is sent."""

    saga = models.ForeignKey(XChainSaga, on_delete=models.CASCADE, related_name="legs")
    index = models.PositiveSmallIntegerField()
    role = models.CharField(max_length=16)
    chain_id = models.PositiveBigIntegerField()
    token_in = AddressField(blank=True, help_text="empty for a cancel")
    token_out = AddressField(blank=True, help_text="empty for a cancel")
    amount_in = models.DecimalField(**UINT256)
    predicted_out = models.DecimalField(**UINT256)
    min_out = models.DecimalField(default=Decimal(0), **UINT256)
    pool = models.CharField(max_length=42, blank=True, default="")
    router = models.CharField(max_length=42, blank=True, default="")
    state = models.CharField(max_length=16, default="planned")
    nonce = models.PositiveBigIntegerField(null=True, blank=True)
    tx_hash = models.CharField(max_length=66, blank=True, default="")
    raw_tx = models.TextField(blank=True, default="")
    realised_out = models.DecimalField(null=True, blank=True, **UINT256)
    gas_used = models.PositiveBigIntegerField(default=0)
    gas_price_wei = models.DecimalField(default=Decimal(0), **UINT256)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["saga_id", "index"]
        constraints = [models.UniqueConstraint(fields=["saga", "index"], name="xchain_leg_once")]
        indexes = [models.Index(fields=["chain_id", "nonce"], name="xchain_leg_nonce")]


class XChainInventory(models.Model):
    """The cross-chain wallet's holdings of a token on a chain, as last read."""

    chain_id = models.PositiveBigIntegerField()
    symbol = models.CharField(max_length=32)
    token = AddressField()
    wallet = AddressField()
    balance = models.DecimalField(**UINT256)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["symbol", "chain_id"]
        constraints = [models.UniqueConstraint(fields=["chain_id", "symbol", "wallet"], name="xchain_inventory_once")]


class XChainPair(models.Model):
    """Two chains traded against each other through one bridge (``config apply``'s ``xchain``
    section; ``services.config_apply`` writes it, ``selectors.xchain_pairs`` reads it for the
    bridge queue). Only the ``devnet`` bridge kind sends; the others are quoted only."""

    BRIDGE_KINDS = [("devnet", "devnet"), ("across", "across"), ("stargate", "stargate"), ("cctp", "cctp")]

    name = models.CharField(max_length=32, unique=True)
    chain_a = models.ForeignKey(Chain, on_delete=models.PROTECT, related_name="+")
    chain_b = models.ForeignKey(Chain, on_delete=models.PROTECT, related_name="+")
    dex = models.CharField(max_length=64, help_text="a V2 DEX of this name on both chains")
    quote = models.CharField(max_length=32)
    base = models.CharField(max_length=32)
    slippage_bps = models.PositiveSmallIntegerField(default=0)
    stall_blocks = models.PositiveIntegerField(default=20)
    bridge_kind = models.CharField(max_length=16, choices=BRIDGE_KINDS)
    bridge_contracts = models.JSONField(default=dict, blank=True, help_text="chain id -> the bridge's contract")
    bridge_endpoint = models.CharField(max_length=200, blank=True, default="")
    bridge_fee_bps = models.PositiveSmallIntegerField(default=0)
    bridge_fixed_fee = models.JSONField(default=dict, blank=True, help_text="symbol -> base units (decimal string)")
    bridge_delay_blocks = models.PositiveIntegerField(default=2)
    bridge_delay_s = models.PositiveIntegerField(default=0)
    costs = models.JSONField(default=dict, blank=True, help_text="trades_per_rebalance, risk_bps_per_sqrt_block, "
                                                                  "min_profit (decimal string)")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"cross-chain pair {self.name}"


class XChainToken(models.Model):
    """One asset of a pair: its canonical token on one chain, its bridged representation on the other."""

    pair = models.ForeignKey(XChainPair, on_delete=models.CASCADE, related_name="tokens")
    symbol = models.CharField(max_length=32)
    canonical_chain_id = models.PositiveBigIntegerField()
    canonical_address = AddressField()
    bridged_chain_id = models.PositiveBigIntegerField()
    bridged_address = AddressField()

    class Meta:
        ordering = ["pair_id", "symbol"]
        constraints = [models.UniqueConstraint(fields=["pair", "symbol"], name="xchain_token_once")]


class XChainTarget(models.Model):
    """A chain's target share of a token's inventory and how far it may drift before a rebalance."""

    pair = models.ForeignKey(XChainPair, on_delete=models.CASCADE, related_name="targets")
    symbol = models.CharField(max_length=32)
    chain_id = models.PositiveBigIntegerField()
    target_bps = models.PositiveSmallIntegerField(validators=[MaxValueValidator(10_000)])
    tolerance_bps = models.PositiveSmallIntegerField(default=1_500, validators=[MaxValueValidator(10_000)])
    min_transfer = models.DecimalField(default=Decimal(1), **UINT256)

    class Meta:
        ordering = ["pair_id", "symbol", "chain_id"]
        constraints = [models.UniqueConstraint(fields=["pair", "symbol", "chain_id"], name="xchain_target_once")]
