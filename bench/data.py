"""The rows each scenario needs, written straight into PostgreSQL."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bench.processes import ROOT
from restapi.message_ids import RANDOM_BITS, RING_DAYS, SECONDS_PER_DAY

# Recipients whose history the seeded rows form; the collect scenario's inboxes
# are among them, so with 10^7 rows each inbox has about 50 old messages.
HISTORY_USERS = 200_000
INBOXES = 150_000
WARM_IDS = 2_000


# Message ids are random (restapi/message_ids.py) and the table has no default
# for them, so seeded rows get ids here. On PostgreSQL the table is a ring of
# partitions by id whose top bits name the slot of the message's expiry day,
# and collects look only in the slots a live message can be in: a seeded row
# must carry its day's slot, as the service's own ids do, or the collect
# scenario would find nothing. Below the slot, each batch takes a run of
# consecutive numbers from a random place: the read scenario draws ids from one
# contiguous range, and the service's own random ids land in a seeded run with
# a probability far too small to matter.
def id_base(count: int) -> int:
    """The number before the first of ``count`` consecutive ids of a slot for seeded rows."""
    return secrets.randbelow(2**RANDOM_BITS - count)


def slotted_id(expiry: str, number: str) -> str:
    """
    SQL for the id of a seeded row expiring at ``expiry``: its day's slot, then
    ``number``; written for a statement with parameters, so its modulo is ``%%``.
    """
    slot = f"(floor(extract(epoch FROM {expiry}) / {SECONDS_PER_DAY})::bigint %% {RING_DAYS})"
    return f"({slot} << {RANDOM_BITS}) | ({number})"


def admin_conninfo(url: str) -> tuple[str, str]:
    params = conninfo_to_dict(url)
    name = params.pop("dbname")
    return make_conninfo(**params, dbname="postgres"), name


def ensure_database(url: str, env: dict[str, str]) -> None:
    admin, name = admin_conninfo(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env={**env, "DATABASE_URL": url},
        check=True,
    )


def seed_history(conn: psycopg.Connection, rows: int) -> None:
    """``rows`` old messages over 30 days: 70% collected, the rest expired unread."""
    started = time.monotonic()
    print(f"seeding {rows:,} messages of history", flush=True)
    conn.execute("TRUNCATE restapi_message RESTART IDENTITY")
    conn.execute(
        """
        INSERT INTO restapi_message (id, username, text, created_at, expiration_date, collected_at)
        SELECT {id}, 'inbox-' || (i %% %(users)s), 'an old message, number ' || i, t, t + interval '60 seconds',
               CASE WHEN i %% 10 < 7 THEN t + interval '20 seconds' END
        FROM generate_series(1, %(rows)s) AS i,
             LATERAL (SELECT now() - interval '1 day' - (i %% 2592000) * interval '1 second' AS t) AS created
        """.format(id=slotted_id("t + interval '60 seconds'", "%(base)s + i")),
        {"users": HISTORY_USERS, "rows": rows, "base": id_base(rows)},
    )
    conn.execute("CREATE TABLE IF NOT EXISTS bench_seed (rows bigint NOT NULL)")
    conn.execute("DELETE FROM bench_seed")
    conn.execute("INSERT INTO bench_seed VALUES (%s)", [rows])
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE restapi_message")
    conn.autocommit = False
    print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)


def prepare_history(url: str, rows: int, *, reuse: bool) -> None:
    with psycopg.connect(url) as conn:
        if reuse:
            conn.execute("CREATE TABLE IF NOT EXISTS bench_seed (rows bigint NOT NULL)")
            seeded = conn.execute("SELECT rows FROM bench_seed").fetchone()
            conn.commit()
            if seeded and seeded[0] == rows:
                return
        seed_history(conn, rows)


def expire_live(conn: psycopg.Connection, prefix: str) -> None:
    """Collect what earlier runs left in the benchmark's inboxes, so each run starts from the same state."""
    conn.execute(
        "UPDATE restapi_message SET collected_at = now(), expiration_date = now() "
        "WHERE collected_at IS NULL AND expiration_date > now() AND username LIKE %s",
        [prefix + "%"],
    )


@dataclass(frozen=True)
class Seeded:
    """The id ranges of the messages seed_live made: expired ones to read from the hot store, live ones."""

    settled: tuple[int, int]
    live: tuple[int, int]

    @staticmethod
    def wrk_env(ids: tuple[int, int]) -> dict[str, str]:
        return {"BENCH_ID_MIN": str(ids[0]), "BENCH_ID_MAX": str(ids[1])}


def seed_live(url: str) -> Seeded:
    """
    One live message in each of the INBOXES inboxes, and WARM_IDS expired messages to read by id (the hot
    store holds only settled messages).
    """
    with psycopg.connect(url) as conn:
        for prefix in ("inbox-", "mix-", "reader-"):
            expire_live(conn, prefix)
        live = conn.execute(
            """
            WITH made AS (
                INSERT INTO restapi_message (id, username, text, created_at, expiration_date)
                SELECT {id}, 'inbox-' || i, 'waiting in inbox ' || i, now(), now() + interval '1 hour'
                FROM generate_series(1, %s) AS i
                RETURNING id
            ) SELECT min(id), max(id) FROM made
            """.format(id=slotted_id("now() + interval '1 hour'", "%s + i")),
            [id_base(INBOXES), INBOXES],
        ).fetchone()
        first, last = conn.execute(
            """
            WITH made AS (
                INSERT INTO restapi_message (id, username, text, created_at, expiration_date)
                SELECT {id}, 'reader-' || i, 'read me, number ' || i,
                       now() - interval '2 hours', now() - interval '1 hour'
                FROM generate_series(1, %s) AS i
                RETURNING id
            ) SELECT min(id), max(id) FROM made
            """.format(id=slotted_id("now() - interval '1 hour'", "%s + i")),
            [id_base(WARM_IDS), WARM_IDS],
        ).fetchone()
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE restapi_message")
    return Seeded(settled=(first, last), live=live)
