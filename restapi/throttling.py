"""
Throttling per client address: sends (``POST /chat``) at ``CHAT_THROTTLE_RATE``,
reads (``GET /chat/<id>`` and ``GET /chats/<username>``) at
``CHAT_READ_THROTTLE_RATE``, each with counters of its own.

The count is kept in fixed windows (a ``100/day`` rate allows 100 requests per
UTC day) by ``storage.throttle_counters``, in one place every worker and host
shares. Only a real request counts: DRF checks throttles before it dispatches
on the method, so an ``OPTIONS``, a ``HEAD`` on a read (405) or a browser's
``GET /chat`` (405) would otherwise spend a client's budget. A prefetch is
refused by a permission check, which DRF runs before any throttle.

Reads are limited so that nobody can try ids or usernames at speed: an id is
one of 2**53, and at the default 600 reads a minute one address tries under a
million a day. A person on the web page reads once per click and a client
polling an inbox every few seconds reads about twenty times a minute, so an
honest client, or a few hundred people behind one NAT address, stays far below it.

If the counter is unavailable (Redis failing), the throttle lets requests
through (fails open), counted in ``metrics.THROTTLE_FAILED_OPEN``: serving
messages matters more than limiting them.

A view that will need other stores' answers anyway names their calls in
``sent_with_throttle()``, and the count travels with them, in one round trip
where the stores share one (``storage.round_trips``): a read by id fetches the
hot store's copy of its message with the count. The count is still known, and
the request refused, before anything is answered.
"""

from __future__ import annotations

import math
import time

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from restapi import metrics
from restapi.client_ip import client_address
from restapi.rates import Rate
from restapi.storage import round_trips
from restapi.storage.throttle_counters import window_counter

# Answered by DRF itself (the allowed methods), never a send or a read.
_NOT_COUNTED = frozenset({"OPTIONS"})
# Room the counter keeps for a client's name (ThrottleWindow.client).
_CLIENT_KEY_LENGTH = 64


class ClientAddressRateThrottle(BaseThrottle):
    """Allows ``CHAT_THROTTLE_RATE`` requests per client address per fixed window."""

    rate_setting = "THROTTLE_RATE"
    # Put before the client's address in the counter, so that each throttle counts apart.
    scope = ""

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        if request.method in _NOT_COUNTED or request.method not in view.allowed_methods:
            return True
        rate = Rate.parse(settings.CHAT[self.rate_setting])
        now = time.time()
        window_end = rate.window_end(now)
        client = (self.scope + client_address(request))[:_CLIENT_KEY_LENGTH]
        counter = window_counter()
        if hasattr(view, "sent_with_throttle"):
            counted = counter.queue_increment(client, window_end)
            round_trips.send(counted, *view.sent_with_throttle())
            count = counted.attempt().value
        else:
            count = counter.increment(client, window_end)
        if count is None:
            metrics.THROTTLE_FAILED_OPEN.inc()
            return True
        if count <= rate.requests:
            return True
        self._wait = max(1, math.ceil(window_end - now))
        return False

    def wait(self) -> float | None:
        return self._wait


class ReadRateThrottle(ClientAddressRateThrottle):
    """
    Allows ``CHAT_READ_THROTTLE_RATE`` reads per client address per fixed
    window: reads by id, collects, leases and lease acknowledgements together.
    """

    rate_setting = "READ_THROTTLE_RATE"
    scope = "read:"
