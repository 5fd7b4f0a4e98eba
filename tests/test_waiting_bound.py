"""
The asynchronous server's bound on waiters entering Django at once: waiters
whose time ends together go on a few at a time, each taking a thread and a
database connection there, instead of all at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest

from restapi import waiting
from restapi.longpoll import WAITERS_IN_DJANGO, LongPollASGI

# Three times the bound, so that without it far more would be inside at once.
WAITERS = 3 * WAITERS_IN_DJANGO
# How long each request stays inside the application unless too many come in:
# time for every other waiter, whose wait ended at the same moment, to come in too.
HOLD_SECONDS = 2


@pytest.fixture
def lookup_threads(transactional_db: None) -> Iterator[None]:
    yield
    # Their connections would otherwise keep the test database from being dropped.
    waiting.close_lookup_connections()


def _scope(n: int) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"/chats/bound-{n}",
        "raw_path": f"/chats/bound-{n}".encode(),
        "root_path": "",
        "query_string": b"wait=1",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 40000 + n),
        "server": ("testserver", 80),
    }


async def _run_waiters() -> tuple[int, list[int]]:
    inside = 0
    most = 0
    crowded = asyncio.Event()

    async def application(scope: dict, receive: object, send: object) -> None:
        # Stands for Django: counts the requests inside it at the same time.
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        if inside > WAITERS_IN_DJANGO:
            crowded.set()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(crowded.wait(), HOLD_SECONDS)
        finally:
            inside -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"[]"})

    server = LongPollASGI(application)
    statuses: list[int] = []

    async def client(n: int) -> None:
        requested = False
        gone = asyncio.Event()

        async def receive() -> dict:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            # The client stays connected until its answer is in.
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await server(_scope(n), receive, send)
        gone.set()

    await asyncio.wait_for(asyncio.gather(*(client(n) for n in range(WAITERS))), 120)
    return most, statuses


def test_waiters_whose_time_ends_together_enter_django_a_few_at_a_time(lookup_threads):
    most, statuses = asyncio.run(_run_waiters())

    assert statuses == [200] * WAITERS
    assert most == WAITERS_IN_DJANGO
