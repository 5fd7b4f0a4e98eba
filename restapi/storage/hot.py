"""
The hot store: Redis as a read-through accelerator for ``GET /chat/<id>``.

It holds only *settled* messages: ones whose expiration_date has passed,
whether by timeout or by a collect. A settled message never changes again
(a collect only touches live ones), so an entry can never disagree with the
database, whatever happened between the two: a collect needs no invalidation
and no race or partial Redis failure can leave a stale copy behind. Live
messages are read from the database, which is the only place their
expiration_date is decided.

Every call has a short socket timeout and no retry. After a failure the store
is left alone for ``SUSPEND_SECONDS`` while the database answers, so a hung
Redis costs one timeout per process per interval, not one per request.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from restapi.metrics import HOT_STORE_ERRORS, HOT_STORE_LOOKUPS, HOT_STORE_SKIPPED
from restapi.storage import StoredMessage
from restapi.storage.redis_client import connect

logger = logging.getLogger(__name__)

KEY_PREFIX = "ephemeral:message:"
# Settled entries never change, so this only bounds memory and how long a
# purged message can still be shown.
SETTLED_TTL = 300
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

    def remember_settled(self, message: StoredMessage) -> None:
        pass

    def ping(self) -> bool:
        return False


class RedisHotStore:
    available = True

    def __init__(self, url: str, *, timeout: float) -> None:
        self.url = url
        self._client = connect(url, timeout=timeout)
        self._suspended_until = 0.0

    def _call(self, operation: str, command: Any) -> Any:
        """Run ``command(client)``; on any Redis error log it, suspend, and return None."""
        if time.monotonic() < self._suspended_until:
            HOT_STORE_SKIPPED.labels(operation).inc()
            return None
        try:
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

    def remember_settled(self, message: StoredMessage) -> None:
        """Cache a message whose expiration_date has passed, as it will stay."""
        self._call("set", lambda client: client.set(_key(message.id), _encode(message), ex=SETTLED_TTL))

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
