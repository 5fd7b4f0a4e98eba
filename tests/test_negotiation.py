"""The negotiation shortcut picks exactly the renderer and media type DRF's own negotiation picks."""

from __future__ import annotations

import pytest
from rest_framework.exceptions import APIException
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.test import APIRequestFactory

from restapi.negotiation import ContentNegotiation
from restapi.renderers import WebPageRenderer

RENDERER_LISTS = [
    [JSONRenderer, BrowsableAPIRenderer],
    [JSONRenderer, WebPageRenderer, BrowsableAPIRenderer],
    [BrowsableAPIRenderer, JSONRenderer],
]
ACCEPT_HEADERS = [
    None,
    "*/*",
    "application/json",
    "application/json; version=1",
    "text/html",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "*/*; q=0.5",
]


def choice(negotiation: DefaultContentNegotiation, request: Request, renderers: list[BaseRenderer]) -> tuple:
    """The renderer class and media type chosen, or the exception raised (406 when nothing fits)."""
    try:
        renderer, media_type = negotiation.select_renderer(request, renderers)
    except APIException as exc:
        return type(exc), exc.status_code
    return type(renderer), media_type


@pytest.mark.parametrize("renderer_classes", RENDERER_LISTS)
@pytest.mark.parametrize("accept", ACCEPT_HEADERS)
@pytest.mark.parametrize("query", ["", "?format=api", "?format=json"])
def test_the_shortcut_agrees_with_drf(renderer_classes: list[type], accept: str | None, query: str) -> None:
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get(f"/chat/1{query}", **headers))
    renderers = [renderer_class() for renderer_class in renderer_classes]

    assert choice(ContentNegotiation(), request, renderers) == choice(DefaultContentNegotiation(), request, renderers)


def test_the_service_uses_the_shortcut() -> None:
    assert api_settings.DEFAULT_CONTENT_NEGOTIATION_CLASS is ContentNegotiation
