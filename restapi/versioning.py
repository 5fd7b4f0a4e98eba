"""API versions, chosen by the client in the Accept header: ``application/json; version=1``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import versioning
from rest_framework.exceptions import NotAcceptable
from rest_framework.request import Request


class AcceptHeaderVersioning(versioning.AcceptHeaderVersioning):
    """DRF's Accept-header versioning, with a 406 that names the versions on offer."""

    def determine_version(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().determine_version(request, *args, **kwargs)
        except NotAcceptable:
            allowed = ", ".join(settings.REST_FRAMEWORK["ALLOWED_VERSIONS"])
            raise NotAcceptable(
                f"Unknown API version in the Accept header; this service speaks version {allowed} "
                f"(for example Accept: application/json; version={self.default_version})."
            ) from None
