"""
Writes: creating a message and collecting an inbox.

Both go to the database alone and are committed when they return. The hot
store holds only settled messages, which no write changes, so neither needs
to touch Redis: a 201 or a collected message never depends on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from restapi.storage import StoredMessage, database


@dataclass(frozen=True, slots=True)
class Collection:
    messages: list[StoredMessage]
    # True when the collect stopped at CHAT_MAX_COLLECT and live messages remain.
    more_waiting: bool


def create_message(*, username: str, text: str, timeout: int) -> StoredMessage:
    """Store a message for ``username`` that can be collected for ``timeout`` seconds."""
    return database.insert_message(username=username, text=text, timeout=timeout)


def collect_inbox(*, username: str) -> Collection:
    """Hand out ``username``'s live messages, oldest first, expiring each one as it goes."""
    limit = settings.CHAT["MAX_COLLECT"]
    messages = database.collect_messages(username=username, limit=limit)
    more_waiting = len(messages) == limit and database.has_live_messages(username=username)
    return Collection(messages, more_waiting)
