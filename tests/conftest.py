"""
Shared fixtures.

The suite runs against whatever backend the environment names: the embedded
SQLite file with no hot store by default, PostgreSQL and Redis when
DATABASE_URL and REDIS_URL point at them. A configured store that cannot be
reached fails the run; it is never skipped.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from rest_framework.response import Response
from rest_framework.test import APIClient

from restapi.storage.per_process import forget_all
from tests.support.postgres import PostgresCluster, postgres_bin_dir
from tests.support.processes import TEST_THROTTLE_RATE, HungRedis, RedisServer
from tests.support.tools import missing

CONFIGURED_REDIS_URL = os.environ.get("REDIS_URL")


def pytest_report_header(config: pytest.Config) -> list[str]:
    database = os.environ.get("DATABASE_URL") or "embedded SQLite"
    return [f"backend: database={database} hot store={CONFIGURED_REDIS_URL or 'none'}"]


@pytest.fixture(scope="session", autouse=True)
def _configured_redis_is_reachable() -> None:
    if CONFIGURED_REDIS_URL:
        try:
            redis.Redis.from_url(CONFIGURED_REDIS_URL, socket_timeout=2).ping()
        except redis.RedisError as exc:
            pytest.fail(f"REDIS_URL={CONFIGURED_REDIS_URL} is set but unreachable: {exc}", pytrace=False)


@pytest.fixture(autouse=True)
def _fresh_hot_store() -> Iterator[None]:
    """Each test starts with an empty hot store and store objects of its own."""
    forget_all()
    if CONFIGURED_REDIS_URL:
        redis.Redis.from_url(CONFIGURED_REDIS_URL).flushdb()
    yield
    forget_all()


@pytest.fixture(autouse=True)
def _generous_throttle(settings: Any) -> None:
    """
    Tests send many messages from one address; the production default of
    100/day would refuse them. Throttling tests set their own rate with
    ``chat_settings(THROTTLE_RATE=...)``.
    """
    settings.CHAT = {**settings.CHAT, "THROTTLE_RATE": TEST_THROTTLE_RATE, "READ_THROTTLE_RATE": TEST_THROTTLE_RATE}


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def send(api: APIClient, db: None) -> Callable[..., Response]:
    """POST /chat with a JSON body; returns the response."""

    def send(**body: Any) -> Response:
        return api.post("/chat", body, format="json")

    return send


@pytest.fixture
def claim(api: APIClient, db: None) -> Callable[[str], str]:
    """POST /inboxes for a username; returns the token."""

    def claim(username: str) -> str:
        response = api.post("/inboxes", {"username": username}, format="json")
        assert response.status_code == 201, response.content
        return response.json()["token"]

    return claim


# The rates a test may set; the throttle counts each in fixed windows.
RATE_SETTINGS = frozenset({"THROTTLE_RATE", "READ_THROTTLE_RATE"})


@pytest.fixture
def chat_settings(settings: Any) -> Callable[..., None]:
    """
    Change entries of settings.CHAT for one test.

    Setting a rate first waits, when the current minute has less than ten
    seconds left, for the next one: requests a test counts under one rate would
    otherwise now and then straddle two of its fixed windows. Every window of an
    hour or a day ends at the end of a minute too, so this covers every rate.
    """

    def change(**entries: Any) -> None:
        if RATE_SETTINGS & entries.keys():
            left = 60 - time.time() % 60
            if left < 10:
                time.sleep(left)
        settings.CHAT = {**settings.CHAT, **entries}

    return change


@pytest.fixture
def private_redis(
    tmp_path_factory: pytest.TempPathFactory, chat_settings: Callable[..., None]
) -> Iterator[RedisServer]:
    """A redis-server of the test's own, used as the hot store; the test may stop and restart it."""
    if shutil.which("redis-server") is None:
        missing("redis-server", install="apt-get install -y redis-server")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    chat_settings(REDIS_URL=server.url)
    yield server
    server.stop()


@pytest.fixture(params=["database", "redis"])
def counter_store(request: pytest.FixtureRequest, chat_settings: Callable[..., None]) -> str:
    """Runs the test once with the database counter and once with a private Redis."""
    if request.param == "redis":
        request.getfixturevalue("private_redis")
    else:
        chat_settings(REDIS_URL=None)
    return request.param


@pytest.fixture
def hung_redis(chat_settings: Callable[..., None]) -> Iterator[HungRedis]:
    """A hot store that accepts connections and never answers."""
    server = HungRedis()
    chat_settings(REDIS_URL=server.url)
    yield server
    server.close()


@pytest.fixture
def redis_client(private_redis: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(private_redis.url)


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PostgresCluster]:
    """A migrated PostgreSQL cluster of the tests' own, which they may stop, start and damage."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        missing("the PostgreSQL server (initdb, pg_ctl)", install="apt-get install -y postgresql")
    cluster = PostgresCluster(bin_dir)
    try:
        cluster.init()
        cluster.start()
        cluster.migrate()
        yield cluster
    finally:
        cluster.remove()
