"""
The hot store: used when it answers, never the only copy, never stale, and
bounded in what it costs when it fails. Faults are real: a redis-server that is
stopped, flushed, paused or replaced by a socket that never answers.
"""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from restapi.models import Message
from restapi.storage.hot import KEY_PREFIX, LIVE_TTL_CAP, SUSPEND_SECONDS, hot_store


def _key(message_id: int) -> str:
    return f"{KEY_PREFIX}{message_id}"


def _expiration(api, message_id: int) -> datetime:
    return datetime.fromisoformat(api.get(f"/chat/{message_id}").json()["expiration_date"])


def test_new_message_is_cached_for_its_remaining_life(send, redis_client):
    message_id = send(username="ann", text="hello", timeout=30).json()["id"]

    assert redis_client.exists(_key(message_id))
    assert 29_000 < redis_client.pttl(_key(message_id)) <= 30_000


def test_long_lived_messages_are_cached_for_at_most_the_cap(send, redis_client):
    message_id = send(username="ann", text="hello", timeout=86_400).json()["id"]

    assert redis_client.pttl(_key(message_id)) <= LIVE_TTL_CAP * 1000


def test_read_by_id_is_answered_from_the_hot_store(api, send, redis_client):
    message_id = send(username="ann", text="hello", timeout=30).json()["id"]
    # Remove the row behind the service's back: only the hot store still knows it.
    Message.objects.filter(pk=message_id).delete()

    response = api.get(f"/chat/{message_id}")

    assert response.status_code == 200
    assert response.json()["text"] == "hello"


def test_a_miss_is_read_from_the_database_and_cached(api, send, private_redis, redis_client):
    message_id = send(username="ann", text="hello", timeout=30).json()["id"]
    redis_client.flushall()

    assert api.get(f"/chat/{message_id}").json()["text"] == "hello"

    assert redis_client.exists(_key(message_id))
    assert redis_client.pttl(_key(message_id)) <= 30_000


def test_collect_rewrites_the_cached_entry(api, send, redis_client):
    message_id = send(username="ann", text="hello", timeout=3600).json()["id"]
    cached_before = _expiration(api, message_id)

    api.get("/chats/ann")

    shown = _expiration(api, message_id)
    stored = Message.objects.get(pk=message_id)
    assert shown == stored.expiration_date
    assert shown < cached_before


def test_a_late_write_of_a_live_copy_cannot_replace_a_collected_one(send, redis_client):
    message_id = send(username="ann", text="hello", timeout=3600).json()["id"]
    live = hot_store().get(message_id)
    collected = type(live)(live.id, live.username, live.text, datetime.fromisoformat("2026-01-01T00:00:00+00:00"))

    hot_store().remember_collected([collected])
    # A reader or creator that fetched the row before the collect writes last.
    hot_store().remember(live, ttl=3600)

    assert hot_store().get(message_id) == collected


def test_stopped_redis_changes_no_answer(api, send, private_redis):
    kept_id = send(username="ann", text="before", timeout=3600).json()["id"]
    private_redis.stop()

    started = time.monotonic()
    created = send(username="ann", text="during", timeout=3600)
    read = api.get(f"/chat/{kept_id}")
    collected = api.get("/chats/ann")
    elapsed = time.monotonic() - started

    assert created.status_code == 201
    assert read.json()["text"] == "before"
    assert [m["text"] for m in collected.json()] == ["before", "during"]
    assert _expiration(api, kept_id) == Message.objects.get(pk=kept_id).expiration_date
    # A refused connection fails at once; nothing waits on the stopped server.
    assert elapsed < 2


def test_flushed_redis_changes_no_answer(api, send, redis_client):
    message_id = send(username="ann", text="hello", timeout=3600).json()["id"]
    api.get("/chats/ann")
    redis_client.flushall()

    assert api.get(f"/chat/{message_id}").json()["expiration_date"] == (
        Message.objects.get(pk=message_id).expiration_date.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    )
    assert api.get("/chats/ann").json() == []


def test_hung_redis_costs_one_short_timeout_not_one_per_request(api, send, hung_redis):
    started = time.monotonic()
    ids = [send(username="ann", text=f"m{n}", timeout=3600).json()["id"] for n in range(10)]
    texts = [api.get(f"/chat/{message_id}").json()["text"] for message_id in ids]
    collected = api.get("/chats/ann").json()
    elapsed = time.monotonic() - started

    assert texts == [f"m{n}" for n in range(10)]
    assert [m["id"] for m in collected] == ids
    # 21 requests; the 0.1 s socket timeout is paid once, then Redis is left alone.
    assert elapsed < 1.5
    assert hung_redis.connections, "the service never tried the hot store"


def test_the_hot_store_is_used_again_after_redis_returns(api, send, private_redis, redis_client):
    message_id = send(username="ann", text="hello", timeout=3600).json()["id"]
    private_redis.stop()
    assert api.get(f"/chat/{message_id}").status_code == 200

    private_redis.start()
    time.sleep(SUSPEND_SECONDS + 0.1)
    assert api.get(f"/chat/{message_id}").json()["text"] == "hello"

    assert redis_client.exists(_key(message_id))


def test_a_collected_entry_that_could_not_be_written_is_written_when_redis_answers(
    api, send, private_redis, redis_client
):
    message_id = send(username="ann", text="hello", timeout=3600).json()["id"]
    live_entry = redis_client.get(_key(message_id))
    # Writes hang while reads go on: the collect cannot rewrite the entry.
    redis_client.execute_command("CLIENT", "PAUSE", 400, "WRITE")

    api.get("/chats/ann")
    assert redis_client.get(_key(message_id)) == live_entry

    time.sleep(SUSPEND_SECONDS + 0.1)
    shown = _expiration(api, message_id)

    assert shown == Message.objects.get(pk=message_id).expiration_date
    assert redis_client.get(_key(message_id)) != live_entry


@pytest.mark.parametrize("fixture", ["private_redis", "hung_redis"])
def test_ping_reports_whether_the_hot_store_answers(request, fixture):
    server = request.getfixturevalue(fixture)

    assert hot_store().ping() is (fixture == "private_redis")
    if fixture == "private_redis":
        server.stop()
        hot_store.cache_clear()
        assert hot_store().ping() is False
