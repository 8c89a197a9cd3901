"""Thin API views: decode the body, call a selector or the service the command line calls,
answer. Writes need ``operate_fleet`` (kill switch, mode, strategy and risk limits) or
``configure_fleet`` (chains, DEXes, tokens, exclusions); see ``webapp.core.roles``."""

from __future__ import annotations

import logging
from typing import Any

import redis
from django.core.exceptions import ValidationError
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.core import roles, selectors, services
from webapp.core.api import filters, serializers as s
from webapp.core.models import Chain, Dex, Execution, Opportunity, Pool, Token, XChainInventory, XChainSaga

log = logging.getLogger(__name__)

CHAIN_ID = OpenApiParameter("chain_id", int, OpenApiParameter.PATH, description="the chain's id")
ADDRESS = OpenApiParameter("address", str, OpenApiParameter.PATH, description="0x and 40 hex digits")


# --------------------------------------------------------------------------- reads


class ChainList(generics.ListAPIView):
    """Configured chains with their mode and strategy in force (URLs: scheme and host only)."""

    queryset = Chain.objects.all()
    serializer_class = s.ChainSerializer
    filterset_class = filters.ChainFilter
    write_permission = roles.CONFIGURE

    @extend_schema(request=s.ChainCreate, responses={200: s.ChainSerializer}, summary="Create or update a chain")
    def post(self, request: Request) -> Response:
        body = _valid(s.ChainCreate, request)
        return _chain_write(body.pop("chain_id"), body, request)


class ChainDetail(APIView):
    write_permission = roles.CONFIGURE

    @extend_schema(parameters=[CHAIN_ID], responses={200: s.ChainSerializer}, summary="One chain")
    def get(self, request: Request, chain_id: int) -> Response:
        return Response(s.ChainSerializer(selectors.chain_get(chain_id)).data)

    @extend_schema(parameters=[CHAIN_ID], request=s.ChainWrite, responses={200: s.ChainSerializer},
                   summary="Change a chain's configuration (fields left out keep their value)")
    def patch(self, request: Request, chain_id: int) -> Response:
        selectors.chain_get(chain_id)  # 404 for an unknown chain
        return _chain_write(chain_id, _valid(s.ChainWrite, request), request)


class DexList(generics.ListAPIView):
    queryset = Dex.objects.select_related("chain")
    serializer_class = s.DexSerializer
    filterset_class = filters.DexFilter


class TokenList(generics.ListAPIView):
    queryset = Token.objects.select_related("chain")
    serializer_class = s.TokenSerializer
    filterset_class = filters.TokenFilter


class PoolList(generics.ListAPIView):
    queryset = Pool.objects.select_related("chain", "dex", "token0", "token1")
    serializer_class = s.PoolSerializer
    filterset_class = filters.PoolFilter


class OpportunityList(generics.ListAPIView):
    queryset = Opportunity.objects.all()
    serializer_class = s.OpportunitySerializer
    filterset_class = filters.OpportunityFilter


class ExecutionList(generics.ListAPIView):
    queryset = Execution.objects.all()
    serializer_class = s.ExecutionSerializer
    filterset_class = filters.ExecutionFilter


SUMMARY_WINDOW = OpenApiParameter(
    "window", str, OpenApiParameter.QUERY, enum=list(selectors.WINDOWS), default="24h",
    description="the time window the totals, profit and latencies cover (never the whole table)",
)


class Summary(APIView):
    @extend_schema(parameters=[SUMMARY_WINDOW], responses={200: s.SummarySerializer, 400: s.ErrorSerializer},
                   summary="Totals, profit per token, latency percentiles over a time window")
    def get(self, request: Request) -> Response:
        window = request.query_params.get("window", "24h")
        if window not in selectors.WINDOWS:
            return Response({"detail": f"window: {window!r} is not one of {', '.join(selectors.WINDOWS)}"},
                            status=status.HTTP_400_BAD_REQUEST)
        summary = selectors.dashboard_summary(limit=0, since=timezone.now() - selectors.WINDOWS[window])
        return Response(s.SummarySerializer({**summary, "window": window}).data)


# --------------------------------------------------------------------------- operator writes


