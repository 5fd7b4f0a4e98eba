"""
Timing a long database operation and what it does to the requests running beside it.

Used by ``bench.migration_locks`` and ``bench.retention``: every statement the
operation runs is timed (:class:`StatementTimer`), while a probe on a connection of
its own reads and writes the message table in a loop (:func:`probing`), so each
statement can be set against the slowest probe round it overlapped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.db import connection

Span = tuple[float, float]


@dataclass
class StatementTimer:
    """A Django execute wrapper that keeps each statement's start, end and first ``width`` characters."""

    width: int = 100
    statements: list[tuple[float, float, str]] = field(default_factory=list)

    def __call__(self, execute: Callable, sql: str, params: Any, many: bool, context: dict) -> Any:
        begun = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.statements.append((begun, time.perf_counter(), " ".join(sql.split())[: self.width]))


def dsn() -> str:
    """The libpq connection string of Django's default database."""
    settings = connection.settings_dict
    return f"host={settings['HOST']} port={settings['PORT'] or 5432} dbname={settings['NAME']} user={settings['USER']}"


@contextmanager
def probing(probe_round: Callable[[psycopg.Connection], None]) -> Iterator[list[Span]]:
    """
    Run ``probe_round`` every 10 ms on a connection of its own for as long as the
    block runs (and half a second either side); yields the list of rounds' spans.
    """
    stop = threading.Event()
    rounds: list[Span] = []

    def probe() -> None:
        with psycopg.connect(dsn(), autocommit=True) as conn:
            while not stop.is_set():
                begun = time.perf_counter()
                probe_round(conn)
                rounds.append((begun, time.perf_counter()))
                time.sleep(0.01)

    prober = threading.Thread(target=probe)
    prober.start()
    time.sleep(0.5)
    try:
        yield rounds
    finally:
        time.sleep(0.5)
        stop.set()
        prober.join()


def slowest_overlapping(rounds: list[Span], begun: float, ended: float) -> float:
    """The longest probe round, in seconds, that overlapped the span from ``begun`` to ``ended``."""
    return max((end - start for start, end in rounds if start < ended and end > begun), default=0.0)
