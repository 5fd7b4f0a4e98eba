"""The purge_messages command deletes messages expired longer than the retention period, in batches."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from restapi.message_ids import LONG_SLOT, RANDOM_BITS
from restapi.models import Message
from restapi.retention import purge_expired_messages

pytestmark = pytest.mark.django_db

RETENTION_DAYS = 30


@pytest.fixture(autouse=True)
def _retention(chat_settings: Callable[..., None]) -> None:
    chat_settings(RETENTION_DAYS=RETENTION_DAYS)


def _message(expiration_date: datetime, *, username: str = "ann", collected: bool = False) -> Message:
    created = expiration_date - timedelta(seconds=60)
    return Message.objects.create(
        username=username,
        text="hello",
        created_at=created,
        expiration_date=expiration_date,
        collected_at=expiration_date if collected else None,
    )


def _purge(*args: str) -> str:
    out = StringIO()
    call_command("purge_messages", *args, stdout=out)
    return out.getvalue()


def test_messages_just_outside_the_window_go_and_just_inside_stay() -> None:
    boundary = timezone.now() - timedelta(days=RETENTION_DAYS)
    outside = _message(boundary - timedelta(minutes=1))
    outside_collected = _message(boundary - timedelta(minutes=1), collected=True)
    inside = _message(boundary + timedelta(minutes=1))
    inside_collected = _message(boundary + timedelta(minutes=1), collected=True)
    live = _message(timezone.now() + timedelta(hours=1))

    output = _purge()

    assert "Deleted 2 messages" in output
    remaining = set(Message.objects.values_list("id", flat=True))
    assert remaining == {inside.id, inside_collected.id, live.id}
    assert outside.id not in remaining
    assert outside_collected.id not in remaining


def test_a_purged_message_is_gone_from_the_api_and_a_kept_one_still_reads(api: APIClient) -> None:
    boundary = timezone.now() - timedelta(days=RETENTION_DAYS)
    gone = _message(boundary - timedelta(hours=1))
    kept = _message(boundary + timedelta(hours=1))
    _purge()
    assert api.get(f"/chat/{gone.id}").status_code == 404
    assert api.get(f"/chat/{kept.id}").json()["text"] == "hello"


def test_zero_retention_deletes_every_expired_message_and_no_live_one(chat_settings: Callable[..., None]) -> None:
    chat_settings(RETENTION_DAYS=0)
    _message(timezone.now() - timedelta(seconds=5))
    live = _message(timezone.now() + timedelta(hours=1))
    assert "Deleted 1 messages" in _purge()
    assert list(Message.objects.values_list("id", flat=True)) == [live.id]


def test_a_large_purge_runs_in_bounded_batches() -> None:
    long_ago = timezone.now() - timedelta(days=RETENTION_DAYS + 1)
    # Ids in the slot of long-lived messages, which is never emptied whole, so
    # that on PostgreSQL too these rows go in batches (tests/storage/test_partitions.py
    # has the slots emptied whole).
    expired = [
        Message(
            id=(LONG_SLOT << RANDOM_BITS) + i + 1,
            username=f"user{i % 50}",
            text="x",
            created_at=long_ago,
            expiration_date=long_ago - timedelta(seconds=i),
        )
        for i in range(5500)
    ]
    Message.objects.bulk_create(expired, batch_size=1000)
    recent = _message(timezone.now() - timedelta(days=1))

    batches: list[int] = []
    result = purge_expired_messages(retention_days=RETENTION_DAYS, batch_size=1000, on_batch=batches.append)

    assert result.deleted == 5500
    assert batches == [1000, 1000, 1000, 1000, 1000, 500]
    assert list(Message.objects.values_list("id", flat=True)) == [recent.id]
    # A second run finds nothing more.
    assert "Deleted 0 messages" in _purge("--batch-size", "100")


def test_an_invalid_batch_size_is_refused() -> None:
    with pytest.raises(CommandError, match="batch-size"):
        _purge("--batch-size", "0")
