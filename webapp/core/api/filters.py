"""The lists' query filters (django-filter): chain, DEX, token, status, time range. A bad
value is a 400 naming the parameter."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.db.models import Q, QuerySet
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField

from webapp.core.models import (
    Chain, Dex, Execution, Opportunity, Pool, Token, XChainInventory, XChainSaga,
)

ID_MAX = 2**63 - 1


class IdFilter(filters.NumberFilter):
    """A whole number within PostgreSQL's bigint (chain ids, block numbers)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", ID_MAX)
        super().__init__(*args, **kwargs)


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 time turned into UTC here: PostgreSQL refuses offsets beyond ±15:59."""

    def clean(self, value: Any) -> Any:
        parsed = super().clean(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(dt.timezone.utc)
        except (OverflowError, ValueError):
            raise forms.ValidationError(f"{value!r} is out of range") from None


class TimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class AddressFilter(filters.CharFilter):
    """An address, matched lower-case against any of ``fields`` (a pool's token0 or token1)."""

    def __init__(self, *fields: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fields = fields

    def filter(self, queryset: QuerySet, value: str) -> QuerySet:
        if not value:
            return queryset
        q = Q()
        for f in self.fields:
            q |= Q(**{f: value.lower()})
        return queryset.filter(q)


class ExcludedFilter(filters.BooleanFilter):
    """true: only rows with an exclusion reason; false: only rows traded."""

    def filter(self, queryset: QuerySet, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        return queryset.exclude(excluded_reason="") if value else queryset.filter(excluded_reason="")


class History(filters.FilterSet):
    """Opportunities and executions: chain, profit token, time and block range."""

    chain = IdFilter(field_name="chain_id", label="chain id")
    token = AddressFilter("profit_token", label="profit token address")
    since = TimeFilter(field_name="created_at", lookup_expr="gte", label="created at or after (ISO 8601)")
    until = TimeFilter(field_name="created_at", lookup_expr="lt", label="created before (ISO 8601)")
    block_min = IdFilter(field_name="block_number", lookup_expr="gte", label="block number at least")
    block_max = IdFilter(field_name="block_number", lookup_expr="lte", label="block number at most")


class OpportunityFilter(History):
    decision = filters.CharFilter(label="the ml stage's decision (execute, skip)")

    class Meta:
        model = Opportunity
        fields: list[str] = []


class ExecutionFilter(History):
    status = filters.MultipleChoiceFilter(choices=Execution.STATUSES, label="status (repeat for several)")
    mode = filters.ChoiceFilter(choices=[("dry-run", "dry-run"), ("paper", "paper"), ("live", "live")])

    class Meta:
        model = Execution
        fields: list[str] = []


class ChainFilter(filters.FilterSet):
    is_active = filters.BooleanFilter()

    class Meta:
        model = Chain
        fields: list[str] = []


class DexFilter(filters.FilterSet):
    chain = IdFilter(field_name="chain__chain_id", label="chain id")
    kind = filters.ChoiceFilter(choices=Dex.KINDS)

    class Meta:
        model = Dex
        fields: list[str] = []


class TokenFilter(filters.FilterSet):
    chain = IdFilter(field_name="chain__chain_id", label="chain id")
    excluded = ExcludedFilter(label="true: only excluded; false: only traded")

    class Meta:
        model = Token
        fields: list[str] = []


class PoolFilter(filters.FilterSet):
    chain = IdFilter(field_name="chain__chain_id", label="chain id")
    dex = filters.CharFilter(field_name="dex__name", label="DEX name")
    kind = filters.ChoiceFilter(choices=Dex.KINDS)
    token = AddressFilter("token0__address", "token1__address", label="either token's address")
    excluded = ExcludedFilter(label="true: only excluded; false: only traded")

    class Meta:
        model = Pool
        fields: list[str] = []


class XChainSagaFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=[("trade", "trade"), ("rebalance", "rebalance")])
    state = filters.MultipleChoiceFilter(
        choices=[(s, s) for s in ("planned", "signed", "sent", "in_flight", "compensating", "done", "failed",
                                  "compensated", "held")],
        label="state (repeat for several)")
    open = filters.BooleanFilter(method="_open", label="true: only sagas not in a final state")
    since = TimeFilter(field_name="created_at", lookup_expr="gte", label="created at or after (ISO 8601)")

    class Meta:
        model = XChainSaga
        fields: list[str] = []

    def _open(self, qs: QuerySet, name: str, value: bool | None) -> QuerySet:
        from arbbot.crosschain.saga import FINAL

        if value is None:
            return qs
        return qs.exclude(state__in=FINAL) if value else qs.filter(state__in=FINAL)


class XChainInventoryFilter(filters.FilterSet):
    chain = IdFilter(field_name="chain_id", label="chain id")
    symbol = filters.CharFilter(label="token symbol")

    class Meta:
        model = XChainInventory
        fields: list[str] = []
