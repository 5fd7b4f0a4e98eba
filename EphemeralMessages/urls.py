"""Root URL configuration."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerSplitView

from restapi import health, metrics
from restapi.schema_view import SchemaView

urlpatterns = [
    # First: nearly every request is the API's, and a path is matched against
    # the patterns in order. None of the API's patterns matches another path here.
    path("", include("restapi.urls")),
    path("admin/", admin.site.urls),
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("api/schema/", SchemaView.as_view(), name="api-schema"),
    # Split: Swagger UI's start-up script is served as a file of its own (?script)
    # rather than inline, and the page's styles come from a static file, so the
    # Content-Security-Policy need allow no inline script or style.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="restapi/swagger_ui.html"),
        name="api-docs",
    ),
]

handler400 = "restapi.views.bad_request"
handler404 = "restapi.views.not_found"
handler500 = "restapi.views.server_error"
