"""Admin for every model. Validation lives in the models' validators (addresses, RPC URLs)."""

from django.contrib import admin

from webapp.core.models import Chain, Dex, Execution, Opportunity, Pool, Token


@admin.register(Chain)
class ChainAdmin(admin.ModelAdmin):
    list_display = ("chain_id", "name", "is_active", "is_devnet", "executor")
    search_fields = ("name", "chain_id")
    readonly_fields = ("genesis_hash",)


@admin.register(Dex)
class DexAdmin(admin.ModelAdmin):
    list_display = ("name", "chain", "kind", "factory", "router", "fee_pips")
    list_filter = ("kind", "chain")


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    list_display = ("symbol", "address", "decimals", "chain", "excluded_reason")
    search_fields = ("symbol", "address")


@admin.register(Pool)
class PoolAdmin(admin.ModelAdmin):
    list_display = ("address", "dex", "kind", "token0", "token1", "fee_pips", "excluded_reason")
    list_filter = ("kind", "dex")
    search_fields = ("address",)
    raw_id_fields = ("token0", "token1")


@admin.register(Opportunity)
class OpportunityAdmin(admin.ModelAdmin):
    list_display = ("created_at", "chain_id", "block_number", "path_id", "net_profit", "score", "decision")
    list_filter = ("decision", "chain_id")
    date_hierarchy = "created_at"


@admin.register(Execution)
class ExecutionAdmin(admin.ModelAdmin):
    list_display = ("created_at", "chain_id", "block_number", "status", "tx_hash", "gas_used", "realised_profit")
    list_filter = ("status", "chain_id")
    search_fields = ("tx_hash", "path_id")
