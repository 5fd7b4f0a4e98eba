"""
Throttling of sends (``POST /chat``) per client address at ``CHAT_THROTTLE_RATE``.

The count is kept in fixed windows (a ``100/day`` rate allows 100 sends per
UTC day) by ``storage.throttle_counters``, in one place every worker and host
shares. Only a real send counts: DRF checks throttles before it dispatches on
the method, so an ``OPTIONS`` or a browser's ``GET /chat`` (405) would
otherwise spend a client's budget for the day.

If the counter is unavailable (Redis failing), the throttle lets requests
through (fails open), counted in ``metrics.THROTTLE_FAILED_OPEN``: sending
messages matters more than limiting them.
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
from restapi.storage.throttle_counters import window_counter

# Answered by DRF itself (the allowed methods), never a send.
_NOT_COUNTED = frozenset({"OPTIONS"})


class ClientAddressRateThrottle(BaseThrottle):
    """Allows ``CHAT_THROTTLE_RATE`` requests per client address per fixed window."""

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        if request.method in _NOT_COUNTED or request.method not in view.allowed_methods:
            return True
        rate = Rate.parse(settings.CHAT["THROTTLE_RATE"])
        now = time.time()
        window_end = rate.window_end(now)
        count = window_counter().increment(client_address(request), window_end)
        if count is None:
            metrics.THROTTLE_FAILED_OPEN.inc()
            return True
        if count <= rate.requests:
            return True
        self._wait = max(1, math.ceil(window_end - now))
        return False

    def wait(self) -> float | None:
        return self._wait
