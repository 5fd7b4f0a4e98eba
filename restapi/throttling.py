"""
Throttling of ``POST /chat`` per client address at ``CHAT_THROTTLE_RATE``.

The count is kept in fixed windows (a ``100/day`` rate allows 100 requests per
UTC day) in one place every worker and host shares: Redis when ``REDIS_URL``
is set, else the database. Each request costs one atomic increment that
returns the new count, so concurrent requests can neither lose an increment
nor both take the last slot, and the work per request does not grow with the
rate.

If Redis fails, the throttle lets requests through (fails open) with a warning
in the log and a count in ``metrics.THROTTLE_FAILED_OPEN``: sending messages
matters more than limiting them. Like the hot store, it then leaves Redis alone
for ``SUSPEND_SECONDS``, so a hung Redis costs one short timeout per process
per interval, not one per request.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import redis
from django.conf import settings
from django.core.signals import setting_changed
from django.db import connection
from django.dispatch import receiver
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from EphemeralMessages.config import THROTTLE_PERIODS
from restapi import metrics
from restapi.client_ip import client_address
from restapi.models import ThrottleWindow
from restapi.storage.redis_client import connect

logger = logging.getLogger(__name__)

REDIS_KEY_PREFIX = "ephemeral:throttle:"
SUSPEND_SECONDS = 1.0
# Ended windows of the database counter are deleted this often per process, at most this many at a time.
CLEANUP_INTERVAL_SECONDS = 60.0
CLEANUP_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Rate:
    requests: int
    period: int

    @classmethod
    def parse(cls, rate: str) -> Rate:
        """``'100/day'`` → 100 requests per 86400 s; the format is validated in config.py."""
        requests, period = rate.split("/")
        return cls(int(requests), THROTTLE_PERIODS[period])

    def window_end(self, now: float) -> int:
        """The end, in whole Unix seconds, of the fixed window that contains ``now``."""
        return (int(now) // self.period + 1) * self.period


class WindowCounter(Protocol):
    def increment(self, client: str, window_end: int) -> int | None:
        """Count one request of ``client`` in the window ending at ``window_end``; the new count, or None."""


class RedisWindowCounter:
    def __init__(self, url: str, *, timeout: float) -> None:
        self._client = connect(url, timeout=timeout)
        self._suspended_until = 0.0

    def increment(self, client: str, window_end: int) -> int | None:
        if time.monotonic() < self._suspended_until:
            return None
        key = f"{REDIS_KEY_PREFIX}{client}:{window_end}"
        try:
            # MULTI/EXEC in one round trip: the key cannot be left without its expiry.
            with self._client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expireat(key, window_end + 1)
                count, _ = pipe.execute()
        except redis.RedisError as exc:
            self._suspended_until = time.monotonic() + SUSPEND_SECONDS
            logger.warning(
                "throttle counter unavailable (%s: %s); POST /chat is not throttled for %.1fs",
                type(exc).__name__,
                exc,
                SUSPEND_SECONDS,
            )
            return None
        return int(count)


class DatabaseWindowCounter:
    """One row per client, holding the count of its current window, moved on by an upsert."""

    _UPSERT = (
        f"INSERT INTO {ThrottleWindow._meta.db_table} AS w (client, window_end, count) "  # noqa: S608
        "VALUES (%s, %s, 1) "
        "ON CONFLICT (client) DO UPDATE SET "
        "count = CASE WHEN w.window_end = excluded.window_end THEN w.count + 1 ELSE 1 END, "
        "window_end = excluded.window_end "
        "RETURNING count"
    )
    _CLEANUP = (
        f"DELETE FROM {ThrottleWindow._meta.db_table} WHERE client IN ("  # noqa: S608
        f"SELECT client FROM {ThrottleWindow._meta.db_table} WHERE window_end <= %s LIMIT %s)"
    )

    def __init__(self) -> None:
        self._next_cleanup = 0.0
        self._lock = threading.Lock()

    def increment(self, client: str, window_end: int) -> int:
        with connection.cursor() as cursor:
            cursor.execute(self._UPSERT, [client, window_end])
            (count,) = cursor.fetchone()
        self._cleanup_if_due()
        return count

    def _cleanup_if_due(self) -> None:
        with self._lock:
            if time.monotonic() < self._next_cleanup:
                return
            self._next_cleanup = time.monotonic() + CLEANUP_INTERVAL_SECONDS
        # Rows of clients that have not come back since their window ended.
        with connection.cursor() as cursor:
            cursor.execute(self._CLEANUP, [int(time.time()), CLEANUP_BATCH])


@lru_cache(maxsize=1)
def window_counter() -> WindowCounter:
    """The process's counter: Redis when ``REDIS_URL`` is set, else the database."""
    url = settings.CHAT["REDIS_URL"]
    if url:
        return RedisWindowCounter(url, timeout=settings.CHAT["REDIS_TIMEOUT"])
    return DatabaseWindowCounter()


@receiver(setting_changed)
def _forget_window_counter(*, setting: str, **kwargs: Any) -> None:
    if setting == "CHAT":
        window_counter.cache_clear()


class ClientAddressRateThrottle(BaseThrottle):
    """Allows ``CHAT_THROTTLE_RATE`` requests per client address per fixed window."""

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
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
