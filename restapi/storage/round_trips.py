"""
Calls of several stores sent to Redis in one round trip.

A round trip costs this process more CPU than the command it carries
(docs/PERFORMANCE.md), so a request that needs several stores' answers at one
point (a read by id: its throttle count and the hot store's copy of the
message) has each store queue its call as a :class:`Queued` and sends them
together with :func:`send`: the calls on one Redis client go out as one
pipeline, in the order given. Each call keeps its own store's failure policy
(``redis_client.RedisGuard``): a suspended store's call is skipped and the
others are sent; a failed pipeline fails, and suspends, every store that had a
call in it, at the cost of one timeout instead of one per call. A store without
Redis (the database's throttle counter, the embedded mode's missing hot store)
queues a :class:`Local` call, run in its turn.

On a Redis Cluster the pipeline is redis-py's cluster pipeline: it writes each
node's calls before reading any answer, so calls whose keys live on different
masters still cost one round trip's wait, and a redirect is followed as for a
single call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import redis

from restapi.storage.redis_client import REDIS_ERRORS, Attempt, Outcome, RedisGuard

T = TypeVar("T")


class Queued(Generic[T]):
    """A store's call, made when it is sent; ``attempt()`` sends it alone if nothing sent it yet."""

    _attempt: Attempt[T] | None = None

    def attempt(self) -> Attempt[T]:
        if self._attempt is None:
            send(self)
        assert self._attempt is not None
        return self._attempt

    def settle(self, attempt: Attempt[T]) -> None:
        self._attempt = attempt

    @property
    def sent(self) -> bool:
        return self._attempt is not None


class Local(Queued[T]):
    """A call that needs no Redis: ``run()`` gives its value."""

    def __init__(self, run: Callable[[], T]) -> None:
        self._run = run

    def send(self) -> None:
        self.settle(Attempt(Outcome.DONE, self._run()))


class Answered(Queued[T]):
    """A call whose answer is known without asking anyone."""

    def __init__(self, attempt: Attempt[T]) -> None:
        self._attempt = attempt


class OnRedis(Queued[T]):
    """
    One Redis command, under ``guard``: ``command`` makes it on a client or a
    pipeline (one command, whose reply comes back in the pipeline's list), and
    ``read`` turns its reply into the value.
    """

    def __init__(
        self,
        guard: RedisGuard,
        operation: str,
        command: Callable[[Any], object],
        read: Callable[[Any], T] = lambda reply: reply,
    ) -> None:
        self.guard = guard
        self.operation = operation
        self.command = command
        self.read = read

    def send_alone(self) -> None:
        self.settle(self.guard.call(self.operation, lambda client: self.read(self.command(client))))


def send(*calls: Queued[Any]) -> None:
    """Make every call not yet made, those on one Redis client in one pipeline; each call then has its attempt."""
    pipelines: dict[int, list[OnRedis[Any]]] = {}
    for call in calls:
        if call.sent:
            continue
        if isinstance(call, Local):
            call.send()
        elif isinstance(call, OnRedis):
            if call.guard.suspended:
                call.settle(Attempt(Outcome.SKIPPED))
            else:
                pipelines.setdefault(id(call.guard.client), []).append(call)
    for together in pipelines.values():
        if len(together) == 1:
            together[0].send_alone()
        else:
            _send_pipeline(together)


def _send_pipeline(calls: list[OnRedis[Any]]) -> None:
    try:
        pipeline = calls[0].guard.client.pipeline(transaction=False)
        for call in calls:
            call.command(pipeline)
        replies = pipeline.execute(raise_on_error=False)
    except REDIS_ERRORS as exc:
        for call in calls:
            call.settle(call.guard.failed(call.operation, exc))
        return
    for call, reply in zip(calls, replies, strict=True):
        if isinstance(reply, redis.RedisError):
            call.settle(call.guard.failed(call.operation, reply))
        else:
            call.settle(Attempt(Outcome.DONE, call.read(reply)))
