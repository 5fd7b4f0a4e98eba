"""
``/api/schema/``: the OpenAPI document, built once per process and version.

The document depends on the code and the settings, never on the request, so a
process builds it once and serves that copy (deploy/gunicorn.conf.py builds it
in the master, before the workers are forked). drf-spectacular's own view builds it on every
request, and with ``?lang=`` switches Django's translation to whatever the
client names; Django keeps a catalog per language name for the life of the
process, so one client sending new names grows a worker without bound. The
service ships one language, so ``lang`` is ignored. Building on first use from
several threads at once also races in drf-spectacular's lazy loading of its
extensions; the lock makes the first build happen once.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework.request import Request
from rest_framework.response import Response

_built: dict[str | None, dict[str, Any]] = {}
_building = threading.Lock()


def schema_document(version: str | None) -> dict[str, Any]:
    """The OpenAPI document of ``version``; keyed only by versions the versioning class accepted."""
    with _building:
        if version not in _built:
            _built[version] = SchemaGenerator(api_version=version).get_schema(request=None, public=True)
        return _built[version]


def build_schema() -> None:
    """Build the document of the default version now, before any request asks for it."""
    schema_document(settings.REST_FRAMEWORK["DEFAULT_VERSION"])


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    # The limits the document states are read from settings.CHAT (tests change them).
    if setting in {"CHAT", "REST_FRAMEWORK", "SPECTACULAR_SETTINGS"}:
        with _building:
            _built.clear()


class SchemaView(SpectacularAPIView):
    """The OpenAPI document, as YAML or JSON by content negotiation."""

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        version = request.version or self._get_version_parameter(request)
        filename = self._get_filename(request, version)
        return Response(schema_document(version), headers={"Content-Disposition": f'inline; filename="{filename}"'})
