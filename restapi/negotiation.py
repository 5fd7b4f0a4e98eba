"""Content negotiation: DRF's, with a shortcut for clients that accept anything."""

from __future__ import annotations

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

# What API clients send when they do not say (curl, requests, httpx), or no header at all.
_ANYTHING = "*/*"


class ContentNegotiation(DefaultContentNegotiation):
    """
    Picks the view's first renderer for a client that accepts anything.

    That is the renderer DRF's own negotiation picks for ``Accept: */*`` (or
    no Accept header) and no ``?format=``: this only skips parsing the header
    to find it out, on the request almost every API call is. Anything else,
    such as a browser's ``text/html`` or ``application/json; version=1``, goes
    through DRF's negotiation unchanged.
    """

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        accept = request.META.get("HTTP_ACCEPT", _ANYTHING)
        if accept == _ANYTHING and not format_suffix and self.settings.URL_FORMAT_OVERRIDE not in request.query_params:
            renderer = renderers[0]
            return renderer, renderer.media_type
        return super().select_renderer(request, renderers, format_suffix)
