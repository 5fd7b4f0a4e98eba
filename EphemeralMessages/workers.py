"""
Gunicorn's workers, answering waiting requests when they stop.

A worker stops (SIGTERM, a reload, or recycling after max_requests) by setting
``alive`` to False and then waiting up to ``graceful_timeout`` for the
requests it holds. A long-poll can wait longer than that, so the moment a
worker stops being alive its waiters stop waiting and are answered as usual
(``[]`` when nothing arrived) instead of being cut off.
"""

from __future__ import annotations

from gunicorn.workers.gasgi import ASGIWorker as GunicornASGIWorker
from gunicorn.workers.gthread import ThreadWorker as GunicornThreadWorker


class _AnswersWaitersOnStop:
    _alive = True

    @property
    def alive(self) -> bool:
        return self._alive

    @alive.setter
    def alive(self, value: bool) -> None:
        self._alive = value
        if not value:
            # Imported here: the worker class is loaded before Django is set up.
            from restapi.waiting import stop_waiting

            stop_waiting()


class ASGIWorker(_AnswersWaitersOnStop, GunicornASGIWorker):
    """The asynchronous worker: waiters hold neither a thread nor a database connection."""


class ThreadWorker(_AnswersWaitersOnStop, GunicornThreadWorker):
    """The threaded worker: the regular endpoints' server; a waiter here holds its thread."""
