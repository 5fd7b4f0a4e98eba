"""
The API's views answer plain JSON requests without DRF's per-request set-up.

Almost every request to the API comes from a program that accepts JSON (or
anything) and, when it sends a body, sends JSON. For those, DRF's general
machinery (a wrapped request with a parser, authenticator and negotiator
instance each, content negotiation, version negotiation, authentication
classes) always decides the same thing: the JSON renderer, version 1, the
bearer token of the Authorization header. :class:`JsonFastPathView` decides
that once, from the headers, and runs the same view otherwise: the same
permission and throttle classes, the same handler methods, serializers,
exception handler, renderer and response headers. Every other request
(a browser's ``text/html``, an unknown version, ``?format=``, a form body,
``OPTIONS``, a method the view does not have) goes through DRF unchanged.

tests/test_fast_path.py holds the two paths to the same answers.
"""

from __future__ import annotations

import io
from typing import Any

from django.conf import settings
from django.http import HttpRequest, QueryDict
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from restapi.authentication import BearerTokenAuthentication, bearer_token
from restapi.parsers import StrictJSONParser

# Accept headers for which DRF's negotiation picks the JSON renderer, API
# version 1, as API clients send them (curl, requests, httpx, fetch: */*).
PLAIN_JSON_ACCEPT = frozenset({"", "*/*", "application/json", "application/json; version=1"})
JSON_MEDIA_TYPE = "application/json"
# The only version there is; what DRF's versioning would set for these headers.
VERSION = "1"


class PlainJsonRequest:
    """
    What a view's handler, permissions and throttles read of a plain JSON
    request, in place of DRF's :class:`~rest_framework.request.Request`; every
    other attribute is the Django request's.
    """

    authenticators = ()
    successful_authenticator = None
    user = None
    accepted_media_type = JSON_MEDIA_TYPE
    version = VERSION
    versioning_scheme = None

    def __init__(self, request: HttpRequest, *, renderer: JSONRenderer, reads_token: bool) -> None:
        self._request = request
        self.accepted_renderer = renderer
        self.auth = bearer_token(request) if reads_token else None
        self._data: Any = None

    @property
    def query_params(self) -> QueryDict:
        return self._request.GET

    @property
    def data(self) -> Any:
        """The body as DRF's JSON parser reads it: an empty body is ``{}``."""
        if self._data is None:
            self._data = {}
            if _content_length(self._request):
                encoding = self._request.encoding or settings.DEFAULT_CHARSET
                stream = io.BytesIO(self._request.body)
                self._data = StrictJSONParser().parse(stream, JSON_MEDIA_TYPE, {"encoding": encoding})
        return self._data

    def force_plaintext_errors(self, value: bool) -> None:
        """Nothing to do: this request is answered in JSON, errors included."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _json_body_or_none(request: HttpRequest) -> bool:
    """Whether the body is empty or declared as JSON (in no charset other than a named one)."""
    if not _content_length(request):
        return True
    return request.content_type == JSON_MEDIA_TYPE and set(request.content_params) <= {"charset"}


class JsonFastPathView(APIView):
    """An API view that prepares a plain JSON request itself and leaves every other one to DRF."""

    def _is_plain_json(self, request: HttpRequest) -> bool:
        method = request.method.lower()
        return (
            request.META.get("HTTP_ACCEPT", "") in PLAIN_JSON_ACCEPT
            and method in self.http_method_names
            and method != "options"
            and hasattr(self, method)
            # ?format= picks a renderer; the word anywhere in the query sends it to DRF.
            and "format" not in request.META.get("QUERY_STRING", "")
            and _json_body_or_none(request)
        )

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request | PlainJsonRequest:
        if self._is_plain_json(request):
            renderer = self.renderer_classes[0]()
            assert isinstance(renderer, JSONRenderer), "the first renderer of an API view answers JSON"
            reads_token = any(issubclass(cls, BearerTokenAuthentication) for cls in self.authentication_classes)
            return PlainJsonRequest(request, renderer=renderer, reads_token=reads_token)
        return super().initialize_request(request, *args, **kwargs)

    def initial(self, request: Request | PlainJsonRequest, *args: Any, **kwargs: Any) -> None:
        if not isinstance(request, PlainJsonRequest):
            super().initial(request, *args, **kwargs)
            return
        # DRF's initial(), with what negotiation, versioning and authentication
        # would decide already on the request.
        self.format_kwarg = None
        self.check_permissions(request)
        self.check_throttles(request)
