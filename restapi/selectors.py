"""Reads: looking a message up by id, from the hot store when it has it."""

from __future__ import annotations

from restapi.storage import StoredMessage, database
from restapi.storage.hot import hot_store


def get_message(message_id: int) -> StoredMessage | None:
    """The message with ``message_id``, expired or not; None if there is none."""
    store = hot_store()
    cached = store.get(message_id)
    if cached is not None:
        return cached
    found = database.fetch_message(message_id)
    if found is None:
        return None
    message, database_now = found
    # Only a settled message may be cached: a live one can still be collected.
    if message.expiration_date <= database_now:
        store.remember_settled(message)
    return message
