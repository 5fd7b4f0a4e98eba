"""
Django's PostgreSQL backend, with a connection health check that costs no round trip.

With ``CONN_HEALTH_CHECKS``, Django checks a persistent connection before its
first use in each request by running ``SELECT 1``: one more round trip to the
database on every request that touches it, a tenth to a quarter of the
throughput of sends and collects under load. An idle connection has nothing to
read, so this backend asks the operating system instead: if the socket of an idle
connection is readable, the server has closed it or sent its last words (a
restart, a terminated backend), and the connection is replaced before the
request uses it, exactly as after a failed ``SELECT 1``. (The server sends
nothing unasked to an idle connection that does not ``LISTEN``, and this
service never does; a false alarm would only cost a reconnect.)

It also runs the storage layer's statements as prepared statements with
generic plans (``execute_prepared``). The message table is a ring of
partitions (restapi.storage.partitions), and PostgreSQL plans a statement with
its values over every partition those values can reach: about a millisecond of
the server's CPU to plan a collect that then runs in a tenth of that. A generic
plan is made once per connection and statement, on the partitions the statement
names by their id bounds (storage.messages.in_window). ``CHAT_DB_PREPARED_STATEMENTS=0``
turns this off for a pooler in transaction mode that cannot carry prepared
statements between its server connections (PgBouncer before 1.21).

``DATABASE_URL=postgres://…`` selects this backend (EphemeralMessages/config.py).
"""

from __future__ import annotations

import select
from collections.abc import Sequence
from typing import Any

from django.db.backends.postgresql import base
from psycopg import Cursor, pq

# psycopg's count of executions after which it prepares a statement by itself.
ONLY_WHEN_ASKED = 2**31 - 1


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def prepared_statements(self) -> bool:
        # A connection closed after each request (CONN_MAX_AGE 0, the asynchronous
        # server) would prepare every statement for one use: a round trip more.
        kept = self.settings_dict["CONN_MAX_AGE"] != 0
        return kept and bool(self.settings_dict["OPTIONS"].get("prepared_statements"))

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        # The service's own option, not a libpq parameter.
        params.pop("prepared_statements", None)
        if self.prepared_statements:
            if params.get("prepare_threshold") is None:
                # psycopg prepares nothing, even when asked, without a threshold;
                # this one is never reached, so only what execute_prepared asks for is.
                params["prepare_threshold"] = ONLY_WHEN_ASKED
            # A custom plan runs a hair faster and costs a plan per execution;
            # PostgreSQL's own choice ("auto") keeps custom plans on a partitioned
            # table, whose generic plan it costs with every partition. Set when the
            # session starts: no statement, no round trip.
            params["options"] = f"{params.get('options', '')} -c plan_cache_mode=force_generic_plan".strip()
        return params

    def execute_prepared(self, statement: str, params: Sequence[Any]) -> list[tuple]:
        """
        Run ``statement`` with ``params`` as a prepared statement of this
        connection (prepared on its first use, by psycopg, which keeps the most
        recent ones); every row it returns. Errors are Django's, as from a cursor.
        """
        # As Django's own cursor() does: the first use in a request replaces a dead connection.
        self.close_if_health_check_failed()
        self.ensure_connection()
        self.validate_no_broken_transaction()
        with self.wrap_database_errors, Cursor(self.connection) as cursor:
            cursor.execute(statement, params, prepare=True)
            return cursor.fetchall() if cursor.description else []

    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if connection.info.transaction_status != pq.TransactionStatus.IDLE:
            # Mid-transaction or after an error: only a query tells.
            return super().is_usable()
        poller = select.poll()
        poller.register(connection.fileno(), select.POLLIN)
        return not poller.poll(0)
