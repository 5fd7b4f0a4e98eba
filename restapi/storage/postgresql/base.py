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

``DATABASE_URL=postgres://…`` selects this backend (EphemeralMessages/config.py).
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
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
