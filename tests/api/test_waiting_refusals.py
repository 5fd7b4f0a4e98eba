"""
A request that will be refused is refused before it waits, not after: a
collect or lease without the token of a claimed inbox, a prefetch, a client
over its read budget, a lease the view cannot accept. Each asks to wait far
longer than the test allows, so a request that waited first fails the test.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from tests.support.claims import bearer

# Asked for by every request here; none may take even half of it.
WAIT = 60


def answered_without_waiting(request: Callable[[], object]) -> object:
    started = time.monotonic()
    response = request()
    assert time.monotonic() - started < WAIT / 2, "the request waited before it was refused"
    return response


@pytest.mark.django_db(transaction=True)
def test_a_waiting_collect_of_a_claimed_inbox_without_its_token_is_refused_at_once(api, claim, send):
    claim("ann")
    other = claim("bob")

    refused = answered_without_waiting(lambda: api.get(f"/chats/ann?wait={WAIT}"))
    wrong = answered_without_waiting(lambda: api.get(f"/chats/ann?wait={WAIT}", **bearer(other)))

    for answer in (refused, wrong):
        assert answer.status_code == 401
        assert answer["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db(transaction=True)
def test_a_waiting_lease_of_a_claimed_inbox_without_its_token_is_refused_at_once(api, claim, send):
    claim("ann")

    refused = answered_without_waiting(
        lambda: api.post("/chats/ann/leases", {"seconds": 30, "wait": WAIT}, format="json")
    )

    assert refused.status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_waiting_prefetch_is_refused_at_once(api):
    refused = answered_without_waiting(lambda: api.get(f"/chats/ann?wait={WAIT}", HTTP_SEC_PURPOSE="prefetch"))

    assert refused.status_code == 403


@pytest.mark.django_db(transaction=True)
def test_a_waiting_collect_over_the_read_budget_is_refused_at_once(
    counter_store: str, api: APIClient, chat_settings: Callable[..., None]
) -> None:
    chat_settings(READ_THROTTLE_RATE="1/hour")
    assert api.get("/chats/ann").status_code == 200

    refused = answered_without_waiting(lambda: api.get(f"/chats/ann?wait={WAIT}"))

    assert refused.status_code == 429


@pytest.mark.django_db(transaction=True)
def test_a_waiting_lease_the_view_cannot_accept_is_refused_at_once(api):
    for body in ({"seconds": 0, "wait": WAIT}, {"seconds": 30, "wait": WAIT, "colour": "red"}):
        refused = answered_without_waiting(lambda body=body: api.post("/chats/ann/leases", body, format="json"))
        assert refused.status_code == 400


@pytest.mark.django_db(transaction=True)
def test_a_waiting_lease_sent_as_a_form_is_refused_at_once(api):
    body = json.dumps({"seconds": 30, "wait": WAIT})

    refused = answered_without_waiting(lambda: api.post("/chats/ann/leases", body, content_type="text/plain"))

    assert refused.status_code == 415


@pytest.mark.django_db(transaction=True)
def test_the_holder_of_the_token_still_waits_and_is_answered(api, claim, send):
    token = claim("ann")
    send(username="ann", text="secret")

    answer = api.get(f"/chats/ann?wait={WAIT}", **bearer(token))

    assert [message["text"] for message in answer.json()] == ["secret"]
