"""Root URL configuration."""

from django.contrib import admin
from django.urls import include, path

from restapi import health, metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("", include("restapi.urls")),
]

handler400 = "restapi.views.bad_request"
handler404 = "restapi.views.not_found"
handler500 = "restapi.views.server_error"
