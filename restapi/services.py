"""
Writes: creating a message and collecting an inbox.

Both go to the database alone and are committed when they return. The hot
store holds only settled messages, which no write changes, so neither needs
to touch Redis: a 201 or a collected message never depends on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from restapi.metrics import COLLECTS_ABANDONED, MESSAGES_COLLECTED, MESSAGES_CREATED
from restapi.storage import StoredMessage, messages

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Collection:
    messages: list[StoredMessage]
    # True when the collect stopped at CHAT_MAX_COLLECT and live messages remain.
    more_waiting: bool


def create_message(*, username: str, text: str, timeout: int) -> StoredMessage:
    """Store a message for ``username`` that can be collected for ``timeout`` seconds."""
    message = messages.insert_message(username=username, text=text, timeout=timeout)
    MESSAGES_CREATED.inc()
    return message


class CollectAbandoned(Exception):
    """The recipient went away before the collect ran, so nothing was collected."""


def _always_there() -> bool:
    return False


def collect_inbox(*, username: str, recipient_gone: Callable[[], bool] = _always_there) -> Collection:
    """
    Hand out ``username``'s live messages, oldest first, expiring each one as it goes.

    ``recipient_gone`` is asked last, just before the statement that expires the
    messages: a collect whose recipient can no longer receive the answer raises
    :class:`CollectAbandoned` and leaves the inbox as it was.
    """
    limit = settings.CHAT["MAX_COLLECT"]
    if recipient_gone():
        COLLECTS_ABANDONED.inc()
        logger.info("collect of an inbox abandoned: the client closed its connection first; nothing was collected")
        raise CollectAbandoned
    collected = messages.collect_messages(username=username, limit=limit)
    MESSAGES_COLLECTED.inc(len(collected))
    more_waiting = len(collected) == limit and messages.has_live_messages(username=username)
    return Collection(collected, more_waiting)
