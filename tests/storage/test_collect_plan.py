"""
A collect reads a bounded number of pages however many uncollected messages the table holds.

Run against a scratch copy of the table in the private PostgreSQL cluster, with
autovacuum off on it, so that its statistics are as stale as a busy table's can
be between two autovacuum runs, and then again once it is analysed.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from restapi.models import Message
from restapi.storage.messages import claim_parameters, statements
from restapi.storage.partitions import EVERY_ID
from restapi.storage.sql import POSTGRESQL
from tests.support.postgres import PostgresCluster

WAITING_FOR_OTHERS = 50_000
TABLE = Message._meta.db_table


@pytest.fixture
def scratch(private_postgres: PostgresCluster) -> Iterator[psycopg.Connection]:
    """A connection whose ``restapi_message`` is an empty copy of the real one, indexes included."""
    with psycopg.connect(private_postgres.dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA scratch")
        try:
            conn.execute(f"CREATE TABLE scratch.{TABLE} (LIKE public.{TABLE} INCLUDING ALL)")
            conn.execute(f"ALTER TABLE scratch.{TABLE} SET (autovacuum_enabled = false)")
            # The claims table the collect consults stays the real (empty) one.
            conn.execute("SET search_path = scratch, public")
            yield conn
        finally:
            conn.execute("DROP SCHEMA scratch CASCADE")


def pages_read_by_a_collect(conn: psycopg.Connection, username: str) -> tuple[int, list[str]]:
    """Run the service's collect statement for ``username``; the pages it touched and the texts it returned."""
    # One table, so the live window is every id.
    window = [*EVERY_ID, 0, 0, 0, 0]
    claim = claim_parameters(username=username, claim_hash=None, checked=True)
    parameters = [*window, username, *claim, *window, 100]
    conn.execute("BEGIN")
    plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statements(POSTGRESQL).collect, parameters)
    (report,) = plan.fetchone()[0]
    conn.execute("ROLLBACK")
    collected = conn.execute(statements(POSTGRESQL).collect, parameters).fetchall()
    top = report["Plan"]
    return top["Shared Hit Blocks"] + top["Shared Read Blocks"], [row[1] for row in collected]


@pytest.mark.parametrize("analysed", [False, True], ids=["stale statistics", "fresh statistics"])
def test_a_collect_does_not_read_other_inboxes(scratch: psycopg.Connection, analysed: bool) -> None:
    scratch.execute(
        f"INSERT INTO {TABLE} (id, username, text, created_at, expiration_date) "
        "SELECT n, 'user' || n %% 5000, 'waiting', now(), now() + interval '1 hour' FROM generate_series(1, %s) AS n",
        [WAITING_FOR_OTHERS],
    )
    scratch.execute(
        f"INSERT INTO {TABLE} (id, username, text, created_at, expiration_date) "
        "VALUES (%s, 'ann', 'for ann', now(), now() + interval '1 hour')",
        [WAITING_FOR_OTHERS + 1],
    )
    if analysed:
        scratch.execute(f"ANALYZE {TABLE}")

    pages, texts = pages_read_by_a_collect(scratch, "ann")

    assert texts == ["for ann"]
    # About a dozen index and heap pages; reading the partial index of uncollected
    # messages whole, as the statement once did with stale statistics, takes about 100.
    assert pages < 40
