"""The API's routes (``/api/...``) and its OpenAPI 3 schema with Swagger UI."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from webapp.core.api import views

urlpatterns = [
    path("chains/", views.ChainList.as_view(), name="api-chains"),
    path("chains/<int:chain_id>/", views.ChainDetail.as_view(), name="api-chain"),
    path("chains/<int:chain_id>/mode/", views.ChainMode.as_view(), name="api-chain-mode"),
    path("chains/<int:chain_id>/strategy/", views.ChainStrategy.as_view(), name="api-chain-strategy"),
    path("chains/<int:chain_id>/dexes/", views.ChainDexes.as_view(), name="api-chain-dexes"),
    path("chains/<int:chain_id>/tokens/", views.ChainTokens.as_view(), name="api-chain-tokens"),
    path("chains/<int:chain_id>/tokens/<str:address>/exclusion/", views.TokenExclusion.as_view(),
         name="api-token-exclusion"),
    path("chains/<int:chain_id>/pools/<str:address>/exclusion/", views.PoolExclusion.as_view(),
         name="api-pool-exclusion"),
    path("dexes/", views.DexList.as_view(), name="api-dexes"),
    path("tokens/", views.TokenList.as_view(), name="api-tokens"),
    path("pools/", views.PoolList.as_view(), name="api-pools"),
    path("opportunities/", views.OpportunityList.as_view(), name="api-opportunities"),
    path("executions/", views.ExecutionList.as_view(), name="api-executions"),
    path("xchain/inventory/", views.XChainInventoryList.as_view(), name="api-xchain-inventory"),
    path("xchain/sagas/", views.XChainSagaList.as_view(), name="api-xchain-sagas"),
    path("xchain/pnl/", views.XChainPnl.as_view(), name="api-xchain-pnl"),
    path("xchain/pairs/", views.XChainPairList.as_view(), name="api-xchain-pairs"),
    path("summary/", views.Summary.as_view(), name="api-summary"),
    path("killswitch/", views.KillSwitch.as_view(), name="api-killswitch"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
