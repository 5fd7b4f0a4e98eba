"""POST /chat is limited per client address, counted exactly in one shared place."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from tests.hardening.http import call
from tests.support.processes import HungRedis, RedisServer, running_service

BODY = {"username": "ann", "text": "hello"}


def _post(client: APIClient, remote_addr: str = "203.0.113.9", **headers: str):
    return client.post("/chat", BODY, format="json", REMOTE_ADDR=remote_addr, **headers)


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
    with caplog.at_level(logging.WARNING, logger="restapi.storage"):
        assert [_post(api).status_code for _ in range(3)] == [201, 201, 201]
    assert REGISTRY.get_sample_value("chat_throttle_failed_open_total") - before == 3
    # One warning, then the counter leaves Redis alone for a moment.
    assert len([r for r in caplog.records if "throttle counter increment failed" in r.getMessage()]) == 1

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


@pytest.mark.django_db
def test_only_real_sends_spend_the_budget(
    counter_store: str, api: APIClient, chat_settings: Callable[..., None]
) -> None:
    chat_settings(THROTTLE_RATE="1/hour")
    for _ in range(100):
        assert api.options("/chat", REMOTE_ADDR="203.0.113.9").status_code == 200
        assert api.get("/chat", HTTP_ACCEPT="text/html", REMOTE_ADDR="203.0.113.9").status_code == 405
    assert api.head("/chat", REMOTE_ADDR="203.0.113.9").status_code == 405

    assert _post(api).status_code == 201
    assert _post(api).status_code == 429
