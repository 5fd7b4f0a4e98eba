"""
Redis as this service uses it: an accelerator that must fail fast rather than wait.

Every store on Redis is a :class:`GuardedStore`, whose calls go through a
:class:`RedisGuard` of its own: one short timeout, no retry, and after a
failure the store is left alone for ``SUSPEND_SECONDS`` while the caller falls
back (to the database, to not throttling, to polling), so a hung Redis costs
one timeout per process per interval, not one per request. The guard reports
what happened; callers count it. The wake-ups' subscriber, which holds its
connection open, has a reconnect policy of its own (``wakeups.InboxHub``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Generic, TypeVar

import redis
import redis.asyncio
from django.conf import settings
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from restapi.storage.deployment import deployment_id
from restapi.storage.per_process import per_process

SUSPEND_SECONDS = 1.0
KEY_ROOT = "ephemeral"
# A cluster client's own errors (no layout to be had, a slot no node serves) are not RedisErrors.
REDIS_ERRORS = (redis.RedisError, RedisClusterException)

T = TypeVar("T")
S = TypeVar("S", bound="GuardedStore")
D = TypeVar("D")


def connect(url: str, *, timeout: float, cluster: bool = False) -> redis.Redis | ClusterOnFirstUse:
    """
    A client whose every connect and call gives up after ``timeout`` seconds;
    with ``cluster``, a Redis Cluster client that learns every node from the one
    ``url`` names and follows the cluster's failovers.

    redis-py retries failed calls by default; a retry against a Redis that hangs
    doubles the wait, and against one that is down multiplies the load when it
    returns, so there are none: the caller falls back instead. The cluster
    client is the exception: it follows a redirect (a slot served elsewhere, a
    replica promoted) only by retrying, so it retries once, after re-reading
    the cluster's layout; a call then costs at most two timeouts.
    """
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "health_check_interval": 0}
    if cluster:
        return ClusterOnFirstUse(url, {**options, "retry": Retry(NoBackoff(), 1)})
    return redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), retry_on_timeout=False, **options)


def connect_subscriber(url: str, *, timeout: float) -> redis.asyncio.Redis:
    """
    An asyncio client for pub/sub: connects within ``timeout`` and without
    retries, as :func:`connect`'s clients do, but reads with no deadline (a
    subscriber waits for messages as long as they take); writes (SUBSCRIBE)
    still time out.
    """
    return redis.asyncio.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=None,
        socket_keepalive=True,
        retry=redis.asyncio.retry.Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


class ClusterOnFirstUse:
    """
    A ``RedisCluster`` made at its first call, under the caller's guard.

    Making one asks a node for the cluster's layout; a node that is down then
    must cost what a failed call costs (a fall-back), not fail the request that
    happened to make the client. After a failure the layout is fetched again on
    the next call, from any node the client has learnt.
    """

    def __init__(self, url: str, options: dict[str, object]) -> None:
        self._url = url
        self._options = options
        self._client: RedisCluster | None = None
        self._layout_stale = False
        self._lock = threading.Lock()

    def layout_may_have_changed(self) -> None:
        """
        After a failed call: read the layout again before the next call.

        A call that fails while a master is down re-reads a layout that still
        names it, and a transaction's pipeline does not re-read it at all; once a
        replica has taken over, the next call must find it.
        """
        self._layout_stale = True

    def __getattr__(self, name: str) -> object:
        with self._lock:
            if self._client is None:
                # The other masters' slots keep answering while one has no replacement yet.
                self._client = RedisCluster.from_url(self._url, require_full_coverage=False, **self._options)
            elif self._layout_stale:
                self._layout_stale = False
                # From every node learnt so far, not only the one REDIS_URL names.
                self._client.nodes_manager.initialize()
        return getattr(self._client, name)


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

    def __init__(
        self, client: redis.Redis | ClusterOnFirstUse, *, store: str, fallback: str, logger: logging.Logger
    ) -> None:
        self.client = client
        self._store = store
        self._fallback = fallback
        self._logger = logger
        self._suspended_until = 0.0

    @property
    def suspended(self) -> bool:
        """Whether a recent failure has the store left alone."""
        return time.monotonic() < self._suspended_until

    def call(self, operation: str, command: Callable[[redis.Redis], T]) -> Attempt[T]:
        """``command(client)``, unless the store is suspended; any Redis error is logged and suspends it."""
        if self.suspended:
            return Attempt(Outcome.SKIPPED)
        try:
            return Attempt(Outcome.DONE, command(self.client))
        except REDIS_ERRORS as exc:
            return self.failed(operation, exc)

    def failed(self, operation: str, exc: Exception) -> Attempt[T]:
        """Log a failed call and suspend the store; what the call's caller is told."""
        self._suspended_until = time.monotonic() + SUSPEND_SECONDS
        if isinstance(self.client, ClusterOnFirstUse):
            self.client.layout_may_have_changed()
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


class GuardedStore:
    """
    A store on Redis whose every call goes through one :class:`RedisGuard` of
    its own, so that a failure suspends this store only; a subclass names
    itself and what its callers fall back to, for the log.
    """

    store: ClassVar[str]
    fallback: ClassVar[str]
    # Whether REDIS_CLUSTER applies. Pub/sub does not need it: a PUBLISH reaches the subscribers of every node.
    follows_cluster: ClassVar[bool] = True

    def __init__(self, url: str, *, timeout: float) -> None:
        cluster = self.follows_cluster and settings.CHAT["REDIS_CLUSTER"]
        self._redis = RedisGuard(
            shared_client(url, timeout=timeout, cluster=cluster),
            store=self.store,
            fallback=self.fallback,
            logger=logging.getLogger(type(self).__module__),
        )


@per_process
def _clients() -> dict[tuple[str, float, bool], redis.Redis | ClusterOnFirstUse]:
    return {}


_clients_lock = threading.Lock()


def shared_client(url: str, *, timeout: float, cluster: bool) -> redis.Redis | ClusterOnFirstUse:
    """
    The process's client for these options, one for every store that uses them:
    commands of several stores can then share a pipeline (``storage.round_trips``).
    Each store keeps a guard of its own, so a failure still suspends only the
    stores whose calls failed.
    """
    with _clients_lock:
        clients = _clients()
        options = (url, timeout, cluster)
        if options not in clients:
            clients[options] = connect(url, timeout=timeout, cluster=cluster)
        return clients[options]


def per_process_store(on_redis: type[S], without_redis: Callable[[], D]) -> Callable[[], S | D]:
    """
    The factory of a process's store: ``on_redis`` on ``settings.CHAT['REDIS_URL']``,
    or ``without_redis()`` when none is set; made once, and again when the settings change.
    """

    @per_process
    def make() -> S | D:
        chat = settings.CHAT
        if not chat["REDIS_URL"]:
            return without_redis()
        return on_redis(chat["REDIS_URL"], timeout=chat["REDIS_TIMEOUT"])

    return make
