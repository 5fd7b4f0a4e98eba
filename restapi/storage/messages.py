"""
The system of record for messages: every statement the service runs on them.

Creating and collecting are single SQL statements with RETURNING: the ORM
cannot express ``UPDATE … RETURNING``, and one statement is what makes a
collect atomic and a create one round trip. Reading by id is one plain
statement too, which costs a fifth of the CPU of the same query built by the
ORM on every request. Every timestamp is taken from the database clock
(``sql.Dialect.now``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache

from restapi.message_ids import MAX_MESSAGE_ID, SLOTS, slot_bounds, slot_of
from restapi.models import Inbox, Message
from restapi.storage import StoredMessage, partitions
from restapi.storage.sql import Dialect, as_datetime, dialect, run

TABLE = Message._meta.db_table
INBOX_TABLE = Inbox._meta.db_table

# The order in which an inbox hands out its messages: the oldest first, and
# of messages created at the same instant the smaller id first. Ids are random,
# so they alone say nothing about age. The partial index
# message_inbox_queue_idx (username, created_at, id) holds exactly this order.
DELIVERY_ORDER = "created_at, id"


def delivery_key(message: StoredMessage) -> tuple[datetime, int]:
    """DELIVERY_ORDER in Python, for rows that RETURNING hands back in no particular order."""
    return message.created_at, message.id


def live(clock: str) -> str:
    """
    The one definition of a live message: not collected, and not expired.

    The hot store caches a message once it is not live, trusting that it never
    becomes live again; whatever widens this condition must keep that true.
    """
    return f"collected_at IS NULL AND expiration_date > {clock}"


def collectable(clock: str) -> str:
    """
    A live message that no lease holds: what a collect or a lease hands out now.

    A leased message stays live (a read shows it so, and it is never cached)
    but is hidden from everyone but its holder until ``leased_until``.
    """
    return f"{live(clock)} AND {unleased(clock)}"


def unleased(clock: str) -> str:
    """Held by no lease (never leased, or its lease has ended): the part of ``collectable`` that is not ``live``."""
    return f"(leased_until IS NULL OR leased_until <= {clock})"


def in_window(window: partitions.Window, column: str = "id") -> str:
    """
    ``column`` (an id) in one of the window's id ranges (partitions.live_window,
    or one slot's), the bounds written into the statement as numbers.

    The window is the server's, never a request's, and moves once a day. Written
    in, it lets PostgreSQL leave the other partitions out when it plans the
    statement, generic plan included; passed as parameters it only prunes them
    as each execution starts, after locking every partition of the ring, which
    costs the server more than the rest of a collect (bench/pgbench_statements).
    """
    return "(" + " OR ".join(f"{column} >= {int(low)} AND {column} < {int(high)}" for low, high in window) + ")"


def inbox_batch(vendor: Dialect, window: partitions.Window) -> str:
    """
    The ids of an inbox's collectable messages in ``window``, oldest first, if
    its claim is still the one the caller was authorized against.

    Parameters: ``username``, then ``claim_parameters``, then a limit. Who may
    collect is decided before the statement runs (selectors.authorize_inbox);
    a claim, rotation or release that commits in between would otherwise let a
    request collect on a decision that no longer holds, such as a client
    without a token emptying an inbox claimed a moment before. The statement
    compares the claim's digest as of its own snapshot with the one the
    decision saw ('' for an open inbox) and picks nothing when they differ, so
    the check and the collect happen at one instant.
    """
    return (
        f"SELECT id FROM {TABLE} WHERE username = %s AND {collectable(vendor.now)} "  # noqa: S608
        f"AND (%s OR COALESCE((SELECT token_hash FROM {INBOX_TABLE} WHERE username = %s), '') = %s) "
        f"AND {in_window(window)} ORDER BY {DELIVERY_ORDER} LIMIT %s"
    )


# The digest an open inbox stands for in inbox_batch: no token digest is empty.
OPEN_INBOX = ""


def claim_parameters(*, username: str, claim_hash: str | None, checked: bool) -> list:
    """
    The parameters of inbox_batch's claim condition: the statement picks rows
    only while ``username``'s claim digest is ``claim_hash`` (None: the inbox is
    open). ``checked`` False skips the comparison, for a caller that made no
    access decision (a management command or a test).
    """
    return [not checked, username, OPEN_INBOX if claim_hash is None else claim_hash]


@dataclass(frozen=True, slots=True)
class Statements:
    insert: str
    inbox_ids: str


@cache
def statements(vendor: Dialect) -> Statements:
    """Each statement that reaches any partition once, with the vendor's fragments filled in."""
    now = vendor.now
    return Statements(
        # The id is drawn by the caller; one that is taken inserts nothing and
        # returns no row, so a collision costs no error and no extra statement.
        insert=(
            f"INSERT INTO {TABLE} (id, username, text, sealed_text, created_at, expiration_date) "  # noqa: S608
            f"VALUES (%s, %s, %s, %s, {now}, {vendor.now_plus_seconds}) "
            "ON CONFLICT (id) DO NOTHING "
            "RETURNING expiration_date"
        ),
        inbox_ids=f"SELECT id FROM {TABLE} WHERE username = %s",  # noqa: S608
    )


