"""
Redis as this service uses it: an accelerator that must fail fast rather than wait.

Every caller goes through a :class:`RedisGuard`: one short timeout, no retry,
and after a failure the store is left alone for ``SUSPEND_SECONDS`` while the
caller falls back (to the database, or to not throttling), so a hung Redis
costs one timeout per process per interval, not one per request. The guard
reports what happened; callers count it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from restapi.storage.deployment import deployment_id

SUSPEND_SECONDS = 1.0
KEY_ROOT = "ephemeral"

T = TypeVar("T")


def connect(url: str, *, timeout: float) -> redis.Redis:
    """
    A client whose every connect and call gives up after ``timeout`` seconds.

    redis-py retries failed calls by default; a retry against a Redis that hangs
    doubles the wait, and against one that is down multiplies the load when it
    returns, so there are none: the caller falls back instead.
    """
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
        health_check_interval=0,
    )


def key(*parts: object) -> str:
    """
    A Redis key of this deployment: ``ephemeral:<deployment id>:<parts>``.

    Deployments that share a Redis database (staging and production pointed at
    db 0) never read or count each other's keys.
    """
    return ":".join([KEY_ROOT, deployment_id(), *map(str, parts)])


class Outcome(StrEnum):
    DONE = "done"
    FAILED = "failed"
    # Not attempted: a recent failure suspended the store.
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Attempt(Generic[T]):
    outcome: Outcome
    value: T | None = None

    @property
    def done(self) -> bool:
        return self.outcome is Outcome.DONE


class RedisGuard:
    """Runs calls on one Redis client under the failure policy above; one per store and process."""

    def __init__(self, client: redis.Redis, *, store: str, fallback: str, logger: logging.Logger) -> None:
        self.client = client
        self._store = store
        self._fallback = fallback
        self._logger = logger
        self._suspended_until = 0.0

    def call(self, operation: str, command: Callable[[redis.Redis], T]) -> Attempt[T]:
        """``command(client)``, unless the store is suspended; any Redis error is logged and suspends it."""
        if time.monotonic() < self._suspended_until:
            return Attempt(Outcome.SKIPPED)
        try:
            return Attempt(Outcome.DONE, command(self.client))
        except redis.RedisError as exc:
            self._suspended_until = time.monotonic() + SUSPEND_SECONDS
            self._logger.warning(
                "%s %s failed (%s: %s); %s for %.1fs",
                self._store,
                operation,
                type(exc).__name__,
                exc,
                self._fallback,
                SUSPEND_SECONDS,
            )
            return Attempt(Outcome.FAILED)
