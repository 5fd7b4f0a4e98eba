"""
Writes: creating a message and collecting an inbox.

Each function commits to the database first and only then touches the hot
store, so a 201 or a collected message never depends on Redis.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from restapi.storage import StoredMessage, database
from restapi.storage.hot import hot_store


@dataclass(frozen=True, slots=True)
class Collection:
    messages: list[StoredMessage]
    # True when the collect stopped at CHAT_MAX_COLLECT and live messages remain.
    more_waiting: bool


def create_message(*, username: str, text: str, timeout: int) -> StoredMessage:
    """Store a message for ``username`` that can be collected for ``timeout`` seconds."""
    message = database.insert_message(username=username, text=text, timeout=timeout)
    hot_store().remember(message, ttl=timeout)
    return message


def collect_inbox(*, username: str) -> Collection:
    """Hand out ``username``'s live messages, oldest first, expiring each one as it goes."""
    limit = settings.CHAT["MAX_COLLECT"]
    messages = database.collect_messages(username=username, limit=limit)
    hot_store().remember_collected(messages)
    more_waiting = len(messages) == limit and database.has_live_messages(username=username)
    return Collection(messages, more_waiting)
