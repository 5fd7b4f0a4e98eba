"""
The hot store: Redis as a read-through accelerator for ``GET /chat/<id>``.

It holds only *settled* messages: ones that are no longer live, whether
expired by timeout or by a collect. A settled message never changes again
(a collect only touches live ones), so an entry can never disagree with the
database, whatever happened between the two: a collect needs no invalidation
and no race or partial Redis failure can leave a stale copy behind. Live
messages are read from the database, which is the only place their
expiration_date is decided.

It never holds a message of a claimed inbox, so that a hit can be answered
without asking the database who may read it: a reader caches a message only
when the database said its inbox was open, and a claim first holds caching of
its inbox off (``hold_off``) and then removes what was cached of it
(``forget``), before the claim commits. A reader that saw the inbox open just
before the claim and caches just after finds the hold-off, which outlasts any
request, and writes nothing (``remember_settled``).

Calls run under the Redis failure policy of ``redis_client.RedisGuard`` and
report their :class:`~restapi.storage.redis_client.Attempt` to the caller.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime

import redis

from restapi.storage import StoredMessage
from restapi.storage.redis_client import Attempt, GuardedStore, Outcome, key, per_process_store
from restapi.storage.round_trips import Answered, OnRedis, Queued

# Settled entries never change, so this only bounds memory and how long a
# purged message can still be shown.
SETTLED_TTL = 300
# Longer than any request may run (gunicorn's worker timeout is 30 s), so a
# reader that fetched a message before a claim cannot cache it after.
HOLD_OFF_SECONDS = 120
FORGET_BATCH = 1000
# KEYS[1] the inbox's hold-off, KEYS[2] the entry; ARGV the value and its lifetime.
SET_UNLESS_HELD_OFF = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
end
"""


def message_key(message_id: int) -> str:
    return key("message", message_id)


def hold_off_key(username: str) -> str:
    return key("claiming", username)


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

    def queue_get(self, message_id: int) -> Queued[StoredMessage]:
        return Answered(Attempt(Outcome.DONE))

    def remember_settled(self, message: StoredMessage) -> Attempt[None]:
        return Attempt(Outcome.DONE)

    def hold_off(self, username: str) -> Attempt[None]:
        return Attempt(Outcome.DONE)

    def forget(self, message_ids: list[int]) -> Attempt[None]:
        return Attempt(Outcome.DONE)

    def ping(self) -> Attempt[bool]:
        return Attempt(Outcome.DONE, False)


class RedisHotStore(GuardedStore):
    available = True
    store = "hot store"
    fallback = "answering from the database alone"

    def get(self, message_id: int) -> Attempt[StoredMessage]:
        """The cached message (``value`` None on a miss)."""
        return self.queue_get(message_id).attempt()

    def queue_get(self, message_id: int) -> Queued[StoredMessage]:
        """``get``, to be sent with other stores' calls (``round_trips.send``)."""
        name = message_key(message_id)
        return OnRedis(
            self._redis,
            "get",
            lambda client: client.get(name),
            lambda value: None if value is None else _decode(message_id, value),
        )

    def remember_settled(self, message: StoredMessage) -> Attempt[None]:
        """Cache a message of an open inbox that is no longer live, as it will stay (unless held off)."""
        name, value, held_off = message_key(message.id), _encode(message), hold_off_key(message.username)

        def set_unless_held_off(client: redis.Redis) -> None:
            if isinstance(client, redis.Redis):
                # One server: the look and the write are one script, so no failure
                # can come between them and leave an entry that was written unchecked.
                client.eval(SET_UNLESS_HELD_OFF, 2, held_off, name, value, SETTLED_TTL)
                return
            # A Redis Cluster: the two keys may live on different nodes, so no script
            # can hold both. Set, then look for a hold-off, and take the entry back if
            # there is one: a claim that held off before the look finds its hold-off
            # here; one that held off after it deletes the entry itself (``forget``).
            # A failure after the set leaves the entry (docs/DESIGN.md, Security).
            client.set(name, value, ex=SETTLED_TTL)
            if client.exists(held_off):
                client.delete(name)

        return self._redis.call("set", set_unless_held_off)

    def hold_off(self, username: str) -> Attempt[None]:
        """Refuse to cache ``username``'s messages for HOLD_OFF_SECONDS: the inbox is being claimed."""
        name = hold_off_key(username)
        return self._redis.call("hold_off", lambda client: client.set(name, 1, ex=HOLD_OFF_SECONDS))

    def forget(self, message_ids: list[int]) -> Attempt[None]:
        """Remove these messages' entries (a claimed inbox's messages must not be answered from here)."""

        def delete(client: redis.Redis) -> None:
            for start in range(0, len(message_ids), FORGET_BATCH):
                client.delete(*(message_key(message_id) for message_id in message_ids[start : start + FORGET_BATCH]))

        return self._redis.call("forget", delete)

    def ping(self) -> Attempt[bool]:
        return self._redis.call("ping", lambda client: client.ping())


# The process's hot store, or none in the embedded mode.
hot_store = per_process_store(RedisHotStore, NoHotStore)
