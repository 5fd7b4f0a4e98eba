"""Root URL configuration."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("restapi.urls")),
]

handler400 = "restapi.views.bad_request"
handler404 = "restapi.views.not_found"
handler500 = "restapi.views.server_error"
