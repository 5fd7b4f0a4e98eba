"""chat_server.log: the events of a request, tied together by its request id."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from restapi import services
from restapi.storage import database


@pytest.fixture
def log_text():
    path = Path(settings.LOGGING["handlers"]["file"]["filename"])
    start = path.stat().st_size if path.exists() else 0

    def read() -> str:
        with path.open(encoding="utf-8") as handle:
            handle.seek(start)
            return handle.read()

    return read


def test_an_unexpected_error_is_a_json_500_whose_request_id_is_in_the_log(api, db, monkeypatch, log_text):
    def broken(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(services, "create_message", broken)

    response = api.post("/chat", {"username": "ann", "text": "hi"}, format="json")

    assert response.status_code == 500
    body = response.json()
    assert body["request_id"] == response["X-Request-ID"]
    assert "disk on fire" not in response.content.decode()
    logged = log_text()
    assert f"ERROR [{body['request_id']}] restapi.middleware: unhandled RuntimeError on POST /chat" in logged
    assert "RuntimeError: disk on fire" in logged


def test_hot_store_failures_are_logged_with_the_request_id(api, db, hung_redis, log_text):
    message = database.insert_message(username="ann", text="hi", timeout=60)

    response = api.get(f"/chat/{message.id}", HTTP_X_REQUEST_ID="trace-7")

    assert response.status_code == 200
    assert response["X-Request-ID"] == "trace-7"
    assert "WARNING [trace-7] restapi.storage.hot: hot store get failed (TimeoutError" in log_text()
