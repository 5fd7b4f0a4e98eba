"""Reads: looking a message up by id, from the hot store when it has it, and who may read an inbox."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from restapi import sealing
from restapi.metrics import HOT_STORE_LOOKUPS, count_hot_store_call
from restapi.storage import StoredMessage, inboxes, messages
from restapi.storage.hot import NoHotStore, RedisHotStore, hot_store
from restapi.storage.redis_client import Attempt
from restapi.tokens import token_hash, token_matches

HotStore = RedisHotStore | NoHotStore


class InboxAccess(enum.Enum):
    """What a request may do with an inbox, given the token it presents."""

    # Not claimed: anyone may collect it and read its messages; a token is not looked at.
    OPEN = enum.auto()
    # Claimed, and the token presented is its current one.
    GRANTED = enum.auto()
    # Claimed, and no token was presented.
    NO_TOKEN = enum.auto()
    # Claimed, and the token presented is not its current one.
    WRONG_TOKEN = enum.auto()


@dataclass(frozen=True, slots=True)
class InboxAuthorization:
    username: str
    access: InboxAccess
    # The digest of the claim's token when access is GRANTED: what a rotation or
    # release expects to find still in place when it writes.
    token_hash: str | None = None

    @property
    def allowed(self) -> bool:
        """Whether the request may read the inbox's messages."""
        return self.access in (InboxAccess.OPEN, InboxAccess.GRANTED)


def authorize_inbox(username: str, token: str | None) -> InboxAuthorization:
    """
    Who may read ``username``'s messages: the one check every endpoint that
    reads or manages an inbox makes.

    The claim is read from the database on every call, never from a cache, so a
    rotated or released token stops working at once on every host.
    """
    return _authorization(username, inboxes.current_token_hash(username), token)


def presumed_authorization(username: str, token: str | None) -> InboxAuthorization:
    """
    What ``token`` is allowed if it is right, decided without reading the claim:
    an open inbox when there is no token, the claim of this token when there is
    one. Only a statement that checks the claim itself (storage.messages.inbox_batch)
    may act on it; ``services.collect_inbox_with_token`` reads the claim when it does not hold.
    """
    if token is None:
        return InboxAuthorization(username, InboxAccess.OPEN)
    return InboxAuthorization(username, InboxAccess.GRANTED, token_hash(token))


def _authorization(username: str, stored_hash: str | None, token: str | None) -> InboxAuthorization:
    """The decision for a claim whose digest is ``stored_hash`` (None: open), compared in constant time."""
    if stored_hash is None:
        return InboxAuthorization(username, InboxAccess.OPEN)
    if token is None:
        return InboxAuthorization(username, InboxAccess.NO_TOKEN)
    if not token_matches(token, stored_hash):
        return InboxAuthorization(username, InboxAccess.WRONG_TOKEN)
    return InboxAuthorization(username, InboxAccess.GRANTED, stored_hash)


class MessageRead:
    """
    A read by id whose hot-store look-up (``look_up``) is queued when the read
    is made, so that another store's call can take it along in its round trip
    (``storage.round_trips``); ``message()`` sends it if nothing has.
    """

    def __init__(self, message_id: int) -> None:
        self.message_id = message_id
        self._store = hot_store()
        self.look_up = self._store.queue_get(message_id)

    def message(self, token: str | None) -> StoredMessage | None:
        """``get_message(message_id, token)``."""
        found = _stored_message(self._store, self.look_up.attempt(), self.message_id, token)
        return None if found is None else sealing.readable(found, sealing.keyring())


def get_message(message_id: int, token: str | None) -> StoredMessage | None:
    """
    The message with ``message_id``, expired or not, if this token may read it:
    any message of an open inbox, a claimed inbox's only with its current token.
    None otherwise, exactly as for an id that does not exist, so that nobody
    else learns that it does.

    The hot store holds messages of open inboxes only (storage.hot), so a hit
    is answered as it is; on a miss the row comes from the database with its
    inbox's claim, in one statement.
    """
    return MessageRead(message_id).message(token)


def _stored_message(
    store: HotStore, cached: Attempt[StoredMessage], message_id: int, token: str | None
) -> StoredMessage | None:
    """The message as stored, from the hot store's answer ``cached`` when it has it, if this token may read it."""
    count_hot_store_call("get", cached.outcome)
    if cached.done and store.available:
        HOT_STORE_LOOKUPS.labels("miss" if cached.value is None else "hit").inc()
    if cached.value is not None:
        return cached.value
    found = messages.fetch_message(message_id)
    if found is None or not _authorization(found.message.username, found.claim_hash, token).allowed:
        return None
    # Only a message that is no longer live may be cached (a live one can still be
    # collected), and only one of an open inbox (a hit asks nobody for a token).
    if not found.live and found.claim_hash is None:
        count_hot_store_call("set", store.remember_settled(found.message).outcome)
    return found.message


def inbox_outlook(username: str) -> messages.Outlook:
    """Whether a collect of ``username``'s inbox would hand out a message now, and else when a lease ends."""
    return messages.inbox_outlook(username=username)
