"""The PostgreSQL backend's health check: no round trip on a healthy connection, a new one for a dead one."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import ConnectionHandler

from EphemeralMessages import config
from tests.support.postgres import PostgresCluster
from tests.support.processes import PATIENCE_SECONDS, TEST_SECRET_KEY


@pytest.fixture
def wrapper(private_postgres: PostgresCluster, tmp_path: Path, django_db_blocker: Any) -> Iterator[BaseDatabaseWrapper]:
    """A connection to the private cluster, set up from DATABASE_URL exactly as the service's is."""
    env = {
        "DATABASE_URL": private_postgres.url,
        "SECRET_KEY": TEST_SECRET_KEY,
        "ALLOWED_HOSTS": "localhost",
        "DATA_DIR": str(tmp_path),
        "LOG_FILE": str(tmp_path / "chat_server.log"),
    }
    loaded = config.load(env)
    wrapper = ConnectionHandler({"default": loaded.database})["default"]
    # Not the test database pytest-django guards: the private cluster's own.
    with django_db_blocker.unblock():
        wrapper.ensure_connection()
        yield wrapper
        wrapper.close()


def backend_pid(wrapper: BaseDatabaseWrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def terminate_backend(wrapper: BaseDatabaseWrapper, cluster: PostgresCluster) -> int:
    """End the server process of ``wrapper``'s connection, as a restart or an operator would; its pid."""
    pid = backend_pid(wrapper)
    with psycopg.connect(cluster.dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    # The server's goodbye reaches the socket shortly after the backend exits.
    deadline = time.monotonic() + PATIENCE_SECONDS
    while wrapper.is_usable() and time.monotonic() < deadline:
        time.sleep(0.01)
    return pid


def start_request(wrapper: BaseDatabaseWrapper) -> None:
    """What Django does to each persistent connection when a request starts."""
    wrapper.close_if_unusable_or_obsolete()


def test_a_healthy_connection_is_kept_across_requests(wrapper: BaseDatabaseWrapper) -> None:
    first = backend_pid(wrapper)
    for _ in range(3):
        start_request(wrapper)
        assert backend_pid(wrapper) == first


def test_the_check_of_a_healthy_connection_sends_nothing_to_the_server(wrapper: BaseDatabaseWrapper) -> None:
    # A stopped backend answers no query: a check that sent one would wait for ever.
    pid = backend_pid(wrapper)
    outcome: list[bool] = []
    os.kill(pid, signal.SIGSTOP)
    try:
        checker = threading.Thread(target=lambda: outcome.append(wrapper.is_usable()), daemon=True)
        checker.start()
        checker.join(timeout=10)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert outcome == [True]


def test_a_connection_whose_backend_was_terminated_is_replaced_before_the_request_uses_it(
    wrapper: BaseDatabaseWrapper, private_postgres: PostgresCluster
) -> None:
    old = terminate_backend(wrapper, private_postgres)

    start_request(wrapper)

    assert backend_pid(wrapper) != old


def test_a_connection_left_in_a_transaction_is_checked_with_a_query(wrapper: BaseDatabaseWrapper) -> None:
    wrapper.connection.execute("BEGIN")
    assert wrapper.is_usable()
    with pytest.raises(psycopg.errors.DivisionByZero):
        wrapper.connection.execute("SELECT 1/0")
    assert not wrapper.is_usable()


def test_a_prepared_statement_as_the_first_use_of_a_request_gets_a_new_connection_for_a_dead_one(
    wrapper: BaseDatabaseWrapper, private_postgres: PostgresCluster
) -> None:
    # The requests' statements run prepared (sends, collects): the first of them
    # in a request must see the same check as a cursor would.
    assert wrapper.prepared_statements
    old = terminate_backend(wrapper, private_postgres)

    start_request(wrapper)

    assert wrapper.execute_prepared("SELECT pg_backend_pid() + %s", [0]) != [(old,)]