class KillSwitch(APIView):
    """The fleet's kill switch: on, every execution is dropped before anything is sent
    (a Redis that cannot be read counts as on)."""

    write_permission = roles.OPERATE

    @extend_schema(responses={200: s.KillSwitchSerializer, 503: s.ErrorSerializer}, summary="Kill switch state")
    def get(self, request: Request) -> Response:
        return self._answer()

    @extend_schema(request=s.KillSwitchSerializer, responses={200: s.KillSwitchSerializer, 503: s.ErrorSerializer},
                   summary="Engage or release the kill switch")
    def put(self, request: Request) -> Response:
        engaged = _valid(s.KillSwitchSerializer, request)["engaged"]
        try:
            services.fleet_hotstate().set_kill_switch(engaged)
        except redis.RedisError as exc:
            return _redis_down(exc)
        log.warning("kill switch %s by %s (API)", "engaged" if engaged else "released", request.user)
        return self._answer()

    def _answer(self) -> Response:
        try:
            return Response({"engaged": services.fleet_hotstate().kill_switch_engaged()})
        except redis.RedisError as exc:
            return _redis_down(exc)


class ChainMode(APIView):
    write_permission = roles.OPERATE

    @extend_schema(parameters=[CHAIN_ID], request=s.ModeWrite, responses={200: s.ChainSerializer},
                   summary="Set how a chain trades (live needs confirm_live and an executor)")
    def put(self, request: Request, chain_id: int) -> Response:
        body = _valid(s.ModeWrite, request)
        selectors.chain_get(chain_id)
        if body["mode"] == "live" and not body["confirm_live"]:
            raise ValidationError(
                "confirm_live: live signs and sends real transactions with real money; send confirm_live: true"
            )
        chain = services.chain_mode_set(chain_id, body["mode"], confirm_live=body["confirm_live"])
        log.warning("chain %s: mode %s by %s (API)", chain_id, body["mode"], request.user)
        return Response(s.ChainSerializer(chain).data)


class ChainStrategy(APIView):
    write_permission = roles.OPERATE

    @extend_schema(parameters=[CHAIN_ID], responses={200: s.StrategySerializer}, summary="The strategy in force")
    def get(self, request: Request, chain_id: int) -> Response:
        selectors.chain_get(chain_id)
        return Response(s.strategy_view(chain_id))

    @extend_schema(parameters=[CHAIN_ID], request=s.StrategyWrite, responses={200: s.StrategySerializer},
                   summary="Put a strategy and its risk limits in force (a new version; workers see it next block)")
    def put(self, request: Request, chain_id: int) -> Response:
        body = _valid(s.StrategyWrite, request)
        chain = selectors.chain_get(chain_id)
        _apply({"chains": [{"chain_id": chain_id, "name": chain.name, "strategy": body}]}, chain_id, request)
        log.warning("chain %s: strategy set by %s (API)", chain_id, request.user)
        return Response(s.strategy_view(chain_id))


# --------------------------------------------------------------------------- admin writes


class ChainDexes(APIView):
    write_permission = roles.CONFIGURE

    @extend_schema(parameters=[CHAIN_ID], request=s.DexWrite, responses={200: s.DexSerializer},
                   summary="Add or change a DEX of the chain (by name)")
    def post(self, request: Request, chain_id: int) -> Response:
        body = _valid(s.DexWrite, request)
        selectors.chain_get(chain_id)
        _apply({"dexes": [{"chain_id": chain_id, **body}]}, chain_id, request)
        dex = Dex.objects.select_related("chain").get(chain__chain_id=chain_id, name=body["name"].strip())
        return Response(s.DexSerializer(dex).data)


class ChainTokens(APIView):
    write_permission = roles.CONFIGURE

    @extend_schema(parameters=[CHAIN_ID], request=s.TokenWrite, responses={200: s.TokenSerializer},
                   summary="Register a token of the chain")
    def post(self, request: Request, chain_id: int) -> Response:
        body = _valid(s.TokenWrite, request)
        selectors.chain_get(chain_id)
        _apply({"tokens": [{"chain_id": chain_id, **body}]}, chain_id, request)
        token = Token.objects.select_related("chain").get(chain__chain_id=chain_id, address=body["address"].lower())
        return Response(s.TokenSerializer(token).data)


