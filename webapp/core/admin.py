"""Admin for every model. Validation lives in the models' validators (addresses, RPC URLs).

A token's or pool's ``excluded_reason`` is written through the exclusion services (editing
the field, or the exclude/include actions): the path stage reads it back on the next block,
so setting it stops trading through the token or pool and clearing it resumes it.
"""

from __future__ import annotations

from typing import Any, Callable

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from webapp.core import services
from webapp.core.models import Chain, Dex, Execution, ModelVersion, Opportunity, Pool, Token


@admin.register(Chain)
class ChainAdmin(admin.ModelAdmin):
    list_display = ("chain_id", "name", "is_active", "is_devnet", "executor")
    search_fields = ("name", "chain_id")
    readonly_fields = ("genesis_hash",)


@admin.register(Dex)
class DexAdmin(admin.ModelAdmin):
    list_display = ("name", "chain", "kind", "factory", "router", "fee_pips")
    list_filter = ("kind", "chain")


class ExclusionAdmin(admin.ModelAdmin):
    """Admin of a model with ``excluded_reason``, whose changes go through its services."""

    exclude_service: Callable[[int, str, str], Any]
    include_service: Callable[[int, str], Any]
    actions = ["exclude_selected", "include_selected"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        reason = obj.excluded_reason
        edited = "excluded_reason" in form.changed_data
        if edited:
            obj.excluded_reason = form.initial.get("excluded_reason", "")  # the service writes it
        super().save_model(request, obj, form, change)
        if edited:
            self._set(obj, reason)

    @admin.action(description="Exclude from trading (from the next block)")
    def exclude_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset.select_related("chain"):
            self._set(obj, f"excluded by {request.user} in the admin")
        messages.info(request, f"{queryset.count()} excluded")

    @admin.action(description="Include in trading again (from the next block)")
    def include_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset.select_related("chain"):
            self._set(obj, "")
        messages.info(request, f"{queryset.count()} included")

    def _set(self, obj: Any, reason: str) -> None:
        if reason.strip():
            self.exclude_service(obj.chain.chain_id, obj.address, reason)
        else:
            self.include_service(obj.chain.chain_id, obj.address)


@admin.register(Token)
class TokenAdmin(ExclusionAdmin):
    list_display = ("symbol", "address", "decimals", "chain", "excluded_reason")
    search_fields = ("symbol", "address")
    exclude_service = staticmethod(services.token_exclude)
    include_service = staticmethod(services.token_include)


@admin.register(Pool)
class PoolAdmin(ExclusionAdmin):
    list_display = ("address", "dex", "kind", "token0", "token1", "fee_pips", "excluded_reason")
    list_filter = ("kind", "dex")
    search_fields = ("address",)
    raw_id_fields = ("token0", "token1")
    exclude_service = staticmethod(services.pool_exclude)
    include_service = staticmethod(services.pool_include)


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


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    """Read only: versions are recorded by training and promoted by ``arbbot ml promote``
    (the champion/challenger test); the artefact is never shown or edited here."""

    list_display = ("id", "name", "is_champion", "created_at", "n_train", "n_holdout", "decision")
    exclude = ("artefact",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
