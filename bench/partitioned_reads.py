"""
Reads by id and collects on the ring of partitions against the same rows in one table.

    createdb -h 127.0.0.1 -U postgres ephemeral_partitioned_reads
    .venv/bin/python -m bench.partitioned_reads \\
        --database-url postgres://postgres@127.0.0.1:5432/ephemeral_partitioned_reads
    .venv/bin/python -m bench.partitioned_reads --database-url ... --rows 10000000 --clients 8

Migrates the database (so ``restapi_message`` is the ring), empties the table
and fills it with ``--rows`` messages whose expiries are spread over 34 days
(30 days ago to 3 days ahead: what a ring holds under the default 30-day
retention), each message's id in the slot of its expiry day, or in the slot of
long-lived messages past the ring's horizon, as the service draws them: 34
partitions hold rows. Then it copies the
same rows into one unpartitioned table with the same indexes (schema
``plain``), and into the design not taken: daily partitions by ``created_at``
with ``(id, created_at)`` as the key (schema ``bycreated``), where a read by id
must look in every partition. It runs pgbench on the service's own statements
against each:

- ``read``: the ``SELECT`` of ``GET /chat/<id>`` for a random stored id;
- ``collect``: the ``UPDATE … RETURNING`` of ``GET /chats/<username>`` (up to
  100 messages), rolled back so that every round finds the inbox full.

pgbench sends each statement as plain text with its values in it (``-M
simple``), as the service's driver does, so each statement is planned, and
partitions pruned, at every execution. Prints transactions per second and mean
latency for each statement on each table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.pgbench_statements import bind, statements, today_slot

USERS = 10_000
DAYS = 34
DAYS_BACK = 30


def in_any_slot(fetch: str) -> str:
    """
    The read by id of today's slot (pgbench_statements.statements) for an id of
    any slot: sent with its values, each statement is planned for its own id.
    """
    from restapi.storage.messages import in_slot

    return fetch.replace(in_slot(today_slot()), "TRUE")


def run_pgbench(url: str, script: Path, *, clients: int, seconds: int, search_path: str, today: int) -> str:
    command = [
        *("pgbench", "-n", "-M", "simple", "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(seconds)),
        *(f"--define=today={today}", "-f", str(script), url),
    ]
    environment = {**os.environ, "PGOPTIONS": f"-c search_path={search_path}"}
    output = subprocess.run(command, capture_output=True, text=True, check=True, env=environment).stdout
    tps = next(line for line in output.splitlines() if line.startswith("tps"))
    latency = next(line for line in output.splitlines() if line.startswith("latency average"))
    return f"{float(tps.split()[2]):>10.0f} {float(latency.split()[3]):>8.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="a PostgreSQL database this run may empty")
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    os.environ.update(DATABASE_URL=args.database_url, SECRET_KEY="bench-" + "k" * 50, ALLOWED_HOSTS="localhost")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], check=True, env=os.environ)
    sql = statements()

    from restapi.message_ids import LONG_SLOT, RANDOM_BITS, RING_DAYS, SECONDS_PER_DAY, ring_horizon_days

    url = args.database_url.replace("postgres://", "postgresql://", 1)
    today = int(time.time() // SECONDS_PER_DAY)
    # Row g expires on day today - DAYS_BACK + g % DAYS, at a second of that day
    # given by g, and its id is g in the slot of that day: pgbench recomputes the
    # id from g alone.
    horizon = ring_horizon_days(30)

    def slot_of(g: str, today_value: str) -> str:
        day = f"({today_value} - {DAYS_BACK} + {g} % {DAYS})"
        return f"(CASE WHEN {day} <= {today_value} + {horizon} THEN {day} % {RING_DAYS} ELSE {LONG_SLOT} END)"

    slot_sql = slot_of("g", str(today))
    # The design not taken: daily partitions by created_at, the key (id, created_at).
    by_created_partitions = "\n".join(
        f"CREATE TABLE bycreated.restapi_message_d{n} PARTITION OF bycreated.restapi_message "
        f"FOR VALUES FROM (to_timestamp({day * SECONDS_PER_DAY})) TO (to_timestamp({(day + 1) * SECONDS_PER_DAY}));"
        for n, day in enumerate(range(today - DAYS_BACK - 1, today - DAYS_BACK + DAYS + 1))
    )
    fill = f"""
        TRUNCATE restapi_message;
        INSERT INTO restapi_message (id, username, text, created_at, expiration_date)
        SELECT ({slot_sql}::bigint << {RANDOM_BITS}) | g,
               'user' || (g % {USERS}), 'a message of average length',
               e - interval '60 seconds', e
        FROM generate_series(1, {args.rows}) AS g,
             LATERAL (SELECT to_timestamp(({today} - {DAYS_BACK} + g % {DAYS}) * {SECONDS_PER_DAY}::bigint
                                          + g % {SECONDS_PER_DAY}) AS e) AS expiry;
        SET client_min_messages = warning;
        DROP SCHEMA IF EXISTS plain CASCADE;
        CREATE SCHEMA plain;
        CREATE TABLE plain.restapi_message (LIKE public.restapi_message INCLUDING ALL);
        INSERT INTO plain.restapi_message SELECT * FROM public.restapi_message;
        DROP SCHEMA IF EXISTS bycreated CASCADE;
        CREATE SCHEMA bycreated;
        CREATE TABLE bycreated.restapi_message (LIKE public.restapi_message INCLUDING DEFAULTS)
            PARTITION BY RANGE (created_at);
        {by_created_partitions}
        INSERT INTO bycreated.restapi_message SELECT * FROM public.restapi_message;
        ALTER TABLE bycreated.restapi_message ADD PRIMARY KEY (id, created_at);
        CREATE INDEX ON bycreated.restapi_message (username, created_at, id) WHERE collected_at IS NULL;
        CREATE INDEX ON bycreated.restapi_message (expiration_date);
        VACUUM ANALYZE public.restapi_message;
        VACUUM ANALYZE plain.restapi_message;
        VACUUM ANALYZE bycreated.restapi_message;
    """
    started = time.perf_counter()
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-f", "-"], input=fill, text=True, check=True)
    filled = subprocess.run(
        [
            "psql", "-X", "-A", "-t", url, "-c",
            "SELECT count(*) FROM pg_partition_tree('restapi_message') t "
            "WHERE t.isleaf AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.relid AND c.reltuples > 0)",
        ],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    elapsed = time.perf_counter() - started
    print(f"{args.rows} rows in {filled} partitions of the ring and in one table ({elapsed:.0f} s)")

    slot = slot_of(":g", ":today")
    pick = f"\\set g random(1, {args.rows})\n\\set id {slot} * {2**RANDOM_BITS} + :g\n"
    user = f"\\set u random(1, {USERS - 1})\n"
    # The inbox, then an open inbox's claim condition (messages.claim_parameters).
    claim = ["'user' || :u", "true", "'user' || :u", "''"]
    scripts = {
        "read": pick + bind(in_any_slot(sql["fetch"]), ":id"),
        "collect": user + "BEGIN;\n" + bind(sql["collect"], *claim, "100") + "ROLLBACK;\n",
    }
    print(f"pgbench -M simple, {args.clients} clients, {args.seconds} s each")
    print(f"{'statement':<10} {'table':<22} {'tps':>10} {'ms':>8}")
    with tempfile.TemporaryDirectory() as folder:
        for name, text in scripts.items():
            script = Path(folder) / f"{name}.sql"
            script.write_text(text)
            for table, search_path in (
                ("one table", "plain,public"),
                ("ring of 64 partitions", "public"),
                (f"{DAYS + 2} by created_at", "bycreated,public"),
            ):
                result = run_pgbench(
                    url, script, clients=args.clients, seconds=args.seconds, search_path=search_path, today=today
                )
                print(f"{name:<10} {table:<22} {result}")


if __name__ == "__main__":
    main()
