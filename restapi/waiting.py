"""
Waiting for mail: what ``?wait=`` (and a lease's ``wait``) does before the
ordinary collect or lease runs.

A waiter never hands anything out itself. It waits until the inbox has a
collectable message, its time is up, or the server is stopping, and then the
request goes on to the one atomic statement as if it had just arrived. So
waiters, plain collectors and lessees on any host still get each message
exactly once, and a waiter whose client leaves while it waits takes nothing.

On the asynchronous server an idle waiter is a coroutine and one listener on
the process's shared Redis subscription: no thread and no database connection.
Its looks at the database run on a small executor shared by every waiter of
the process. Without a reliable subscription (the embedded mode, Redis down,
the threaded server) the waiter polls the database instead, at a bounded rate.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from restapi import selectors
from restapi.storage import wakeups

# How often a waiter without a reliable wake-up looks at its inbox. The
# threaded server holds the thread anyway; the asynchronous one polls only while
# Redis is down, so each of its waiters costs one query per POLL_SECONDS then.
POLL_SECONDS = 0.25
DEGRADED_POLL_SECONDS = 1.0
# A waiter whose inbox holds leased messages looks again this long after the
# first lease ends: a lease that ends unacknowledged returns its messages
# without any announcement (its end is the database clock passing a time).
LEASE_END_MARGIN_SECONDS = 0.01
# The database lookups of every waiter of a process share these threads, and so
# at most this many database connections.
LOOKUP_THREADS = 2
# How long the subscriber connection waits for Redis to open, to confirm a
# subscription or to answer a PING before it counts Redis as down. Longer than
# the request path's REDIS_TIMEOUT on purpose: nobody is answered sooner for a
# short one (a waiter is about to wait seconds), and when thousands of waiters
# arrive at once the process's event loop itself can take longer than 0.1 s to
# read a confirmation Redis sent at once. Counting that as an outage woke every
# waiter into polling the database once a second, which loaded the process
# further: measured with 3,000 waiters arriving together on a busy machine.
SUBSCRIBER_TIMEOUT_SECONDS = 1.0

_lookups = ThreadPoolExecutor(max_workers=LOOKUP_THREADS, thread_name_prefix="waiter-lookup")
_stopping = threading.Event()

T = TypeVar("T")


def _on_lookup_thread(lookup: Callable[..., T], *args: Any) -> T:
    # These threads keep their connection from one lookup to the next (no
    # request cycle closes it); one that failed is dropped, and the next
    # lookup connects again.
    try:
        return lookup(*args)
    except (OperationalError, InterfaceError):
        connection.close()
        raise


async def on_lookup_thread(lookup: Callable[..., T], *args: Any) -> T:
    """``lookup(*args)`` on the threads shared by every waiter of the process, with their connections."""
    return await sync_to_async(_on_lookup_thread, thread_sensitive=False, executor=_lookups)(lookup, *args)


def close_lookup_connections() -> None:
    """Close the lookup threads' database connections (a test that used them, before its database goes)."""
    # Each call waits at the barrier until the other has started, so the calls
    # run on different threads, and each closes its own thread's connection.
    barrier = threading.Barrier(LOOKUP_THREADS)

    def close() -> None:
        barrier.wait(timeout=60)
        connection.close()

    for closing in [_lookups.submit(close) for _ in range(LOOKUP_THREADS)]:
        closing.result()


def stop_waiting() -> None:
    """The server is stopping: every waiter stops waiting and its request is answered now."""
    _stopping.set()
    for hub in wakeups.all_hubs():
        hub.wake_all()


def wake_up_hub() -> wakeups.InboxHub | wakeups.NoHub:
    """The running event loop's wake-up subscriber, with the subscriber's own timeout."""
    chat = settings.CHAT
    return wakeups.hub(chat["REDIS_URL"], timeout=max(chat["REDIS_TIMEOUT"], SUBSCRIBER_TIMEOUT_SECONDS))


async def wait_for_mail(username: str, seconds: int) -> None:
    """Return once ``username``'s inbox has a collectable message, ``seconds`` pass, or the server stops."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    hub = wake_up_hub()
    name = await on_lookup_thread(wakeups.channel, username) if hub.available else ""
    # Subscribed before the first look, so a message sent after that look wakes it.
    async with hub.listen(name) as listener:
        while not _stopping.is_set():
            outlook = await on_lookup_thread(selectors.inbox_outlook, username)
            if outlook.has_mail:
                return
            remaining = deadline - loop.time()
            if remaining <= 0 or _stopping.is_set():
                return
            pause = remaining if listener.reliable else min(remaining, DEGRADED_POLL_SECONDS)
            if outlook.lease_ends_in is not None:
                pause = min(pause, outlook.lease_ends_in + LEASE_END_MARGIN_SECONDS)
            reliable = listener.reliable
            await listener.wait(pause)
            if not reliable:
                await hub.reconnect_if_due()


def wait_for_mail_blocking(username: str, seconds: int) -> None:
    """The threaded server's wait: the same, polling the database while it holds the thread."""
    deadline = time.monotonic() + seconds
    while not _stopping.is_set() and not selectors.inbox_outlook(username).has_mail:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        _stopping.wait(min(remaining, POLL_SECONDS))
