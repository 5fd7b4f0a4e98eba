"""A collect hands out at most CHAT_MAX_COLLECT messages; an oversized body is refused unread."""

from __future__ import annotations

import http.client
import json
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from restapi.models import Message
from tests.support.processes import running_service


def _send_many(send: Callable[..., object], count: int, username: str = "ann") -> list[int]:
    return [send(username=username, text=f"m{i}").json()["id"] for i in range(count)]


@pytest.mark.django_db
def test_collect_is_bounded_oldest_first_and_the_rest_stays_live(
    api: APIClient, send: Callable[..., object], chat_settings: Callable[..., None]
) -> None:
    chat_settings(MAX_COLLECT=5)
    ids = _send_many(send, 12)

    first = api.get("/chats/ann")
    assert [m["id"] for m in first.json()] == ids[:5]
    assert [m["text"] for m in first.json()] == [f"m{i}" for i in range(5)]
    assert first["X-More-Messages"] == "true"

    # What was not handed out is still live, untouched by the first collect.
    later = api.get(f"/chat/{ids[5]}").json()
    assert later["expiration_date"] > timezone.now().strftime("%Y-%m-%dT%H:%M:%S")

    second = api.get("/chats/ann")
    assert [m["id"] for m in second.json()] == ids[5:10]
    assert second["X-More-Messages"] == "true"

    third = api.get("/chats/ann")
    assert [m["id"] for m in third.json()] == ids[10:]
    assert third["X-More-Messages"] == "false"

    empty = api.get("/chats/ann")
    assert empty.json() == []
    assert empty["X-More-Messages"] == "false"


@pytest.mark.django_db
def test_an_inbox_of_exactly_the_limit_says_nothing_more_is_waiting(
    api: APIClient, send: Callable[..., object], chat_settings: Callable[..., None]
) -> None:
    chat_settings(MAX_COLLECT=3)
    ids = _send_many(send, 3)
    response = api.get("/chats/ann")
    assert [m["id"] for m in response.json()] == ids
    assert response["X-More-Messages"] == "false"


@pytest.mark.django_db
def test_expired_messages_do_not_count_as_waiting(
    api: APIClient, send: Callable[..., object], chat_settings: Callable[..., None]
) -> None:
    chat_settings(MAX_COLLECT=2)
    ids = _send_many(send, 2)
    send(username="ann", text="gone", timeout=0)
    response = api.get("/chats/ann")
    assert [m["id"] for m in response.json()] == ids
    assert response["X-More-Messages"] == "false"


@pytest.mark.django_db
def test_a_huge_inbox_is_collected_a_bounded_slice_at_a_time(
    api: APIClient, chat_settings: Callable[..., None]
) -> None:
    chat_settings(MAX_COLLECT=1000)
    now = timezone.now()
    Message.objects.bulk_create(
        [
            Message(username="big", text="x" * 100, created_at=now, expiration_date=now + timedelta(hours=1))
            for _ in range(20_000)
        ],
        batch_size=2000,
    )
    oldest = list(Message.objects.filter(username="big").order_by("id").values_list("id", flat=True)[:1000])
    api.get("/chats/warm-up")  # First-request imports are not the collect's memory.

    tracemalloc.start()
    try:
        response = api.get("/chats/big")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert [m["id"] for m in response.json()] == oldest
    assert response["X-More-Messages"] == "true"
    assert Message.objects.filter(username="big", collected_at__isnull=True).count() == 19_000
    # Handing out all 20,000 at once peaks near 17 MB; a 1000-message slice near 1.2 MB.
    assert peak < 5_000_000


@pytest.mark.django_db
def test_a_body_over_the_limit_is_413_and_never_parsed(api: APIClient, settings: object) -> None:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    # Not JSON at all: a parser would have said 400.
    response = api.generic("POST", "/chat", b"{" * (limit + 1), content_type="application/json")
    assert response.status_code == 413
    assert str(limit) in response.json()["detail"]
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_a_body_at_the_limit_is_parsed(api: APIClient, settings: object) -> None:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = api.generic("POST", "/chat", b" " * limit, content_type="application/json")
    assert response.status_code == 400


@pytest.mark.django_db
def test_a_malformed_content_length_is_400(api: APIClient) -> None:
    response = api.generic("POST", "/chat", b"{}", content_type="application/json", CONTENT_LENGTH="12abc")
    assert response.status_code == 400
    assert "Content-Length" in response.json()["detail"]


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_gunicorn_refuses_an_announced_huge_body_without_waiting_for_it(tmp_path: Path) -> None:
    """Only the headers are sent: if the service tried to read the body it would wait, not answer."""
    with running_service(tmp_path, workers=1) as service:
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
        connection.putrequest("POST", "/chat")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", "1000000000")
        connection.endheaders(b"{")
        response = connection.getresponse()
        body = json.loads(response.read())
        connection.close()
    assert response.status == 413
    assert "larger than the limit" in body["detail"]
