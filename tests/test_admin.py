"""The admin keeps its state in the session; the API sets no cookie."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from restapi.models import Message

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password"


def test_an_operator_logs_in_deletes_a_message_and_is_told_so(client: Client) -> None:
    User.objects.create_superuser("root", "root@example.com", PASSWORD)
    message = Message.objects.create(
        username="ann", text="old", created_at="2026-01-01T00:00:00Z", expiration_date="2026-01-01T00:01:00Z"
    )
    logged_in = client.post("/admin/login/?next=/admin/", {"username": "root", "password": PASSWORD}, follow=True)
    assert logged_in.status_code == 200
    assert logged_in.wsgi_request.user.is_authenticated

    answer = client.post(f"/admin/restapi/message/{message.id}/delete/", {"post": "yes"}, follow=True)

    assert answer.status_code == 200
    assert not Message.objects.filter(pk=message.id).exists()
    # The notice travelled from the delete to the next page in the session.
    assert "was deleted successfully" in answer.content.decode()
    assert "messages" not in answer.cookies


def test_api_answers_set_no_cookie(api: APIClient) -> None:
    sent = api.post("/chat", {"username": "ann", "text": "hi"}, format="json")
    answers = [sent, api.get(f"/chat/{sent.json()['id']}"), api.get("/chats/ann"), api.get("/chats/bad name")]
    assert [answer.status_code for answer in answers] == [201, 200, 200, 400]
    for answer in answers:
        assert not answer.cookies, answer.cookies


def test_the_admin_never_shows_a_text(client: Client) -> None:
    User.objects.create_superuser("root", "root@example.com", PASSWORD)
    message = Message.objects.create(
        username="ann", text="only for ann", created_at="2026-01-01T00:00:00Z", expiration_date="2030-01-01T00:00:00Z"
    )
    client.login(username="root", password=PASSWORD)

    pages = [client.get("/admin/restapi/message/"), client.get(f"/admin/restapi/message/{message.id}/change/")]

    assert [page.status_code for page in pages] == [200, 200]
    for page in pages:
        assert "ann" in page.content.decode()
        assert "only for ann" not in page.content.decode()
