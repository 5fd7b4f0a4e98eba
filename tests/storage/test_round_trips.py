"""
Calls of the throttle counter and the hot store sent together (storage.round_trips):
one round trip to Redis, counted by the server itself, and each store's failure
policy kept.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import redis

from restapi.storage import StoredMessage, round_trips
from restapi.storage.hot import hot_store
from restapi.storage.redis_client import SUSPEND_SECONDS, Outcome
from restapi.storage.throttle_counters import window_counter
from tests.support.processes import RedisServer

pytestmark = pytest.mark.django_db

WINDOW_END = 4_000_000_000


def reads_processed(client: redis.Redis) -> int:
    """Requests the server has read from all its clients (a pipeline arrives as one), this one's included."""
    return client.info("stats")["total_reads_processed"]


def commands(client: redis.Redis) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): stats["calls"] for name, stats in client.info("commandstats").items()}


def settled_message(message_id: int) -> StoredMessage:
    return StoredMessage(message_id, "ann", "hello", datetime(2026, 1, 1, tzinfo=UTC))


def test_a_count_and_a_look_up_are_one_round_trip(private_redis: RedisServer, redis_client: redis.Redis) -> None:
    assert hot_store().remember_settled(settled_message(7)).done
    counted = window_counter().queue_increment("read:203.0.113.9", WINDOW_END)
    looked_up = hot_store().queue_get(7)
    missed = hot_store().queue_get(8)
    redis_client.config_resetstat()
    before = reads_processed(redis_client)

    round_trips.send(counted, looked_up, missed)

    assert reads_processed(redis_client) - before - 1 == 1
    assert {name: calls for name, calls in commands(redis_client).items() if name in ("eval", "get")} == {
        "eval": 1,
        "get": 2,
    }
    assert counted.attempt().value == 1
    assert looked_up.attempt().value == settled_message(7)
    assert missed.attempt().done
    assert missed.attempt().value is None
    # Made once: asking again sends nothing.
    before = reads_processed(redis_client)
    assert counted.attempt().value == 1
    assert reads_processed(redis_client) - before - 1 == 0


def test_a_call_sent_alone_when_nothing_took_it_along(private_redis: RedisServer, redis_client: redis.Redis) -> None:
    looked_up = hot_store().queue_get(7)
    assert not looked_up.sent
    assert looked_up.attempt().done
    assert looked_up.attempt().value is None
    assert window_counter().queue_increment("read:x", WINDOW_END).attempt().value == 1
    assert window_counter().increment("read:x", WINDOW_END) == 2


def test_a_failed_round_trip_fails_and_suspends_every_store_in_it(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    counted = window_counter().queue_increment("read:x", WINDOW_END)
    looked_up = hot_store().queue_get(7)
    # Connected first, so that what fails is the round trip, not a connect.
    assert window_counter().increment("warm", WINDOW_END) == 1
    private_redis.stop()

    round_trips.send(counted, looked_up)

    assert counted.attempt().outcome is Outcome.FAILED
    assert counted.attempt().value is None
    assert looked_up.attempt().outcome is Outcome.FAILED
    assert "throttle counter increment failed" in caplog.text
    assert "hot store get failed" in caplog.text
    assert window_counter().queue_increment("read:x", WINDOW_END).attempt().outcome is Outcome.SKIPPED
    assert hot_store().queue_get(7).attempt().outcome is Outcome.SKIPPED


def test_a_suspended_store_is_skipped_and_the_other_still_sent(
    private_redis: RedisServer, redis_client: redis.Redis
) -> None:
    assert hot_store().remember_settled(settled_message(7)).done
    private_redis.stop()
    assert window_counter().increment("read:x", WINDOW_END) is None  # suspends the counter only
    private_redis.start()

    counted = window_counter().queue_increment("read:x", WINDOW_END)
    looked_up = hot_store().queue_get(7)
    round_trips.send(counted, looked_up)

    assert counted.attempt().outcome is Outcome.SKIPPED
    # The restarted server lost the entry: the hot store was asked, and answered.
    assert looked_up.attempt().done
    assert looked_up.attempt().value is None
    time.sleep(SUSPEND_SECONDS + 0.1)
    assert window_counter().increment("read:x", WINDOW_END) == 1


def test_an_error_answer_fails_only_its_own_call(private_redis: RedisServer, redis_client: redis.Redis) -> None:
    # A counter key holding something INCR cannot count: the script fails, the look-up does not.
    counted = window_counter().queue_increment("read:x", WINDOW_END)
    assert window_counter().increment("read:x", WINDOW_END) == 1
    (name,) = redis_client.keys("*throttle*")
    redis_client.set(name, "not a number")
    assert hot_store().remember_settled(settled_message(7)).done
    looked_up = hot_store().queue_get(7)

    round_trips.send(counted, looked_up)

    assert counted.attempt().outcome is Outcome.FAILED
    assert looked_up.attempt().value == settled_message(7)


def test_without_redis_the_count_is_the_database_s_and_every_look_up_a_miss(chat_settings) -> None:
    chat_settings(REDIS_URL=None)
    counted = window_counter().queue_increment("read:x", WINDOW_END)
    looked_up = hot_store().queue_get(7)

    round_trips.send(counted, looked_up)

    assert counted.attempt().value == 1
    assert looked_up.attempt().done
    assert looked_up.attempt().value is None
    assert window_counter().increment("read:x", WINDOW_END) == 2
