"""POST /chat is limited per client address, counted exactly in one shared place."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection, connections
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from restapi.models import ThrottleWindow
from restapi.throttling import (
    DatabaseWindowCounter,
    Rate,
    RedisWindowCounter,
    window_counter,
)
from tests.hardening.http import call
from tests.support.processes import HungRedis, RedisServer, running_service

BODY = {"username": "ann", "text": "hello"}


@pytest.fixture(params=["database", "redis"])
def counter_store(request: pytest.FixtureRequest, chat_settings: Callable[..., None]) -> str:
    """Runs the test once with the database counter and once with a private Redis."""
    if request.param == "redis":
        request.getfixturevalue("private_redis")
    else:
        chat_settings(REDIS_URL=None)
    return request.param


def _post(client: APIClient, remote_addr: str = "203.0.113.9", **headers: str):
    return client.post("/chat", BODY, format="json", REMOTE_ADDR=remote_addr, **headers)


def test_rate_parsing_and_fixed_windows() -> None:
    rate = Rate.parse("5/min")
    assert rate == Rate(5, 60)
    assert Rate.parse("100/day") == Rate(100, 86400)
    assert rate.window_end(120.0) == 180
    assert rate.window_end(179.999) == 180
    assert rate.window_end(180.0) == 240


@pytest.mark.django_db
def test_the_counter_follows_the_configured_store(counter_store: str) -> None:
    expected = RedisWindowCounter if counter_store == "redis" else DatabaseWindowCounter
    assert isinstance(window_counter(), expected)


@pytest.mark.django_db
def test_over_the_rate_is_429_json_with_retry_after(
    counter_store: str, api: APIClient, chat_settings: Callable[..., None]
) -> None:
    chat_settings(THROTTLE_RATE="3/min")
    statuses = [_post(api).status_code for _ in range(3)]
    assert statuses == [201, 201, 201]

    refused = _post(api)
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/json"
    assert "throttled" in refused.json()["detail"].lower()
    assert 1 <= int(refused["Retry-After"]) <= 60

    # Nothing was stored for the refused request.
    assert len(api.get("/chats/ann").json()) == 3


@pytest.mark.django_db
def test_clients_are_counted_separately_and_reads_are_not_throttled(
    counter_store: str, api: APIClient, chat_settings: Callable[..., None]
) -> None:
    chat_settings(THROTTLE_RATE="1/hour")
    assert _post(api, "203.0.113.9").status_code == 201
    assert _post(api, "203.0.113.9").status_code == 429
    assert _post(api, "203.0.113.10").status_code == 201
    for _ in range(5):
        assert api.get("/chats/nobody", REMOTE_ADDR="203.0.113.9").status_code == 200


@pytest.mark.django_db
def test_a_client_cannot_dodge_the_limit_with_its_own_forwarded_header(
    counter_store: str, api: APIClient, chat_settings: Callable[..., None]
) -> None:
    chat_settings(THROTTLE_RATE="2/hour", TRUSTED_PROXIES=[])
    codes = [_post(api, HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code for i in range(4)]
    assert codes == [201, 201, 429, 429]


@pytest.mark.django_db
def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_count(
    counter_store: str, api: APIClient, chat_settings: Callable[..., None]
) -> None:
    chat_settings(THROTTLE_RATE="1/hour", TRUSTED_PROXIES=["10.0.0.0/8"])
    assert _post(api, "10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 201
    assert _post(api, "10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 201
    # Same real client, a different forged left part and a different proxy: still counted.
    assert _post(api, "10.0.0.3", HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.1").status_code == 429


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
    (key,) = redis_client.keys("ephemeral:throttle:*")
    assert 0 < redis_client.ttl(key) <= 61


@pytest.mark.django_db
def test_redis_down_fails_open_with_a_warning_and_a_metric(
    private_redis: RedisServer,
    api: APIClient,
    chat_settings: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    chat_settings(THROTTLE_RATE="1/hour")
    assert _post(api).status_code == 201
    assert _post(api).status_code == 429

    private_redis.stop()
    before = REGISTRY.get_sample_value("chat_throttle_failed_open_total")
    with caplog.at_level(logging.WARNING, logger="restapi.throttling"):
        assert [_post(api).status_code for _ in range(3)] == [201, 201, 201]
    assert REGISTRY.get_sample_value("chat_throttle_failed_open_total") - before == 3
    # One warning, then the counter leaves Redis alone for a moment.
    assert len([r for r in caplog.records if "throttle counter unavailable" in r.getMessage()]) == 1

    # Back again (empty, as after a restart): counting resumes without a restart of the service.
    private_redis.start()
    time.sleep(1.1)
    assert _post(api).status_code == 201
    assert _post(api).status_code == 429


@pytest.mark.django_db
def test_hung_redis_lets_requests_through_quickly(
    hung_redis: HungRedis, api: APIClient, chat_settings: Callable[..., None]
) -> None:
    chat_settings(THROTTLE_RATE="1/hour")
    started = time.monotonic()
    codes = [_post(api).status_code for _ in range(5)]
    elapsed = time.monotonic() - started
    assert codes == [201] * 5
    # One short Redis timeout for the throttle and one for the hot store, not one per request.
    assert elapsed < 2.0


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_the_limit_is_exact_across_gunicorn_workers(tmp_path: Path, counter_store: str) -> None:
    env = {"CHAT_THROTTLE_RATE": "25/day"}
    if counter_store == "database":
        env["REDIS_URL"] = ""
    else:
        from django.conf import settings

        env["REDIS_URL"] = settings.CHAT["REDIS_URL"]
    attempts = 60
    with running_service(tmp_path, workers=3, env=env) as service:

        def post(_: int) -> int:
            answer = call(service.url, "POST", "/chat", json_body=BODY)
            assert answer.headers["content-type"] == "application/json"
            return answer.status

        with ThreadPoolExecutor(10) as pool:
            codes = list(pool.map(post, range(attempts)))
    assert codes.count(201) == 25
    assert codes.count(429) == attempts - 25
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM restapi_message WHERE username = 'ann'")
        assert cursor.fetchone()[0] == 25