class TokenExclusion(APIView):
    write_permission = roles.CONFIGURE

    @extend_schema(parameters=[CHAIN_ID, ADDRESS], request=s.ExclusionWrite, responses={200: s.TokenSerializer},
                   summary="Exclude a token from trading, or include it again (empty reason)")
    def put(self, request: Request, chain_id: int, address: str) -> Response:
        reason = _valid(s.ExclusionWrite, request)["reason"]
        selectors.chain_get(chain_id)
        if reason.strip():
            services.token_exclude(chain_id, address, reason)
        else:
            services.token_include(chain_id, address)
        token = Token.objects.select_related("chain").get(chain__chain_id=chain_id, address=address.lower())
        return Response(s.TokenSerializer(token).data)


class PoolExclusion(APIView):
    write_permission = roles.CONFIGURE

    @extend_schema(parameters=[CHAIN_ID, ADDRESS], request=s.ExclusionWrite, responses={200: s.PoolSerializer},
                   summary="Exclude a pool from trading, or include it again (empty reason)")
    def put(self, request: Request, chain_id: int, address: str) -> Response:
        reason = _valid(s.ExclusionWrite, request)["reason"]
        pool = (services.pool_exclude(chain_id, address, reason) if reason.strip()
                else services.pool_include(chain_id, address))
        return Response(s.PoolSerializer(pool).data)


# --------------------------------------------------------------------------- helpers


def _valid(serializer: type[Any], request: Request) -> dict[str, Any]:
    ser = serializer(data=request.data)
    ser.is_valid(raise_exception=True)
    return dict(ser.validated_data)


def _chain_write(chain_id: int, body: dict[str, Any], request: Request) -> Response:
    """A chain entry of the configuration file, applied by ``services.config_apply`` (the
    rules of ``arbbot config apply``; on-chain checks unless ``check_onchain`` is false)."""
    onchain = body.pop("check_onchain")
    current = Chain.objects.filter(chain_id=chain_id).first()
    if "name" not in body and current is not None:
        body["name"] = current.name  # a file's chain entry without a name would rename it
    _apply({"chains": [{"chain_id": chain_id, **body}]}, chain_id, request, onchain=onchain)
    log.warning("chain %s: configuration changed by %s (API)", chain_id, request.user)
    return Response(s.ChainSerializer(selectors.chain_get(chain_id)).data, status=status.HTTP_200_OK)


def _apply(config: dict[str, Any], chain_id: int, request: Request, *, onchain: bool = False) -> None:
    """``services.config_apply`` of a one-entry configuration; its errors name the entry as
    the file's (``chains[0] (name).strategy: max_hops: ...``), here as the API's
    (``chain 5 (name).strategy: max_hops: ...``)."""
    try:
        services.config_apply(config, source=f"API by {request.user}", onchain=onchain)
    except ValidationError as exc:
        message = " ".join(exc.messages)
        for entry, named in (("chains[0]", f"chain {chain_id}"), ("dexes[0]", "dex"), ("tokens[0]", "token"),
                             ("pass --offline", "send check_onchain: false")):
            message = message.replace(entry, named)
        raise ValidationError(message) from None


def _redis_down(exc: Exception) -> Response:
    return Response(
        {"detail": f"Redis unreachable ({type(exc).__name__}): the kill switch counts as engaged"},
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
    )



# --------------------------------------------------------------------------- cross-chain


class XChainInventoryList(generics.ListAPIView):
    """The cross-chain wallet's holdings per chain and token, as the bridge queue last read them."""

    queryset = XChainInventory.objects.all()
    serializer_class = s.XChainInventorySerializer
    filterset_class = filters.XChainInventoryFilter


class XChainSagaList(generics.ListAPIView):
    """Cross-chain trades and rebalances with their legs (``?open=true``: in flight)."""

    queryset = XChainSaga.objects.prefetch_related("legs")
    serializer_class = s.XChainSagaSerializer
    filterset_class = filters.XChainSagaFilter


class XChainPnl(APIView):
    @extend_schema(responses={200: s.XChainPnlSerializer}, summary="Cross-chain PnL per token, sagas by state, alerts")
    def get(self, request: Request) -> Response:
        return Response(s.XChainPnlSerializer(selectors.xchain_pnl()).data)


class XChainPairList(APIView):
    @extend_schema(responses={200: s.XChainPairSerializer(many=True)},
                   summary="The cross-chain pairs in force (config apply's xchain section)")
    def get(self, request: Request) -> Response:
        return Response(s.XChainPairSerializer(selectors.xchain_config(), many=True).data)
