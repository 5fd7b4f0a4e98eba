"""
A collect reads a bounded number of pages however many uncollected messages the table holds.

Run against a scratch copy of the table in the private PostgreSQL cluster (one
table, and the ring of partitions of migration 0008), with autovacuum off on it,
so that its statistics are as stale as a busy table's can be between two
autovacuum runs, and then again once it is analysed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from restapi.message_ids import SECONDS_PER_DAY, day_slot, slot_bounds
from restapi.models import Message
from restapi.storage import partitions
from restapi.storage.messages import claim_parameters, window_statements
from restapi.storage.partitions import EVERY_ID
from restapi.storage.sql import POSTGRESQL
from tests.support.postgres import PostgresCluster

WAITING_FOR_OTHERS = 50_000
TABLE = Message._meta.db_table


@pytest.fixture(params=["one table", "ring"])
def scratch(request: pytest.FixtureRequest, private_postgres: PostgresCluster) -> Iterator[psycopg.Connection]:
    """
    A connection whose ``restapi_message`` is an empty copy of the real one,
    indexes included: one table, or the ring of partitions as migration 0008 makes it.
    """
    with psycopg.connect(private_postgres.dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA scratch")
        try:
            # The claims table the collect consults stays the real (empty) one.
            conn.execute("SET search_path = scratch, public")
            if request.param == "ring":
                for statement in partitions.ring_statements(f"public.{TABLE}", TABLE):
                    conn.execute(statement)
                tables = [partitions.partition_name(slot) for slot in range(partitions.SLOTS)]
            else:
                conn.execute(f"CREATE TABLE scratch.{TABLE} (LIKE public.{TABLE} INCLUDING ALL)")
                tables = [TABLE]
            for table in tables:
                conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
            conn.ring = request.param == "ring"  # type: ignore[attr-defined]
            yield conn
        finally:
            conn.execute("DROP SCHEMA scratch CASCADE")


def _window(conn: psycopg.Connection) -> partitions.Window:
    """The live window the service looks in: today's slots on the ring, every id on one table."""
    if not conn.ring:  # type: ignore[attr-defined]
        return (EVERY_ID,)
    return partitions._as_ranges(partitions.slots_in_use(now=time.time(), retention_days=30))


def _first_id(conn: psycopg.Connection) -> int:
    """Where the test's ids start: in today's slot on the ring, where a live message is."""
    return slot_bounds(day_slot(int(time.time() // SECONDS_PER_DAY)))[0] if conn.ring else 0  # type: ignore[attr-defined]


def pages_read_by_a_collect(conn: psycopg.Connection, username: str) -> tuple[int, list[str]]:
    """Run the service's collect statement for ``username``; the pages it touched and the texts it returned."""
    collect = window_statements(POSTGRESQL, _window(conn)).collect
    parameters = [username, *claim_parameters(username=username, claim_hash=None, checked=True), 100]
    conn.execute("BEGIN")
    plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + collect, parameters)
    (report,) = plan.fetchone()[0]
    conn.execute("ROLLBACK")
    collected = conn.execute(collect, parameters).fetchall()
    top = report["Plan"]
    return top["Shared Hit Blocks"] + top["Shared Read Blocks"], [row[1] for row in collected]


@pytest.mark.parametrize("analysed", [False, True], ids=["stale statistics", "fresh statistics"])
def test_a_collect_does_not_read_other_inboxes(scratch: psycopg.Connection, analysed: bool) -> None:
    first = _first_id(scratch)
    scratch.execute(
        f"INSERT INTO {TABLE} (id, username, text, created_at, expiration_date) "
        "SELECT %s + n, 'user' || n %% 5000, 'waiting', now(), now() + interval '1 hour' "
        "FROM generate_series(1, %s) AS n",
        [first, WAITING_FOR_OTHERS],
    )
    scratch.execute(
        f"INSERT INTO {TABLE} (id, username, text, created_at, expiration_date) "
        "VALUES (%s, 'ann', 'for ann', now(), now() + interval '1 hour')",
        [first + WAITING_FOR_OTHERS + 1],
    )
    if analysed:
        scratch.execute(f"ANALYZE {TABLE}")

    pages, texts = pages_read_by_a_collect(scratch, "ann")

    assert texts == ["for ann"]
    # About a dozen index and heap pages; reading the partial index of uncollected
    # messages whole, as the statement once did with stale statistics, takes about 100.
    assert pages < 40
