"""
Django's SQLite backend, with a statement clock that orders what one process writes.

SQLite's clock (``strftime(..., 'now')``) counts milliseconds, and a client
sends several messages within one millisecond: ordered by a creation time that
cannot tell them apart, they would be collected in any order. Here the clock
of ``sql.SQLITE`` passes SQLite's own reading through :class:`StatementClock`,
which keeps it for the whole statement (as PostgreSQL's
``statement_timestamp()`` is one instant: a creation time and the expiry
computed from it, a liveness check and the expiry a collect writes, all agree)
and, when the millisecond has not moved since the process's previous
statement, moves it on by a microsecond. So every message a process writes is
created after the ones it wrote before. (Two processes sharing one SQLite file
can still write in the same millisecond; the tie is then broken by id.)

``DATABASE_URL=sqlite://…`` and the embedded default select this backend
(EphemeralMessages/config.py).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from django.db.backends.sqlite3 import base

# The text form of every timestamp the statements write: Django's, always with microseconds.
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
_TICK = timedelta(microseconds=1)


class _ProcessClock:
    """The latest instant any statement of this process was given."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest = datetime.min

    def after_latest(self, reading: datetime) -> datetime:
        with self._lock:
            self._latest = max(reading, self._latest + _TICK)
            return self._latest


_PROCESS_CLOCK = _ProcessClock()


class StatementClock:
    """One connection's clock: SQLite's reading, taken once per statement, ordered within the process."""

    def __init__(self) -> None:
        self._instant: datetime | None = None

    def statement_started(self, statement: str) -> None:
        self._instant = None

    def _now(self, sqlite_now: str) -> datetime:
        if self._instant is None:
            self._instant = _PROCESS_CLOCK.after_latest(datetime.fromisoformat(sqlite_now))
        return self._instant

    def now(self, sqlite_now: str) -> str:
        return self._now(sqlite_now).strftime(TIMESTAMP_FORMAT)

    def plus_seconds(self, sqlite_now: str, seconds: int) -> str:
        return (self._now(sqlite_now) + timedelta(seconds=int(seconds))).strftime(TIMESTAMP_FORMAT)

    def minus_days(self, sqlite_now: str, days: int) -> str:
        return (self._now(sqlite_now) - timedelta(days=int(days))).strftime(TIMESTAMP_FORMAT)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        clock = StatementClock()
        # Called as each statement starts running, before SQLite evaluates its functions.
        connection.set_trace_callback(clock.statement_started)
        connection.create_function("statement_clock", 1, clock.now)
        connection.create_function("statement_clock_plus_seconds", 2, clock.plus_seconds)
        connection.create_function("statement_clock_minus_days", 2, clock.minus_days)
        return connection
