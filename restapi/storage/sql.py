"""
The SQL that differs between PostgreSQL and SQLite, as small fragments.

Every statement of the storage layer is written once and takes these pieces
from the dialect of the connection it runs on, the way Django's ``Now()``
picks ``STATEMENT_TIMESTAMP()`` or ``STRFTIME(...)``. Fragments are constants;
a request's values always travel as parameters (``%s``), which is also why a
literal ``%`` is doubled. The only numbers written into a statement are the
server's own id bounds of the ring's partitions (storage.messages.in_window).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection
from django.utils.dateparse import parse_datetime

_SQLITE_NOW = "strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now')"


@dataclass(frozen=True, slots=True)
class Dialect:
    # The database clock: the start of the current statement, never of the
    # transaction (which would stand still for as long as a transaction lasts).
    # One clock decides every expiry, so application hosts with skewed clocks agree.
    now: str
    # The clock moved forward by a number of seconds given as a parameter.
    now_plus_seconds: str
    # The clock moved back by a number of days given as a parameter.
    now_minus_days: str
    # ``id`` among the rows a subquery (``{rows}``) selects, each of them locked
    # for this statement, passing over rows another statement has locked.
    id_in_locked_rows: str
    # The earlier of two timestamps ``{a}`` and ``{b}``.
    earlier: str
    # Seconds from the clock until the timestamp ``{moment}`` (negative once it has passed).
    seconds_until: str


POSTGRESQL = Dialect(
    now="statement_timestamp()",
    now_plus_seconds="statement_timestamp() + make_interval(secs => %s)",
    now_minus_days="statement_timestamp() - make_interval(days => %s)",
    # ARRAY(...) is evaluated once, before the outer statement: a LIMIT ... FOR
    # UPDATE subquery that the planner re-ran per row would skip the rows this
    # very statement had just updated and hand out more than the limit. SKIP
    # LOCKED lets concurrent statements pass over each other's rows instead of
    # queueing: a locked row is being handed out by someone else.
    id_in_locked_rows="id = ANY(ARRAY({rows} FOR UPDATE SKIP LOCKED))",
    earlier="LEAST({a}, {b})",
    seconds_until="EXTRACT(EPOCH FROM ({moment} - statement_timestamp()))",
)

SQLITE = Dialect(
    # SQLite's clock, kept for the statement and ordered within the process
    # by the functions of restapi/storage/sqlite.
    now=f"statement_clock({_SQLITE_NOW})",
    now_plus_seconds=f"statement_clock_plus_seconds({_SQLITE_NOW}, %s)",
    now_minus_days=f"statement_clock_minus_days({_SQLITE_NOW}, %s)",
    # SQLite runs one writer at a time and evaluates an uncorrelated IN
    # subquery once, so the statement alone is atomic; it has no row locks.
    id_in_locked_rows="id IN ({rows})",
    # SQLite's timestamps are text in one format, so the smaller is the earlier.
    earlier="MIN({a}, {b})",
    # The statement's clock, as in every other fragment; julianday's doubles are
    # exact to about 50 microseconds here, which a waiter's look can spare.
    seconds_until=f"(julianday({{moment}}) - julianday(statement_clock({_SQLITE_NOW}))) * 86400.0",
)

DIALECTS = {"postgresql": POSTGRESQL, "sqlite": SQLITE}


def dialect() -> Dialect:
    """The fragments for the database this process is connected to."""
    return DIALECTS[connection.vendor]


def as_datetime(value: datetime | str) -> datetime:
    """A timestamp as the database returned it, as an aware datetime (SQLite's come back as text)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def run(statement: str, params: list | tuple = ()) -> list[tuple]:
    """
    Run one statement on the default connection; every row it returns.

    A statement with values runs prepared where the backend offers it
    (restapi/storage/postgresql): those are the requests' statements, run again
    and again with new values. One without is a command of its own (SET, LOCK,
    ANALYZE, TRUNCATE of a partition named in its text) and runs as it is.
    """
    if params and getattr(connection, "prepared_statements", False):
        return connection.execute_prepared(statement, params)
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []
