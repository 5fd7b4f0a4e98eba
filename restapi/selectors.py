"""Reads: looking a message up by id, from the hot store when it has it."""

from __future__ import annotations

from restapi import sealing
from restapi.metrics import HOT_STORE_LOOKUPS, count_hot_store_call
from restapi.storage import StoredMessage, messages
from restapi.storage.hot import hot_store


def get_message(message_id: int) -> StoredMessage | None:
    """The message with ``message_id``, expired or not, its text opened; None if there is none."""
    found = _stored_message(message_id)
    return None if found is None else sealing.readable(found, sealing.keyring())


def _stored_message(message_id: int) -> StoredMessage | None:
    """The message as stored, from the hot store when it has it."""
    store = hot_store()
    cached = store.get(message_id)
    count_hot_store_call("get", cached.outcome)
    if cached.done and store.available:
        HOT_STORE_LOOKUPS.labels("miss" if cached.value is None else "hit").inc()
    if cached.value is not None:
        return cached.value
    found = messages.fetch_message(message_id)
    if found is None:
        return None
    # Only a message that is no longer live may be cached: a live one can still be collected.
    if not found.live:
        count_hot_store_call("set", store.remember_settled(found.message).outcome)
    return found.message


def inbox_has_mail(username: str) -> bool:
    """Whether a collect of ``username``'s inbox would hand out a message now."""
    return messages.has_live_messages(username=username)
