"""/health and /ready in-process, against the configured stores and private Redis servers."""

from __future__ import annotations

import json
import time

import pytest
from django.conf import settings
from django.test import Client

from tests.support.processes import HungRedis, RedisServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> Client:
    return Client()


def test_health_says_the_process_is_up(client: Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"


def test_health_answers_head_and_refuses_post(client: Client) -> None:
    assert client.head("/health").status_code == 200
    assert client.post("/health").status_code == 405


def test_ready_without_a_hot_store_is_ok(client: Client, chat_settings) -> None:
    chat_settings(REDIS_URL=None)
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "hot_store": "disabled"}}
    assert response["Cache-Control"] == "no-store"


def test_ready_with_a_live_hot_store_is_ok(client: Client, private_redis: RedisServer) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "hot_store": "ok"}}


def test_ready_is_degraded_not_down_when_redis_stops(client: Client, private_redis: RedisServer) -> None:
    private_redis.stop()
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "degraded", "checks": {"database": "ok", "hot_store": "unavailable"}}


def test_ready_is_degraded_quickly_when_redis_hangs(client: Client, hung_redis: HungRedis) -> None:
    started = time.monotonic()
    response = client.get("/ready")
    # A generous bound: the hot store's socket timeout is 0.1 s.
    assert time.monotonic() - started < 2.0
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"


def test_ready_reveals_no_configuration(client: Client, private_redis: RedisServer) -> None:
    private_redis.stop()
    body = client.get("/ready").content.decode()
    database = settings.DATABASES["default"]
    for secret in (settings.SECRET_KEY, str(private_redis.port), str(database["NAME"]), database.get("HOST") or "-"):
        assert secret not in body
    assert set(json.loads(body)) == {"status", "checks"}


def test_checks_are_never_throttled(client: Client, chat_settings) -> None:
    chat_settings(THROTTLE_RATE="1/hour")
    assert client.post("/chat", {"username": "ann", "text": "hi"}, content_type="application/json").status_code == 201
    assert client.post("/chat", {"username": "ann", "text": "hi"}, content_type="application/json").status_code == 429
    assert [client.get(path).status_code for path in ["/health", "/ready", "/metrics"] * 5] == [200] * 15
