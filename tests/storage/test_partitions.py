"""
The ring of partitions of the message table: ids that name their slot, slots
emptied whole only when every row in them is past retention, and reads,
collects and leases that do not care which partition a message is in.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from io import StringIO
from itertools import pairwise

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from restapi import message_ids
from restapi.message_ids import (
    LONG_SLOT,
    MAX_RETENTION_DAYS,
    RANDOM_BITS,
    RING_DAYS,
    RING_HORIZON_DAYS,
    RING_MARGIN_DAYS,
    SECONDS_PER_DAY,
    SLOTS,
    day_slot,
    ring_horizon_days,
    slot_of,
)
from restapi.models import Message, MessageRing
from restapi.retention import purge_expired_messages
from restapi.storage import messages, partitions
from restapi.storage.sql import dialect, run

pytestmark = pytest.mark.django_db

RETENTION_DAYS = 30

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="partitions exist on PostgreSQL only; SQLite keeps one table"
)


@pytest.fixture(autouse=True)
def _retention(chat_settings: Callable[..., None]) -> Iterator[None]:
    chat_settings(RETENTION_DAYS=RETENTION_DAYS)
    # What each process remembers of the ring's older messages, read afresh.
    partitions._older_live_until.clear()
    yield
    partitions._older_live_until.clear()


def _today() -> int:
    return int(time.time() // SECONDS_PER_DAY)


def _id_in(slot: int) -> int:
    return (slot << RANDOM_BITS) | secrets.randbelow(2**RANDOM_BITS - 1) + 1


def _stored(message_id: int, expires: datetime, *, username: str = "ann", collected: bool = False) -> Message:
    return Message.objects.create(
        id=message_id,
        username=username,
        text="hello",
        created_at=expires - timedelta(seconds=60),
        expiration_date=expires,
        collected_at=expires if collected else None,
    )


def _partition_of(message_id: int) -> str:
    ((name,),) = run("SELECT tableoid::regclass::text FROM restapi_message WHERE id = %s", [message_id])
    return name


def _days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def _purgeable_day() -> int:
    """A day whose slot a daily purge empties today: past retention, and not yet come round again."""
    in_use = partitions.slots_in_use(now=time.time(), retention_days=RETENTION_DAYS)
    for days_ago in range(RETENTION_DAYS + 1, RING_DAYS):
        if day_slot(_today() - days_ago) not in in_use:
            return _today() - days_ago
    raise AssertionError("the ring leaves no day to empty")


def _noon(day: int) -> datetime:
    return datetime.fromtimestamp(day * SECONDS_PER_DAY + SECONDS_PER_DAY / 2, UTC)


@postgresql_only
def test_the_ring_is_there_before_any_send_and_covers_every_id() -> None:
    assert partitions.is_partitioned()
    ring = partitions.partitions()
    assert [name for name, _, _ in ring] == [partitions.partition_name(slot) for slot in range(SLOTS)]
    # Contiguous from 0 to past the largest id: no id, however drawn, lacks a partition.
    assert ring[0][1] == 0
    assert ring[-1][2] == message_ids.MAX_MESSAGE_ID + 1
    assert all(previous[2] == following[1] for previous, following in pairwise(ring))


@postgresql_only
def test_every_day_a_send_can_reach_has_its_partition_and_no_purge_empties_it() -> None:
    horizon = ring_horizon_days(RETENTION_DAYS)
    assert horizon == RING_HORIZON_DAYS
    days_ahead = {day_slot(_today() + ahead) for ahead in range(horizon + 1)}
    # Each day up to the horizon has a slot of its own: no two of them share one.
    assert len(days_ahead) == horizon + 1
    assert days_ahead | {LONG_SLOT} <= partitions.slots_in_use(now=time.time(), retention_days=RETENTION_DAYS)


@pytest.mark.parametrize("retention_days", [0, RETENTION_DAYS, MAX_RETENTION_DAYS])
def test_up_to_the_longest_retention_every_day_has_its_slot_and_days_to_empty_it(retention_days: int) -> None:
    now = time.time()
    today = int(now // SECONDS_PER_DAY)
    ahead = now + RING_HORIZON_DAYS * SECONDS_PER_DAY
    sent = message_ids.new_slotted_message_id(expires_at=ahead, now=now, retention_days=retention_days)
    assert slot_of(sent) == day_slot(today + RING_HORIZON_DAYS)

    def in_use_on(day: int) -> set[int]:
        return partitions.slots_in_use(now=day * SECONDS_PER_DAY + 1, retention_days=retention_days)

    # The days on which a daily purge can empty a day's slot: from the first
    # past its retention (and past yesterday, which sends may still reach)
    # until the ring comes round to it again.
    for day in range(today - 70, today):
        emptiable = [
            later for later in range(day + retention_days + 1, day + RING_DAYS) if day_slot(day) not in in_use_on(later)
        ]
        assert emptiable[0] == max(day + retention_days + 1, day + 2)
        assert len(emptiable) >= RING_MARGIN_DAYS - 2


def test_a_longer_retention_is_refused_rather_than_served_by_the_slot_of_long_lived_messages() -> None:
    with pytest.raises(ValueError, match=f"takes 0 to {MAX_RETENTION_DAYS}"):
        message_ids.new_slotted_message_id(expires_at=time.time() + 60, now=time.time(), retention_days=55)
    with pytest.raises(ValueError, match=f"takes 0 to {MAX_RETENTION_DAYS}"):
        partitions.slots_in_use(now=time.time(), retention_days=MAX_RETENTION_DAYS + 1)


@postgresql_only
def test_a_send_goes_to_the_slot_of_the_day_it_expires(send: Callable[..., object]) -> None:
    hour = send(username="ann", text="in an hour", timeout=3600).json()["id"]
    day = send(username="ann", text="in a day", timeout=SECONDS_PER_DAY).json()["id"]
    week = send(username="ann", text="in a week", timeout=7 * SECONDS_PER_DAY).json()["id"]

    expiry_day = {
        message.id: int(message.expiration_date.timestamp() // SECONDS_PER_DAY) for message in Message.objects.all()
    }
    assert slot_of(hour) == day_slot(expiry_day[hour])
    assert slot_of(day) == day_slot(expiry_day[day])
    # Further ahead than the ring's horizon: the slot of long-lived messages.
    assert slot_of(week) == LONG_SLOT
    for message_id in (hour, day, week):
        assert _partition_of(message_id) == partitions.partition_name(slot_of(message_id))


@postgresql_only
def test_a_host_whose_clock_is_days_off_sends_where_collects_look(api: APIClient, send: Callable[..., object]) -> None:
    partitions._clock_offsets.clear()
    with time_machine.travel(datetime.now(UTC) + timedelta(days=5), tick=True):
        # The slot comes from the database's clock, not from this host's.
        sent = send(username="ann", text="from a host five days ahead", timeout=600).json()["id"]
    partitions._clock_offsets.clear()

    expiry = Message.objects.get(id=sent).expiration_date
    assert slot_of(sent) == day_slot(int(expiry.timestamp() // SECONDS_PER_DAY))
    assert [message["id"] for message in api.get("/chats/ann").json()] == [sent]


@postgresql_only
def test_a_read_by_id_reads_one_partition_only() -> None:
    message_id = _id_in(day_slot(_today()))
    _stored(message_id, datetime.now(UTC) + timedelta(hours=1))
    # The statement the service runs, as it sends it (the id bound on the client).
    planned = _planned_partitions(messages.fetch_statement(dialect(), slot_of(message_id)), [message_id])
    assert planned == {partitions.partition_name(slot_of(message_id))}


def _planned_partitions(statement: str, params: list) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {statement}", params)
        plan = "\n".join(line for (line,) in cursor.fetchall())
    return set(re.findall(r"restapi_message_s\d\d\b", plan))


@postgresql_only
def test_a_collect_plans_only_the_partitions_a_live_message_can_be_in() -> None:
    collect = messages.window_statements(dialect(), partitions.live_window()).collect
    claim = messages.claim_parameters(username="ann", claim_hash=None, checked=True)
    planned = _planned_partitions(collect, ["ann", *claim, 100])

    in_use = partitions.slots_in_use(now=time.time(), retention_days=RETENTION_DAYS)
    assert planned == {partitions.partition_name(slot) for slot in in_use}
    assert len(planned) == RING_HORIZON_DAYS + 4


@postgresql_only
def test_while_older_messages_may_be_live_a_collect_looks_in_every_slot(
    api: APIClient, send: Callable[..., object]
) -> None:
    # A message copied in from before the ring: its id is in a slot far from today's.
    far = (day_slot(_today()) + RING_DAYS // 2) % RING_DAYS
    older = _stored(_id_in(far), datetime.now(UTC) + timedelta(hours=2))
    Message.objects.filter(id=older.id).update(created_at=datetime.now(UTC) - timedelta(hours=1))
    newer = send(username="ann", text="sent now", timeout=600).json()["id"]
    MessageRing.objects.update_or_create(id=1, defaults={"legacy_live_until": older.expiration_date})

    assert [message["id"] for message in api.get("/chats/ann").json()] == [older.id, newer]

    # Once every older message has expired, the far slots are no longer read.
    MessageRing.objects.filter(id=1).update(legacy_live_until=datetime.now(UTC) - timedelta(seconds=1))
    partitions._older_live_until.clear()
    hidden = _stored(_id_in(far), datetime.now(UTC) + timedelta(hours=2))
    assert partitions.partition_name(far) not in _planned_partitions(
        messages.window_statements(dialect(), partitions.live_window()).collect,
        ["ann", *messages.claim_parameters(username="ann", claim_hash=None, checked=True), 100],
    )
    assert Message.objects.filter(id=hidden.id, collected_at__isnull=True).exists()


@postgresql_only
def test_a_slot_past_retention_is_emptied_whole() -> None:
    day = _purgeable_day()
    slot = day_slot(day)
    gone = [_stored(_id_in(slot), _noon(day), collected=n % 2 == 0) for n in range(6)]
    live = _stored(_id_in(day_slot(_today())), datetime.now(UTC) + timedelta(hours=1))

    unread_before = _expired_unread("estimated")

    result = purge_expired_messages(retention_days=RETENTION_DAYS)

    assert result.emptied_slots == (slot,)
    # Estimated, not counted; a slot smaller than the sample is sampled whole,
    # so here the estimate is exact.
    assert result.emptied_estimate == len(gone)
    assert _expired_unread("estimated") - unread_before == 3
    assert not Message.objects.filter(id__in=[message.id for message in gone]).exists()
    assert Message.objects.filter(id=live.id).exists()
    # Emptied by TRUNCATE, not by deletes: not one batch found a row to delete.
    assert result.deleted == 0
    assert result.batches == 1


def _expired_unread(count: str) -> float:
    return REGISTRY.get_sample_value("chat_messages_expired_unread_total", {"count": count}) or 0.0


@postgresql_only
# Committed, so that what the slot held is gone with the TRUNCATE and not left
# behind as dead rows of a rolled-back transaction, and so that the server's
# statistics of the table see the purge's reads.
@pytest.mark.django_db(transaction=True)
def test_emptying_a_slot_reads_a_bounded_sample_of_it_never_every_row(request: pytest.FixtureRequest) -> None:
    day = _purgeable_day()
    slot = day_slot(day)
    name = partitions.partition_name(slot)
    rows = 15_000
    # Autovacuum, where the server runs it, would read the slot too, and its
    # reads count in the same statistics.
    run(f"ALTER TABLE {name} SET (autovacuum_enabled = false)")
    request.addfinalizer(lambda: run(f"ALTER TABLE {name} RESET (autovacuum_enabled)"))
    # Rows of about 2 kB (short of compression), four to a page: the slot spans
    # more pages than the estimate's sample reads.
    run(
        f"INSERT INTO {name} (id, username, text, created_at, expiration_date) "
        "SELECT %s + g, 'ann', repeat('x', 1900), %s, %s FROM generate_series(1, %s) g",
        [_id_in(slot) & ~0xFFFFF, _noon(day) - timedelta(minutes=1), _noon(day), rows],
    )
    ((pages,),) = run("SELECT pg_relation_size(%s) / current_setting('block_size')::int", [name])
    assert pages > partitions.ESTIMATE_SAMPLE_ROWS + 500

    before = _table_reads(name)
    result = purge_expired_messages(retention_days=RETENTION_DAYS)
    after = _table_reads(name)

    assert result.emptied_slots == (slot,)
    assert not partitions.has_rows(slot)
    # Rows read by sequential scans: the one that tells the slot is not empty.
    # Counting the rows would read all of them.
    assert after[0] - before[0] <= 1
    # Pages of the table read: the sample's, whatever the slot's size.
    assert after[1] - before[1] <= partitions.ESTIMATE_SAMPLE_ROWS + 10
    # What the sample says of the rows it did not read.
    assert abs(result.emptied_estimate - rows) <= rows * 0.1


def _table_reads(name: str) -> tuple[int, int]:
    """Rows read by sequential scans of table ``name``, and its pages read, as the server counts them."""
    # This connection's counts reach the server's statistics when it next goes idle.
    run("SELECT pg_stat_force_next_flush()")
    ((rows, pages),) = run(
        "SELECT t.seq_tup_read, coalesce(s.heap_blks_read, 0) + coalesce(s.heap_blks_hit, 0) "
        "FROM pg_stat_user_tables t JOIN pg_statio_user_tables s USING (relid) WHERE t.relid = %s::regclass",
        [name],
    )
    return rows, pages


@postgresql_only
def test_a_slot_holding_one_row_inside_retention_is_not_emptied_and_its_old_rows_still_go() -> None:
    day = _purgeable_day()
    slot = day_slot(day)
    old = [_stored(_id_in(slot), _noon(day)) for _ in range(3)]
    # Put there by a clock far off, or drawn before the ring existed: expired,
    # but not yet past retention.
    recent = _stored(_id_in(slot), _days_ago(RETENTION_DAYS - 1))

    result = purge_expired_messages(retention_days=RETENTION_DAYS)

    assert result.emptied_slots == ()
    assert result.deleted == len(old)
    assert list(Message.objects.values_list("id", flat=True)) == [recent.id]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_slot_still_within_retention_is_left_without_sampling_it() -> None:
    day = _purgeable_day()
    slot = day_slot(day)
    name = partitions.partition_name(slot)
    _stored(_id_in(slot), _noon(day))
    _stored(_id_in(slot), _days_ago(RETENTION_DAYS - 1))
    before = _manual_analyses(name)

    result = purge_expired_messages(retention_days=RETENTION_DAYS)

    assert result.emptied_slots == ()
    assert _manual_analyses(name) == before


def _manual_analyses(name: str) -> int:
    run("SELECT pg_stat_force_next_flush()")
    ((count,),) = run("SELECT analyze_count FROM pg_stat_user_tables WHERE relid = %s::regclass", [name])
    return count


@postgresql_only
def test_a_slot_that_sends_are_writing_to_is_never_emptied_whole() -> None:
    slot = day_slot(_today())
    # Past retention, in today's slot (a row from before the ring, say): deleted
    # as a row, while today's slot stays as it is for the messages arriving now.
    old = _stored(_id_in(slot), _days_ago(RETENTION_DAYS + 2))
    live = _stored(_id_in(slot), datetime.now(UTC) + timedelta(hours=1))

    result = purge_expired_messages(retention_days=RETENTION_DAYS)

    assert result.emptied_slots == ()
    assert result.deleted == 1
    assert list(Message.objects.values_list("id", flat=True)) == [live.id]
    assert not Message.objects.filter(id=old.id).exists()


@postgresql_only
def test_the_purge_command_reports_the_slots_it_emptied() -> None:
    day = _purgeable_day()
    for _ in range(3):
        _stored(_id_in(day_slot(day)), _noon(day))

    out = StringIO()
    call_command("purge_messages", stdout=out)

    assert "Deleted 0 messages" in out.getvalue()
    assert "1 partitions emptied whole, holding about 3 messages (estimated from a sample" in out.getvalue()
    assert not partitions.has_rows(day_slot(day))


def test_the_purge_on_either_database_removes_what_is_past_retention_and_nothing_else() -> None:
    # Ids from the whole range, as any id may be: on PostgreSQL they fall in
    # slots all over the ring; on SQLite there is one table.
    past = [_stored(message_ids.new_message_id(), _days_ago(RETENTION_DAYS + 1 + n)) for n in range(5)]
    kept = [_stored(message_ids.new_message_id(), _days_ago(RETENTION_DAYS - 1 - n)) for n in range(5)]

    result = purge_expired_messages(retention_days=RETENTION_DAYS)

    # Those in slots emptied whole are estimated, exactly for slots this small.
    assert result.deleted + result.emptied_estimate == len(past)
    assert set(Message.objects.values_list("id", flat=True)) == {message.id for message in kept}


def test_collects_leases_and_reads_span_the_partitions(
    api: APIClient, send: Callable[..., object], chat_settings: Callable[..., None]
) -> None:
    # One inbox whose messages expire on different days, so on PostgreSQL in
    # different partitions, the last one in the slot of long-lived messages.
    timeouts = [60, SECONDS_PER_DAY + 60, 5 * SECONDS_PER_DAY, 20 * SECONDS_PER_DAY, 300 * SECONDS_PER_DAY]
    sent = [send(username="ann", text=f"m{n}", timeout=timeout).json()["id"] for n, timeout in enumerate(timeouts)]
    if connection.vendor == "postgresql":
        assert len({slot_of(message_id) for message_id in sent}) >= 3

    for n, message_id in enumerate(sent):
        assert api.get(f"/chat/{message_id}").json()["text"] == f"m{n}"
    chat_settings(MAX_COLLECT=2)
    leased = api.post("/chats/ann/leases", {"seconds": 30}, format="json")
    assert leased.status_code == 201, leased.content
    assert [message["id"] for message in leased.json()["messages"]] == sent[:2]
    chat_settings(MAX_COLLECT=1000)

    collected = api.get("/chats/ann").json()

    # Oldest first across partitions; what the lease holds is not handed out.
    assert [message["id"] for message in collected] == sent[2:]
    assert api.get("/chats/ann").json() == []
    acknowledged = api.delete(f"/chats/ann/leases/{leased.json()['lease']}")
    assert acknowledged.status_code == 204
    assert Message.objects.filter(collected_at__isnull=True).count() == 0


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_a_populated_table_into_the_ring_and_back() -> None:
    rows = [
        _stored(message_ids.new_message_id(), datetime.now(UTC) + timedelta(hours=n), username=f"u{n % 3}")
        for n in range(50)
    ]
    expected = {message.id: (message.username, message.expiration_date) for message in rows}

    call_command("migrate", "restapi", "0007", verbosity=0)
    assert not partitions.is_partitioned()
    assert dict(Message.objects.values_list("id", "username")) == {k: v[0] for k, v in expected.items()}

    call_command("migrate", "restapi", verbosity=0)
    assert partitions.is_partitioned()
    assert {m.id: (m.username, m.expiration_date) for m in Message.objects.all()} == expected
    for message_id in expected:
        assert _partition_of(message_id) == partitions.partition_name(slot_of(message_id))
    indexes = {name for (name,) in run("SELECT indexname FROM pg_indexes WHERE tablename = 'restapi_message'")}
    assert indexes == {
        "restapi_message_pkey",
        "message_open_lease_idx",
        "message_inbox_queue_idx",
        "message_expiration_idx",
    }