@dataclass(frozen=True, slots=True)
class WindowStatements:
    collect: str
    has_live: str
    outlook: str


# A window lasts a day; the one before it may still be in use for a moment.
@lru_cache(maxsize=4)
def window_statements(vendor: Dialect, window: partitions.Window) -> WindowStatements:
    """The statements over the live messages of ``window``, each once per window."""
    now = vendor.now
    return WindowStatements(
        # Every row the subquery picks is locked by this statement and was
        # checked to be live as it was locked, so the update itself has no
        # condition: one there lets PostgreSQL's planner, with stale statistics,
        # read the whole partial index of uncollected messages on every collect
        # (tests/storage/test_collect_plan.py).
        collect=(
            f"UPDATE {TABLE} SET expiration_date = {now}, collected_at = {now} "  # noqa: S608
            # The window twice: on the rows updated as on the rows picked, so
            # that the plan of each part holds the window's partitions alone.
            f"WHERE {in_window(window)} AND {vendor.id_in_locked_rows.format(rows=inbox_batch(vendor, window))} "
            "RETURNING id, text, sealed_text, expiration_date, created_at"
        ),
        has_live=(
            f"SELECT EXISTS (SELECT 1 FROM {TABLE} WHERE username = %s AND {collectable(now)} "  # noqa: S608
            f"AND {in_window(window)})"
        ),
        # What a waiter looks at: mail now, and else when the first lease holding
        # live messages of the inbox ends (they may be collectable then).
        # One pass over the inbox's live rows answers both, and names the
        # partitioned table once: planning it costs more than running it.
        outlook=(
            f"SELECT MAX(CASE WHEN {unleased(now)} THEN 1 ELSE 0 END), "  # noqa: S608
            f"{vendor.seconds_until.format(moment=f'MIN(CASE WHEN leased_until > {now} THEN leased_until END)')} "
            f"FROM {TABLE} WHERE username = %s AND {live(now)} AND {in_window(window)}"
        ),
    )


@lru_cache(maxsize=SLOTS)
def fetch_statement(vendor: Dialect, slot: int) -> str:
    """
    The read of one message of ``slot`` by id. The slot's bounds are written in,
    as the window is in window_statements, so that the plan holds its one
    partition; the inbox's claim comes with the row, so that who may read it
    is decided on the state of one instant and at no extra round trip.
    """
    return (
        f"SELECT m.username, m.text, m.sealed_text, m.expiration_date, {live(vendor.now)}, i.token_hash "  # noqa: S608
        f"FROM {TABLE} m LEFT JOIN {INBOX_TABLE} i ON i.username = m.username "
        f"WHERE m.id = %s AND {in_slot(slot)}"
    )


