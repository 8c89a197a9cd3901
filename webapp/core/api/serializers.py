"""The API's wire shapes. Reads: rows as JSON, uint256 amounts as decimal strings, URLs cut
to scheme and host (RPC URLs often carry API keys). Writes: the body's shape only (types,
uint256 as decimal strings); the rules (ranges, addresses, live needs a yes, a devnet keeps
its identity) are the configuration schema's and the services', which name the entry and
field of any error."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from arbbot.scoring.rule import MAX_SENDS_PER_BLOCK_LIMIT

from webapp.core import config_schema, selectors
from webapp.core.models import (
    Chain, Dex, Execution, Opportunity, Pool, Token, XChainInventory, XChainLeg, XChainSaga,
)
from webapp.core.validators import redact_url, url_list


class Uint(serializers.DecimalField):
    """A uint256 (or a signed 257-bit profit) as a decimal string."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(max_digits=79, decimal_places=0, coerce_to_string=True, **kw)


class UintText(serializers.CharField):
    """A uint256 in a request body: a decimal string (the range is checked by the service)."""

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("validators", [RegexValidator(r"^[0-9]{1,78}$", "a whole number of base units as a decimal string")])
        super().__init__(max_length=78, **kw)


Address = serializers.CharField  # checked by the configuration schema (0x and 40 hex digits), which names it


# --------------------------------------------------------------------------- reads


class StrategySerializer(serializers.Serializer):
    """The strategy in force on a chain (version 0: the defaults, nothing set yet)."""

    version = serializers.IntegerField()
    start_tokens = serializers.ListField(child=serializers.CharField())
    max_hops = serializers.IntegerField()
    min_profit_wei = serializers.CharField()
    margin = serializers.CharField()
    max_amount_in = serializers.DictField(child=serializers.CharField())
    max_fee_per_gas_wei = serializers.CharField(allow_null=True)
    max_sends_per_block = serializers.IntegerField()


def strategy_view(chain_id: int) -> dict[str, Any]:
    return selectors.strategy_as_dict(selectors.strategy_for(chain_id))


class ChainSerializer(serializers.ModelSerializer):
    rpc_urls = serializers.SerializerMethodField()
    ws_urls = serializers.SerializerMethodField()
    relay_urls = serializers.SerializerMethodField()
    mode = serializers.SerializerMethodField(help_text="how the chain trades now (its own, or the fleet's)")
    mode_from = serializers.SerializerMethodField(help_text="chain: set on the chain; fleet: ARBBOT_MODE")
    strategy = serializers.SerializerMethodField()

    class Meta:
        model = Chain
        fields = (
            "chain_id", "name", "is_active", "is_devnet", "mode", "mode_from", "rpc_urls", "ws_urls", "multicall3",
            "weth", "executor", "confirmations", "replace_after_blocks", "max_replacements", "submission_route",
            "relay_urls", "public_fallback", "explorer_url", "strategy",
        )

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_rpc_urls(self, chain: Chain) -> list[str]:
        return [redact_url(u) for u in chain.rpc_url_list()]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_ws_urls(self, chain: Chain) -> list[str]:
        return [redact_url(u) for u in chain.ws_url_list()]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_relay_urls(self, chain: Chain) -> list[str]:
        return [redact_url(u) for u in url_list(chain.relay_urls)]

    @extend_schema_field(serializers.ChoiceField(choices=config_schema.MODES))
    def get_mode(self, chain: Chain) -> str:
        from django.conf import settings

        return chain.mode_in_force(settings.ARBBOT.mode)

    @extend_schema_field(serializers.ChoiceField(choices=("chain", "fleet")))
    def get_mode_from(self, chain: Chain) -> str:
        return chain.mode_from()

    @extend_schema_field(StrategySerializer)
    def get_strategy(self, chain: Chain) -> dict[str, Any]:
        return strategy_view(chain.chain_id)


class DexSerializer(serializers.ModelSerializer):
    chain_id = serializers.IntegerField(source="chain.chain_id")

    class Meta:
        model = Dex
        fields = ("id", "chain_id", "name", "kind", "factory", "init_code_hash", "fee_pips", "start_block", "router",
                  "quoter")


class TokenSerializer(serializers.ModelSerializer):
    chain_id = serializers.IntegerField(source="chain.chain_id")

    class Meta:
        model = Token
        fields = ("id", "chain_id", "address", "symbol", "decimals", "excluded_reason")


class PoolSerializer(serializers.ModelSerializer):
    chain_id = serializers.IntegerField(source="chain.chain_id")
    dex = serializers.CharField(source="dex.name")
    token0 = serializers.CharField(source="token0.address")
    token1 = serializers.CharField(source="token1.address")

    class Meta:
        model = Pool
        fields = ("id", "chain_id", "dex", "address", "kind", "token0", "token1", "fee_pips", "tick_spacing",
                  "excluded_reason")


