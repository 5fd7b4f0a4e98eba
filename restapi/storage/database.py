"""
The system of record: the three statements the service runs on its hot paths.

Creating and collecting are written as single SQL statements with RETURNING:
the ORM cannot express ``UPDATE … RETURNING``, and one statement is what makes
a collect atomic and a create one round trip. Reading by id is one plain
statement too, which costs a fifth of the CPU of the same query built by the
ORM on every request. Every timestamp is taken from the
database's clock (``statement_timestamp()`` in PostgreSQL, ``'now'`` in SQLite), so application
hosts with skewed clocks agree on what has expired.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection
from django.db.models.functions import Now
from django.utils.dateparse import parse_datetime

from restapi.metrics import MESSAGES_COLLECTED, MESSAGES_CREATED
from restapi.models import Message
from restapi.storage import StoredMessage

TABLE = Message._meta.db_table

# The largest id either database can hold; a larger one cannot exist.
MAX_MESSAGE_ID = 2**63 - 1

# SQLSTATE of a write refused because the server accepts none: a standby, a
# primary being demoted, or a standby whose promotion has not finished.
_READ_ONLY_SQL_TRANSACTION = "25006"


@dataclass(frozen=True)
class _Statements:
    insert: str
    collect: str
    fetch: str


_POSTGRESQL_NOW = "statement_timestamp()"
_SQLITE_NOW = "strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now')"

# Built once from constant fragments; values always travel as parameters.
_STATEMENTS = {
    "postgresql": _Statements(
        insert=(
            f"INSERT INTO {TABLE} (username, text, created_at, expiration_date) "  # noqa: S608
            f"VALUES (%s, %s, {_POSTGRESQL_NOW}, {_POSTGRESQL_NOW} + make_interval(secs => %s)) "
            "RETURNING id, expiration_date"
        ),
        # ARRAY(...) is evaluated once, before the update: a LIMIT ... FOR UPDATE
        # subquery that the planner re-ran per row would skip the rows this very
        # statement had just updated and hand out more than the limit. SKIP LOCKED
        # lets concurrent collectors of one inbox pass over each other's rows
        # instead of queueing: a locked row is being handed out by someone else.
        # Every id in the array is locked by this statement and was re-checked
        # against collected_at IS NULL as it was locked, so the update itself
        # needs no condition; repeating that one there let the planner, with
        # stale statistics, read the whole partial index of uncollected messages
        # on every collect (tests/storage/test_collect_plan.py).
        collect=(
            f"UPDATE {TABLE} SET expiration_date = {_POSTGRESQL_NOW}, collected_at = {_POSTGRESQL_NOW} "  # noqa: S608
            f"WHERE id = ANY(ARRAY("
            f"SELECT id FROM {TABLE} "
            f"WHERE username = %s AND collected_at IS NULL AND expiration_date > {_POSTGRESQL_NOW} "
            "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"
            ")) "
            "RETURNING id, text, expiration_date"
        ),
        fetch=f"SELECT username, text, expiration_date, {_POSTGRESQL_NOW} FROM {TABLE} WHERE id = %s",  # noqa: S608
    ),
    "sqlite": _Statements(
        insert=(
            f"INSERT INTO {TABLE} (username, text, created_at, expiration_date) "  # noqa: S608
            f"VALUES (%s, %s, {_SQLITE_NOW}, strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now', '+' || %s || ' seconds')) "
            "RETURNING id, expiration_date"
        ),
        # SQLite runs one writer at a time and evaluates the uncorrelated IN
        # subquery once, so the statement alone is atomic.
        collect=(
            f"UPDATE {TABLE} SET expiration_date = {_SQLITE_NOW}, collected_at = {_SQLITE_NOW} "  # noqa: S608
            f"WHERE id IN ("
            f"SELECT id FROM {TABLE} "
            f"WHERE username = %s AND collected_at IS NULL AND expiration_date > {_SQLITE_NOW} "
            "ORDER BY id LIMIT %s"
            ") AND collected_at IS NULL "
            "RETURNING id, text, expiration_date"
        ),
        fetch=f"SELECT username, text, expiration_date, {_SQLITE_NOW} FROM {TABLE} WHERE id = %s",  # noqa: S608
    ),
}


def _as_datetime(value: datetime | str) -> datetime:
    """RETURNING hands SQLite timestamps back as text; PostgreSQL's are already aware."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def insert_message(*, username: str, text: str, timeout: int) -> StoredMessage:
    """Store a new message that lives ``timeout`` seconds; committed on return."""
    with connection.cursor() as cursor:
        cursor.execute(_STATEMENTS[connection.vendor].insert, [username, text, timeout])
        message_id, expiration_date = cursor.fetchone()
    MESSAGES_CREATED.inc()
    return StoredMessage(message_id, username, text, _as_datetime(expiration_date))


def collect_messages(*, username: str, limit: int) -> list[StoredMessage]:
    """
    Hand out up to ``limit`` of ``username``'s live messages, oldest first, and
    expire them, in one statement.

    A row qualifies only while ``collected_at`` is NULL, and the statement locks
    every row it picks. A concurrent collector passes over a row that is locked;
    one that reaches a row whose collector has already committed locks the new
    version and re-checks the condition on it (PostgreSQL re-evaluates the WHERE
    clause of a row that changed under it), which fails. So a message is never
    returned twice, whatever the clocks of the two transactions say.
    """
    with connection.cursor() as cursor:
        cursor.execute(_STATEMENTS[connection.vendor].collect, [username, limit])
        rows = cursor.fetchall()
    MESSAGES_COLLECTED.inc(len(rows))
    # RETURNING follows no particular order.
    rows.sort()
    return [StoredMessage(row[0], username, row[1], _as_datetime(row[2])) for row in rows]


def dropped_read_only_server(error: BaseException) -> bool:
    """
    Whether ``error`` is a write refused by a server that is not the primary (now);
    if so, the connection is closed.

    During a failover a connection can reach a server that is not, or not yet,
    writable. Closing it makes the next request connect afresh, and find the
    primary (libpq's ``target_session_attrs=read-write``, or the pooler's router).
    """
    if getattr(error.__cause__, "sqlstate", None) != _READ_ONLY_SQL_TRANSACTION:
        return False
    connection.close()
    return True


def has_live_messages(*, username: str) -> bool:
    """Whether ``username`` has a message that a collect would return now."""
    return Message.objects.filter(username=username, collected_at__isnull=True, expiration_date__gt=Now()).exists()


def fetch_message(message_id: int) -> tuple[StoredMessage, datetime] | None:
    """The message with this id and the database's current time, or None."""
    if not 1 <= message_id <= MAX_MESSAGE_ID:
        return None
    with connection.cursor() as cursor:
        cursor.execute(_STATEMENTS[connection.vendor].fetch, [message_id])
        row = cursor.fetchone()
    if row is None:
        return None
    username, text, expiration_date, database_now = row
    return StoredMessage(message_id, username, text, _as_datetime(expiration_date)), _as_datetime(database_now)
