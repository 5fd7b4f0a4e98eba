"""
Process-local event counters for a metrics exporter to read.

Each gunicorn worker keeps its own counts; an exporter sums them across
workers (or scrapes each one). Counting is a locked integer increment, cheap
enough for the request path.
"""

from __future__ import annotations

import threading


class Counter:
    def __init__(self, name: str, description: str) -> None:
        self.name = name
        self.description = description
        self._value = 0
        self._lock = threading.Lock()

    def increment(self, amount: int = 1) -> None:
        with self._lock:
            self._value += amount

    @property
    def value(self) -> int:
        return self._value


THROTTLE_FAILED_OPEN = Counter(
    "chat_throttle_failed_open_total",
    "POST /chat requests let through unthrottled because the Redis throttle counter was unavailable.",
)
