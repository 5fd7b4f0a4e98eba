"""
Errors as the API reports them: always JSON, always something a client can act on.

DRF's own exceptions (validation, parse, media type, method, throttling) go
through :func:`json_exception_handler`. Anything else reaches
``restapi.middleware.JsonErrorMiddleware``, which turns a lost database into a
503 and the rest into a 500 that carries the request id.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import Throttled
from rest_framework.response import Response
from rest_framework.views import exception_handler

from restapi.metrics import THROTTLE_REJECTIONS

DATABASE_RETRY_AFTER_SECONDS = 5


def json_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, counting throttled requests on the way."""
    if isinstance(exc, Throttled):
        THROTTLE_REJECTIONS.inc()
    return exception_handler(exc, context)
