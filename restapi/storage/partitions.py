"""
The ring of partitions of the message table on PostgreSQL, and how a slot of it is emptied.

``restapi_message`` is partitioned by range of ``id`` into ``SLOTS`` fixed
partitions, ``restapi_message_s00`` to ``restapi_message_s63``, that cover
every id from 0 to 2**53 together (``restapi.message_ids`` gives the layout:
the top six bits of an id are its slot). The partitions are made once, by
migration 0008, and never created or dropped afterwards: a slot is emptied with
``TRUNCATE`` when every row in it is past retention, and the ring comes round
to it again ``RING_DAYS`` days later. So no send can ever find its partition
missing, whatever happened to the purge's timer, and every id ever drawn
(older fully random ones included) has a partition to live in.

SQLite has no partitions: there the purge deletes rows in batches, as it does
on PostgreSQL for whatever a slot cannot be emptied of whole.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from django.conf import settings
from django.db import OperationalError, connection, transaction

from restapi.message_ids import (
    LONG_SLOT,
    SECONDS_PER_DAY,
    SLOTS,
    day_slot,
    new_message_id,
    new_slotted_message_id,
    ring_horizon_days,
    slot_bounds,
)
from restapi.models import Message, MessageRing
from restapi.storage.sql import dialect, run

TABLE = Message._meta.db_table
RING_TABLE = MessageRing._meta.db_table

# How long emptying a slot may wait for its lock. TRUNCATE needs the slot to
# itself; while it waits, every statement that reaches the slot queues behind
# it, so it gives up soon and tries again after a pause.
LOCK_TIMEOUT = "2s"
LOCK_ATTEMPTS = 3
PAUSE_BETWEEN_ATTEMPTS = 1.0


def partition_name(slot: int) -> str:
    return f"{TABLE}_s{slot:02d}"


def draw_message_id(timeout: int) -> int:
    """
    A fresh id for a message that lives ``timeout`` seconds: in the slot of its
    expiry day on PostgreSQL, fully random on SQLite (which has no slots).

    The expiry day is reckoned on the database's clock as this process last
    read it (``database_now``), while the insert sets the expiry itself; a
    message a second off near midnight lands in the slot next to its day, which
    only delays that slot's emptying (a slot is emptied only once every row in
    it is past retention) and stays within the slots collects look in.
    """
    if connection.vendor != "postgresql":
        return new_message_id()
    now = database_now()
    return new_slotted_message_id(expires_at=now + timeout, now=now, retention_days=settings.CHAT["RETENTION_DAYS"])


# How often a process reads the database's clock again. Between two readings it
# follows the database's clock by its own, which drifts by milliseconds a day.
CLOCK_READ_INTERVAL = 600.0
# Per process, for each database: (database clock - this host's clock, when read, by the monotonic clock).
_clock_offsets: dict[tuple[str, str], tuple[float, float]] = {}


def database_now() -> float:
    """
    Unix time on the database's clock, which decides every expiry, so that
    the slot a send picks and the slots a collect looks in agree on every host
    however far off its own clock is: one query per process every ten minutes.
    """
    key = (connection.settings_dict.get("HOST") or "", connection.settings_dict["NAME"])
    known = _clock_offsets.get(key)
    if known is None or time.monotonic() - known[1] > CLOCK_READ_INTERVAL:
        ((database_time,),) = run(f"SELECT extract(epoch FROM {dialect().now})")  # noqa: S608
        known = (float(database_time) - time.time(), time.monotonic())
        _clock_offsets[key] = known
    return time.time() + known[0]


def slots_in_use(*, now: float, retention_days: int) -> set[int]:
    """
    The slots that can hold a live message now, and that sends may be writing
    to: the days from yesterday to a day past the ring's horizon (a day either
    side for clocks that are off), and the slot of long-lived messages. These
    are never emptied whole; collects look in these alone.
    """
    horizon = ring_horizon_days(retention_days)
    today = int(now // SECONDS_PER_DAY)
    days = range(today - 1, today + horizon + 2)
    return {day_slot(day) for day in days} | {LONG_SLOT}


# The id ranges (first id, end id) of the slots a collect looks in. The slots
# in use are one run of consecutive slots that may wrap round the ring, and
# LONG_SLOT: at most three ranges.
Window = tuple[tuple[int, int], ...]
WINDOW_RANGES = 3
EVERY_ID = (0, 2**53)


def live_window() -> Window:
    """
    The id ranges a collect, a lease or an acknowledgement looks in: the slots
    in use, or every id while messages copied in from before the ring may still
    be collected, and always on SQLite.
    """
    if connection.vendor == "postgresql" and not _older_messages_may_be_live():
        return _window_of_day(int(database_now() // SECONDS_PER_DAY), settings.CHAT["RETENTION_DAYS"])
    return (EVERY_ID,)


# The window changes once a day: worked out then, not at every collect.
@lru_cache(maxsize=4)
def _window_of_day(day: int, retention_days: int) -> Window:
    return _as_ranges(slots_in_use(now=day * SECONDS_PER_DAY, retention_days=retention_days))


def _as_ranges(slots: set[int]) -> Window:
    """Runs of consecutive slots as id ranges."""
    ranges: list[tuple[int, int]] = []
    for slot in sorted(slots):
        low, high = slot_bounds(slot)
        if ranges and ranges[-1][1] == low:
            ranges[-1] = (ranges[-1][0], high)
        else:
            ranges.append((low, high))
    if len(ranges) > WINDOW_RANGES:
        return (EVERY_ID,)
    return tuple(ranges)


# Per process, for each database: the messages copied in from before the ring
# never become collectable later than when they were copied, so once that time
# has passed it stays passed.
_older_live_until: dict[tuple[str, str], datetime | None] = {}


def _older_messages_may_be_live() -> bool:
    key = (connection.settings_dict.get("HOST") or "", connection.settings_dict["NAME"])
    if key not in _older_live_until:
        if not is_partitioned():
            # Not migrated to the ring yet: one table, every id in it.
            return True
        rows = run(f"SELECT legacy_live_until FROM {RING_TABLE} WHERE id = 1")  # noqa: S608
        _older_live_until[key] = rows[0][0] if rows else None
    until = _older_live_until[key]
    return until is not None and until > datetime.now(UTC)


def is_partitioned() -> bool:
    """Whether the message table is the ring of partitions (PostgreSQL after migration 0008)."""
    if connection.vendor != "postgresql":
        return False
    rows = run("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
    return bool(rows) and rows[0][0] == "p"


def partitions() -> list[tuple[str, int, int]]:
    """Every partition of the message table with its first and end id, in id order."""
    rows = run(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s)",
        [TABLE],
    )
    bounds = []
    for name, expression in rows:
        # "FOR VALUES FROM ('0') TO ('140737488355328')"
        low, high = (int(part.split("'")[1]) for part in expression.split(" TO "))
        bounds.append((name, low, high))
    return sorted(bounds, key=lambda row: row[1])


def ring_statements(source: str, target: str) -> list[str]:
    """
    The statements that make ``target``, a ring of partitions shaped like the
    message table, and fill it from ``source``. The indexes get temporary names,
    since the source table's still hold the real ones (``name_ring_indexes``).
    """
    statements = [f"CREATE TABLE {target} (LIKE {source} INCLUDING DEFAULTS) PARTITION BY RANGE (id)"]
    for slot in range(SLOTS):
        low, high = slot_bounds(slot)
        statements.append(
            f"CREATE TABLE {partition_name(slot)} PARTITION OF {target} FOR VALUES FROM ({low}) TO ({high})"
        )
    statements.append(f"INSERT INTO {target} SELECT * FROM {source}")  # noqa: S608
    # Built after the copy: one sorted build per partition instead of an insert per row.
    statements += [f"ALTER TABLE {target} ADD CONSTRAINT {target}_pkey PRIMARY KEY (id)"]
    # Each partition's index is built under a name that says which index of the
    # table it is (message_inbox_queue_idx_s07), so that plans and monitoring
    # read as before; the table's index then takes these in instead of building its own.
    for slot in range(SLOTS):
        statements += [
            index.replace("{name}", f"{name}_s{slot:02d}").replace("{table}", partition_name(slot))
            for name, index in _INDEXES
        ]
    statements += [index.replace("{name}", f"{name}_ring").replace("{table}", target) for name, index in _INDEXES]
    return statements


def plain_statements(source: str, target: str) -> list[str]:
    """The statements that make ``target``, an unpartitioned copy of the message table, from ``source``."""
    return [
        f"CREATE TABLE {target} (LIKE {source} INCLUDING DEFAULTS)",
        f"INSERT INTO {target} SELECT * FROM {source}",  # noqa: S608
        f"ALTER TABLE {target} ADD CONSTRAINT {target}_pkey PRIMARY KEY (id)",
        *(index.replace("{name}", f"{name}_ring").replace("{table}", target) for name, index in _INDEXES),
    ]


def swap_statements(old: str, new: str) -> list[str]:
    """Drop ``old`` and give ``new`` its name and its indexes' names (each a change of the catalogue only)."""
    return [
        f"DROP TABLE {old}",
        f"ALTER TABLE {new} RENAME TO {TABLE}",
        f"ALTER TABLE {TABLE} RENAME CONSTRAINT {new}_pkey TO {TABLE}_pkey",
        *(f"ALTER INDEX {name}_ring RENAME TO {name}" for name, _ in _INDEXES),
    ]


