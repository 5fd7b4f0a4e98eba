"""
Wake-ups: Redis pub/sub telling the waiters of an inbox, on any host, that a
message may have arrived.

A wake-up is only a hint to look again: the waiter then runs the ordinary
atomic collect (or lease), so a lost, late or duplicated wake-up can delay an
answer but never hand a message out twice or lose one. Each inbox has its own
channel, so a process hears only about the inboxes its waiters watch.

A process keeps ONE subscriber connection per event loop, shared by all of its
waiters: a waiter costs a set entry and an ``asyncio.Event``, never a
connection or a thread. While that connection is down the listeners say so
(``reliable`` is False) and their waiters poll the database instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import redis
import redis.asyncio

from restapi.storage.redis_client import (
    SUSPEND_SECONDS,
    Attempt,
    GuardedStore,
    Outcome,
    connect_subscriber,
    key,
    per_process_store,
)

logger = logging.getLogger(__name__)

# How long a failed subscriber connection is left alone before it is made again.
RECONNECT_SECONDS = SUSPEND_SECONDS
# What a subscriber's call raises when its connection fails or does not answer in time.
_CONNECTION_LOST = (redis.RedisError, OSError, TimeoutError)


def channel(username: str) -> str:
    """The channel of ``username``'s inbox, in this deployment's key space (reads the database once per process)."""
    return key("inbox", username)


class Listener:
    """One waiter's ear on one inbox."""

    __slots__ = ("_event", "_hub")

    def __init__(self, hub: InboxHub | None) -> None:
        self._event = asyncio.Event()
        self._hub = hub

    @property
    def reliable(self) -> bool:
        """Whether a message sent now is certain to wake this listener."""
        return self._hub is not None and self._hub.connected

    def wake(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """Until woken or ``timeout`` seconds pass; True if woken. Each wake-up is consumed."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        self._event.clear()
        return True


class InboxHub:
    """The subscriber connection of one event loop and the listeners it serves."""

    available = True

    def __init__(self, url: str, *, timeout: float) -> None:
        self._client = connect_subscriber(url, timeout=timeout)
        self._timeout = timeout
        self._pubsub: redis.asyncio.client.PubSub | None = None
        self._listeners: dict[str, set[Listener]] = {}
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._retry_at = 0.0
        self._closing: set[asyncio.Future[None]] = set()
        self.connected = False

    @asynccontextmanager
    async def listen(self, name: str) -> AsyncIterator[Listener]:
        """A listener on channel ``name`` (``channel(username)``), subscribed before it is handed over."""
        listener = Listener(self)
        listeners = self._listeners.setdefault(name, set())
        listeners.add(listener)
        try:
            if len(listeners) == 1:
                await self._subscribe(name)
            else:
                await self._confirmed(name)
            yield listener
        finally:
            listeners.discard(listener)
            if not listeners and self._listeners.get(name) is listeners:
                del self._listeners[name]
                await self._unsubscribe(name)

    def wake_all(self) -> None:
        for listeners in self._listeners.values():
            for listener in listeners:
                listener.wake()

    async def _ensure_connection(self) -> redis.asyncio.client.PubSub | None:
        if self._pubsub is not None:
            return self._pubsub
        if time.monotonic() < self._retry_at:
            return None
        pubsub = self._client.pubsub()
        try:
            # One PING opens the connection within the connect timeout, before any waiter relies on it.
            await asyncio.wait_for(pubsub.ping(), self._timeout)
            await asyncio.wait_for(pubsub.parse_response(block=False, timeout=self._timeout), self._timeout)
        except _CONNECTION_LOST as exc:
            self._fail(exc, pubsub)
            return None
        self._pubsub = pubsub
        self.connected = True
        self._reader = asyncio.ensure_future(self._read(pubsub))
        return pubsub

    async def _subscribe(self, name: str) -> None:
        pubsub = await self._ensure_connection()
        if pubsub is None:
            return
        confirmation = asyncio.get_running_loop().create_future()
        self._confirmations[name] = confirmation
        try:
            await asyncio.wait_for(pubsub.execute_command("SUBSCRIBE", name), self._timeout)
            await asyncio.wait_for(asyncio.shield(confirmation), self._timeout)
        except _CONNECTION_LOST as exc:
            self._fail(exc, pubsub)

    async def _confirmed(self, name: str) -> None:
        confirmation = self._confirmations.get(name)
        if confirmation is not None and not confirmation.done():
            with suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(confirmation), self._timeout)

    async def _unsubscribe(self, name: str) -> None:
        self._confirmations.pop(name, None)
        if self._pubsub is None:
            return
        try:
            await asyncio.wait_for(self._pubsub.execute_command("UNSUBSCRIBE", name), self._timeout)
        except _CONNECTION_LOST as exc:
            self._fail(exc, self._pubsub)

    async def _read(self, pubsub: redis.asyncio.client.PubSub) -> None:
        try:
            while True:
                response = await pubsub.parse_response(block=True)
                self._dispatch(response)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(exc, pubsub)

    def _dispatch(self, response: list) -> None:
        kind = response[0].decode() if isinstance(response[0], bytes) else response[0]
        if kind not in {"message", "subscribe"}:
            return
        name = response[1].decode()
        if kind == "subscribe":
            confirmation = self._confirmations.get(name)
            if confirmation is not None and not confirmation.done():
                confirmation.set_result(None)
            return
        for listener in self._listeners.get(name, ()):
            listener.wake()

    def _fail(self, exc: BaseException, pubsub: redis.asyncio.client.PubSub) -> None:
        if pubsub is not self._pubsub and self._pubsub is not None:
            return
        was_connected = self.connected
        self.connected = False
        self._pubsub = None
        self._retry_at = time.monotonic() + RECONNECT_SECONDS
        for confirmation in self._confirmations.values():
            if not confirmation.done():
                confirmation.cancel()
        self._confirmations.clear()
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()
        self._reader = None
        closing = asyncio.ensure_future(pubsub.aclose())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
        if was_connected or not isinstance(exc, (redis.ConnectionError, OSError)):
            logger.warning(
                "wake-ups unavailable (%s: %s); waiters poll the database until Redis answers again",
                type(exc).__name__,
                exc,
            )
        # Every waiter looks at its inbox now, and polls until the connection is back.
        self.wake_all()

    async def reconnect_if_due(self) -> None:
        """Make the connection again after an outage and subscribe every watched inbox."""
        if self._pubsub is not None or time.monotonic() < self._retry_at:
            return
        pubsub = await self._ensure_connection()
        if pubsub is None:
            return
        for name in list(self._listeners):
            await self._subscribe(name)
        # Sends during the outage announced nothing: every waiter looks again.
        self.wake_all()


class NoHub:
    """No Redis: listeners are never woken, and their waiters poll the database."""

    available = False
    connected = False

    @asynccontextmanager
    async def listen(self, name: str) -> AsyncIterator[Listener]:
        yield Listener(None)

    async def reconnect_if_due(self) -> None:
        pass

    def wake_all(self) -> None:
        pass


_HUBS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, InboxHub | NoHub] = weakref.WeakKeyDictionary()


def hub(url: str | None, *, timeout: float) -> InboxHub | NoHub:
    """The running event loop's hub: asyncio connections belong to the loop that made them."""
    loop = asyncio.get_running_loop()
    found = _HUBS.get(loop)
    if found is None:
        found = InboxHub(url, timeout=timeout) if url else NoHub()
        _HUBS[loop] = found
    return found


def all_hubs() -> list[InboxHub | NoHub]:
    return list(_HUBS.values())


class Announcer(GuardedStore):
    """Publishes wake-ups."""

    store = "wake-ups"
    fallback = "waiters find new messages by polling"
    follows_cluster = False

    def announce(self, username: str) -> Attempt[int]:
        """Wake the waiters of ``username``'s inbox, on every host."""
        name = channel(username)
        return self._redis.call("publish", lambda client: client.publish(name, b""))


class NoAnnouncer:
    """No Redis: nobody is subscribed, and waiters poll."""

    def announce(self, username: str) -> Attempt[int]:
        return Attempt(Outcome.DONE, 0)


# The process's publisher of wake-ups.
announcer = per_process_store(Announcer, NoAnnouncer)
