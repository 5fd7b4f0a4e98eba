"""POST /chat: what is accepted, what is refused, and that a refusal changes nothing."""

from __future__ import annotations

import pytest

from restapi.models import Message

MAX_TIMEOUT = 365 * 24 * 60 * 60


def test_created_message_answers_201_with_id_and_location(send):
    response = send(username="ann", text="hello", timeout=30)

    assert response.status_code == 201
    message_id = response.json()["id"]
    assert response["Location"] == f"/chat/{message_id}"
    stored = Message.objects.get(pk=message_id)
    assert (stored.username, stored.text) == ("ann", "hello")


def test_trailing_slash_is_accepted(api, db):
    response = api.post("/chat/", {"username": "ann", "text": "hello"}, format="json")

    assert response.status_code == 201


def test_timeout_defaults_to_sixty_seconds_on_the_database_clock(send):
    message_id = send(username="ann", text="hello").json()["id"]

    stored = Message.objects.get(pk=message_id)
    assert (stored.expiration_date - stored.created_at).total_seconds() == 60


def test_default_timeout_follows_the_setting(send, chat_settings):
    chat_settings(DEFAULT_TIMEOUT=5)

    stored = Message.objects.get(pk=send(username="ann", text="hello").json()["id"])

    assert (stored.expiration_date - stored.created_at).total_seconds() == 5


@pytest.mark.parametrize(
    ("timeout", "seconds"),
    [(0, 0), (1, 1), ("30", 30), ("0", 0), (MAX_TIMEOUT, MAX_TIMEOUT), (str(MAX_TIMEOUT), MAX_TIMEOUT)],
)
def test_accepted_timeouts(send, timeout, seconds):
    response = send(username="ann", text="hello", timeout=timeout)

    assert response.status_code == 201
    stored = Message.objects.get(pk=response.json()["id"])
    assert (stored.expiration_date - stored.created_at).total_seconds() == seconds


@pytest.mark.parametrize(
    "username",
    ["a", "a" * 150, "ann.smith+tag@example-host_1", "Zoë", "用户", "0"],
)
def test_accepted_usernames(send, username):
    response = send(username=username, text="hello")

    assert response.status_code == 201
    assert Message.objects.get(pk=response.json()["id"]).username == username


