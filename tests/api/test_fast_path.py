"""
Plain JSON requests skip DRF's per-request set-up (restapi.fast_path); every
other request goes through DRF. Both must answer alike, byte for byte, errors
included: the same conversation is held once on each path and compared.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from rest_framework.request import Request

pytestmark = pytest.mark.django_db

# What DRF's negotiation also resolves to JSON, version 1, but not by the fast path's shortcut.
NEGOTIATED_JSON = "application/json, text/plain;q=0.5"
COMPARED_HEADERS = (
    "Content-Type",
    "Allow",
    "Vary",
    "Cache-Control",
    "Location",
    "WWW-Authenticate",
    "Retry-After",
    "X-More-Messages",
)
PREFETCH = {"HTTP_SEC_PURPOSE": "prefetch"}
WAIT = re.compile(r"available in \d+ seconds")


class Conversation:
    """A client that talks to one inbox namespace, recording every answer with what varies masked."""

    def __init__(self, *, prefix: str, accept: str | None, address: str) -> None:
        self.prefix = prefix
        self.client = Client(REMOTE_ADDR=address, **({"HTTP_ACCEPT": accept} if accept else {}))
        self.record: list[tuple[Any, ...]] = []
        self.ids: dict[str, str] = {}

    def name(self, username: str) -> str:
        return f"{self.prefix}{username}"

    def __call__(
        self, method: str, path: str, body: Any = None, *, raw: bytes | None = None, **headers: str
    ) -> dict | list | None:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        response = self.client.generic(
            method, path.format(p=self.prefix), data, content_type="application/json", **headers
        )
        shown = {name: self._mask(response.headers.get(name, "")) for name in COMPARED_HEADERS}
        self.record.append(
            (
                method,
                self._mask(path.format(p=self.prefix)),
                response.status_code,
                shown,
                self._mask(response.content.decode()),
            )
        )
        return response.json() if response.content else None

    def _mask(self, text: str) -> str:
        text = text.replace(self.prefix, "<p>")
        text = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "<time>", text)
        # Ids, lease ids and tokens are random: each is named by its order of appearance.
        for value in re.findall(r"\b\d{6,}\b|[A-Za-z0-9_\-:.]{20,}", text):
            text = text.replace(value, self.ids.setdefault(value, f"<v{len(self.ids)}>"))
        return text


def converse(talk: Conversation) -> None:
    """Every endpoint, with its answers and its refusals."""
    ann, cla = talk.name("ann"), talk.name("cla")
    # Sends, good and bad.
    sent = talk("POST", "/chat", {"username": ann, "text": "hello", "timeout": 600})
    talk("POST", "/chat", {"username": ann, "text": "second"})
    for body in (
        {},
        {"username": "", "text": "x"},
        {"username": ann, "text": "   "},
        {"username": "a b", "text": "x"},
        {"username": ann, "text": "x", "timeout": -1},
        {"username": ann, "text": "x", "timeout": "soon"},
        {"username": ann, "text": "x", "timout": 5},
        {"username": ann, "text": 7},
        [1, 2],
    ):
        talk("POST", "/chat", body)
    for raw in (b"{", b'{"username": NaN}', b'{"timeout": ' + b"9" * 2000 + b"}", b'{"text": "\xff"}'):
        talk("POST", "/chat", raw=raw)
    # Reads by id.
    talk("GET", f"/chat/{sent['id']}")
    talk("GET", "/chat/1")
    talk("GET", f"/chat/{sent['id']}", **PREFETCH)
    # Collects.
    talk("GET", "/chats/{p}ann", **PREFETCH)
    talk("GET", "/chats/{p}ann?wait=soon")
    talk("GET", "/chats/{p}ann?wait=61")
    talk("GET", "/chats/a%20b")
    talk("GET", "/chats/{p}ann")
    talk("GET", "/chats/{p}ann")
    # Leases.
    talk("POST", "/chats/{p}ann/leases", {})
    talk("POST", "/chat", {"username": ann, "text": "leased"})
    talk("POST", "/chats/{p}ann/leases", {"seconds": 0})
    talk("POST", "/chats/{p}ann/leases", {"seconds": 30, "colour": "red"})
    lease = talk("POST", "/chats/{p}ann/leases", {"seconds": 30})
    talk("DELETE", f"/chats/{{p}}ann/leases/{lease['lease']}")
    talk("DELETE", f"/chats/{{p}}ann/leases/{lease['lease']}")
    talk("DELETE", "/chats/{p}ann/leases/made-up")
    # A claimed inbox.
    token = talk("POST", "/inboxes", {"username": cla})["token"]
    talk("POST", "/inboxes", {"username": cla})
    claimed = talk("POST", "/chat", {"username": cla, "text": "private"})
    talk("GET", f"/chat/{claimed['id']}")
    talk("GET", "/chats/{p}cla")
    talk("GET", "/chats/{p}cla", HTTP_AUTHORIZATION="Bearer wrong")
    talk("POST", "/chats/{p}cla/leases", {}, HTTP_AUTHORIZATION="Bearer wrong")
    talk("GET", f"/chat/{claimed['id']}", HTTP_AUTHORIZATION=f"Bearer {token}")
    talk("GET", "/chats/{p}cla", HTTP_AUTHORIZATION=f"Bearer {token}")
    talk("POST", "/inboxes/{p}cla/token")
    new_token = talk("POST", "/inboxes/{p}cla/token", HTTP_AUTHORIZATION=f"Bearer {token}")["token"]
    talk("DELETE", "/inboxes/{p}cla", HTTP_AUTHORIZATION=f"Bearer {token}")
    talk("DELETE", "/inboxes/{p}cla", HTTP_AUTHORIZATION=f"Bearer {new_token}")


@pytest.fixture
def drf_requests(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """How many DRF Request objects the views have built so far."""
    built = 0
    original = Request.__init__

    def counting(self: Request, *args: Any, **kwargs: Any) -> None:
        nonlocal built
        built += 1
        original(self, *args, **kwargs)

    monkeypatch.setattr(Request, "__init__", counting)
    return lambda: built


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/json; version=1"])
def test_plain_json_requests_are_answered_as_drf_answers_them(accept, drf_requests) -> None:
    fast = Conversation(prefix="fast", accept=accept, address="127.0.0.2")
    converse(fast)
    assert drf_requests() == 0

    negotiated = Conversation(prefix="drf", accept=NEGOTIATED_JSON, address="127.0.0.3")
    converse(negotiated)
    assert drf_requests() == len(negotiated.record)

    assert fast.record == negotiated.record


def test_a_throttled_request_is_refused_alike_on_both_paths(chat_settings, drf_requests) -> None:
    chat_settings(READ_THROTTLE_RATE="2/day", THROTTLE_RATE="1/day")
    answers = []
    for prefix, accept, address in (("fast", None, "127.0.0.4"), ("drf", NEGOTIATED_JSON, "127.0.0.5")):
        talk = Conversation(prefix=prefix, accept=accept, address=address)
        for _ in range(3):
            talk("GET", "/chats/{p}ann")
        talk("POST", "/chat", {"username": talk.name("ann"), "text": "a"})
        talk("POST", "/chat", {"username": talk.name("ann"), "text": "b"})
        assert [status for _, _, status, _, _ in talk.record] == [200, 200, 429, 201, 429]
        for _, _, status, headers, body in talk.record:
            if status == 429:
                # The wait runs to the end of the day, so each answer's own header and body agree on it,
                # while the two paths, asked a moment apart, may name seconds one apart.
                assert f"available in {headers['Retry-After']} seconds" in body
        answers.append([(status, WAIT.sub("<wait>", body)) for _, _, status, _, body in talk.record])

    assert answers[0] == answers[1]


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"HTTP_ACCEPT": "text/html"}, None),
        ({"HTTP_ACCEPT": "application/json; version=2"}, None),
        ({"QUERY_STRING": "format=json"}, None),
        ({"CONTENT_TYPE": "application/x-www-form-urlencoded"}, b"username=ann&text=hi"),
        ({"CONTENT_TYPE": "application/json; version=1"}, b'{"username": "ann", "text": "hi"}'),
    ],
)
def test_any_other_request_goes_through_drf(headers, body, drf_requests) -> None:
    request = {"CONTENT_TYPE": "application/json", **headers}
    Client().generic("POST", "/chat", body or b"", **request)

    # The browsable API builds more requests of its own to draw its forms.
    assert drf_requests() >= 1


def test_options_and_refused_methods_go_through_drf(drf_requests) -> None:
    client = Client()
    assert client.options("/chat").status_code == 200
    assert client.head("/chats/ann").status_code == 405
    assert client.put("/chat/1", b"{}", content_type="application/json").status_code == 405

    assert drf_requests() == 3