# The model's indexes (restapi.models.Message.Meta.indexes), as SQL with the
# table and the name left open: the copy builds them before the old ones go.
_INDEXES = [
    (
        "message_open_lease_idx",
        'CREATE INDEX {name} ON {table} ("lease_id") WHERE ("collected_at" IS NULL AND "lease_id" IS NOT NULL)',
    ),
    (
        "message_inbox_queue_idx",
        'CREATE INDEX {name} ON {table} ("username", "created_at", "id") WHERE "collected_at" IS NULL',
    ),
    ("message_expiration_idx", 'CREATE INDEX {name} ON {table} ("expiration_date")'),
]


# The rows of a slot emptied whole are estimated, never counted: counting
# would read every row of a day's partition only to report a number. ANALYZE
# with this statistics target samples at most 300 times as many rows, from at
# most as many pages, whatever the slot holds. A slot of fewer pages is read
# whole: its row count is then exact, and so is its unread count when it
# holds fewer rows than the sample.
ESTIMATE_STATISTICS_TARGET = 10
ESTIMATE_SAMPLE_ROWS = 300 * ESTIMATE_STATISTICS_TARGET


@dataclass(frozen=True, slots=True)
class EmptiedSlot:
    slot: int
    # Estimates (``estimate_rows``) of the rows removed, and of those the ones
    # that expired without being collected.
    estimated: int
    estimated_unread: int


