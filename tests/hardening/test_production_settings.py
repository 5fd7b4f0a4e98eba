"""Production settings: a clean deployment check, security headers, and JSON 500s tied to the log."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIClient

from EphemeralMessages import config
from tests.hardening.http import call
from tests.support.postgres import PostgresCluster
from tests.support.processes import PROJECT_DIR, TEST_SECRET_KEY, running_service

# The production environment docs/OPERATIONS.md documents.
PRODUCTION_ENV = {
    "DATABASE_URL": "postgres://chat@db.internal:5432/chat",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "SECRET_KEY": TEST_SECRET_KEY,
    "ALLOWED_HOSTS": "chat.example.com",
    "CHAT_TRUSTED_PROXIES": "127.0.0.1",
    "TLS": "1",
}


def _check_deploy(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "TLS"}}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=PROJECT_DIR,
        env={**clean, "LOG_FILE": str(tmp_path / "check.log"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_with_the_production_environment(tmp_path: Path) -> None:
    result = _check_deploy(PRODUCTION_ENV, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_without_tls_or_with_debug(tmp_path: Path) -> None:
    without_tls = _check_deploy({**PRODUCTION_ENV, "TLS": "0"}, tmp_path)
    assert without_tls.returncode != 0
    assert "SECURE_HSTS_SECONDS" in without_tls.stderr + without_tls.stdout
    with_debug = _check_deploy({**PRODUCTION_ENV, "DEBUG": "1"}, tmp_path)
    assert with_debug.returncode != 0
    assert "DEBUG" in with_debug.stderr + with_debug.stdout


@pytest.mark.parametrize(
    ("name", "value"),
    [("TLS", "sometimes"), ("HSTS_SECONDS", "-1"), ("HSTS_SECONDS", "1y"), ("HSTS_PRELOAD", "maybe")],
)
def test_bad_tls_settings_stop_the_service_naming_the_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=name):
        config.load({"DATA_DIR": str(tmp_path), name: value})


def test_tls_settings_are_parsed(tmp_path: Path) -> None:
    loaded = config.load({"DATA_DIR": str(tmp_path), "TLS": "yes", "HSTS_SECONDS": "600"})
    assert (loaded.tls, loaded.hsts_seconds, loaded.hsts_include_subdomains, loaded.hsts_preload) == (
        True,
        600,
        True,
        False,
    )
    assert config.load({"DATA_DIR": str(tmp_path)}).tls is False


@pytest.mark.django_db
def test_security_headers_on_every_answer(api: APIClient) -> None:
    for response in (api.get("/chats/ann"), api.get("/nowhere"), api.post("/chat", {}, format="json")):
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["X-Frame-Options"] == "DENY"
        assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_tls_mode_redirects_plain_http_and_sends_hsts(tmp_path: Path) -> None:
    with running_service(tmp_path, workers=1, env={"TLS": "1", "HSTS_SECONDS": "600"}) as service:
        plain = call(service.url, "GET", "/chats/ann", headers={"Host": "localhost"})
        secure = call(service.url, "GET", "/chats/ann", headers={"Host": "localhost", "X-Forwarded-Proto": "https"})
    assert plain.status == 301
    assert plain.headers["location"] == "https://localhost/chats/ann"
    assert secure.status == 200
    assert secure.headers["strict-transport-security"] == "max-age=600; includeSubDomains"


@pytest.mark.server
def test_an_unexpected_error_is_a_json_500_whose_request_id_is_in_the_log(
    private_postgres: PostgresCluster, tmp_path: Path
) -> None:
    """A real fault: the message table vanishes under the running service (a botched migration)."""
    env = {"DATABASE_URL": private_postgres.url, "REDIS_URL": ""}
    with running_service(tmp_path, workers=1, env=env) as service:
        with psycopg.connect(private_postgres.dsn, autocommit=True) as admin:
            admin.execute("ALTER TABLE restapi_message RENAME TO restapi_message_away")
            try:
                answer = call(service.url, "GET", "/chat/1")
            finally:
                admin.execute("ALTER TABLE restapi_message_away RENAME TO restapi_message")
        after = call(service.url, "GET", "/chats/nobody-yet")

    assert answer.status == 500
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    request_id = body["request_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert answer.headers["x-request-id"] == request_id
    # Nothing of the failure reaches the client.
    assert "restapi_message" not in answer.body.decode()
    assert "Traceback" not in answer.body.decode()

    log = service.log_file.read_text()
    error_lines = [line for line in log.splitlines() if f"[{request_id}]" in line and "ERROR" in line]
    assert any("unhandled ProgrammingError on GET /chat/1" in line for line in error_lines), log[-2000:]
    assert "Traceback" in log.split(f"[{request_id}]", 1)[1]
    # The service goes on once the table is back.
    assert (after.status, after.json()) == (200, [])
