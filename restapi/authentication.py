"""
Bearer tokens of claimed inboxes, as requests carry them.

``BearerTokenAuthentication`` only reads the ``Authorization: Bearer <token>``
header into ``request.auth``; it does not decide anything, because what a
token allows depends on the inbox asked for. :func:`require_inbox_access` makes
that decision, through :func:`restapi.selectors.authorize_inbox`, for every
view that reads or manages an inbox.

The token travels only in that header, never in a URL, so no access log (the
service's, gunicorn's or nginx's, all of which log the request line and no
request headers) can contain it.
"""

from __future__ import annotations

from typing import NoReturn

from django.http import HttpRequest
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from restapi import selectors
from restapi.selectors import InboxAccess, InboxAuthorization

# The challenge of every 401 (RFC 6750); DRF puts it in WWW-Authenticate.
CHALLENGE = 'Bearer realm="inbox"'


def bearer_token(request: HttpRequest | Request) -> str | None:
    """The token of the request's ``Authorization: Bearer <token>`` header, if it has one."""
    scheme, _, credentials = get_authorization_header(request).partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    return credentials.strip().decode("latin-1")


class BearerTokenAuthentication(BaseAuthentication):
    """Puts the bearer token of the request, if any, in ``request.auth``; there are no users."""

    def authenticate(self, request: Request) -> tuple[None, str | None]:
        # Always an answer, None when there is no bearer token: whether a token is
        # needed depends on the inbox, and DRF would otherwise turn every refusal
        # of a view that lists this class (such as a prefetch's 403) into a 401.
        return None, bearer_token(request)

    def authenticate_header(self, request: Request) -> str:
        return CHALLENGE


def require_inbox_access(request: Request, username: str) -> InboxAuthorization:
    """
    The request's authorization for ``username``'s inbox, if it may read it: the
    inbox is open, or the request carries its current token. Otherwise a 401
    with the Bearer challenge (the view must list BearerTokenAuthentication).
    """
    authorization = selectors.authorize_inbox(username, request.auth)
    if not authorization.allowed:
        refuse(authorization)
    return authorization


def refuse(authorization: InboxAuthorization) -> NoReturn:
    """The 401 for a request that may not read the inbox: no token, or not its current one."""
    username = authorization.username
    if authorization.access is InboxAccess.NO_TOKEN:
        raise NotAuthenticated(
            f"The inbox {username} is claimed: send its token in the header Authorization: Bearer <token>."
        )
    raise AuthenticationFailed(f"This is not the current token of the inbox {username}.")


class PresentsBearerToken(BasePermission):
    """Lets through only a request that carries a bearer token: managing a claim always takes one."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.auth is None:
            raise NotAuthenticated("Send the inbox's token in the header Authorization: Bearer <token>.")
        return True
