"""GET /chats/<username>: every live message, once, oldest first."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import pytest
from django.db import connection
from rest_framework.test import APIClient

from restapi.models import Message


def test_collect_returns_live_messages_oldest_first(api, send):
    ids = [send(username="ann", text=f"m{n}").json()["id"] for n in range(3)]
    send(username="bob", text="not for ann")

    response = api.get("/chats/ann")

    assert response.status_code == 200
    assert response.json() == [{"id": ids[0], "text": "m0"}, {"id": ids[1], "text": "m1"}, {"id": ids[2], "text": "m2"}]


def test_collect_is_not_cacheable(api, db):
    assert api.get("/chats/ann")["Cache-Control"] == "no-store"


def test_collected_messages_are_not_returned_again(api, send):
    send(username="ann", text="once")

    assert len(api.get("/chats/ann").json()) == 1
    assert api.get("/chats/ann").json() == []


def test_unknown_username_is_an_empty_inbox(api, db):
    response = api.get("/chats/nobody/")

    assert response.status_code == 200
    assert response.json() == []


def test_collect_expires_each_message_at_the_time_of_the_read(api, send):
    message_id = send(username="ann", text="hello", timeout=3600).json()["id"]
    before = api.get(f"/chat/{message_id}").json()["expiration_date"]

    api.get("/chats/ann")

    after = api.get(f"/chat/{message_id}").json()["expiration_date"]
    stored = Message.objects.get(pk=message_id)
    assert datetime.fromisoformat(after) < datetime.fromisoformat(before)
    assert stored.expiration_date == stored.collected_at


def test_expired_messages_are_not_collected(api, send):
    send(username="ann", text="instant", timeout=0)
    send(username="ann", text="short", timeout=1)
    live_id = send(username="ann", text="long", timeout=60).json()["id"]

    time.sleep(1.2)

    assert api.get("/chats/ann").json() == [{"id": live_id, "text": "long"}]


def test_message_is_collectable_until_its_timeout(api, send):
    message_id = send(username="ann", text="soon", timeout=2).json()["id"]

    assert api.get("/chats/ann").json() == [{"id": message_id, "text": "soon"}]


@pytest.mark.parametrize("username", ["ann smith", "ann!", "a" * 151, "%00", "ann%0Abob"])
def test_invalid_username_is_400(api, db, username):
    response = api.get(f"/chats/{username}")

    assert response.status_code == 400
    assert "username" in response.json()


def test_usernames_match_exactly(api, send):
    send(username="Ann", text="capital")
    send(username="ann.b", text="dotted")

    assert api.get("/chats/ann").json() == []


def test_unicode_username_in_the_path(api, send):
    send(username="Zoë", text="bonjour")

    assert [m["text"] for m in api.get("/chats/Zo%C3%AB").json()] == ["bonjour"]


def test_collect_stops_at_the_limit_and_says_more_are_waiting(api, send, chat_settings):
    chat_settings(MAX_COLLECT=2)
    ids = [send(username="ann", text=f"m{n}").json()["id"] for n in range(3)]

    first = api.get("/chats/ann")
    second = api.get("/chats/ann")

    assert [m["id"] for m in first.json()] == ids[:2]
    assert first["X-More-Messages"] == "true"
    assert [m["id"] for m in second.json()] == ids[2:]
    assert second["X-More-Messages"] == "false"


@pytest.mark.parametrize("wait", ["-1", "61", "1.5", "soon", "", "1e1"])
def test_a_bad_wait_is_refused_and_collects_nothing(api, send, wait):
    send(username="ann", text="stays")

    response = api.get(f"/chats/ann?wait={wait}")

    assert response.status_code == 400
    assert "wait" in response.json()
    assert len(api.get("/chats/ann").json()) == 1


def test_a_collect_that_waits_in_vain_finds_an_empty_inbox(api, db):
    response = api.get("/chats/ann?wait=1")

    assert response.status_code == 200
    assert response.json() == []


@pytest.mark.django_db(transaction=True)
def test_a_collect_that_waits_is_answered_by_a_message_sent_meanwhile(api):
    def send_later():
        time.sleep(0.5)
        try:
            APIClient().post("/chat", {"username": "ann", "text": "arrived"}, format="json")
        finally:
            connection.close()

    sender = threading.Thread(target=send_later)
    sender.start()
    started = time.monotonic()
    response = api.get("/chats/ann?wait=30")
    sender.join()

    assert [message["text"] for message in response.json()] == ["arrived"]
    assert time.monotonic() - started < 15
