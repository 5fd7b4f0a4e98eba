"""The web page at ``/``: what a browser gets where an API client gets the API root."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.renderers import TemplateHTMLRenderer

from restapi.serializers import USERNAME_MAX_LENGTH


class WebPageRenderer(TemplateHTMLRenderer):
    """
    Renders the page for ``Accept: text/html``.

    Listed after the JSON renderer, so a client that accepts anything (``*/*``)
    still gets JSON, while a browser, which names text/html, gets the page. The
    browsable API stays at ``/?format=api``.
    """

    template_name = "restapi/index.html"

    def get_template_context(self, data: Any, renderer_context: dict[str, Any]) -> dict[str, Any]:
        # The page states the same limits the API enforces, read from the same settings.
        chat = settings.CHAT
        return {
            "api": data,
            "username_max_length": USERNAME_MAX_LENGTH,
            "max_text_length": chat["MAX_TEXT_LENGTH"],
            "max_timeout": chat["MAX_TIMEOUT"],
            "default_timeout": chat["DEFAULT_TIMEOUT"],
        }
