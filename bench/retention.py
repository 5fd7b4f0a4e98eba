"""
The retention purge on a big table: how fast it removes rows, and how long it holds locks.

    createdb -h 127.0.0.1 -U postgres ephemeral_retention
    .venv/bin/python -m bench.retention --database-url postgres://postgres@127.0.0.1:5432/ephemeral_retention
    .venv/bin/python -m bench.retention --database-url ... --table plain     # one table, as before
    .venv/bin/python -m bench.retention --database-url ... --rows 1000000 --batch-size 5000

Migrates the database, empties the message table and fills it with ``--rows``
messages that expired 31 to 34 days ago (past the default 30-day retention, and
when a daily purge would have found them), in one ``INSERT … SELECT …
generate_series`` whose ids follow the layout the service gives them
(``restapi.message_ids``), then runs the purge exactly as
``manage.py purge_messages`` does. A probe connection meanwhile reads a
message by id and sends one every 10 ms, as the service would.

Prints the rows removed per second, every statement the purge ran that took
longer than 100 ms, the longest statement (each runs in its own transaction,
so that is the longest any lock is held), and the probe's slowest round: the
longest a request waited on the purge.
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="a PostgreSQL database this run may empty")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument(
        "--table",
        choices=["ring", "plain"],
        default="ring",
        help="ring: the partitioned table (migration 0008); plain: one table as before it (migrated to 0007)",
    )
    parser.add_argument("--batch-size", type=int, default=None, help="the purge's batch size (its default if unset)")
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "EphemeralMessages.settings")
    os.environ.setdefault("SECRET_KEY", "bench-" + "x" * 60)
    os.environ.setdefault("ALLOWED_HOSTS", "localhost")

    import django

    django.setup()
    import psycopg
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from bench.probing import StatementTimer, probing, slowest_overlapping
    from restapi import retention
    from restapi.message_ids import RANDOM_BITS, RING_DAYS, SECONDS_PER_DAY, new_slotted_message_id

    def new_message_id(timeout: int) -> int:
        now = time.time()
        return new_slotted_message_id(expires_at=now + timeout, now=now, retention_days=retention_days)

    retention_days = settings.CHAT["RETENTION_DAYS"]

    call_command("migrate", verbosity=0)
    if args.table == "plain":
        call_command("migrate", "restapi", "0007", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE restapi_message")
        started = time.perf_counter()
        # Each row's id is a random one of the day its message expired, as the
        # service draws them: the same SQL as restapi.message_ids, on the server.
        cursor.execute(
            "INSERT INTO restapi_message (id, username, text, created_at, expiration_date) "
            "SELECT ((floor(extract(epoch FROM e.expires) / %s)::bigint %% %s) << %s) | g, "
            "'user' || (g %% 10000), 'a message of some length, as people write them', "
            "e.expires - interval '60 seconds', e.expires "
            "FROM generate_series(1, %s) AS g, "
            "LATERAL (SELECT statement_timestamp() - interval '31 days' "
            "         - (g::float8 / %s) * interval '3 days' AS expires) AS e",
            [SECONDS_PER_DAY, RING_DAYS, RANDOM_BITS, args.rows, args.rows],
        )
        filled = time.perf_counter() - started
        cursor.execute("VACUUM ANALYZE restapi_message")
        cursor.execute(
            "SELECT pg_size_pretty(coalesce(sum(pg_total_relation_size(relid)), "
            "pg_total_relation_size('restapi_message'))) FROM pg_partition_tree('restapi_message')"
        )
        (size,) = cursor.fetchone()
        cursor.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = 'restapi_message'::regclass")
        (partitioned,) = cursor.fetchone()
    layout = "a ring of partitions" if partitioned else "one table"
    print(f"filled {args.rows} expired rows in {filled:.1f} s ({size} with indexes, {layout})")

    def probe_round(conn: psycopg.Connection) -> None:
        conn.execute("SELECT text FROM restapi_message WHERE id = %s", [new_message_id(60)])
        conn.execute(
            "INSERT INTO restapi_message (id, username, text, created_at, expiration_date) "
            "VALUES (%s, 'probe', 'probe', statement_timestamp(), statement_timestamp() + interval '60 s')",
            [new_message_id(60)],
        )

    kwargs = {} if args.batch_size is None else {"batch_size": args.batch_size}
    timer = StatementTimer(width=110)
    with probing(probe_round) as rounds:
        started = time.perf_counter()
        try:
            with connection.execute_wrapper(timer):
                result = retention.purge_expired_messages(retention_days=retention_days, **kwargs)
        finally:
            elapsed = time.perf_counter() - started
    statements = timer.statements
    print("statement ms | slowest probe round meanwhile ms | statement")
    for begun, ended, sql in statements:
        if ended - begun < 0.1:
            continue
        slowest_meanwhile = slowest_overlapping(rounds, begun, ended)
        print(f"{(ended - begun) * 1000:12.1f} | {slowest_meanwhile * 1000:32.1f} | {sql}")
    longest = max(ended - begun for begun, ended, _ in statements)
    # A slot's ACCESS EXCLUSIVE lock is held from its LOCK TABLE to the commit
    # after its TRUNCATE (the commit itself is not a statement, so not timed).
    held, locked_at = [], None
    for begun, ended, sql in statements:
        if sql.startswith("LOCK TABLE"):
            locked_at = begun
        elif sql.startswith("TRUNCATE") and locked_at is not None:
            held.append((ended - locked_at) * 1000)
            locked_at = None
    if held:
        print(f"{len(held)} slots emptied; each one's lock held (LOCK TABLE to TRUNCATE) at most {max(held):.1f} ms")
    slowest = max(end - start for start, end in rounds)
    with connection.cursor() as cursor:
        # The probe's own rows, sent during the purge, are not among those filled.
        cursor.execute("SELECT count(*) FROM restapi_message WHERE username <> 'probe'")
        (left,) = cursor.fetchone()
    # Counted here, after the purge: the purge itself only estimates what it empties whole.
    removed = args.rows - left
    print(
        f"purge estimated {result.emptied_estimate} rows in {len(result.emptied_slots)} slots emptied whole "
        f"and counted {result.deleted} deleted in batches"
    )
    print(
        f"purge: {removed} rows in {elapsed:.1f} s = {removed / elapsed:,.0f} rows/s; "
        f"{len(statements)} statements, the longest {longest * 1000:.1f} ms; "
        f"probe: {len(rounds)} rounds, slowest {slowest * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
