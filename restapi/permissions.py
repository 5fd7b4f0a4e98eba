"""Who may be answered: a read is answered only when a person or a client asks for it."""

from __future__ import annotations

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

# Headers by which browsers and link previewers say that nobody is looking yet:
# Sec-Purpose (the standard, "prefetch" or "prefetch;prerender"), Purpose
# (Chromium's older one), X-Moz (Firefox's older one) and X-Purpose (Safari's
# previews and several preview bots).
_PURPOSE_HEADERS = ("Sec-Purpose", "Purpose", "X-Moz", "X-Purpose")
_SPECULATIVE_PURPOSES = frozenset({"prefetch", "prerender", "preview"})


def is_speculative(request: Request) -> bool:
    """Whether ``request`` announces a prefetch, prerender or preview rather than a person's request."""
    for header in _PURPOSE_HEADERS:
        value = request.headers.get(header)
        if value is None:
            continue
        # "prefetch;prerender", "prefetch;anonymous-client-ip": the first token decides, any names it.
        tokens = {token.strip().lower() for token in value.replace(",", ";").split(";")}
        if tokens & _SPECULATIVE_PURPOSES:
            return True
    return False


class NotSpeculative(BasePermission):
    """
    Refuses a GET that announces itself as a prefetch or preview, before any work is done.

    A collect expires what it hands out, so a browser warming a link would take
    the messages from the person who follows it; a read by id would show a
    message's text to a link-preview bot. The refusal is a 403, which browsers
    discard instead of keeping for the navigation, and it is decided before the
    read throttle, so speculative requests do not spend a client's budget.
    """

    message = (
        "This request announced itself as a prefetch or preview (Sec-Purpose, Purpose, X-Moz or "
        "X-Purpose header); messages are only read for a request that is meant. Repeat it without that header."
    )

    def has_permission(self, request: Request, view: APIView) -> bool:
        return not (request.method == "GET" and is_speculative(request))
