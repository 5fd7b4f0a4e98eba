"""
The hot store: Redis as a read-through accelerator for ``GET /chat/<id>``.

It holds only *settled* messages: ones that are no longer live, whether
expired by timeout or by a collect. A settled message never changes again
(a collect only touches live ones), so an entry can never disagree with the
database, whatever happened between the two: a collect needs no invalidation
and no race or partial Redis failure can leave a stale copy behind. Live
messages are read from the database, which is the only place their
expiration_date is decided.

Calls run under the Redis failure policy of ``redis_client.RedisGuard`` and
report their :class:`~restapi.storage.redis_client.Attempt` to the caller.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import datetime

from django.conf import settings

from restapi.storage import StoredMessage
from restapi.storage.per_process import per_process
from restapi.storage.redis_client import Attempt, Outcome, RedisGuard, connect, key

logger = logging.getLogger(__name__)

# Settled entries never change, so this only bounds memory and how long a
# purged message can still be shown.
SETTLED_TTL = 300


def message_key(message_id: int) -> str:
    return key("message", message_id)


def _encode(message: StoredMessage) -> str:
    # A sealed text is cached sealed, so Redis holds no text in plain form either.
    sealed = None if message.sealed_text is None else base64.b64encode(message.sealed_text).decode()
    return json.dumps(
        [message.username, message.text, message.expiration_date.isoformat(), sealed],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _decode(message_id: int, value: bytes) -> StoredMessage:
    # Entries written before texts could be sealed have three fields, and are read as plain.
    username, text, expiration_date, *sealed = json.loads(value)
    sealed_text = base64.b64decode(sealed[0]) if sealed and sealed[0] is not None else None
    return StoredMessage(message_id, username, text, datetime.fromisoformat(expiration_date), sealed_text)


class NoHotStore:
    """The embedded mode's hot store: every read is a miss, every write a no-op."""

    available = False

    def get(self, message_id: int) -> Attempt[StoredMessage]:
        return Attempt(Outcome.DONE)

    def remember_settled(self, message: StoredMessage) -> Attempt[None]:
        return Attempt(Outcome.DONE)

    def ping(self) -> Attempt[bool]:
        return Attempt(Outcome.DONE, False)


class RedisHotStore:
    available = True

    def __init__(self, url: str, *, timeout: float) -> None:
        self._redis = RedisGuard(
            connect(url, timeout=timeout, cluster=settings.CHAT["REDIS_CLUSTER"]),
            store="hot store",
            fallback="answering from the database alone",
            logger=logger,
        )

    def get(self, message_id: int) -> Attempt[StoredMessage]:
        """The cached message (``value`` None on a miss)."""
        name = message_key(message_id)
        attempt = self._redis.call("get", lambda client: client.get(name))
        if attempt.value is None:
            return attempt
        return Attempt(attempt.outcome, _decode(message_id, attempt.value))

    def remember_settled(self, message: StoredMessage) -> Attempt[None]:
        """Cache a message that is no longer live, as it will stay."""
        name, value = message_key(message.id), _encode(message)
        return self._redis.call("set", lambda client: client.set(name, value, ex=SETTLED_TTL))

    def ping(self) -> Attempt[bool]:
        return self._redis.call("ping", lambda client: client.ping())


@per_process
def hot_store() -> RedisHotStore | NoHotStore:
    """The process's hot store, made from ``settings.CHAT['REDIS_URL']``."""
    url = settings.CHAT["REDIS_URL"]
    if not url:
        return NoHotStore()
    return RedisHotStore(url, timeout=settings.CHAT["REDIS_TIMEOUT"])
