"""
Writes: creating a message, collecting an inbox, leasing and acknowledging, and
claiming, rotating and releasing an inbox.

Each is committed when it returns. Sends, collects, rotations and releases go
to the database alone: the hot store holds only settled messages of open
inboxes, which none of them changes, so a 201 or a collected message never
depends on Redis. A claim is the one write that must also reach Redis (see
``claim_inbox``).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core import signing
from django.db import transaction

from restapi import sealing, selectors
from restapi.metrics import (
    COLLECTS_ABANDONED,
    MESSAGES_ACKNOWLEDGED,
    MESSAGES_COLLECTED,
    MESSAGES_CREATED,
    MESSAGES_LEASED,
    WAKE_UPS_NOT_PUBLISHED,
    count_hot_store_call,
)
from restapi.selectors import InboxAuthorization
from restapi.storage import StoredMessage, inboxes, leases, messages, partitions, wakeups
from restapi.storage.hot import hot_store
from restapi.tokens import new_token, token_hash

logger = logging.getLogger(__name__)

# Draws of a message id before giving up. A draw meets a taken id with
# probability rows / 2**53, so a second draw is already rare and a fifth means
# the id source is broken, not unlucky.
ID_DRAWS = 5


class NoFreeMessageId(RuntimeError):
    """Every id drawn for a new message was taken."""


@dataclass(frozen=True, slots=True)
class Collection:
    messages: list[StoredMessage]
    # True when the collect stopped at CHAT_MAX_COLLECT and live messages remain.
    more_waiting: bool


def create_message(*, username: str, text: str, timeout: int) -> StoredMessage:
    """
    Store a message for ``username`` that can be collected for ``timeout`` seconds,
    under a fresh random id, its text sealed when ``CHAT_ENCRYPTION_KEYS`` is set.
    """
    ring = sealing.keyring()
    for _ in range(ID_DRAWS):
        message_id = partitions.draw_message_id(timeout)
        # Sealed for this id only, so a collision seals again for the next one.
        sealed = None if ring is None else ring.seal(message_id, text)
        stored = messages.insert_message(
            message_id=message_id,
            username=username,
            text=text if sealed is None else None,
            sealed_text=sealed,
            timeout=timeout,
        )
        if stored is not None:
            MESSAGES_CREATED.inc()
            # After the commit, so that a waiter it wakes finds the message.
            if not wakeups.announcer().announce(username).done:
                WAKE_UPS_NOT_PUBLISHED.inc()
            return StoredMessage(message_id, username, text, stored.expiration_date)
        logger.warning("message id %d is taken; drawing another", message_id)
    raise NoFreeMessageId(f"{ID_DRAWS} message ids drawn in a row were all taken")


class CollectAbandoned(Exception):
    """The recipient went away before the collect ran, so nothing was collected."""


def _always_there() -> bool:
    return False


class AccessNotGranted(Exception):
    """The authorization handed to a collect or a lease does not allow reading the inbox."""


def _claim_check(username: str, authorization: InboxAuthorization | None) -> dict:
    """
    What the collect or lease statement must find of the inbox's claim: the one
    ``authorization`` was decided on. A claim, rotation or release committed
    since then makes the statement pick nothing (storage.messages.inbox_batch),
    as if the request had come a moment later and been refused or found the
    inbox empty. None: the caller decided nothing, and nothing is checked.
    """
    if authorization is None:
        return {"claim_hash": None, "checked": False}
    if authorization.username != username or not authorization.allowed:
        raise AccessNotGranted(username)
    return {"claim_hash": authorization.token_hash, "checked": True}


def collect_inbox(
    *,
    username: str,
    authorization: InboxAuthorization | None = None,
    recipient_gone: Callable[[], bool] = _always_there,
) -> Collection:
    """
    Hand out ``username``'s live messages, oldest first, expiring each one as it goes.

    With ``authorization`` (selectors.authorize_inbox), only while the inbox's
    claim is still the one it was decided on: see ``_claim_check``.

    ``recipient_gone`` is asked last, just before the statement that expires the
    messages: a collect whose recipient can no longer receive the answer raises
    :class:`CollectAbandoned` and leaves the inbox as it was.
    """
    limit = settings.CHAT["MAX_COLLECT"]
    claim = _claim_check(username, authorization)
    if recipient_gone():
        COLLECTS_ABANDONED.inc()
        logger.info("collect of an inbox abandoned: the client closed its connection first; nothing was collected")
        raise CollectAbandoned
    ring = sealing.keyring()
    with _opening_may_undo(ring):
        collected = _opened(messages.collect_messages(username=username, limit=limit, **claim), ring)
    MESSAGES_COLLECTED.inc(len(collected))
    more_waiting = len(collected) == limit and messages.has_live_messages(username=username)
    return Collection(collected, more_waiting)


class InboxRefused(Exception):
    """The request may not read the inbox: it is claimed, and the token is missing or not its current one."""

    def __init__(self, authorization: InboxAuthorization) -> None:
        super().__init__(authorization.username)
        self.authorization = authorization


def collect_inbox_with_token(
    *, username: str, token: str | None, recipient_gone: Callable[[], bool] = _always_there
) -> Collection:
    """
    Collect for a request that carries ``token`` (or none), raising InboxRefused
    when it may not.

    The collect statement checks the claim it is given in its own snapshot, so it
    is given the claim the token presumes (none for no token, this token's for a
    token) and the claim is read once, by the statement itself, whenever messages
    are handed out. Only a collect that hands out nothing reads the claim again,
    to tell an empty inbox from a refusal, or to collect once more when the
    presumption was wrong (a token sent for an open inbox).
    """
    presumed = selectors.presumed_authorization(username, token)
    collection = collect_inbox(username=username, authorization=presumed, recipient_gone=recipient_gone)
    if collection.messages:
        return collection
    actual = selectors.authorize_inbox(username, token)
    if not actual.allowed:
        raise InboxRefused(actual)
    if actual == presumed:
        return collection
    return collect_inbox(username=username, authorization=actual, recipient_gone=recipient_gone)


@dataclass(frozen=True, slots=True)
class Lease:
    # The opaque id the holder acknowledges with; None when nothing was leased.
    token: str | None
    expires_at: datetime | None
    messages: list[StoredMessage]


class LeaseNotFound(Exception):
    """No such lease was ever given out for this inbox."""


class LeaseEnded(Exception):
    """The lease was given out, but holds nothing any more: it ended, or was acknowledged."""


def _lease_signer(username: str) -> signing.Signer:
    # Signed per inbox: a lease id proves it was given out for this inbox, so an
    # ended lease (409) can be told from one that never was (404) without
    # keeping leases anywhere but on their messages.
    return signing.Signer(salt=f"restapi.lease:{username}")


def lease_inbox(*, username: str, seconds: int, authorization: InboxAuthorization | None = None) -> Lease:
    """
    Hand out ``username``'s collectable messages, oldest first, hidden from everyone
    else for ``seconds``; with ``authorization``, only while the inbox's claim is
    still the one it was decided on (``_claim_check``).
    """
    claim = _claim_check(username, authorization)
    lease_id = secrets.token_urlsafe(16)
    ring = sealing.keyring()
    with _opening_may_undo(ring):
        leased = leases.lease_messages(
            username=username, lease_id=lease_id, seconds=seconds, limit=settings.CHAT["MAX_COLLECT"], **claim
        )
        opened = _opened(leased.messages, ring)
    if not opened:
        return Lease(None, None, [])
    MESSAGES_LEASED.inc(len(opened))
    return Lease(_lease_signer(username).sign(lease_id), leased.leased_until, opened)


def acknowledge_lease(*, username: str, token: str) -> int:
    """Collect what the lease holds; raises LeaseNotFound or LeaseEnded when it holds nothing."""
    try:
        lease_id = _lease_signer(username).unsign(token)
    except signing.BadSignature:
        raise LeaseNotFound from None
    acknowledged = leases.acknowledge(username=username, lease_id=lease_id)
    if not acknowledged:
        raise LeaseEnded
    MESSAGES_ACKNOWLEDGED.inc(acknowledged)
    return acknowledged


def _opened(stored: list[StoredMessage], ring: sealing.Keyring | None) -> list[StoredMessage]:
    return [sealing.readable(message, ring) for message in stored]


def _opening_may_undo(ring: sealing.Keyring | None) -> contextlib.AbstractContextManager:
    """
    With texts sealed, a collect or a lease and the opening of its texts stand
    or fall together: a text that no key opens rolls the statement back, so its
    messages wait for their key instead of being handed out unread. Without
    keys no new text is sealed, and the statement keeps its own autocommit;
    turning keys off while sealed rows remain is not supported (docs/OPERATIONS.md).
    """
    return transaction.atomic() if ring is not None else contextlib.nullcontext()


class InboxAlreadyClaimed(Exception):
    """The username is claimed already; only releasing it opens it again."""


class ClaimChanged(Exception):
    """The token was rotated or the inbox released between the check and the write."""


class CacheUnreachable(Exception):
    """The hot store could not be told about a claim, so the claim was not made."""


def claim_inbox(*, username: str) -> str:
    """
    Claim ``username``: from now on only the returned token reads its messages,
    those sent before the claim included. The token is not kept anywhere; this
    is the only time it exists outside the caller.

    The hot store answers reads without asking who reads, so it must not hold
    any of the inbox's messages once the claim is visible: caching of the inbox
    is held off first, then its entries are removed inside the claim's
    transaction. If Redis cannot be reached for either step, nothing is claimed
    (the caller answers 503): a claim is rare, and one that left readable copies
    behind would not be a claim.
    """
    token = new_token()
    store = hot_store()
    held_off = store.hold_off(username)
    count_hot_store_call("hold_off", held_off.outcome)
    if not held_off.done:
        raise CacheUnreachable(username)
    with transaction.atomic():
        if not inboxes.insert_claim(username=username, token_hash=token_hash(token)):
            raise InboxAlreadyClaimed(username)
        forgotten = store.forget(messages.inbox_message_ids(username))
        count_hot_store_call("forget", forgotten.outcome)
        if not forgotten.done:
            raise CacheUnreachable(username)
    return token


def rotate_inbox_token(*, authorization: InboxAuthorization) -> str:
    """A new token for a claim the caller holds; the old one stops working as this commits."""
    token = new_token()
    replaced = inboxes.replace_token_hash(
        username=authorization.username, old_hash=authorization.token_hash, new_hash=token_hash(token)
    )
    if not replaced:
        raise ClaimChanged(authorization.username)
    return token


def release_inbox(*, authorization: InboxAuthorization) -> None:
    """Open a claimed inbox again, erasing its messages in the same transaction (see storage.inboxes)."""
    if not inboxes.delete_claim(username=authorization.username, token_hash=authorization.token_hash):
        raise ClaimChanged(authorization.username)
