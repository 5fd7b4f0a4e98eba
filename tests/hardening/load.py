"""Concurrent clients that check every answer they get while a test injects faults."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from tests.hardening.http import call
from tests.support.processes import worker_pids

# Connection-level failures a client sees when the worker serving it dies.
CONNECTION_LOST = (ConnectionError, http.client.HTTPException, TimeoutError, OSError)


@dataclass
class Client:
    """One user's view: what it sent, what it collected, and every problem it saw."""

    username: str
    sent: dict[int, str] = field(default_factory=dict)
    sent_at: dict[int, float] = field(default_factory=dict)
    collected: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lost: int = 0


class MessagingLoad:
    """
    ``threads`` clients, each sending, reading back and collecting its own
    messages until stopped, asserting on every answer as it arrives.
    """

    def __init__(self, base_url: str, *, threads: int = 4, prefix: str = "load", tolerate_lost: bool = False) -> None:
        self.base_url = base_url
        self.clients = [Client(f"{prefix}{n}") for n in range(threads)]
        self.tolerate_lost = tolerate_lost
        self._stop = threading.Event()

    def _timed(self, client: Client, method: str, path: str, **kwargs):
        started = time.monotonic()
        try:
            answer = call(self.base_url, method, path, **kwargs)
        except CONNECTION_LOST as exc:
            if not self.tolerate_lost:
                client.errors.append(f"{method} {path}: {type(exc).__name__}: {exc}")
            client.lost += 1
            return None
        client.latencies.append(time.monotonic() - started)
        return answer

    def _run(self, client: Client) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            text = f"{client.username}-{n} <b>&'\";"
            answer = self._timed(client, "POST", "/chat", json_body={"username": client.username, "text": text})
            if answer is None:
                continue
            if answer.status != 201:
                client.errors.append(f"POST: {answer.status} {answer.body[:200]!r}")
                continue
            message_id = answer.json()["id"]
            client.sent[message_id] = text
            client.sent_at[message_id] = time.time()
            self._read_back(client, message_id)
            if n % 4 == 0:
                self._collect(client)

    def _read_back(self, client: Client, message_id: int) -> None:
        answer = self._timed(client, "GET", f"/chat/{message_id}")
        if answer is None:
            return
        if answer.status != 200:
            client.errors.append(f"GET /chat/{message_id}: {answer.status} {answer.body[:200]!r}")
            return
        body = answer.json()
        if (body["username"], body["text"]) != (client.username, client.sent[message_id]):
            client.errors.append(f"GET /chat/{message_id}: wrong message {body}")
        expiration = datetime.fromisoformat(body["expiration_date"]).timestamp()
        collected = message_id in client.collected
        # A collected message has expired at its collection; a live one a minute after it was sent.
        if collected and expiration > time.time() + 1:
            client.errors.append(f"GET /chat/{message_id}: stale read of a collected message: {body}")
        if not collected and expiration < client.sent_at[message_id] + 30:
            client.errors.append(f"GET /chat/{message_id}: live message shown expired: {body}")

    def _collect(self, client: Client) -> list[int] | None:
        answer = self._timed(client, "GET", f"/chats/{client.username}")
        if answer is None:
            return None
        if answer.status != 200:
            client.errors.append(f"GET /chats: {answer.status} {answer.body[:200]!r}")
            return None
        ids = []
        for item in answer.json():
            if item["id"] not in client.sent and not self.tolerate_lost:
                client.errors.append(f"collected a message never sent: {item}")
            elif item["id"] in client.sent and item["text"] != client.sent[item["id"]]:
                client.errors.append(f"collected wrong text: {item}")
            ids.append(item["id"])
        client.collected.extend(ids)
        # Read back one this client knows it sent: with lost answers tolerated, a
        # send whose answer was cut may still have stored its message, unknown here.
        known = [message_id for message_id in ids if message_id in client.sent]
        if known:
            self._read_back(client, known[-1])
        return ids

    @contextlib.contextmanager
    def running(self) -> Iterator[MessagingLoad]:
        pool = ThreadPoolExecutor(len(self.clients))
        futures = [pool.submit(self._run, client) for client in self.clients]
        try:
            yield self
        finally:
            self._stop.set()
            for future in futures:
                future.result(timeout=60)
            pool.shutdown()

    def drain(self) -> None:
        """Collect until every inbox is empty."""
        for client in self.clients:
            for _ in range(100):
                ids = self._collect(client)
                if ids == []:
                    break

    @property
    def errors(self) -> list[str]:
        return [error for client in self.clients for error in client.errors]

    @property
    def latencies(self) -> list[float]:
        return [latency for client in self.clients for latency in client.latencies]

    @property
    def sent_ids(self) -> set[int]:
        return {message_id for client in self.clients for message_id in client.sent}

    @property
    def collected_ids(self) -> list[int]:
        return [message_id for client in self.clients for message_id in client.collected]


def kill_one_worker(master_pid: int) -> int:
    pid = worker_pids(master_pid)[0]
    os.kill(pid, signal.SIGKILL)
    return pid
