"""The system of record: one clock, atomic collects, exactly-once hand-out."""

from __future__ import annotations

import re
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from restapi import services
from restapi.models import Message
from restapi.storage import StoredMessage, messages, partitions

pytestmark = pytest.mark.django_db


def insert(*, username: str, text: str, timeout: int) -> StoredMessage:
    """Store a plain message under a fresh id, as the service does."""
    stored = messages.insert_message(
        message_id=partitions.draw_message_id(timeout), username=username, text=text, sealed_text=None, timeout=timeout
    )
    assert stored is not None
    return stored


def test_insert_returns_the_committed_row():
    message = insert(username="ann", text="hi", timeout=90)

    stored = Message.objects.get(pk=message.id)
    assert message.expiration_date == stored.expiration_date
    assert (stored.expiration_date - stored.created_at).total_seconds() == 90
    assert stored.collected_at is None


@time_machine.travel(datetime(2001, 1, 1, tzinfo=UTC), tick=True)
def test_expiry_ignores_the_application_clock():
    # The application's clock is 25 years behind; the database's is right.
    message = insert(username="ann", text="hi", timeout=60)

    assert message.expiration_date > datetime(2020, 1, 1, tzinfo=UTC)
    assert [m.id for m in messages.collect_messages(username="ann", limit=10)] == [message.id]


def test_collect_uses_the_database_clock_even_when_the_application_clock_runs_ahead():
    message = insert(username="ann", text="hi", timeout=60)

    with time_machine.travel(timezone.now() + timedelta(days=1), tick=True):
        collected = messages.collect_messages(username="ann", limit=10)

    assert [m.id for m in collected] == [message.id]


def test_messages_written_in_quick_succession_are_collected_in_the_order_written():
    # Far more than one per tick of a millisecond clock.
    written = [insert(username="ann", text=str(n), timeout=60).id for n in range(50)]

    assert [m.id for m in messages.collect_messages(username="ann", limit=100)] == written


def test_collect_sets_expiration_and_collected_at_to_the_same_moment():
    message = insert(username="ann", text="hi", timeout=60)

    (collected,) = messages.collect_messages(username="ann", limit=10)

    stored = Message.objects.get(pk=message.id)
    assert stored.collected_at == stored.expiration_date == collected.expiration_date
    assert stored.expiration_date < message.expiration_date


def test_collect_skips_other_users_expired_and_collected_messages():
    live = insert(username="ann", text="live", timeout=60)
    insert(username="ann", text="expired", timeout=0)
    insert(username="bob", text="other", timeout=60)
    taken = insert(username="ann", text="taken", timeout=60)
    Message.objects.filter(pk=taken.id).update(collected_at=timezone.now())

    assert [m.text for m in messages.collect_messages(username="ann", limit=10)] == ["live"]
    assert live.id


def test_collect_finds_live_messages_through_the_partial_index():
    # The planner must not need a scan of the inbox's history.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET enable_seqscan = off")
            explain = "EXPLAIN"
        else:
            explain = "EXPLAIN QUERY PLAN"
        cursor.execute(
            f"{explain} SELECT id FROM restapi_message WHERE username = 'ann' AND collected_at IS NULL "
            f"AND expiration_date > '2000-01-01' ORDER BY {messages.DELIVERY_ORDER} LIMIT 10"
        )
        lines = [str(row[0]) if connection.vendor == "postgresql" else str(row) for row in cursor.fetchall()]
    plan = " ".join(lines)
    # On PostgreSQL, the index of each partition of the ring (message_inbox_queue_idx_s00, ...).
    assert "message_inbox_queue_idx" in plan
    # The index gives the rows in delivery order: nothing is sorted (a Merge
    # Append of the partitions' ordered scans merges, it does not sort).
    nodes = [line.strip().removeprefix("->").strip() for line in lines]
    assert not [node for node in nodes if re.match(r"(Incremental )?Sort\s+\(", node)], plan
    assert "TEMP B-TREE" not in plan


def _collect_concurrently(username: str, collectors: int) -> list[int]:
    """Run ``collectors`` threads, each with its own connection, collecting at the same moment."""
    start = threading.Barrier(collectors)
    results: list[list[int]] = [[] for _ in range(collectors)]
    errors: list[BaseException] = []

    def collect(slot: int) -> None:
        try:
            start.wait()
            for _ in range(3):
                results[slot].extend(m.id for m in services.collect_inbox(username=username).messages)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=collect, args=(slot,)) for slot in range(collectors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return [message_id for result in results for message_id in result]


@pytest.mark.django_db(transaction=True)
def test_concurrent_collectors_hand_out_each_message_exactly_once():
    ids = {insert(username="ann", text=f"m{n}", timeout=60).id for n in range(300)}

    handed_out = _collect_concurrently("ann", collectors=8)

    duplicates = [message_id for message_id, count in Counter(handed_out).items() if count > 1]
    assert duplicates == []
    assert set(handed_out) == ids


@pytest.mark.django_db(transaction=True)
def test_concurrent_collectors_with_a_small_limit_still_hand_out_each_message_once(chat_settings):
    chat_settings(MAX_COLLECT=7)
    ids = {insert(username="ann", text=f"m{n}", timeout=60).id for n in range(100)}

    handed_out = _collect_concurrently("ann", collectors=6)

    assert len(handed_out) == len(set(handed_out))
    assert set(handed_out) <= ids
    # Whatever the collectors did not reach in their three rounds is still live.
    left = {m.id for m in messages.collect_messages(username="ann", limit=1000)}
    assert left | set(handed_out) == ids


def test_an_insert_under_a_taken_id_stores_nothing_and_says_so():
    first = insert(username="ann", text="first", timeout=60)

    again = messages.insert_message(message_id=first.id, username="bob", text="second", sealed_text=None, timeout=60)

    assert again is None
    assert Message.objects.get(pk=first.id).text == "first"
    assert Message.objects.count() == 1