class OpportunitySerializer(serializers.ModelSerializer):
    amount_in = Uint()
    amount_out = Uint()
    gas_cost = Uint()
    net_profit = Uint()
    profit_native = Uint(allow_null=True)
    net_profit_native = Uint(allow_null=True)
    pools = serializers.ListField(child=serializers.CharField())
    tokens = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = Opportunity
        fields = "__all__"


class ExecutionSerializer(serializers.ModelSerializer):
    amount_in = Uint()
    gas_price_wei = Uint()
    predicted_profit = Uint()
    final_amount_in = Uint()
    final_predicted_profit = Uint()
    realised_profit = Uint()
    profit_native = Uint(allow_null=True)
    realised_profit_native = Uint(allow_null=True)

    class Meta:
        model = Execution
        fields = "__all__"


class ProfitSerializer(serializers.Serializer):
    chain_id = serializers.IntegerField()
    token = serializers.CharField(help_text="the token's symbol (its address if unknown)")
    address = serializers.CharField()
    executions = serializers.IntegerField()
    total_base_units = serializers.CharField(help_text="a signed 257-bit integer as a decimal string")
    total = serializers.CharField(help_text="the total in whole tokens, for display")


class PercentilesSerializer(serializers.Serializer):
    n = serializers.IntegerField()
    p50 = serializers.FloatField(allow_null=True)
    p95 = serializers.FloatField(allow_null=True)
    p99 = serializers.FloatField(allow_null=True)


class LatencySerializer(serializers.Serializer):
    block_to_decision_ms = PercentilesSerializer()
    block_to_recorded_ms = PercentilesSerializer()


class SummarySerializer(serializers.Serializer):
    window = serializers.CharField(help_text="the time window every figure covers (5m, 1h, 24h or 7d)")
    opportunities_total = serializers.IntegerField(help_text="opportunities recorded in the window")
    opportunities_per_second = serializers.FloatField()
    executions_by_status = serializers.DictField(child=serializers.IntegerField())
    profit_by_token = ProfitSerializer(many=True)
    paper_profit_by_token = ProfitSerializer(many=True)
    latency = LatencySerializer()


class KillSwitchSerializer(serializers.Serializer):
    engaged = serializers.BooleanField(help_text="true: no transaction is sent by any worker")


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="what was wrong, naming the field or entry")


# --------------------------------------------------------------------------- writes


class ModeWrite(serializers.Serializer):
    mode = serializers.ChoiceField(choices=config_schema.MODES)
    confirm_live = serializers.BooleanField(
        default=False, help_text="required true to set live: real transactions with real money",
    )


class StrategyWrite(serializers.Serializer):
    """A chain's strategy and risk limits, taken whole (a field left out takes its default)."""

    start_tokens = serializers.ListField(child=Address(), required=False, help_text="empty: the chain's WETH")
    max_hops = serializers.IntegerField(required=False, help_text="2 to 4")
    min_profit_wei = UintText(required=False)
    margin = serializers.CharField(required=False, max_length=32, help_text="gross profit > gas x margin (>= 1)")
    max_amount_in = serializers.DictField(child=UintText(), required=False, help_text="token address -> base units")
    max_fee_per_gas_wei = UintText(required=False, allow_null=True)
    max_sends_per_block = serializers.IntegerField(
        required=False, help_text=f"1 to {MAX_SENDS_PER_BLOCK_LIMIT}: at most this many of a block's opportunities "
                                  "go to execute, the best first",
    )


class ChainWrite(serializers.Serializer):
    """A chain's configuration (the fields of a configuration file's chain entry): a field
    left out keeps its value. Its DEXes, tokens, mode and strategy have their own endpoints."""

    name = serializers.CharField(required=False, max_length=64)
    rpc_urls = serializers.ListField(child=serializers.CharField(), required=False, help_text="http(s), in order")
    ws_urls = serializers.ListField(child=serializers.CharField(), required=False)
    relay_urls = serializers.ListField(child=serializers.CharField(), required=False)
    multicall3 = Address(required=False, allow_blank=True)
    weth = Address(required=False, allow_blank=True)
    executor = Address(required=False, allow_blank=True)
    executor_owner = Address(required=False, allow_blank=True, help_text="checked on-chain, not stored")
    is_active = serializers.BooleanField(required=False)
    confirmations = serializers.IntegerField(required=False)
    replace_after_blocks = serializers.IntegerField(required=False)
    max_replacements = serializers.IntegerField(required=False)
    submission_route = serializers.ChoiceField(choices=Chain.ROUTES, required=False)
    public_fallback = serializers.BooleanField(required=False)
    explorer_url = serializers.CharField(required=False, allow_blank=True, max_length=200)
    check_onchain = serializers.BooleanField(
        default=True, help_text="check Multicall3, the DEXes and the executor on the chain's RPC first",
    )


