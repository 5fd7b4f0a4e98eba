"""
Redis refused, hung and flushed while concurrent clients use the service:
every answer stays correct (from the database), every request stays short, and
the hot store is used again once Redis is back, without a restart.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.hardening.http import call
from tests.hardening.load import MessagingLoad
from tests.support.processes import PATIENCE_SECONDS, RedisServer, ServiceProcess, running_service

pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]

# Bound on any single request while Redis misbehaves: REDIS_TIMEOUT is 0.1 s and
# each worker pays it at most once a second.
REQUEST_BOUND_SECONDS = 1.0


@pytest.fixture
def service(private_redis: RedisServer, tmp_path: Path) -> Iterator[ServiceProcess]:
    with running_service(tmp_path, workers=2, env={"REDIS_URL": private_redis.url}) as service:
        yield service


def _hot_store_is_used(service: ServiceProcess, client: redis.Redis) -> bool:
    """A settled message read by id is cached by the service again (retried past the 1 s suspension)."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while time.monotonic() < deadline:
        answer = call(service.url, "POST", "/chat", json_body={"username": "probe", "text": "p", "timeout": 0})
        assert answer.status == 201
        message_id = answer.json()["id"]
        assert call(service.url, "GET", f"/chat/{message_id}").status == 200
        if client.keys(f"ephemeral:*:message:{message_id}"):
            return True
        time.sleep(0.2)
    return False


def _run_with_fault(service: ServiceProcess, inject: Callable[[], None], recover: Callable[[], None]) -> MessagingLoad:
    load = MessagingLoad(service.url, threads=4)
    with load.running():
        time.sleep(0.5)
        inject()
        time.sleep(1.5)
        recover()
        time.sleep(1.0)
    load.drain()
    return load


def _assert_correct_and_bounded(load: MessagingLoad) -> None:
    assert load.errors == []
    assert len(load.sent_ids) > 20, "the load did not run"
    collected = load.collected_ids
    assert len(collected) == len(set(collected)), "a message was handed out twice"
    assert set(collected) == load.sent_ids, "a message was lost"
    assert max(load.latencies) < REQUEST_BOUND_SECONDS


def _assert_fault_was_seen(service: ServiceProcess) -> None:
    log = service.log_file.read_text()
    assert "answering from the database alone" in log
    assert "requests are not throttled" in log


def test_redis_refusing_connections_under_load(
    service: ServiceProcess, private_redis: RedisServer, redis_client: redis.Redis
) -> None:
    load = _run_with_fault(service, private_redis.stop, private_redis.start)
    _assert_correct_and_bounded(load)
    _assert_fault_was_seen(service)
    assert _hot_store_is_used(service, redis_client)


def test_redis_hanging_under_load(private_redis: RedisServer, redis_client: redis.Redis, tmp_path: Path) -> None:
    with running_service(tmp_path, workers=2, env={"REDIS_URL": private_redis.url}) as service:
        # A stopped process keeps its socket: connections are accepted by the kernel and never answered.
        pid = private_redis.process.pid
        load = _run_with_fault(service, lambda: os.kill(pid, signal.SIGSTOP), lambda: os.kill(pid, signal.SIGCONT))
        _assert_correct_and_bounded(load)
        _assert_fault_was_seen(service)
        assert _hot_store_is_used(service, redis_client)


def test_redis_flushed_under_load(service: ServiceProcess, redis_client: redis.Redis) -> None:
    load = _run_with_fault(service, redis_client.flushall, lambda: None)
    _assert_correct_and_bounded(load)
    assert _hot_store_is_used(service, redis_client)
