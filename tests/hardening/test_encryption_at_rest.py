"""
With CHAT_ENCRYPTION_KEYS set, no text is kept in plain form: not in the
database, its dump, or Redis. Keys rotate; a text whose key is gone is an
error an operator can see, never a crash and never a lost message.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Callable
from io import StringIO
from pathlib import Path

import pytest
import redis
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

from restapi.models import Message
from restapi.sealing import new_key, sealed_key_id

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "the vault code is 4815162342"
K1, K2 = new_key(), new_key()


@pytest.fixture
def keys(chat_settings: Callable[..., None]) -> Callable[..., None]:
    """Set CHAT_ENCRYPTION_KEYS for the test, e.g. ``keys(("k2", K2), ("k1", K1))``."""
    from restapi.sealing import parse_keys

    def configure(*entries: tuple[str, str]) -> None:
        raw = ",".join(f"{key_id}:{key}" for key_id, key in entries)
        chat_settings(ENCRYPTION_KEYS=parse_keys("CHAT_ENCRYPTION_KEYS", raw) if raw else None)

    configure(("k1", K1))
    return configure


def send(api: APIClient, text: str = SECRET, username: str = "ann", timeout: int = 3600) -> int:
    answer = api.post("/chat", {"username": username, "text": text, "timeout": timeout}, format="json")
    assert answer.status_code == 201, answer.content
    return answer.json()["id"]


def database_contents() -> bytes:
    """What a copy of the database holds: pg_dump's output, or the SQLite files themselves."""
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        env = {**os.environ, "PGPASSWORD": settings.get("PASSWORD") or ""}
        command = ["pg_dump", "--host", settings["HOST"], "--port", str(settings["PORT"] or 5432)]
        command += ["--username", settings["USER"], "--dbname", settings["NAME"]]
        return subprocess.run(command, env=env, check=True, capture_output=True).stdout
    path = Path(settings["NAME"])
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def redis_contents(client: redis.Redis) -> bytes:
    """Every key and every value in the Redis database, whatever its type."""
    readers = {
        b"string": lambda key: [client.get(key)],
        b"hash": lambda key: [item for pair in client.hgetall(key).items() for item in pair],
        b"list": lambda key: client.lrange(key, 0, -1),
        b"set": lambda key: list(client.smembers(key)),
        b"zset": lambda key: client.zrange(key, 0, -1),
    }
    found = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        assert kind in readers, f"no reader for the Redis type {kind!r} of {key!r}"
        found += [key, *readers[kind](key)]
    return b"\n".join(found)


def test_a_text_is_stored_sealed_and_read_back_as_sent(api: APIClient, keys) -> None:
    message_id = send(api)

    row = Message.objects.get(pk=message_id)
    assert row.text is None
    assert sealed_key_id(bytes(row.sealed_text)) == "k1"
    assert SECRET.encode() not in bytes(row.sealed_text)
    assert api.get(f"/chat/{message_id}").json()["text"] == SECRET
    assert api.get("/chats/ann").json() == [{"id": message_id, "text": SECRET}]
    assert api.get(f"/chat/{message_id}").json()["text"] == SECRET


def test_a_copy_of_the_database_holds_no_text(api: APIClient, keys) -> None:
    live, collected = send(api, username="ann"), send(api, username="bob")
    api.get("/chats/bob")

    dump = database_contents()

    assert b"restapi_message" in dump
    assert SECRET.encode() not in dump
    assert [api.get(f"/chat/{message_id}").json()["text"] for message_id in (live, collected)] == [SECRET, SECRET]


def test_without_keys_a_copy_of_the_database_does_hold_the_text(api: APIClient, keys) -> None:
    # The check above can fail: the same dump shows a text stored without a key.
    keys()
    send(api)
    assert SECRET.encode() in database_contents()


def test_redis_holds_no_text(api: APIClient, keys, redis_client: redis.Redis) -> None:
    message_id = send(api)
    api.get("/chats/ann")
    # A settled message is read twice: the first read puts it in the hot store, the second is served from it.
    assert [api.get(f"/chat/{message_id}").json()["text"] for _ in range(2)] == [SECRET, SECRET]
    api.post("/chat", {"username": "cy", "text": SECRET}, format="json")

    keyspace = redis_contents(redis_client)

    assert str(message_id).encode() in keyspace
    assert SECRET.encode() not in keyspace


def test_keys_rotate_and_the_reseal_command_moves_old_texts_to_the_first_key(api: APIClient, keys) -> None:
    keys()
    plain = send(api, "sent before encryption")
    keys(("k1", K1))
    old = send(api, "sealed under k1")

    keys(("k2", K2), ("k1", K1))
    new = send(api, "sealed under k2")
    assert [sealed_key_id(bytes(Message.objects.get(pk=i).sealed_text)) for i in (old, new)] == ["k1", "k2"]

    output = StringIO()
    call_command("reseal_messages", "--batch-size", "1", stdout=output)
    assert "2 messages" in output.getvalue()
    rows = {row.id: row for row in Message.objects.all()}
    assert {sealed_key_id(bytes(row.sealed_text)) for row in rows.values()} == {"k2"}
    assert rows[plain].text is None

    keys(("k2", K2))
    texts = [api.get(f"/chat/{message_id}").json()["text"] for message_id in (plain, old, new)]
    assert texts == ["sent before encryption", "sealed under k1", "sealed under k2"]
    assert [message["id"] for message in api.get("/chats/ann").json()] == [plain, old, new]


def test_a_text_whose_key_is_gone_is_a_logged_500_and_its_collect_takes_nothing(
    api: APIClient, keys, caplog: pytest.LogCaptureFixture
) -> None:
    message_id = send(api)
    keys(("k2", K2))

    with caplog.at_level(logging.ERROR):
        read = api.get(f"/chat/{message_id}")
        collect = api.get("/chats/ann")

    for answer in (read, collect):
        assert answer.status_code == 500
        assert answer.json()["request_id"] == answer["X-Request-ID"]
        assert SECRET not in answer.content.decode()
    assert f"message {message_id} is sealed under key 'k1'" in caplog.text
    # The key comes back: the message was never handed out, and is collected now.
    keys(("k2", K2), ("k1", K1))
    assert api.get("/chats/ann").json() == [{"id": message_id, "text": SECRET}]


def test_a_sealed_text_copied_to_another_row_does_not_open_there(api: APIClient, keys) -> None:
    mine, theirs = send(api, "for ann"), send(api, "for bob", username="bob")
    Message.objects.filter(pk=theirs).update(sealed_text=Message.objects.get(pk=mine).sealed_text)

    answer = api.get(f"/chat/{theirs}")

    assert answer.status_code == 500
    assert "for ann" not in answer.content.decode()


def test_a_lease_hands_out_sealed_texts_opened_oldest_first(api: APIClient, keys) -> None:
    first, second = send(api, "first"), send(api, "second")

    leased = api.post("/chats/ann/leases", {"seconds": 30}, format="json")

    assert leased.status_code == 201
    assert leased.json()["messages"] == [{"id": first, "text": "first"}, {"id": second, "text": "second"}]


def test_a_lease_over_a_text_whose_key_is_gone_takes_nothing(api: APIClient, keys) -> None:
    message_id = send(api)
    keys(("k2", K2))

    assert api.post("/chats/ann/leases", {"seconds": 30}, format="json").status_code == 500

    keys(("k2", K2), ("k1", K1))
    assert api.get("/chats/ann").json() == [{"id": message_id, "text": SECRET}]
