from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from webapp.core import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("console/series.json", views.series, name="console-series"),
    path("console/killswitch", views.kill_switch, name="console-killswitch"),
    path("opportunities/", views.opportunities, name="opportunities"),
    path("executions/", views.executions, name="executions"),
    path("executions/<int:execution_id>/", views.execution, name="execution"),
    path("pools/", views.pools, name="pools"),
    path("model/", views.model, name="model"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.Metrics.as_view(), name="metrics"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/", include("webapp.core.api.urls")),
    path("admin/", admin.site.urls),
]

handler404 = "webapp.core.views.not_found"