def has_rows(slot: int) -> bool:
    ((exists,),) = run(f"SELECT EXISTS (SELECT 1 FROM {partition_name(slot)})")  # noqa: S608
    return bool(exists)


def estimate_rows(slot: int) -> tuple[int, int]:
    """
    Estimates of the rows in ``slot`` and of those never collected, from a
    sample of at most ``ESTIMATE_SAMPLE_ROWS`` rows: ANALYZE of the one column
    that tells them apart, then its statistics as PostgreSQL's catalogue keeps
    them (the planner's row count and the share of empty ``collected_at``).
    """
    name = partition_name(slot)
    with transaction.atomic():
        # Takes SHARE UPDATE EXCLUSIVE: reads and writes go on.
        run(f"SET LOCAL default_statistics_target = {ESTIMATE_STATISTICS_TARGET}")
        run(f"ANALYZE {name} (collected_at)")
        ((rows, null_fraction),) = run(
            "SELECT c.reltuples, s.null_frac FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname "
            "AND s.attname = 'collected_at' AND NOT s.inherited "
            "WHERE c.oid = to_regclass(%s)",
            [name],
        )
    if rows <= 0:
        # Empty when sampled: the statistics left from an earlier use of the slot say nothing.
        return 0, 0
    return round(rows), round(rows * (null_fraction or 0.0))


def empty_slot(slot: int, *, cutoff: datetime) -> EmptiedSlot | None:
    """
    Empty ``slot`` with TRUNCATE if every row in it expired before ``cutoff``;
    None if one did not (or the lock could not be had).

    Without a lock, the slot is first checked (most slots with rows are still
    within retention: they are left at once) and its rows estimated
    (``estimate_rows``): a slot outside the days being written gets no new rows
    and no collects, so the estimate stays as good as it was. Then, holding the
    slot's ACCESS EXCLUSIVE lock (which waits for the statements already
    reading it and stops new ones until the commit), the check is made again
    and the slot truncated: nothing can slip in between the two.
    """
    name = partition_name(slot)
    if _holds_rows_from(name, cutoff):
        return None
    estimated, estimated_unread = estimate_rows(slot)
    for attempt in range(LOCK_ATTEMPTS):
        if attempt:
            time.sleep(PAUSE_BETWEEN_ATTEMPTS)
        try:
            with transaction.atomic():
                run(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                run(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE")
                if _holds_rows_from(name, cutoff):
                    return None
                run(f"TRUNCATE {name}")
                return EmptiedSlot(slot, estimated, estimated_unread)
        except OperationalError as error:
            if not _lock_timed_out(error):
                raise
    return None


def _holds_rows_from(name: str, cutoff: datetime) -> bool:
    """Whether a row of partition ``name`` expires at or after ``cutoff``."""
    # max() reads one end of the expiration_date index, whatever the statistics
    # say; an EXISTS with a filter may be planned as a scan of the whole slot,
    # which finds nothing only at its end.
    ((kept,),) = run(f"SELECT max(expiration_date) >= %s FROM {name}", [cutoff])  # noqa: S608
    return bool(kept)


def _lock_timed_out(error: OperationalError) -> bool:
    # 55P03 lock_not_available: lock_timeout expired.
    return getattr(error.__cause__, "sqlstate", None) == "55P03"
