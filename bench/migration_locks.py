"""
How long a migration blocks the service's statements on a big table.

    createdb ephemeral_big && DATABASE_URL=postgres://.../ephemeral_big manage.py migrate restapi 0002
    (fill restapi_message, e.g. INSERT ... SELECT ... FROM generate_series(1, 10000000))
    DATABASE_URL=postgres://.../ephemeral_big .venv/bin/python -m bench.migration_locks 0003

Migrates ``restapi`` to the given migration while a probe connection reads a
row and inserts one every 10 ms, as the service would. Prints each statement
the migration ran with its duration, and the probe's slowest statement: the
longest time a request would have waited on the migration's locks.
"""

from __future__ import annotations

import argparse
import os
import time

import django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="the restapi migration to migrate to, e.g. 0003")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "EphemeralMessages.settings")
    django.setup()

    import psycopg
    from django.core.management import call_command
    from django.db import connection

    from bench.probing import StatementTimer, probing, slowest_overlapping
    from restapi.message_ids import new_message_id

    def probe_round(conn: psycopg.Connection) -> None:
        conn.execute("SELECT text FROM restapi_message WHERE id = 1")
        conn.execute(
            "INSERT INTO restapi_message (id, username, text, created_at, expiration_date) "
            "VALUES (%s, 'probe', 'probe', statement_timestamp(), statement_timestamp())",
            [new_message_id()],
        )

    timer = StatementTimer()
    with probing(probe_round) as waits:
        started = time.perf_counter()
        try:
            with connection.execute_wrapper(timer):
                call_command("migrate", "restapi", args.target, verbosity=0)
        finally:
            elapsed = time.perf_counter() - started
    statements = timer.statements
    print("statement ms | slowest probe meanwhile ms | statement")
    for begun, ended, sql in statements:
        if sql.startswith(("SELECT", 'INSERT INTO "django_migrations"')):
            continue
        slowest_meanwhile = slowest_overlapping(waits, begun, ended)
        print(f"{(ended - begun) * 1000:12.1f} | {slowest_meanwhile * 1000:26.1f} | {sql}")
    slowest = max(end - start for start, end in waits)
    print(f"migration: {elapsed:.1f} s; probe: {len(waits)} rounds, slowest {slowest * 1000:.1f} ms")


if __name__ == "__main__":
    main()
