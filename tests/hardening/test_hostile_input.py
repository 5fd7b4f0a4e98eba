"""
Whatever a client sends, the answer is a 2xx or a 4xx JSON document, never a 5xx,
and text is kept exactly as sent without being interpreted anywhere.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from typing import Any
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import Resolver404, resolve
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from restapi.models import Message

pytestmark = pytest.mark.django_db

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    # The database and the client are shared by all examples of a test; each example is independent of them.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**60), max_value=10**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=10)
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
usernames = st.text(alphabet=st.characters(codec="utf-8"), max_size=200) | st.from_regex(
    r"[\w.@+-]{1,160}", fullmatch=True
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "username": json_values | usernames,
        "text": json_values,
        "timeout": json_values | st.integers() | st.from_regex(r"[0-9]{1,30}", fullmatch=True),
    },
) | st.dictionaries(st.text(max_size=10), json_values, max_size=5)


def _assert_clean_answer(response: Any) -> None:
    assert response.status_code < 500, response.content[:300]
    assert 200 <= response.status_code < 500
    if response.status_code != 204:
        assert response["Content-Type"] == "application/json", response["Content-Type"]
        json.loads(response.content)


@PROPERTY
@given(body=bodies)
def test_any_json_object_in_the_body(api: APIClient, body: dict) -> None:
    response = api.post("/chat", body, format="json")
    _assert_clean_answer(response)
    if response.status_code == 201:
        stored = Message.objects.get(id=response.json()["id"])
        # The username is stored as the inbox it names (NFKC), the text exactly as sent.
        assert (stored.username, stored.text) == (unicodedata.normalize("NFKC", body["username"]), body["text"])


@PROPERTY
@given(value=json_values)
def test_any_json_value_as_the_body(api: APIClient, value: Any) -> None:
    _assert_clean_answer(api.generic("POST", "/chat", json.dumps(value), content_type="application/json"))


@PROPERTY
@given(raw=st.binary(max_size=300))
@example(raw=b'{"username": "ann", "text": "\xff\xfe"}')
@example(raw=b'{"username": "ann", "text": "\\ud800"}')
@example(raw=b'{"username": "ann", "text": "hi", "timeout": NaN}')
@example(raw=b'{"username": "ann", "text": "hi", "timeout": 1e999}')
@example(raw=b'{"username": "ann", "text": "hi", "timeout": ' + b"9" * 5000 + b"}")
@example(raw=b"[" * 100_000)
@example(raw=b'{"a":' * 50_000)
@example(raw=b"\x00\x01\x02")
def test_random_bytes_as_the_body(api: APIClient, raw: bytes) -> None:
    _assert_clean_answer(api.generic("POST", "/chat", raw, content_type="application/json"))


@PROPERTY
@given(
    raw=st.binary(max_size=100),
    content_type=st.sampled_from(
        [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "",
            "application/json; charset=latin-1",
        ]
    ),
)
def test_random_bytes_with_any_content_type(api: APIClient, raw: bytes, content_type: str) -> None:
    _assert_clean_answer(api.generic("POST", "/chat", raw, content_type=content_type))


@PROPERTY
@given(segment=st.text(max_size=60), prefix=st.sampled_from(["/chats/", "/chat/", "/", "/chats/x/", "/chat/1/"]))
@example(segment="9" * 400, prefix="/chat/")
@example(segment="99999999999999999999", prefix="/chat/")
@example(segment="0", prefix="/chat/")
@example(segment="%ff%fe", prefix="/chats/")
@example(segment="admin/", prefix="/")
@example(segment="api/docs/", prefix="/")
def test_any_string_in_the_path(api: APIClient, segment: str, prefix: str) -> None:
    path = prefix + (segment if segment.startswith("%") else quote(segment, safe=""))
    response = api.get(path)
    if _is_api_path(response.wsgi_request.path_info):
        _assert_clean_answer(response)
    else:
        assert response.status_code < 500, response.content[:300]


# Pages for people (the admin, the API's documentation) and the metrics scraper's
# text: each has a content type of its own. The JSON rule is the API's, and
# covers every path that matches nothing.
_NOT_API_URL_NAMES = {"api-docs", "api-schema", "metrics"}


def _is_api_path(path_info: str) -> bool:
    try:
        match = resolve(path_info)
    except Resolver404:
        return True
    return match.app_name != "admin" and match.url_name not in _NOT_API_URL_NAMES


@PROPERTY
@given(
    method=st.sampled_from(["GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]),
    path=st.sampled_from(["/chat", "/chat/1", "/chats/ann"]),
)
def test_other_methods(api: APIClient, method: str, path: str) -> None:
    response = api.generic(method, path)
    assert response.status_code < 500


METACHARACTERS = [
    "'; DROP TABLE restapi_message; --",
    '" OR 1=1 --',
    "<script>alert('x')</script>",
    "<img src=x onerror=alert(1)>&amp;&lt;",
    "$(touch /tmp/pwned) `id` | rm -rf / ; && || > /etc/passwd",
    "{{ 7*7 }} {% debug %} %s %(name)s {0}",
    "line one\r\nX-Injected: yes\n\tend",
    "\\x00 \\u0000 \u202e reversed \u2028 separator",
]


@pytest.mark.parametrize("text", METACHARACTERS)
def test_metacharacters_are_stored_and_returned_exactly(api: APIClient, text: str) -> None:
    created = api.post("/chat", {"username": "o'brien.test", "text": text}, format="json")
    if created.status_code == 400:
        # The username rule refuses the quote; the same text goes to a valid name.
        created = api.post("/chat", {"username": "obrien", "text": text}, format="json")
    assert created.status_code == 201
    message_id = created.json()["id"]
    assert api.get(f"/chat/{message_id}").json()["text"] == text
    assert [m["text"] for m in api.get("/chats/obrien").json()] == [text]
    assert Message.objects.get(id=message_id).text == text
    assert Message.objects.count() == 1


def test_usernames_with_metacharacters_are_refused_and_nothing_is_stored(api: APIClient) -> None:
    for username in ["x' OR '1'='1", "<b>", "a;rm -rf", "a b", "../etc"]:
        response = api.post("/chat", {"username": username, "text": "hi"}, format="json")
        assert response.status_code == 400
        assert "username" in response.json()
        assert api.get(f"/chats/{quote(username, safe='')}").status_code in (400, 404)
    assert not Message.objects.exists()


def test_the_browsable_api_escapes_message_text(api: APIClient) -> None:
    payload = "<script>alert('x')</script>"
    message_id = api.post("/chat", {"username": "ann", "text": payload}, format="json").json()["id"]
    page = api.get(f"/chat/{message_id}", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    assert payload not in html
    assert "&lt;script&gt;" in html


def test_the_admin_escapes_what_it_shows(client: Client) -> None:
    # The admin shows no text at all (tests/test_admin.py); a username written
    # straight into the table, past the API's rules, is escaped.
    admin = User.objects.create_superuser("root", "root@example.com", "a-long-test-password")
    client.force_login(admin)
    payload = "<script>alert('x')</script>"
    message = Message.objects.create(
        username=payload, text="hi", created_at="2026-01-01T00:00:00Z", expiration_date="2026-01-01T00:01:00Z"
    )
    page = client.get(f"/admin/restapi/message/{message.id}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert payload not in html
    assert "&lt;script&gt;" in html


def test_log_lines_cannot_be_forged_through_the_path(api: APIClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        api.get("/chats/" + quote("ann\n2026-01-01 00:00:00 ERROR [x] forged: line", safe=""))
        api.get("/nowhere/" + quote("\r\nforged", safe=""))
    formatted = [logging.Formatter("%(message)s").format(record) for record in caplog.records]
    assert formatted
    assert not any("\n" in line or "\r" in line for line in formatted)
