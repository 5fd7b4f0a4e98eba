"""
The hot store: Redis as a read-through accelerator for ``GET /chat/<id>``.

Rules that keep it from ever being the only copy or a source of stale answers:

* It is written only after the database has committed.
* New and read-through entries are written with ``SET … NX``, collected ones
  unconditionally. A reader or creator that loses a race with a collect can
  therefore never put back a live copy over the collected one.
* A live entry lives no longer than the message (and at most ``LIVE_TTL_CAP``).
* Every call has a short socket timeout and no retry. After a failure the
  store is left alone for ``SUSPEND_SECONDS`` (the database answers meanwhile),
  so a hung Redis costs one timeout per process per interval, not one per
  request. Collected entries that could not be written are retried when Redis
  answers again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from redis.backoff import NoBackoff
from redis.retry import Retry

from restapi.metrics import HOT_STORE_ERRORS, HOT_STORE_LOOKUPS, HOT_STORE_SKIPPED
from restapi.storage import StoredMessage

logger = logging.getLogger(__name__)

KEY_PREFIX = "ephemeral:message:"
LIVE_TTL_CAP = 3600
EXPIRED_TTL = 300
SUSPEND_SECONDS = 1.0


def _key(message_id: int) -> str:
    return f"{KEY_PREFIX}{message_id}"


def _encode(message: StoredMessage) -> str:
    return json.dumps(
        [message.username, message.text, message.expiration_date.isoformat()],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _decode(message_id: int, value: bytes) -> StoredMessage:
    username, text, expiration_date = json.loads(value)
    return StoredMessage(message_id, username, text, datetime.fromisoformat(expiration_date))


class NoHotStore:
    """The embedded mode's hot store: every read is a miss, every write a no-op."""

    available = False

    def get(self, message_id: int) -> StoredMessage | None:
        return None

    def remember(self, message: StoredMessage, *, ttl: float) -> None:
        pass

    def remember_collected(self, messages: list[StoredMessage]) -> None:
        pass

    def ping(self) -> bool:
        return False


class RedisHotStore:
    available = True

    def __init__(self, url: str, *, timeout: float) -> None:
        self.url = url
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            health_check_interval=0,
        )
        self._suspended_until = 0.0
        self._unwritten_collected: dict[int, StoredMessage] = {}
        self._lock = threading.Lock()

    def _call(self, operation: str, command: Any) -> Any:
        """Run ``command(client)``; on any Redis error log it, suspend, and return None."""
        if time.monotonic() < self._suspended_until:
            HOT_STORE_SKIPPED.labels(operation).inc()
            return None
        try:
            if self._unwritten_collected:
                self._write_unwritten_collected()
            return command(self._client)
        except redis.RedisError as exc:
            HOT_STORE_ERRORS.labels(operation).inc()
            self._suspended_until = time.monotonic() + SUSPEND_SECONDS
            logger.warning(
                "hot store %s failed (%s: %s); answering from the database alone for %.1fs",
                operation,
                type(exc).__name__,
                exc,
                SUSPEND_SECONDS,
            )
            return None

    def get(self, message_id: int) -> StoredMessage | None:
        value = self._call("get", lambda client: self._lookup(client, message_id))
        if value is None:
            return None
        return _decode(message_id, value)

    @staticmethod
    def _lookup(client: redis.Redis, message_id: int) -> bytes | None:
        # Counted here, where Redis has answered; failures are counted by _call.
        value = client.get(_key(message_id))
        HOT_STORE_LOOKUPS.labels("miss" if value is None else "hit").inc()
        return value

    def remember(self, message: StoredMessage, *, ttl: float) -> None:
        """Cache ``message`` for ``ttl`` seconds unless an entry for it already exists."""
        milliseconds = int(min(ttl, LIVE_TTL_CAP) * 1000)
        if milliseconds <= 0:
            return
        self._call("set", lambda client: client.set(_key(message.id), _encode(message), px=milliseconds, nx=True))

    def remember_collected(self, messages: list[StoredMessage]) -> None:
        """Overwrite the entries of collected messages with their new expiration_date."""
        if not messages:
            return
        if self._call("set collected", lambda client: self._set_collected(client, messages)) is None:
            with self._lock:
                self._unwritten_collected.update((message.id, message) for message in messages)

    def _write_unwritten_collected(self) -> None:
        with self._lock:
            pending = list(self._unwritten_collected.values())
            self._unwritten_collected.clear()
        try:
            self._set_collected(self._client, pending)
        except redis.RedisError:
            with self._lock:
                self._unwritten_collected.update((message.id, message) for message in pending)
            raise
        logger.info("hot store: rewrote %d collected entries after an outage", len(pending))

    @staticmethod
    def _set_collected(client: redis.Redis, messages: list[StoredMessage]) -> bool:
        with client.pipeline(transaction=False) as pipe:
            for message in messages:
                pipe.set(_key(message.id), _encode(message), ex=EXPIRED_TTL)
            pipe.execute()
        return True

    def ping(self) -> bool:
        return bool(self._call("ping", lambda client: client.ping()))


@lru_cache(maxsize=1)
def hot_store() -> RedisHotStore | NoHotStore:
    """The process's hot store, made from ``settings.CHAT['REDIS_URL']``."""
    url = settings.CHAT["REDIS_URL"]
    if not url:
        return NoHotStore()
    return RedisHotStore(url, timeout=settings.CHAT["REDIS_TIMEOUT"])


@receiver(setting_changed)
def _forget_hot_store(*, setting: str, **kwargs: Any) -> None:
    if setting == "CHAT":
        hot_store.cache_clear()