@pytest.mark.parametrize(
    "text",
    [
        "x",
        "x" * 512,
        " padded ",
        "line\nbreak",
        "émoji 🎉",
        "\u200bvisible\u200b",
        "\u2800x",
        "<b>&amp;</b>'; DROP TABLE x; --",
        "$(rm -rf /)",
    ],
)
def test_accepted_texts_are_stored_exactly(send, text):
    response = send(username="ann", text=text)

    assert response.status_code == 201
    assert Message.objects.get(pk=response.json()["id"]).text == text


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"text": "hi"}, "username", "required"),
        ({"username": "", "text": "hi"}, "username", "blank"),
        ({"username": "a" * 151, "text": "hi"}, "username", "150"),
        ({"username": "ann smith", "text": "hi"}, "username", "letters, digits"),
        ({"username": "ann/smith", "text": "hi"}, "username", "letters, digits"),
        ({"username": "ann!", "text": "hi"}, "username", "letters, digits"),
        ({"username": 42, "text": "hi"}, "username", "string"),
        ({"username": None, "text": "hi"}, "username", "null"),
        ({"username": ["ann"], "text": "hi"}, "username", "string"),
        ({"username": "ann"}, "text", "required"),
        ({"username": "ann", "text": ""}, "text", "blank"),
        ({"username": "ann", "text": "   \n\t"}, "text", "blank"),
        ({"username": "ann", "text": "\u200b"}, "text", "blank"),  # zero-width space
        ({"username": "ann", "text": "\ufeff"}, "text", "blank"),  # byte-order mark
        ({"username": "ann", "text": "\u3164\u3164"}, "text", "blank"),  # Hangul filler
        ({"username": "ann", "text": "\u2800"}, "text", "blank"),  # braille pattern blank
        ({"username": "ann", "text": " \u200d\u2060\u00ad\ufe0f\u034f "}, "text", "blank"),
        ({"username": "ann", "text": "\U000e0020\U000e0041"}, "text", "blank"),  # tag characters
        ({"username": "ann", "text": "\x01\x7f"}, "text", "blank"),  # control characters
        ({"username": "ann", "text": "x" * 513}, "text", "no more than 512"),
        ({"username": "ann", "text": 7}, "text", "string"),
        ({"username": "ann", "text": {"a": 1}}, "text", "string"),
        ({"username": "ann", "text": "nul\x00byte"}, "text", "Null characters"),
        ({"username": "ann", "text": "hi", "timeout": -1}, "timeout", "between 0 and"),
        ({"username": "ann", "text": "hi", "timeout": MAX_TIMEOUT + 1}, "timeout", "between 0 and"),
        ({"username": "ann", "text": "hi", "timeout": str(MAX_TIMEOUT + 1)}, "timeout", "between 0 and"),
        ({"username": "ann", "text": "hi", "timeout": "9" * 5000}, "timeout", "between 0 and"),
        ({"username": "ann", "text": "hi", "timeout": 10**30}, "timeout", "between 0 and"),
        ({"username": "ann", "text": "hi", "timeout": True}, "timeout", "whole number"),
        ({"username": "ann", "text": "hi", "timeout": False}, "timeout", "whole number"),
        ({"username": "ann", "text": "hi", "timeout": 1.5}, "timeout", "whole number"),
        ({"username": "ann", "text": "hi", "timeout": 30.0}, "timeout", "whole number"),
        ({"username": "ann", "text": "hi", "timeout": "1.5"}, "timeout", "whole number"),
        ({"username": "ann", "text": "hi", "timeout": "-5"}, "timeout", "whole number"),
        ({"username": "ann", "text": "hi", "timeout": " 30"}, "timeout", "whole number"),
        ({"username": "ann", "text": "hi", "timeout": "thirty"}, "timeout", "whole number"),
        ({"username": "ann", "text": "hi", "timeout": "٣"}, "timeout", "whole number"),
        ({"username": "ann", "text": "hi", "timeout": None}, "timeout", "null"),
        ({"username": "ann", "text": "hi", "timeout": [30]}, "timeout", "whole number"),
        ({"username": "ann", "text": "hi", "timout": 30}, "timout", "Unknown field"),
    ],
)
def test_invalid_fields_are_named_and_nothing_is_stored(send, body, field, message):
    response = send(**body)

    assert response.status_code == 400
    errors = response.json()
    assert message in " ".join(errors[field])
    assert not Message.objects.exists()


def test_every_bad_field_is_reported_at_once(send):
    response = send(username="no spaces", text="", timeout=-1, colour="red")

    assert response.status_code == 400
    assert set(response.json()) == {"username", "text", "timeout", "colour"}


def test_text_limit_follows_the_setting(send, chat_settings):
    chat_settings(MAX_TEXT_LENGTH=10)

    assert send(username="ann", text="x" * 10).status_code == 201
    assert send(username="ann", text="x" * 11).status_code == 400


def test_timeout_limit_follows_the_setting(send, chat_settings):
    chat_settings(MAX_TIMEOUT=100)

    assert send(username="ann", text="hi", timeout=100).status_code == 201
    response = send(username="ann", text="hi", timeout=101)
    assert response.status_code == 400
    assert response.json()["timeout"] == ["Must be between 0 and 100 seconds."]


def test_unpaired_surrogate_is_refused(api, db):
    # Valid JSON, but not text any database can store.
    response = api.post("/chat", '{"username": "ann", "text": "\\ud800"}', content_type="application/json")

    assert response.status_code == 400
    assert "surrogate" in response.json()["text"][0]
    assert not Message.objects.exists()
