"""PostgreSQL unreachable: every endpoint answers 503 JSON with Retry-After, and recovers by itself."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from restapi.exceptions import DATABASE_RETRY_AFTER_SECONDS
from tests.hardening.http import call
from tests.support.postgres import PostgresCluster
from tests.support.processes import running_service

pytestmark = pytest.mark.server


def _requests(message_id: int) -> list[tuple[str, str, dict | None]]:
    return [
        ("POST", "/chat", {"username": "ann", "text": "during the outage"}),
        ("GET", f"/chat/{message_id}", None),
        ("GET", "/chats/ann", None),
        ("GET", "/chats/bob/", None),
    ]


def test_every_endpoint_is_503_while_postgres_is_down_and_recovers_without_restart(
    private_postgres: PostgresCluster, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": private_postgres.url, "REDIS_URL": ""}
    with running_service(tmp_path, workers=2, env=env) as service:
        before = call(service.url, "POST", "/chat", json_body={"username": "ann", "text": "kept", "timeout": 3600})
        assert before.status == 201
        message_id = before.json()["id"]

        private_postgres.stop()
        # Twice over, so that both workers (and their broken persistent connections) answer.
        for _ in range(2):
            for method, path, body in _requests(message_id):
                started = time.monotonic()
                answer = call(service.url, method, path, json_body=body)
                assert time.monotonic() - started < 10, "a dead database must not hold a worker"
                assert answer.status == 503, (method, path, answer.body)
                assert answer.headers["content-type"] == "application/json"
                assert answer.headers["retry-after"] == str(DATABASE_RETRY_AFTER_SECONDS)
                assert "unavailable" in answer.json()["detail"]
                assert answer.json()["request_id"] == answer.headers["x-request-id"]

        private_postgres.start()
        for _ in range(2):
            assert call(service.url, "GET", f"/chat/{message_id}").json()["text"] == "kept"
            created = call(service.url, "POST", "/chat", json_body={"username": "bob", "text": "after"})
            assert created.status == 201
        collected = call(service.url, "GET", "/chats/ann").json()
        assert [m["text"] for m in collected] == ["kept"]

    log = service.log_file.read_text()
    assert "database unavailable" in log


def test_a_database_that_refuses_writes_is_503_until_it_takes_them_again(
    private_postgres: PostgresCluster, tmp_path: Path
) -> None:
    """As a standby does, or a primary being demoted, or a standby not yet done being promoted."""
    env = {"DATABASE_URL": private_postgres.url, "REDIS_URL": ""}
    with running_service(tmp_path, workers=1, env=env) as service:
        assert call(service.url, "POST", "/chat", json_body={"username": "ann", "text": "before"}).status == 201

        set_read_only(private_postgres, "on")
        for method, path, body in _requests(1)[:3:2]:
            answer = call(service.url, method, path, json_body=body)
            assert answer.status == 503, (method, path, answer.body)
            assert answer.headers["retry-after"] == str(DATABASE_RETRY_AFTER_SECONDS)

        set_read_only(private_postgres, "off")
        assert call(service.url, "POST", "/chat", json_body={"username": "ann", "text": "after"}).status == 201
        assert [m["text"] for m in call(service.url, "GET", "/chats/ann").json()] == ["before", "after"]


def set_read_only(cluster: PostgresCluster, value: str) -> None:
    with psycopg.connect(cluster.dsn, autocommit=True) as admin:
        admin.execute(f"ALTER SYSTEM SET default_transaction_read_only = {value}")
        admin.execute("SELECT pg_reload_conf()")
        # An idle session reads the new setting only after the next message it is
        # sent, so the service's sessions are ended, as a demotion or a promotion ends
        # them; the service's next requests connect again and meet the setting.
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
