"""Read-only REST API. uint256 values are decimal strings."""

from __future__ import annotations

from django.urls import path
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.core import selectors
from webapp.core.models import Execution, Opportunity


class Uint(serializers.DecimalField):
    def __init__(self, **kw):  # type: ignore[no-untyped-def]
        super().__init__(max_digits=79, decimal_places=0, coerce_to_string=True, **kw)


class OpportunitySerializer(serializers.ModelSerializer):
    amount_in = Uint()
    amount_out = Uint()
    gas_cost = Uint()
    net_profit = Uint()

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

    class Meta:
        model = Execution
        fields = "__all__"


class OpportunityList(generics.ListAPIView):
    queryset = Opportunity.objects.order_by("-created_at", "-id")
    serializer_class = OpportunitySerializer


class ExecutionList(generics.ListAPIView):
    queryset = Execution.objects.order_by("-created_at", "-id")
    serializer_class = ExecutionSerializer


class Summary(APIView):
    def get(self, request: Request) -> Response:
        s = selectors.dashboard_summary(limit=0)
        return Response(
            {
                "opportunities_total": s["opportunities_total"],
                "opportunities_per_second": s["opportunities_per_second"],
                "executions_by_status": s["executions_by_status"],
                "profit_by_token": s["profit_by_token"],
                "paper_profit_by_token": s["paper_profit_by_token"],
                "latency": s["latency"],
            }
        )


urlpatterns = [
    path("opportunities/", OpportunityList.as_view(), name="api-opportunities"),
    path("executions/", ExecutionList.as_view(), name="api-executions"),
    path("summary/", Summary.as_view(), name="api-summary"),
]
