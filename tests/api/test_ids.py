"""Message ids cannot be counted: random in 1..2**53-1, unique, and oldest first does not depend on them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from restapi import message_ids
from restapi.message_ids import MAX_MESSAGE_ID
from restapi.models import Message
from restapi.storage import partitions


def test_new_ids_are_random_integers_that_javascript_holds_exactly(api, send):
    answers = [send(username="ann", text=f"m{n}") for n in range(20)]

    ids = [answer.json()["id"] for answer in answers]
    assert all(answer.json() == {"id": answer.json()["id"]} for answer in answers)
    assert all(isinstance(message_id, int) and 1 <= message_id <= MAX_MESSAGE_ID for message_id in ids)
    assert len(set(ids)) == 20
    # Counting from one id finds no other: twenty draws from 2**53 are never within a million of each other.
    ordered = sorted(ids)
    assert min(later - earlier for earlier, later in pairwise(ordered)) > 1_000_000
    assert api.get(f"/chat/{ids[0]}").json()["text"] == "m0"


def test_an_id_that_is_taken_is_drawn_again(api, send, monkeypatch):
    seed = 20261130
    predicted = random.Random(seed)
    taken, second = predicted.randint(1, MAX_MESSAGE_ID), predicted.randint(1, MAX_MESSAGE_ID)
    now = datetime.now(UTC)
    Message.objects.create(id=taken, username="zed", text="first owner", created_at=now, expiration_date=now)
    draws = iter([taken, second])
    monkeypatch.setattr(partitions, "draw_message_id", lambda timeout: next(draws))

    answer = send(username="ann", text="second owner")

    assert answer.status_code == 201
    assert answer.json() == {"id": second}
    assert Message.objects.get(pk=taken).text == "first owner"
    assert api.get(f"/chat/{second}").json()["text"] == "second owner"


def test_a_draw_that_keeps_meeting_taken_ids_gives_up_with_a_500(api, send, monkeypatch):
    now = datetime.now(UTC)
    Message.objects.create(id=77, username="zed", text="taken", created_at=now, expiration_date=now)
    monkeypatch.setattr(partitions, "draw_message_id", lambda timeout: 77)

    answer = send(username="ann", text="never stored")

    assert answer.status_code == 500
    assert "request_id" in answer.json()
    assert Message.objects.filter(username="ann").count() == 0


def _todays_base() -> int:
    """The first id of today's slot of the ring, where a collect looks for live messages (PostgreSQL)."""
    return message_ids.new_message_id_of_today() >> message_ids.RANDOM_BITS << message_ids.RANDOM_BITS


def _waiting(message_id: int, created_at: datetime, text: str) -> None:
    Message.objects.create(
        id=message_id,
        username="ann",
        text=text,
        created_at=created_at,
        expiration_date=created_at + timedelta(hours=1),
    )


@pytest.mark.django_db
def test_collect_hands_out_by_creation_time_not_by_id(api):
    start = datetime.now(UTC) - timedelta(minutes=5)
    base = _todays_base()
    _waiting(base + 900, start, "first")
    _waiting(base + 500, start + timedelta(seconds=1), "second")
    _waiting(base + 100, start + timedelta(seconds=2), "third")

    assert [message["text"] for message in api.get("/chats/ann").json()] == ["first", "second", "third"]


@pytest.mark.django_db
def test_messages_created_at_the_same_instant_are_handed_out_by_id(api, chat_settings):
    chat_settings(MAX_COLLECT=2)
    instant = datetime.now(UTC) - timedelta(minutes=5)
    base = _todays_base()
    for message_id in (30, 10, 20):
        _waiting(base + message_id, instant, f"#{message_id}")

    first = api.get("/chats/ann")
    second = api.get("/chats/ann")

    assert [message["id"] - base for message in first.json()] == [10, 20]
    assert first["X-More-Messages"] == "true"
    assert [message["id"] - base for message in second.json()] == [30]
