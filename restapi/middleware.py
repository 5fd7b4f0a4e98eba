"""Request-wide concerns: the request id, the body size limit, and last-resort errors."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

from restapi.exceptions import DATABASE_RETRY_AFTER_SECONDS
from restapi.log import bind_request_id, new_request_id, unbind_request_id
from restapi.sealing import UnreadableText
from restapi.storage.connection import dropped_read_only_server

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
        # ASCII digits only (str.isdigit() takes "²" too, which int() refuses); more
        # digits than the limit has are over it without int(), which refuses 4,300.
        if not (declared.isascii() and declared.isdigit()):
            return JsonResponse({"detail": "The Content-Length header is not a number."}, status=400)
        significant = declared.lstrip("0") or "0"
        if len(significant) > len(str(limit)) or int(significant) > limit:
            return JsonResponse(
                {"detail": f"The request body is larger than the limit of {limit} bytes."},
                status=413,
            )
        return self.get_response(request)


class ChunkedBodyReader:
    """
    WSGI middleware that reads a body sent without Content-Length (``Transfer-Encoding: chunked``).

    Django reads exactly CONTENT_LENGTH bytes of a body and takes a missing one
    as an empty body, so a chunked POST straight to gunicorn would be parsed as
    ``{}`` and answered with a misleading "field required". This reads at most
    one byte more than the limit into memory and declares what it read: a body
    at the limit is then an ordinary one, a longer one is refused with 413 by
    :class:`BodySizeLimitMiddleware` like a declared one, and nothing past the
    limit is kept. (nginx, in front in production, buffers a chunked body and
    sends a Content-Length itself.)
    """

    def __init__(self, application: Callable[[dict, Callable], Iterable[bytes]]) -> None:
        self.application = application

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH"):
            body = environ["wsgi.input"].read(settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.application(environ, start_response)


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
        if isinstance(exception, UnreadableText):
            # An operator's matter (a key taken out of CHAT_ENCRYPTION_KEYS too soon), not a bug:
            # the message says which message and key, and a traceback would add nothing.
            logger.error("cannot open a stored text on %s %s: %s", request.method, request.path, exception)
            return server_error_response(request)
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
