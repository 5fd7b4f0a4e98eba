"""Request-wide concerns: the request id, the body size limit, and last-resort errors."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

from restapi.exceptions import DATABASE_RETRY_AFTER_SECONDS
from restapi.log import bind_request_id, new_request_id, unbind_request_id
from restapi.storage.database import dropped_read_only_server

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"


class RequestIdMiddleware:
    """Gives each request an id, puts it on every log line and on the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.id = new_request_id(request.headers.get(REQUEST_ID_HEADER))
        token = bind_request_id(request.id)
        try:
            response = self.get_response(request)
        finally:
            unbind_request_id(token)
        response[REQUEST_ID_HEADER] = request.id
        return response


class BodySizeLimitMiddleware:
    """Refuses a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` with 413, before anything reads it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if not declared.isdigit():
            return JsonResponse({"detail": "The Content-Length header is not a number."}, status=400)
        if int(declared) > limit:
            return JsonResponse(
                {"detail": f"The request body is larger than the limit of {limit} bytes."},
                status=413,
            )
        return self.get_response(request)


class JsonErrorMiddleware:
    """
    The last word on exceptions the views did not handle.

    A database that cannot be reached, or that refuses writes because it is not
    the primary (during a failover), is a 503 with ``Retry-After``; the broken
    or read-only connection is dropped and the next request connects afresh, so
    the service recovers by itself. Anything else is logged
    with its traceback and answered with a JSON 500 naming the request id.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, (OperationalError, InterfaceError)) or dropped_read_only_server(exception):
            logger.error("database unavailable: %s", exception)
            response = JsonResponse(
                {"detail": "The message store is unavailable; try again shortly.", "request_id": request.id},
                status=503,
            )
            response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
            return response
        logger.error(
            "unhandled %s on %s %s", type(exception).__name__, request.method, request.path, exc_info=exception
        )
        return server_error_response(request)


def server_error_response(request: HttpRequest) -> JsonResponse:
    request_id = getattr(request, "id", "-")
    return JsonResponse(
        {"detail": "Internal server error; quote the request_id when reporting it.", "request_id": request_id},
        status=500,
    )
