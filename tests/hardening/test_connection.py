"""
What only a real HTTP server shows: bodies sent in chunks, and clients that go
away before their answer. Each test talks to the service under gunicorn with
the shipped configuration.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
from collections.abc import Iterator

import pytest

from restapi import services
from restapi.models import Message
from tests.hardening.http import call
from tests.support.processes import PROJECT_DIR, ServiceProcess, running_service

# Transactional: the service's own connections see the test database, which is flushed after each test.
pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]

BODY_LIMIT = 1024


@pytest.fixture(scope="module")
def service(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    env = {"CHAT_MAX_BODY_BYTES": str(BODY_LIMIT), "CHAT_MAX_TEXT_LENGTH": str(BODY_LIMIT), "GUNICORN_THREADS": "1"}
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


def _occupy_the_only_thread(service: ServiceProcess) -> tuple[socket.socket, bytes]:
    """
    Start a POST whose body is held back, so the worker's one thread waits on it.

    gunicorn answers ``100 Continue`` from the thread that handles the request:
    once it arrives, that thread is taken, and every request that arrives after
    waits in the worker's queue until the body is sent.
    """
    body = b'{"username": "blocker", "text": "held"}'
    blocker = socket.create_connection(("127.0.0.1", service.port), timeout=20)
    blocker.sendall(
        b"POST /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nExpect: 100-continue\r\n\r\n"
    )
    assert blocker.recv(64).startswith(b"HTTP/1.1 100 Continue")
    return blocker, body


def _metric(service: ServiceProcess, name: str) -> float:
    text = call(service.url, "GET", "/metrics").body.decode()
    found = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize("hang_up", ["close", "half-close"])
def test_a_client_gone_before_its_collect_runs_collects_nothing(service: ServiceProcess, hang_up: str) -> None:
    sent = [services.create_message(username="ann", text=f"m{n}", timeout=3600).id for n in range(3)]
    abandoned_before = _metric(service, "chat_collects_abandoned_total")
    blocker, blocker_body = _occupy_the_only_thread(service)

    # The collect waits behind the blocker; its client gives up before it runs.
    impatient = socket.create_connection(("127.0.0.1", service.port), timeout=20)
    impatient.sendall(b"GET /chats/ann HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-ID: gave-up\r\n\r\n")
    if hang_up == "half-close":
        impatient.shutdown(socket.SHUT_WR)
    else:
        impatient.close()

    blocker.sendall(blocker_body)
    assert b" 201 " in blocker.recv(4096).split(b"\r\n", 1)[0] + b" "
    blocker.close()

    # This collect queues behind the abandoned one, so when it is answered the other has run.
    collected = call(service.url, "GET", "/chats/ann").json()

    # Every message is still there; their order is the collect's own test (messages
    # sent within one millisecond of SQLite's clock go out in id order, and ids are random).
    assert sorted(m["id"] for m in collected) == sorted(sent)
    assert _metric(service, "chat_collects_abandoned_total") == abandoned_before + 1
    logged = service.log_file.read_text()
    assert "[gave-up] restapi.services: collect of an inbox abandoned: the client closed" in logged
    if hang_up == "half-close":
        impatient.close()


def test_a_client_still_connected_gets_its_collect(service: ServiceProcess) -> None:
    sent = services.create_message(username="bob", text="hi", timeout=3600).id
    blocker, blocker_body = _occupy_the_only_thread(service)
    patient = socket.create_connection(("127.0.0.1", service.port), timeout=20)
    patient.sendall(b"GET /chats/bob HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")

    blocker.sendall(blocker_body)
    blocker.recv(4096)
    blocker.close()
    answer = b""
    while chunk := patient.recv(4096):
        answer += chunk
    patient.close()

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert [m["id"] for m in json.loads(body)] == [sent]
