"""The throttle's counters: exact under concurrency, in Redis or in the database, and bounded in size."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from restapi.models import ThrottleWindow
from restapi.rates import Rate
from restapi.storage.throttle_counters import DatabaseWindowCounter, RedisWindowCounter, window_counter
from tests.support.processes import RedisServer


@pytest.mark.django_db
def test_the_counter_follows_the_configured_store(counter_store: str) -> None:
    expected = RedisWindowCounter if counter_store == "redis" else DatabaseWindowCounter
    assert isinstance(window_counter(), expected)


@pytest.mark.django_db(transaction=True)
def test_concurrent_increments_are_exact(counter_store: str) -> None:
    """Every increment returns a distinct count: none is lost, none is shared."""
    threads, per_thread = 8, 25
    window_end = Rate.parse("1/day").window_end(time.time())
    counter = window_counter()
    start = threading.Barrier(threads)

    def hammer(_: int) -> list[int]:
        start.wait()
        try:
            return [counter.increment("192.0.2.1", window_end) for _ in range(per_thread)]
        finally:
            connections.close_all()

    with ThreadPoolExecutor(threads) as pool:
        counts = [count for batch in pool.map(hammer, range(threads)) for count in batch]
    assert sorted(counts) == list(range(1, threads * per_thread + 1))


@pytest.mark.django_db
def test_database_counter_starts_a_new_window_and_cleans_up_ended_ones(chat_settings: Callable[..., None]) -> None:
    chat_settings(REDIS_URL=None)
    counter = DatabaseWindowCounter()
    now = int(time.time())
    assert [counter.increment("192.0.2.1", now + 60) for _ in range(3)] == [1, 2, 3]
    # The next window starts again at one, in the same row.
    assert counter.increment("192.0.2.1", now + 120) == 1
    assert ThrottleWindow.objects.filter(client="192.0.2.1").count() == 1

    ThrottleWindow.objects.create(client="192.0.2.99", window_end=now - 1, count=7)
    counter._next_cleanup = 0.0
    counter.increment("192.0.2.2", now + 60)
    assert set(ThrottleWindow.objects.values_list("client", flat=True)) == {"192.0.2.1", "192.0.2.2"}


@pytest.mark.django_db
def test_redis_counter_keys_expire_with_their_window(private_redis: RedisServer, redis_client) -> None:
    window_end = int(time.time()) + 60
    assert window_counter().increment("192.0.2.1", window_end) == 1
    (key,) = redis_client.keys("ephemeral:*:throttle:*")
    assert 0 < redis_client.ttl(key) <= 61
