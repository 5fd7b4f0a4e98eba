"""The database connection itself: what to do with one that reached the wrong server."""

from __future__ import annotations

from django.db import connection

# SQLSTATE of a write refused because the server accepts none: a standby, a
# primary being demoted, or a standby whose promotion has not finished.
_READ_ONLY_SQL_TRANSACTION = "25006"


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
