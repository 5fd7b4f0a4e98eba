"""Root URL configuration."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerView

from restapi import health, metrics
from restapi.schema_view import SchemaView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("api/schema/", SchemaView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("restapi.urls")),
]

handler400 = "restapi.views.bad_request"
handler404 = "restapi.views.not_found"
handler500 = "restapi.views.server_error"
