"""The lists' query filters (django-filter): chain, DEX, token, status, time range. A bad
value is a 400 naming the parameter."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.db.models import Q, QuerySet
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField

from webapp.core.models import Chain, Dex, Execution, Opportunity, Pool, Token

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


def _address(queryset: QuerySet, fields: tuple[str, ...], value: str) -> QuerySet:
    q = Q()
    for f in fields:
        q |= Q(**{f: value.lower()})
    return queryset.filter(q)


class TimeRange(filters.FilterSet):
    since = TimeFilter(field_name="created_at", lookup_expr="gte", label="created at or after (ISO 8601)")
    until = TimeFilter(field_name="created_at", lookup_expr="lt", label="created before (ISO 8601)")
    block_min = IdFilter(field_name="block_number", lookup_expr="gte", label="block number at least")
    block_max = IdFilter(field_name="block_number", lookup_expr="lte", label="block number at most")


class OpportunityFilter(TimeRange):
    chain = IdFilter(field_name="chain_id", label="chain id")
    decision = filters.CharFilter(label="the ml stage's decision (execute, skip)")
    token = filters.CharFilter(method="by_token", label="profit token address")

    class Meta:
        model = Opportunity
        fields: list[str] = []

    def by_token(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return _address(queryset, ("profit_token",), value)


class ExecutionFilter(TimeRange):
    chain = IdFilter(field_name="chain_id", label="chain id")
    status = filters.MultipleChoiceFilter(choices=Execution.STATUSES, label="status (repeat for several)")
    mode = filters.ChoiceFilter(choices=[("dry-run", "dry-run"), ("paper", "paper"), ("live", "live")])
    token = filters.CharFilter(method="by_token", label="profit token address")

    class Meta:
        model = Execution
        fields: list[str] = []

    def by_token(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return _address(queryset, ("profit_token",), value)


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
    excluded = filters.BooleanFilter(method="by_excluded", label="true: only excluded; false: only traded")

    class Meta:
        model = Token
        fields: list[str] = []

    def by_excluded(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        return queryset.exclude(excluded_reason="") if value else queryset.filter(excluded_reason="")


class PoolFilter(filters.FilterSet):
    chain = IdFilter(field_name="chain__chain_id", label="chain id")
    dex = filters.CharFilter(field_name="dex__name", label="DEX name")
    kind = filters.ChoiceFilter(choices=Dex.KINDS)
    token = filters.CharFilter(method="by_token", label="either token's address")
    excluded = filters.BooleanFilter(method="by_excluded", label="true: only excluded; false: only traded")

    class Meta:
        model = Pool
        fields: list[str] = []

    def by_token(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return _address(queryset, ("token0__address", "token1__address"), value)

    def by_excluded(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        return queryset.exclude(excluded_reason="") if value else queryset.filter(excluded_reason="")
