"""
Long-poll in front of Django: a request that asks to wait waits here, before
the Django request cycle starts, and then goes through it unchanged.

Django's ASGI handler gives every request a thread of its own as it starts
(its ``request_started`` receivers and synchronous middleware run there), so
a request that waited inside Django would hold a thread for its whole wait.
Waiting in front of the handler holds none; the view that finally runs sees
an ordinary collect or lease, and validates ``wait`` like any other field. A
request whose ``wait`` is missing, zero or invalid passes straight through.
On the threaded server a request holds its thread anyway, and waits in
``LongPollMiddleware``.

Only a request the view would answer waits: before waiting, the view's own
checks run (``refused``: negotiation, the prefetch refusal, the read throttle,
the inbox's token), and a request they refuse goes straight on to Django,
which refuses it at once. Otherwise a client without the token of a claimed
inbox could hold a waiter there, and learn from the moment of its 401 when a
message arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from rest_framework.exceptions import APIException, ValidationError

from restapi import views, waiting
from restapi.authentication import require_inbox_access
from restapi.serializers import LeaseRequestSerializer, UsernameField, WaitField

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Waiters that stop waiting at once (their time is up together, or the server
# is stopping) enter Django at most this many at a time per worker: Django runs
# each request on a thread and connection of its own, and thousands at once
# would exhaust the database's connections.
WAITERS_IN_DJANGO = 8
# A lease request is a few bytes; a larger body is not looked into (the view refuses it).
MAX_WAITING_BODY = 4096
# The routes that wait, and the method of each.
_WAITING_ROUTES = {"chats": "GET", "chat-leases": "POST"}


@dataclass(frozen=True, slots=True)
class WaitRequest:
    username: str
    seconds: int


def _valid(field: Any, value: Any) -> Any:
    try:
        return field.run_validation(value)
    except ValidationError:
        return None


def might_wait(method: str, path: str, query_string: str) -> bool:
    """A cheap first look, so that the requests that cannot wait pay for nothing more."""
    if method == "GET":
        return "wait=" in query_string
    return method == "POST" and path.rstrip("/").endswith("/leases")


def wait_request(method: str, path: str, query_string: str, body: bytes) -> WaitRequest | None:
    """What a request asks to wait for, or None when it does not (validly) ask to."""
    try:
        match = resolve(path)
    except Resolver404:
        return None
    if _WAITING_ROUTES.get(match.url_name) != method:
        return None
    if method == "GET":
        values = parse_qs(query_string).get("wait")
        raw = values[-1] if values else None
    else:
        try:
            document = json.loads(body) if body else {}
        except ValueError:
            return None
        raw = document.get("wait") if isinstance(document, dict) else None
        # A lease the view will refuse (a bad "seconds", an unknown field) is refused at once.
        if raw is None or not LeaseRequestSerializer(data=document).is_valid():
            return None
    if raw is None:
        return None
    seconds = _valid(WaitField(), raw)
    username = _valid(UsernameField(), match.kwargs["username"])
    if not seconds or not username:
        return None
    return WaitRequest(username, seconds)


def refused(request: HttpRequest, username: str) -> bool:
    """
    Whether the view will refuse ``request`` whatever the inbox holds: then it
    must not wait. The view's own checks decide (content negotiation and
    version, the prefetch refusal, the read throttle, a lease sent as a form,
    then the inbox's token, as its handler asks for it), so no rule is written
    twice. The throttle
    counts this look as one read: a client cannot hold more waiters than its
    read budget allows, and a waiting request that is answered costs two.

    Runs on a thread (it may read the database and Redis). A failure, such as
    the database being down, is raised: the request must not wait then either.
    """
    match = resolve(request.path_info)
    view = match.func.cls(**match.func.initkwargs)
    view.args, view.kwargs = match.args, match.kwargs
    view.headers = view.default_response_headers
    try:
        api_request = view.initialize_request(request, *match.args, **match.kwargs)
        view.request = api_request
        view.initial(api_request, *match.args, **match.kwargs)
        if request.method == "POST":
            # The lease handler's first check of its body, before it reads it.
            views.refuse_a_form(api_request)
        require_inbox_access(api_request, username)
    except APIException:
        return True
    return False


class LongPollASGI:
    """The ASGI application: waits without a thread, then hands the request to Django."""

    def __init__(self, application: ASGIApp) -> None:
        self.application = application
        self._slots: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query_string = scope.get("query_string", b"").decode("latin-1") if scope["type"] == "http" else ""
        if scope["type"] != "http" or not might_wait(scope["method"], scope["path"], query_string):
            await self.application(scope, receive, send)
            return
        # The body is read once here and replayed to Django.
        received: list[Message] = []
        body = b""
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body") or len(body) > MAX_WAITING_BODY:
                break
        complete = received[-1]["type"] == "http.request" and not received[-1].get("more_body")
        request = wait_request(scope["method"], scope["path"], query_string, body) if complete else None
        # The server's next message can only be the client's disconnect. It is
        # awaited once, here, and handed on to Django: a second receive() after
        # cancelling the first is answered by the server with a disconnect.
        next_message: asyncio.Future[Message] | None = None
        if request is not None:
            checked = ASGIRequest(scope, io.BytesIO(body))
            try:
                if await waiting.on_lookup_thread(refused, checked, request.username):
                    request = None
            except Exception:
                # Not reported here: Django meets the same failure at once and answers it (a 503).
                request = None
        if request is not None:
            next_message = asyncio.ensure_future(receive())
            if not await _wait_unless(request, next_message):
                # The client left while waiting: nothing is collected, nothing answered.
                return

        async def replay() -> Message:
            nonlocal next_message
            if received:
                return received.pop(0)
            if next_message is not None:
                pending, next_message = next_message, None
                return await pending
            return await receive()

        if request is None:
            await self.application(scope, replay, send)
            return
        if self._slots is None:
            # Made here, in the worker's event loop, not in the master that imported this.
            self._slots = asyncio.Semaphore(WAITERS_IN_DJANGO)
        async with self._slots:
            await self.application(scope, replay, send)


async def _wait_unless(request: WaitRequest, disconnect: asyncio.Future[Message]) -> bool:
    """Wait for mail; False if the client disconnected first."""
    waiter = asyncio.ensure_future(waiting.wait_for_mail(request.username, request.seconds))
    try:
        await asyncio.wait({waiter, disconnect}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not waiter.done():
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
    if disconnect.done():
        return False
    waiter.result()
    return True


class LongPollMiddleware:
    """
    The threaded server's wait (WSGI, and Django's development and test
    servers): a request there holds its thread anyway, so it waits here, at
    the end of the middleware chain, polling the database. On the
    asynchronous server ``LongPollASGI`` has waited already.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query_string = request.META.get("QUERY_STRING", "")
        if not isinstance(request, ASGIRequest) and might_wait(request.method, request.path_info, query_string):
            body = request.body if request.method == "POST" and len(request.body) <= MAX_WAITING_BODY else b""
            wait = wait_request(request.method, request.path_info, query_string, body)
            if wait is not None and not refused(request, wait.username):
                waiting.wait_for_mail_blocking(wait.username, wait.seconds)
        return self.get_response(request)
