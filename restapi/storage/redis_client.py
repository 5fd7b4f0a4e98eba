"""Redis as this service uses it: an accelerator that must fail fast rather than wait."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def connect(url: str, *, timeout: float) -> redis.Redis:
    """
    A client whose every connect and call gives up after ``timeout`` seconds.

    redis-py retries failed calls by default; a retry against a Redis that hangs
    doubles the wait, and against one that is down multiplies the load when it
    returns, so there are none: the caller falls back to the database instead.
    """
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
        health_check_interval=0,
    )
