"""chat_server.log: the events of a request, tied together by its request id."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from django.conf import settings

from restapi import services


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
    message = services.create_message(username="ann", text="hi", timeout=60)

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


@pytest.mark.parametrize(
    ("method", "path", "body", "line"),
    [
        ("get", "/nowhere", None, "WARNING [{id}] django.request: Not Found: /nowhere"),
        ("get", "/chat", None, "WARNING [{id}] django.request: Method Not Allowed: /chat"),
        ("post", "/chat", {"username": "ann smith", "text": "hi"}, "WARNING [{id}] django.request: Bad Request: /chat"),
    ],
)
def test_the_warning_for_a_client_error_carries_the_request_id_sent_back(api, db, log_text, method, path, body, line):
    response = getattr(api, method)(path, body, format="json", HTTP_X_REQUEST_ID="trace-4xx")

    assert response.status_code in (400, 404, 405)
    assert response["X-Request-ID"] == "trace-4xx"
    assert line.format(id="trace-4xx") in log_text()


def test_a_request_id_made_by_the_service_is_on_its_warning_too(api, db, log_text):
    response = api.get("/nowhere-either")

    assert f"WARNING [{response['X-Request-ID']}] django.request: Not Found: /nowhere-either" in log_text()


def test_a_host_the_service_does_not_serve_is_one_warning_line(api, db, log_text):
    response = api.get("/chat/1", HTTP_HOST="evil.example", HTTP_X_REQUEST_ID="trace-host")

    assert response.status_code == 400
    assert response["X-Request-ID"] == "trace-host"
    assert "Host header" in response.json()["detail"]
    logged = [line for line in log_text().splitlines() if line.strip()]
    assert len(logged) == 1, logged
    assert "WARNING [trace-host] django.security.DisallowedHost: Invalid HTTP_HOST header: 'evil.example'" in logged[0]
