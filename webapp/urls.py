from django.contrib import admin
from django.urls import include, path

from webapp.core import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("api/", include("webapp.core.api")),
    path("admin/", admin.site.urls),
]
