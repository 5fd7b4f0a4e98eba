"""
The hot store: used when it answers, never the only copy, never stale, and
bounded in what it costs when it fails. Faults are real: a redis-server that is
stopped, flushed or paused, or a socket that never answers.
"""

from __future__ import annotations

import time

import pytest

from restapi import services
from restapi.models import Message
from restapi.storage.hot import SETTLED_TTL, RedisHotStore, hot_store, message_key
from restapi.storage.redis_client import SUSPEND_SECONDS


def _shown(api, message_id: int) -> dict:
    response = api.get(f"/chat/{message_id}")
    assert response.status_code == 200
    return response.json()


def _stored(message_id: int) -> dict:
    stored = Message.objects.get(pk=message_id)
    return {
        "username": stored.username,
        "text": stored.text,
        "expiration_date": stored.expiration_date.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


def test_live_messages_are_never_cached(api, send, redis_client):
    message_id = send(username="ann", text="hello", timeout=3600).json()["id"]

    assert _shown(api, message_id) == _stored(message_id)

    assert not redis_client.exists(message_key(message_id))


def test_a_collected_message_is_cached_when_read(api, send, redis_client):
    message_id = send(username="ann", text="hello", timeout=3600).json()["id"]
    api.get("/chats/ann")

    assert _shown(api, message_id) == _stored(message_id)

    assert redis_client.exists(message_key(message_id))
    assert 0 < redis_client.ttl(message_key(message_id)) <= SETTLED_TTL


def test_a_timed_out_message_is_cached_when_read(api, send, redis_client):
    message_id = send(username="ann", text="hello", timeout=0).json()["id"]

    assert _shown(api, message_id) == _stored(message_id)

    assert redis_client.exists(message_key(message_id))


def test_a_cached_message_is_answered_from_the_hot_store(api, send, redis_client):
    message_id = send(username="ann", text="hello", timeout=0).json()["id"]
    expected = _shown(api, message_id)
    # Remove the row behind the service's back: only the hot store still knows it.
    Message.objects.filter(pk=message_id).delete()

    assert _shown(api, message_id) == expected


def test_a_read_racing_a_collect_cannot_leave_a_stale_entry(api, send, redis_client):
    message_id = send(username="ann", text="hello", timeout=3600).json()["id"]
    # A reader fetches the live row; a collect happens before it could cache anything.
    before = _shown(api, message_id)
    api.get("/chats/ann")

    after = _shown(api, message_id)

    assert after == _stored(message_id)
    assert after["expiration_date"] < before["expiration_date"]


def test_a_collect_while_this_process_cannot_reach_redis_leaves_nothing_stale(db, private_redis):
    # One process collects while Redis is down for it; another, which can reach
    # Redis, then reads: it must see the collected state.
    message = services.create_message(username="ann", text="hi", timeout=600)
    other_process = RedisHotStore(private_redis.url, timeout=1.0)
    private_redis.stop()
    services.collect_inbox(username="ann")
    private_redis.start()

    assert other_process.get(message.id).value is None
    assert hot_store().get(message.id).value is None


def test_stopped_redis_changes_no_answer(api, send, private_redis):
    settled_id = send(username="ann", text="settled", timeout=0).json()["id"]
    cached = _shown(api, settled_id)
    private_redis.stop()

    started = time.monotonic()
    created = send(username="ann", text="during", timeout=3600)
    read = _shown(api, settled_id)
    collected = api.get("/chats/ann")
    elapsed = time.monotonic() - started

    assert created.status_code == 201
    assert read == cached
    assert [m["text"] for m in collected.json()] == ["during"]
    # A refused connection fails at once; nothing waits on the stopped server.
    assert elapsed < 2


def test_flushed_redis_changes_no_answer(api, send, redis_client):
    message_id = send(username="ann", text="hello", timeout=3600).json()["id"]
    api.get("/chats/ann")
    cached = _shown(api, message_id)
    redis_client.flushall()

    assert _shown(api, message_id) == cached == _stored(message_id)
    assert api.get("/chats/ann").json() == []
    assert redis_client.exists(message_key(message_id))


def test_hung_redis_costs_one_short_timeout_not_one_per_request(api, send, hung_redis):
    started = time.monotonic()
    ids = [send(username="ann", text=f"m{n}", timeout=3600).json()["id"] for n in range(10)]
    texts = [_shown(api, message_id)["text"] for message_id in ids]
    collected = api.get("/chats/ann").json()
    elapsed = time.monotonic() - started

    assert texts == [f"m{n}" for n in range(10)]
    assert [m["id"] for m in collected] == ids
    # 21 requests; the 0.1 s socket timeout is paid once, then Redis is left alone.
    assert elapsed < 1.5
    assert hung_redis.connections, "the service never tried the hot store"


def test_the_hot_store_is_used_again_after_redis_returns(api, send, private_redis, redis_client):
    message_id = send(username="ann", text="hello", timeout=0).json()["id"]
    private_redis.stop()
    assert _shown(api, message_id)["text"] == "hello"

    private_redis.start()
    time.sleep(SUSPEND_SECONDS + 0.1)
    assert _shown(api, message_id)["text"] == "hello"

    assert redis_client.exists(message_key(message_id))


def test_paused_redis_writes_cost_one_timeout_and_change_no_answer(api, send, private_redis, redis_client):
    message_id = send(username="ann", text="hello", timeout=0).json()["id"]
    # Writes hang while reads go on.
    redis_client.execute_command("CLIENT", "PAUSE", 400, "WRITE")

    started = time.monotonic()
    answers = [_shown(api, message_id) for _ in range(5)]
    elapsed = time.monotonic() - started

    assert answers == [_stored(message_id)] * 5
    assert elapsed < 1


@pytest.mark.parametrize("fixture", ["private_redis", "hung_redis"])
def test_ping_reports_whether_the_hot_store_answers(request, fixture):
    server = request.getfixturevalue(fixture)

    assert bool(hot_store().ping().value) is (fixture == "private_redis")
    if fixture == "private_redis":
        server.stop()
        hot_store.cache_clear()
        assert bool(hot_store().ping().value) is False
