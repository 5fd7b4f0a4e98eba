"""chat_server.log: the events of a request, tied together by its request id."""

from __future__ import annotations

import contextlib
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


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_with_external_rotation_every_worker_writes_to_the_new_file_after_a_rotation(tmp_path):
    import urllib.error
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    from tests.support.processes import running_service

    def miss(path: str) -> None:
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(f"{service.url}{path}", timeout=10)

    with running_service(tmp_path, workers=2, env={"LOG_ROTATION": "external"}) as service:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(miss, [f"/before-{n}" for n in range(20)]))
        # What logrotate does: move the file away and leave the writers to notice.
        service.log_file.rename(service.log_file.with_name("chat_server.log.1"))
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(miss, [f"/after-{n}" for n in range(20)]))

    rotated = service.log_file.with_name("chat_server.log.1").read_text()
    current = service.log_file.read_text()
    assert "Not Found: /before-0" in rotated
    assert "/after-" not in rotated
    assert all(f"Not Found: /after-{n}" in current for n in range(20))
