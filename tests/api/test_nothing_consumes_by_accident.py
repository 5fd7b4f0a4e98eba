"""Only a real GET collects: HEAD, OPTIONS and announced prefetches or previews change nothing."""

from __future__ import annotations

import pytest

SPECULATIVE_HEADERS = [
    {"HTTP_SEC_PURPOSE": "prefetch"},
    {"HTTP_SEC_PURPOSE": "prefetch;prerender"},
    {"HTTP_SEC_PURPOSE": "prefetch;anonymous-client-ip"},
    {"HTTP_PURPOSE": "prefetch"},
    {"HTTP_X_MOZ": "prefetch"},
    {"HTTP_X_PURPOSE": "preview"},
    {"HTTP_X_PURPOSE": "Preview"},
]
ON_A_MESSAGE = [SPECULATIVE_HEADERS[0], SPECULATIVE_HEADERS[-1]]


def still_waiting(api, username: str) -> list[str]:
    """Collect ``username``'s inbox for real; the texts that were still there."""
    return [message["text"] for message in api.get(f"/chats/{username}").json()]


@pytest.mark.parametrize("path", ["/chats/ann", "/chats/ann/"])
def test_head_on_an_inbox_is_refused_and_collects_nothing(api, send, path):
    send(username="ann", text="kept")

    response = api.head(path)

    assert response.status_code == 405
    assert response["Allow"] == "GET, OPTIONS"
    assert still_waiting(api, "ann") == ["kept"]


def test_head_on_a_message_is_refused_so_it_cannot_probe_ids(api, send):
    message_id = send(username="ann", text="kept").json()["id"]

    assert api.head(f"/chat/{message_id}").status_code == 405
    assert api.head("/chat/123456789").status_code == 405
    assert still_waiting(api, "ann") == ["kept"]


def test_options_on_an_inbox_describes_it_and_collects_nothing(api, send):
    send(username="ann", text="kept")

    response = api.options("/chats/ann")

    assert response.status_code == 200
    assert response["Allow"] == "GET, OPTIONS"
    assert response.json()["name"]
    assert still_waiting(api, "ann") == ["kept"]


@pytest.mark.parametrize("headers", SPECULATIVE_HEADERS, ids=lambda h: ": ".join(*h.items()))
def test_a_prefetch_or_preview_collects_nothing_and_is_not_a_success(api, send, headers):
    send(username="ann", text="kept")

    response = api.get("/chats/ann", **headers)

    assert response.status_code == 403
    assert "prefetch" in response.json()["detail"]
    assert still_waiting(api, "ann") == ["kept"]


@pytest.mark.parametrize("headers", ON_A_MESSAGE, ids=lambda h: ": ".join(*h.items()))
def test_a_preview_of_a_message_link_does_not_show_its_text(api, send, headers):
    message_id = send(username="ann", text="private").json()["id"]

    response = api.get(f"/chat/{message_id}", **headers)

    assert response.status_code == 403
    assert "private" not in response.content.decode()


def test_a_purpose_that_is_not_speculative_is_an_ordinary_read(api, send):
    send(username="ann", text="taken")

    response = api.get("/chats/ann", HTTP_SEC_PURPOSE="navigate")

    assert response.status_code == 200
    assert [message["text"] for message in response.json()] == ["taken"]
