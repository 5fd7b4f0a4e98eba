"""
The system of record for claimed inboxes: every statement the service runs on them.

A claimed username has one row holding the digest of its current token; an
open one has none. Nothing here is cached, in the process or in Redis: every
check reads the row, so a rotated or released token stops working on every
host the moment its statement commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.db import transaction

from restapi.models import Inbox, Message
from restapi.storage.sql import Dialect, dialect, run

TABLE = Inbox._meta.db_table
MESSAGE_TABLE = Message._meta.db_table


@dataclass(frozen=True, slots=True)
class Statements:
    claim: str
    token_hash: str
    replace_token: str
    release: str
    erase_messages: str


@cache
def statements(vendor: Dialect) -> Statements:
    """Each statement once, with the vendor's fragments filled in."""
    return Statements(
        # One statement decides between two concurrent claims of a name: the
        # primary key lets one insert through, and the other returns no row.
        claim=(
            f"INSERT INTO {TABLE} (username, token_hash, claimed_at) VALUES (%s, %s, {vendor.now}) "  # noqa: S608
            "ON CONFLICT (username) DO NOTHING RETURNING username"
        ),
        token_hash=f"SELECT token_hash FROM {TABLE} WHERE username = %s",  # noqa: S608
        # The digest in the condition makes a rotation compare-and-set: of two
        # rotations with the same token, the second finds the digest changed.
        replace_token=(
            f"UPDATE {TABLE} SET token_hash = %s WHERE username = %s AND token_hash = %s "  # noqa: S608
            "RETURNING username"
        ),
        release=f"DELETE FROM {TABLE} WHERE username = %s AND token_hash = %s RETURNING username",  # noqa: S608
        erase_messages=f"DELETE FROM {MESSAGE_TABLE} WHERE username = %s",  # noqa: S608
    )


def insert_claim(*, username: str, token_hash: str) -> bool:
    """Claim ``username`` with the token whose digest is ``token_hash``; False if it is claimed already."""
    return bool(run(statements(dialect()).claim, [username, token_hash]))


def current_token_hash(username: str) -> str | None:
    """The digest of ``username``'s current token, or None when the inbox is open."""
    rows = run(statements(dialect()).token_hash, [username])
    return rows[0][0] if rows else None


def replace_token_hash(*, username: str, old_hash: str, new_hash: str) -> bool:
    """Swap the token digest if it is still ``old_hash``; whether it was."""
    return bool(run(statements(dialect()).replace_token, [new_hash, username, old_hash]))


def delete_claim(*, username: str, token_hash: str) -> bool:
    """
    Open ``username`` again if its token digest is still ``token_hash``, erasing
    every message it holds in the same transaction; whether it was released.

    The messages go with the claim, live and expired alike: a live one would be
    handed to whoever collects the open inbox next, and an expired one would
    become readable by id to anyone. In PostgreSQL a collect or read that runs
    concurrently sees either the claim with its messages or neither. A message
    sent while the release commits is written to the open inbox, as it would
    be a moment later.
    """
    statement = statements(dialect())
    with transaction.atomic():
        if not run(statement.release, [username, token_hash]):
            return False
        run(statement.erase_messages, [username])
    return True