class ChainCreate(ChainWrite):
    chain_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class DexWrite(serializers.Serializer):
    """A DEX of the chain, created or updated by name."""

    name = serializers.CharField(max_length=64)
    kind = serializers.ChoiceField(choices=Dex.KINDS, default="v2")
    factory = Address()
    init_code_hash = serializers.CharField(required=False, allow_blank=True)
    fee_pips = serializers.IntegerField(required=False)
    start_block = serializers.IntegerField(required=False)
    router = Address(required=False, allow_blank=True)
    quoter = Address(required=False, allow_blank=True)


class TokenWrite(serializers.Serializer):
    address = Address()
    symbol = serializers.CharField(required=False, allow_blank=True, max_length=64)
    decimals = serializers.IntegerField(required=False, allow_null=True)


class ExclusionWrite(serializers.Serializer):
    reason = serializers.CharField(
        allow_blank=True, max_length=200, help_text="why it is not traded; empty: traded again from the next block",
    )


# --------------------------------------------------------------------------- cross-chain


class XChainLegSerializer(serializers.ModelSerializer):
    amount_in = Uint()
    predicted_out = Uint()
    min_out = Uint()
    realised_out = Uint(allow_null=True)
    gas_price_wei = Uint()

    class Meta:
        model = XChainLeg
        exclude = ["saga", "raw_tx"]  # the signed bytes stay in the journal


class XChainSagaSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(help_text="trade or rebalance")
    state = serializers.CharField(help_text="final: done, failed, compensated, held")
    predicted_profit = Uint()
    realised_profit = Uint(allow_null=True)
    legs = XChainLegSerializer(many=True, read_only=True)

    class Meta:
        model = XChainSaga
        fields = "__all__"


class XChainInventorySerializer(serializers.ModelSerializer):
    balance = Uint()

    class Meta:
        model = XChainInventory
        fields = "__all__"


class XChainPnlRowSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="the token's symbol")
    trades = serializers.IntegerField(help_text="trade sagas finished (done, compensated, held, failed)")
    trade_profit = serializers.CharField(help_text="realised, base units, signed decimal string")
    rebalances = serializers.IntegerField()
    rebalance_cost = serializers.CharField(help_text="bridge fees paid, base units")
    net = serializers.CharField(help_text="trade_profit - rebalance_cost, base units")


class XChainPnlSerializer(serializers.Serializer):
    by_token = XChainPnlRowSerializer(many=True)
    sagas_by_state = serializers.DictField(child=serializers.IntegerField())
    open = serializers.IntegerField(help_text="sagas not in a final state")
    alerts = serializers.DictField(child=serializers.IntegerField(), help_text="sagas by alert")


class XChainSideSerializer(serializers.Serializer):
    chain_id = serializers.IntegerField()
    address = serializers.CharField()


class XChainTokenSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    canonical = XChainSideSerializer(help_text="the token on its home chain")
    bridged = XChainSideSerializer(help_text="its representation on the other chain")


class XChainTargetSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    chain_id = serializers.IntegerField()
    target_bps = serializers.IntegerField(help_text="the chain's target share of the token's inventory")
    tolerance_bps = serializers.IntegerField(help_text="how far the share may drift before a rebalance")
    min_transfer = serializers.CharField(help_text="base units, decimal string")


class XChainBridgeSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="devnet, across, stargate or cctp")
    sends = serializers.BooleanField(help_text="false: quote-only in this version (rebalances are refused)")
    contracts = serializers.DictField(child=serializers.CharField(), help_text="chain id -> contract")
    endpoint = serializers.CharField(help_text="scheme and host only")
    fee_bps = serializers.IntegerField()
    fixed_fee = serializers.DictField(child=serializers.CharField(), help_text="symbol -> base units per transfer")
    delay_blocks = serializers.IntegerField()
    delay_s = serializers.IntegerField()


class XChainPairSerializer(serializers.Serializer):
    """A cross-chain pair as ``config apply`` recorded it (``config show``'s shape)."""

    name = serializers.CharField()
    chains = serializers.ListField(child=serializers.IntegerField(), help_text="the two chain ids")
    dex = serializers.CharField()
    quote = serializers.CharField()
    base = serializers.CharField()
    slippage_bps = serializers.IntegerField()
    stall_blocks = serializers.IntegerField()
    bridge = XChainBridgeSerializer()
    tokens = XChainTokenSerializer(many=True)
    inventory = XChainTargetSerializer(many=True)
    costs = serializers.DictField(child=serializers.CharField())
