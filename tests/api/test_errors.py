"""Bodies, content types and paths the API refuses: always a JSON 4xx, never a change."""

from __future__ import annotations

import pytest

from restapi.models import Message


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ("{not json", "JSON parse error"),
        ('{"username": "ann", "text": "hi"', "JSON parse error"),
        ("[1, 2]", "must be a JSON object"),
        ('"a string"', "must be a JSON object"),
        ("42", "must be a JSON object"),
        ("null", "must be a JSON object"),
        ('{"username": "ann", "text": NaN}', "JSON parse error"),
        ("[" * 100_00 + "]" * 100_00, "nested too deeply"),
    ],
)
def test_body_that_is_not_a_json_object_is_400(api, db, body, detail):
    response = api.post("/chat", body, content_type="application/json")

    assert response.status_code == 400
    assert detail in response.json()["detail"]
    assert not Message.objects.exists()


# Words of Python's, not of HTTP or JSON: a client cannot act on them.
PYTHON_INTERNALS = ("sys.", "set_int_max_str_digits", "codec", "(char ", "stream", "Traceback", "Error:", "repr")


@pytest.mark.parametrize(
    ("body", "content_type", "detail"),
    [
        (b'{"username": "ann", "text": "hi", "timeout": ' + b"9" * 5000 + b"}", "application/json", "digits"),
        (b'{"username": "ann", "text": "\xff\xfe"}', "application/json", "not valid UTF-8"),
        (b'{"username": "ann"}', "application/json; charset=utf-16", "not valid UTF-16"),
        (b'{"username": "ann", "text": NaN}', "application/json", "NaN"),
        (b'{"username": "ann", "text": -Infinity}', "application/json", "Infinity"),
        (b'{"username": "ann", "text": "hi",', "application/json", "line 1, column 34"),
    ],
)
def test_parse_errors_say_what_is_wrong_in_the_clients_terms(api, db, body, content_type, detail):
    response = api.generic("POST", "/chat", body, content_type=content_type)

    assert response.status_code == 400
    message = response.json()["detail"]
    assert detail in message
    assert not any(word in message for word in PYTHON_INTERNALS), message
    assert not Message.objects.exists()


def test_invalid_utf8_is_400(api, db):
    response = api.post("/chat", b'{"username": "ann", "text": "\xff\xfe"}', content_type="application/json")

    assert response.status_code == 400
    assert "detail" in response.json()


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", "application/xml"])
def test_other_content_types_are_415(api, db, content_type):
    response = api.post("/chat", '{"username": "ann", "text": "hi"}', content_type=content_type)

    assert response.status_code == 415
    assert "Unsupported media type" in response.json()["detail"]
    assert not Message.objects.exists()


def test_body_over_the_limit_is_413_and_not_read(api, db, settings):
    text = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)

    response = api.post("/chat", {"username": "ann", "text": text}, format="json")

    assert response.status_code == 413
    assert "larger than the limit" in response.json()["detail"]
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("declared", "status"),
    [
        ("9" * 5000, 413),
        ("0" * 5000 + "9" * 30, 413),
        ("0" * 5000 + "99999999", 413),
        ("\u00b2", 400),
        ("\u0661\u0662", 400),
        ("-1", 400),
        ("1e3", 400),
    ],
)
def test_a_content_length_int_cannot_read_is_refused_as_the_client_sent_it(api, db, declared, status):
    # Servers such as gunicorn refuse these before the service sees them; others may not.
    response = api.generic("POST", "/chat", b"{}", content_type="application/json", CONTENT_LENGTH=declared)

    assert response.status_code == status
    assert "Content-Length" in response.json()["detail"] or "larger than the limit" in response.json()["detail"]
    assert not Message.objects.exists()


def test_body_at_the_limit_is_read(api, db, settings):
    padding = settings.DATA_UPLOAD_MAX_MEMORY_SIZE - len('{"username":"ann","text":"hi","x":""}')
    body = '{"username":"ann","text":"hi","x":"' + "p" * padding + '"}'
    assert len(body) == settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    response = api.post("/chat", body, content_type="application/json")

    # Read and validated: refused for the unknown field, not for its size.
    assert response.status_code == 400
    assert "Unknown field" in response.json()["x"][0]


@pytest.mark.parametrize("path", ["/nowhere", "/chat/abc", "/chat/-1", "/chats/", "/chat/1/extra"])
def test_unknown_paths_are_json_404(api, db, path):
    response = api.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json()


@pytest.mark.parametrize(("method", "path"), [("get", "/chat"), ("delete", "/chat/1"), ("post", "/chats/ann")])
def test_wrong_method_is_json_405(api, db, method, path):
    response = getattr(api, method)(path)

    assert response.status_code == 405
    assert "not allowed" in response.json()["detail"]


def test_every_response_carries_a_request_id(api, db):
    first = api.get("/chat/1")
    second = api.get("/chat/1")

    assert first["X-Request-ID"] != second["X-Request-ID"]
    assert len(first["X-Request-ID"]) == 32


def test_a_proxy_supplied_request_id_is_kept_if_safe(api, db):
    assert api.get("/chat/1", HTTP_X_REQUEST_ID="edge-42")["X-Request-ID"] == "edge-42"
    assert api.get("/chat/1", HTTP_X_REQUEST_ID="bad id\nforged line")["X-Request-ID"] != "bad id\nforged line"
