"""Leases and waiting collects of a claimed inbox take its token, like the collect."""

from __future__ import annotations

from restapi.models import Message
from tests.support.claims import bearer


def test_leasing_a_claimed_inbox_needs_its_token(api, claim, send):
    token = claim("ann")
    send(username="ann", text="secret")

    refused = api.post("/chats/ann/leases", {"seconds": 30}, format="json")
    wrong = api.post("/chats/ann/leases", {"seconds": 30}, format="json", **bearer(claim("bob")))

    for answer in (refused, wrong):
        assert answer.status_code == 401
        assert answer["WWW-Authenticate"].startswith("Bearer")
    assert Message.objects.get(username="ann").leased_until is None
    granted = api.post("/chats/ann/leases", {"seconds": 30}, format="json", **bearer(token))
    assert granted.status_code == 201
    assert [m["text"] for m in granted.json()["messages"]] == ["secret"]


def test_acknowledging_a_lease_of_a_claimed_inbox_needs_its_token(api, claim, send):
    token = claim("ann")
    send(username="ann", text="secret")
    lease = api.post("/chats/ann/leases", {"seconds": 30}, format="json", **bearer(token)).json()["lease"]

    assert api.delete(f"/chats/ann/leases/{lease}").status_code == 401
    assert Message.objects.get(username="ann").collected_at is None
    assert api.delete(f"/chats/ann/leases/{lease}", **bearer(token)).status_code == 204


def test_a_waiting_collect_of_a_claimed_inbox_needs_its_token(api, claim, send):
    token = claim("ann")
    send(username="ann", text="secret")

    assert api.get("/chats/ann?wait=1").status_code == 401
    assert [m["text"] for m in api.get("/chats/ann?wait=1", **bearer(token)).json()] == ["secret"]