def in_slot(slot: int) -> str:
    """The read by id's condition on its slot's bounds (``in_window`` of the one slot)."""
    return in_window((slot_bounds(slot),), column="m.id")


def insert_message(
    *, message_id: int, username: str, text: str | None, sealed_text: bytes | None, timeout: int
) -> StoredMessage | None:
    """
    Store a new message that lives ``timeout`` seconds, committed on return;
    None, with nothing stored, if ``message_id`` is taken.
    """
    rows = run(statements(dialect()).insert, [message_id, username, text, sealed_text, timeout])
    if not rows:
        return None
    ((expiration_date,),) = rows
    return StoredMessage(message_id, username, text, as_datetime(expiration_date), sealed_text)


def collect_messages(
    *, username: str, limit: int, claim_hash: str | None = None, checked: bool = False
) -> list[StoredMessage]:
    """
    Hand out up to ``limit`` of ``username``'s live messages, oldest first, and
    expire them, in one statement; nothing when ``checked`` and the inbox's
    claim digest is no longer ``claim_hash`` (see inbox_batch).

    A row qualifies only while ``collected_at`` is NULL, and the statement locks
    every row it picks. A concurrent collector passes over a row that is locked;
    one that reaches a row whose collector has already committed locks the new
    version and re-checks the condition on it (PostgreSQL re-evaluates the WHERE
    clause of a row that changed under it), which fails. So a message is never
    returned twice, whatever the clocks of the two transactions say.
    """
    claim = claim_parameters(username=username, claim_hash=claim_hash, checked=checked)
    rows = run(window_statements(dialect(), partitions.live_window()).collect, [username, *claim, limit])
    collected = [
        StoredMessage(message_id, username, text, as_datetime(expiry), sealed_bytes(sealed), as_datetime(created_at))
        for message_id, text, sealed, expiry, created_at in rows
    ]
    return sorted(collected, key=delivery_key)


def has_live_messages(*, username: str) -> bool:
    """Whether ``username`` has a message that a collect would return now (live, and held by no lease)."""
    ((exists,),) = run(window_statements(dialect(), partitions.live_window()).has_live, [username])
    return bool(exists)


@dataclass(frozen=True, slots=True)
class Outlook:
    # Whether a collect would hand out a message now.
    has_mail: bool
    # Seconds until the first lease on the inbox's live messages ends; None when none is held.
    lease_ends_in: float | None


def inbox_outlook(*, username: str) -> Outlook:
    """Whether ``username`` has collectable mail now, and when a lease may return some (one statement)."""
    ((exists, lease_ends_in),) = run(window_statements(dialect(), partitions.live_window()).outlook, [username])
    return Outlook(bool(exists), None if lease_ends_in is None else max(0.0, float(lease_ends_in)))


@dataclass(frozen=True, slots=True)
class FetchedMessage:
    message: StoredMessage
    # Whether a collect could still hand it out; once not, it never changes again.
    live: bool
    # The digest of the token of the claim on its inbox; None when the inbox is open.
    claim_hash: str | None


def fetch_message(message_id: int) -> FetchedMessage | None:
    """The message with this id, expired or not, or None if there is none (or the id cannot exist)."""
    if not 1 <= message_id <= MAX_MESSAGE_ID:
        return None
    rows = run(fetch_statement(dialect(), slot_of(message_id)), [message_id])
    if not rows:
        return None
    ((username, text, sealed, expiration_date, is_live, claim_hash),) = rows
    message = StoredMessage(message_id, username, text, as_datetime(expiration_date), sealed_bytes(sealed))
    return FetchedMessage(message, bool(is_live), claim_hash)


def inbox_message_ids(username: str) -> list[int]:
    """The id of every stored message of ``username``, live or not."""
    return [message_id for (message_id,) in run(statements(dialect()).inbox_ids, [username])]


def sealed_bytes(value: bytes | memoryview | None) -> bytes | None:
    """A bytea as psycopg hands it over (memoryview) or SQLite's BLOB, as bytes."""
    return None if value is None else bytes(value)
