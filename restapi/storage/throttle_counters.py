"""
Request counters of the throttle, in fixed windows, shared by every worker and host.

Redis keeps them when ``REDIS_URL`` is set, else the database. Each request
costs one atomic increment that returns the new count, so concurrent requests
can neither lose an increment nor both take the last slot, and the work per
request does not grow with the rate. The Redis counter answers None when Redis
is failing (under the policy of ``redis_client.RedisGuard``): the caller
decides what an unknown count means.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from restapi.models import ThrottleWindow
from restapi.storage.redis_client import GuardedStore, key, per_process_store
from restapi.storage.round_trips import Local, OnRedis, Queued
from restapi.storage.sql import run

# Ended windows of the database counter are deleted this often per process, at most this many at a time.
CLEANUP_INTERVAL_SECONDS = 60.0
CLEANUP_BATCH = 1000


class WindowCounter(Protocol):
    def increment(self, client: str, window_end: int) -> int | None:
        """Count one request of ``client`` in the window ending at ``window_end``; the new count, or None."""

    def queue_increment(self, client: str, window_end: int) -> Queued[int]:
        """``increment``, to be sent with other stores' calls (``round_trips.send``); its value is the count."""


class RedisWindowCounter(GuardedStore):
    """One key per client and window, expiring with its window."""

    store = "throttle counter"
    fallback = "requests are not throttled"

    def increment(self, client: str, window_end: int) -> int | None:
        command = _count(client, window_end)
        return self._redis.call("increment", lambda redis_client: int(command(redis_client))).value

    def queue_increment(self, client: str, window_end: int) -> Queued[int]:
        return OnRedis(self._redis, "increment", _count(client, window_end), int)


def _count(client: str, window_end: int) -> Callable[[Any], Any]:
    """The counting command, for a client or a pipeline."""
    name = key("throttle", client, window_end)
    # Not ``eval()``: redis-py's cluster pipeline refuses it, though it routes the command by its key.
    return lambda redis_client: redis_client.execute_command("EVAL", _COUNT_IN_WINDOW, 1, name, window_end + 1)


# One command, atomic on the server: the key is never left without its expiry. It
# costs the client less than MULTI, INCR, EXPIREAT, EXEC, and, sent whole rather
# than by digest, it is one round trip even on a server that has not seen it yet.
_COUNT_IN_WINDOW = (
    "local count = redis.call('INCR', KEYS[1]) "
    "if count == 1 then redis.call('EXPIREAT', KEYS[1], ARGV[1]) end "
    "return count"
)


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
        ((count,),) = run(self._UPSERT, [client, window_end])
        self._cleanup_if_due()
        return count

    def queue_increment(self, client: str, window_end: int) -> Queued[int]:
        return Local(lambda: self.increment(client, window_end))

    def _cleanup_if_due(self) -> None:
        with self._lock:
            if time.monotonic() < self._next_cleanup:
                return
            self._next_cleanup = time.monotonic() + CLEANUP_INTERVAL_SECONDS
        # Rows of clients that have not come back since their window ended.
        run(self._CLEANUP, [int(time.time()), CLEANUP_BATCH])


# The process's counter: Redis when ``REDIS_URL`` is set, else the database.
window_counter = per_process_store(RedisWindowCounter, DatabaseWindowCounter)
