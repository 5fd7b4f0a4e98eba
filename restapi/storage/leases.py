"""
Leases: handing messages out until acknowledged, each operation one statement.

A lease hides the messages it takes from every collect and every other lease
until ``leased_until`` (the database clock). Acknowledging collects them as a
collect would; a lease that ends unacknowledged simply stops hiding them, so
they are collectable again unless their own ``expiration_date`` has passed.
No process remembers a lease: it is its rows, so it holds across hosts and
outlives whoever took it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from restapi.storage import StoredMessage, partitions
from restapi.storage.messages import TABLE, claim_parameters, delivery_key, in_window, inbox_batch, sealed_bytes
from restapi.storage.sql import Dialect, as_datetime, dialect, run


@dataclass(frozen=True, slots=True)
class Statements:
    lease: str
    acknowledge: str


@lru_cache(maxsize=4)
def statements(vendor: Dialect, window: partitions.Window) -> Statements:
    """Each statement once per live window (messages.window_statements), with the vendor's fragments filled in."""
    now = vendor.now
    return Statements(
        # The rows are picked and locked exactly as a collect picks them, so a
        # lease and a collect (or two leases) never take the same message. A
        # lease of at least a second ends after the statement that took it, so
        # a statement that re-checks a row just leased finds it held.
        lease=(
            f"UPDATE {TABLE} SET lease_id = %s, leased_until = {vendor.now_plus_seconds} "  # noqa: S608
            f"WHERE {in_window(window)} AND {vendor.id_in_locked_rows.format(rows=inbox_batch(vendor, window))} "
            "RETURNING id, text, sealed_text, expiration_date, leased_until, created_at"
        ),
        # Collects what the lease still holds. A message whose own expiry passed
        # during the lease keeps that expiration_date: it was settled then, and
        # a settled message never changes (the hot store relies on it).
        acknowledge=(
            f"UPDATE {TABLE} SET collected_at = {now}, "  # noqa: S608
            f"expiration_date = {vendor.earlier.format(a='expiration_date', b=now)} "
            f"WHERE lease_id = %s AND username = %s AND collected_at IS NULL AND leased_until > {now} "
            f"AND {in_window(window)} RETURNING id"
        ),
    )


@dataclass(frozen=True, slots=True)
class LeasedMessages:
    messages: list[StoredMessage]
    # When the lease ends, by the database clock; None when nothing was leased.
    leased_until: datetime | None


def lease_messages(
    *, username: str, lease_id: str, seconds: int, limit: int, claim_hash: str | None = None, checked: bool = False
) -> LeasedMessages:
    """
    Lease up to ``limit`` of ``username``'s collectable messages, oldest first, for
    ``seconds``; nothing when ``checked`` and the inbox's claim digest is no longer
    ``claim_hash`` (messages.inbox_batch).
    """
    claim = claim_parameters(username=username, claim_hash=claim_hash, checked=checked)
    rows = run(statements(dialect(), partitions.live_window()).lease, [lease_id, seconds, username, *claim, limit])
    if not rows:
        return LeasedMessages([], None)
    leased = [
        StoredMessage(message_id, username, text, as_datetime(expiry), sealed_bytes(sealed), as_datetime(created_at))
        for message_id, text, sealed, expiry, _, created_at in rows
    ]
    # RETURNING follows no particular order.
    leased.sort(key=delivery_key)
    return LeasedMessages(leased, as_datetime(rows[0][4]))


def acknowledge(*, username: str, lease_id: str) -> int:
    """Collect what lease ``lease_id`` of ``username`` still holds; how many messages that was."""
    # A lease ends within the hour, and its messages were live when it began:
    # they are still in the live window.
    return len(run(statements(dialect(), partitions.live_window()).acknowledge, [lease_id, username]))
