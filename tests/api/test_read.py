"""GET /chat/<id>: one message, expired or not."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from restapi.models import Message

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def test_live_message_is_shown_with_its_expiration_date(api, send):
    message_id = send(username="ann", text="hello", timeout=30).json()["id"]

    response = api.get(f"/chat/{message_id}")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"username", "text", "expiration_date"}
    assert (body["username"], body["text"]) == ("ann", "hello")
    assert ISO_UTC.match(body["expiration_date"])
    stored = Message.objects.get(pk=message_id)
    assert datetime.fromisoformat(body["expiration_date"]) == stored.expiration_date.astimezone(UTC)


def test_no_cache_may_keep_a_message(api, send):
    """A shared cache must not keep a live text, nor a 404 for an id about to be used."""
    message_id = send(username="ann", text="hello").json()["id"]

    assert "no-store" in api.get(f"/chat/{message_id}")["Cache-Control"]
    assert "no-store" in api.get("/chat/987654")["Cache-Control"]


def test_trailing_slash_is_accepted(api, send):
    message_id = send(username="ann", text="hello").json()["id"]

    assert api.get(f"/chat/{message_id}/").status_code == 200


def test_expired_message_is_still_shown(api, send):
    message_id = send(username="ann", text="gone", timeout=0).json()["id"]

    response = api.get(f"/chat/{message_id}")

    assert response.status_code == 200
    assert response.json()["text"] == "gone"


@pytest.mark.parametrize(
    "message_id",
    # More digits than Python converts (4,300) are a missing id too, not a 500.
    ["999999", "9223372036854775807", "9223372036854775808", "9" * 40, "0", "0" * 40, "9" * 5000, "0" * 5000 + "7"],
)
def test_missing_id_is_404(api, db, message_id):
    response = api.get(f"/chat/{message_id}")

    assert response.status_code == 404
    assert response.json()["detail"] == f"No message with id {message_id}."


def test_leading_zeros_name_the_same_message(api, send):
    message_id = send(username="ann", text="hello").json()["id"]

    assert api.get(f"/chat/000{message_id}").json()["text"] == "hello"
    assert api.get(f"/chat/{'0' * 5000}{message_id}").json()["text"] == "hello"
