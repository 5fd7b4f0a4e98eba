"""
What only a real HTTP server shows: bodies sent in chunks, and clients that go
away before their answer. Each test talks to the service under gunicorn with
the shipped configuration.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import pytest

from restapi.models import Message
from tests.support.processes import PROJECT_DIR, ServiceProcess, running_service

# Transactional: the service's own connections see the test database, which is flushed after each test.
pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]

BODY_LIMIT = 1024


@pytest.fixture(scope="module")
def service(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    env = {"CHAT_MAX_BODY_BYTES": str(BODY_LIMIT), "CHAT_MAX_TEXT_LENGTH": str(BODY_LIMIT), "GUNICORN_THREADS": "2"}
    config = PROJECT_DIR / "deploy" / "gunicorn.conf.py"
    with running_service(tmp_path_factory.mktemp("service"), workers=1, env=env, config=config) as service:
        yield service


def _post_in_chunks(service: ServiceProcess, chunks: list[bytes]) -> tuple[int, dict]:
    """POST /chat with Transfer-Encoding: chunked and no Content-Length, as http.client sends an iterable."""
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=20)
    try:
        connection.request("POST", "/chat", body=iter(chunks), headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_a_chunked_body_is_read(service: ServiceProcess) -> None:
    status, body = _post_in_chunks(service, [b'{"username": "ann", ', b'"text": "sent in ', b'chunks"}'])

    assert status == 201, body
    assert Message.objects.get(pk=body["id"]).text == "sent in chunks"


def test_a_chunked_body_over_the_limit_is_413_and_stores_nothing(service: ServiceProcess) -> None:
    text = "x" * BODY_LIMIT
    chunks = [b'{"username": "ann", "text": "', *[text[i : i + 100].encode() for i in range(0, len(text), 100)], b'"}']

    status, body = _post_in_chunks(service, chunks)

    assert status == 413
    assert body == {"detail": f"The request body is larger than the limit of {BODY_LIMIT} bytes."}
    assert not Message.objects.exists()


def test_a_chunked_body_at_the_limit_is_read(service: ServiceProcess) -> None:
    head, tail = b'{"username": "ann", "text": "', b'"}'
    text = b"y" * (BODY_LIMIT - len(head) - len(tail))

    status, body = _post_in_chunks(service, [head, text, tail])

    assert status == 201, body
    assert len(Message.objects.get(pk=body["id"]).text) == len(text)
