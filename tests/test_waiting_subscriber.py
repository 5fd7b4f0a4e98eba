"""
The wake-up subscriber takes a slow answer from Redis for a slow answer, not
for an outage: a busy worker reads a subscription's confirmation late, and
counting that as Redis being down would send every waiter to poll the database.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from restapi import waiting
from restapi.storage import wakeups
from tests.support.processes import RedisServer

# Twice the request path's Redis timeout (0.1 s), far within the subscriber's (1 s, on a busy machine too).
DELAY_SECONDS = 0.2


class SlowRedisProxy:
    """A TCP proxy in front of Redis that holds every answer for DELAY_SECONDS."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pump, args=(client, upstream, 0), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, DELAY_SECONDS), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, delay: float) -> None:
        try:
            while chunk := source.recv(65536):
                time.sleep(delay)
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, target):
                end.close()

    def close(self) -> None:
        self.closed.set()
        self.listener.close()


@pytest.fixture
def slow_redis(private_redis: RedisServer, chat_settings) -> Iterator[tuple[RedisServer, SlowRedisProxy]]:
    proxy = SlowRedisProxy(private_redis.port)
    chat_settings(REDIS_URL=proxy.url)
    yield private_redis, proxy
    proxy.close()


async def _listen_and_get_woken(name: str, publish: redis.Redis) -> tuple[bool, bool]:
    hub = waiting.wake_up_hub()
    async with hub.listen(name) as listener:
        subscribed_reliably = listener.reliable
        await asyncio.to_thread(publish.publish, name, b"")
        woken = await listener.wait(10)
    return subscribed_reliably, woken


@pytest.mark.django_db
def test_a_slow_confirmation_of_a_subscription_is_not_taken_for_an_outage(slow_redis):
    server, _ = slow_redis
    name = wakeups.channel("ann")

    reliable, woken = asyncio.run(_listen_and_get_woken(name, redis.Redis.from_url(server.url)))

    assert reliable
    assert woken
