"""Clients of the cluster that record every answer, for tests that inject faults under load."""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tests.hardening.http import Answer, call

CONNECTION_LOST = (ConnectionError, http.client.HTTPException, TimeoutError, OSError)


@dataclass(frozen=True)
class Outcome:
    operation: str
    path: str
    started: float
    finished: float
    status: int  # 0 when the connection itself failed
    answer: Answer | None


@dataclass
class Recorder:
    """Everything the clients saw: each answer, the ids acknowledged with 201 and their texts."""

    outcomes: list[Outcome] = field(default_factory=list)
    acknowledged: dict[int, str] = field(default_factory=dict)
    collected: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def statuses(self, operation: str | None = None) -> Counter:
        return Counter(o.status for o in self.outcomes if operation in (None, o.operation))

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status >= 500 or o.status == 0]


class Load:
    """
    ``threads`` clients sending messages to a username of their own, reading each
    back and collecting their inbox, until ``stop`` or ``seconds``. Each client has
    its own share of ``addresses`` and moves to its next one every
    SENDS_PER_ADDRESS messages, so the throttle never refuses them while it has
    addresses it has not used yet (after the last it starts again at the first).
    """

    SENDS_PER_ADDRESS = 40

    def __init__(
        self, url: str, addresses: list[str], *, threads: int, prefix: str, seconds: float, timeout: float = 20.0
    ) -> None:
        self.url = url
        self.threads = threads
        self.addresses = addresses
        self.prefix = prefix
        self.deadline = time.monotonic() + seconds
        self.timeout = timeout
        self.record = Recorder()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(threads)
        self._futures = []

    def __enter__(self) -> Load:
        self._futures = [
            self._pool.submit(self._client, n, self.addresses[n :: self.threads]) for n in range(self.threads)
        ]
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> Recorder:
        self._stop.set()
        for future in self._futures:
            future.result()
        self._pool.shutdown()
        return self.record

    def running(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self.deadline

    def _call(self, operation: str, address: str, method: str, path: str, **kwargs) -> Answer | None:
        started = time.monotonic()
        try:
            answer = call(self.url, method, path, source_address=address, timeout=self.timeout, **kwargs)
        except CONNECTION_LOST:
            answer = None
        outcome = Outcome(operation, path, started, time.monotonic(), answer.status if answer else 0, answer)
        with self.record.lock:
            self.record.outcomes.append(outcome)
        return answer

    def _client(self, number: int, addresses: list[str]) -> None:
        username = f"{self.prefix}{number}"
        sequence = 0
        while self.running():
            sequence += 1
            address = addresses[(sequence // self.SENDS_PER_ADDRESS) % len(addresses)]
            text = f"{username}-{sequence}"
            answer = self._call("send", address, "POST", "/chat", json_body={"username": username, "text": text})
            if answer is not None and answer.status == 201:
                message_id = answer.json()["id"]
                with self.record.lock:
                    self.record.acknowledged[message_id] = text
                self._call("read", address, "GET", f"/chat/{message_id}")
            if sequence % 3 == 0:
                answer = self._call("collect", address, "GET", f"/chats/{username}")
                if answer is not None and answer.status == 200:
                    with self.record.lock:
                        self.record.collected.extend(m["id"] for m in answer.json())
            time.sleep(0.01)
