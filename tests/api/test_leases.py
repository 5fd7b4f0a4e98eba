"""POST /chats/<username>/leases and DELETE .../leases/<lease>: at-least-once delivery, one holder at a time."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from restapi import selectors
from restapi.models import Message
from restapi.storage.messages import Outlook


@pytest.fixture
def lease(api):
    def lease(username: str = "ann", **body):
        return api.post(f"/chats/{username}/leases", body, format="json")

    return lease


def test_a_lease_hands_out_live_messages_oldest_first_without_expiring_them(api, send, lease):
    ids = [send(username="ann", text=f"m{n}", timeout=600).json()["id"] for n in range(3)]
    before = [api.get(f"/chat/{message_id}").json() for message_id in ids]

    response = lease(seconds=30)

    assert response.status_code == 201
    body = response.json()
    assert body["messages"] == [
        {"id": ids[0], "text": "m0"},
        {"id": ids[1], "text": "m1"},
        {"id": ids[2], "text": "m2"},
    ]
    assert isinstance(body["lease"], str)
    assert len(body["lease"]) >= 22
    assert body["expires_at"].endswith("Z")
    assert response["Location"] == f"/chats/ann/leases/{body['lease']}"
    assert response["Cache-Control"] == "no-store"
    # A leased message is still live to a reader, with its expiration date unchanged.
    assert [api.get(f"/chat/{message_id}").json() for message_id in ids] == before


def test_the_lease_lasts_the_seconds_asked_for_on_the_database_clock(send, lease):
    message_id = send(username="ann", text="m", timeout=600).json()["id"]

    body = lease(seconds=120).json()

    stored = Message.objects.get(pk=message_id)
    assert abs((stored.leased_until - stored.created_at).total_seconds() - 120) < 5
    assert datetime.fromisoformat(body["expires_at"]) == stored.leased_until


def test_leased_messages_are_hidden_from_collects_and_other_leases(api, send, lease):
    send(username="ann", text="held", timeout=600)
    assert lease(seconds=30).status_code == 201

    assert api.get("/chats/ann").json() == []
    assert api.get("/chats/ann")["X-More-Messages"] == "false"
    other = lease(seconds=30)
    assert other.status_code == 200
    assert other.json() == {"lease": None, "expires_at": None, "messages": []}


def test_an_empty_inbox_leases_nothing(db, lease):
    response = lease()

    assert response.status_code == 200
    assert response.json() == {"lease": None, "expires_at": None, "messages": []}


def test_the_default_lease_is_thirty_seconds(send, lease):
    message_id = send(username="ann", text="m", timeout=600).json()["id"]

    lease()

    stored = Message.objects.get(pk=message_id)
    assert abs((stored.leased_until - stored.created_at).total_seconds() - 30) < 5


def test_a_lease_takes_at_most_max_collect_messages(send, lease, chat_settings):
    chat_settings(MAX_COLLECT=2)
    ids = [send(username="ann", text=f"m{n}", timeout=600).json()["id"] for n in range(3)]

    first = lease().json()["messages"]
    second = lease().json()["messages"]

    assert [m["id"] for m in first] == ids[:2]
    assert [m["id"] for m in second] == ids[2:]


def test_acknowledging_collects_the_leased_messages(api, send, lease):
    message_id = send(username="ann", text="m", timeout=600).json()["id"]
    location = lease(seconds=30)["Location"]
    send(username="ann", text="after the lease", timeout=600)
    assert api.get("/chats/ann").json()[0]["text"] == "after the lease"

    response = api.delete(location)

    assert response.status_code == 204
    stored = Message.objects.get(pk=message_id)
    assert stored.collected_at is not None
    assert stored.expiration_date == stored.collected_at
    assert datetime.fromisoformat(api.get(f"/chat/{message_id}").json()["expiration_date"]) == stored.collected_at


def test_acknowledging_twice_is_a_conflict_and_an_unknown_lease_is_not_found(api, send, lease):
    send(username="ann", text="m", timeout=600)
    token = lease(seconds=30).json()["lease"]
    assert api.delete(f"/chats/ann/leases/{token}").status_code == 204

    again = api.delete(f"/chats/ann/leases/{token}")
    unknown = api.delete("/chats/ann/leases/not-a-lease")
    other_inbox = api.delete(f"/chats/bob/leases/{token}")

    assert again.status_code == 409
    assert "ended" in again.json()["detail"]
    assert unknown.status_code == 404
    assert other_inbox.status_code == 404


def test_a_lease_that_ends_unacknowledged_returns_its_messages_to_the_inbox(api, send, lease):
    message_id = send(username="ann", text="m", timeout=600).json()["id"]
    token = lease(seconds=1).json()["lease"]

    time.sleep(1.2)

    assert api.get("/chats/ann").json() == [{"id": message_id, "text": "m"}]
    assert api.delete(f"/chats/ann/leases/{token}").status_code == 409


def test_an_ended_lease_returns_only_messages_whose_own_time_has_not_passed(api, send, lease):
    send(username="ann", text="short", timeout=1)
    long_id = send(username="ann", text="long", timeout=600).json()["id"]
    assert len(lease(seconds=2).json()["messages"]) == 2

    time.sleep(2.2)

    assert lease(seconds=30).json()["messages"] == [{"id": long_id, "text": "long"}]


def test_a_message_that_expires_during_its_lease_keeps_its_expiration_date_when_acknowledged(api, send, lease):
    message_id = send(username="ann", text="short", timeout=1).json()["id"]
    expiration_date = api.get(f"/chat/{message_id}").json()["expiration_date"]
    token = lease(seconds=30).json()["lease"]
    time.sleep(1.2)

    assert api.delete(f"/chats/ann/leases/{token}").status_code == 204

    assert api.get(f"/chat/{message_id}").json()["expiration_date"] == expiration_date


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"seconds": 0}, "seconds"),
        ({"seconds": 3601}, "seconds"),
        ({"seconds": 1.5}, "seconds"),
        ({"seconds": True}, "seconds"),
        ({"seconds": "-1"}, "seconds"),
        ({"wait": 61}, "wait"),
        ({"wait": -1}, "wait"),
        ({"wait": "soon"}, "wait"),
        ({"secs": 30}, "secs"),
    ],
)
def test_a_bad_lease_request_is_refused_and_leases_nothing(api, send, lease, body, field):
    send(username="ann", text="m", timeout=600)

    response = lease(**body)

    assert response.status_code == 400
    assert field in response.json()
    assert len(api.get("/chats/ann").json()) == 1


def test_a_lease_body_must_be_a_json_object(api, send):
    send(username="ann", text="m", timeout=600)

    response = api.post("/chats/ann/leases", [1], format="json")

    assert response.status_code == 400
    assert len(api.get("/chats/ann").json()) == 1


def test_a_lease_on_a_bad_username_is_refused(api, db):
    assert api.post("/chats/a%20b/leases", {}, format="json").status_code == 400
    assert api.delete("/chats/a%20b/leases/x").status_code == 400


def test_a_waiter_learns_when_the_first_lease_holding_its_inbox_ends(api, send, lease):
    # What a waiting collect looks at: mail now, or else when a lease may return some.
    assert selectors.inbox_outlook("ann") == Outlook(has_mail=False, lease_ends_in=None)
    send(username="ann", text="first", timeout=3600)
    assert selectors.inbox_outlook("ann") == Outlook(has_mail=True, lease_ends_in=None)
    assert lease(seconds=600).status_code == 201
    send(username="ann", text="second", timeout=3600)
    assert lease(seconds=300).status_code == 201

    outlook = selectors.inbox_outlook("ann")

    assert not outlook.has_mail
    # The lease taken second ends first; the bounds leave the test a minute of slack,
    # and SQLite's julianday arithmetic a little over its 300 s.
    assert 240 < outlook.lease_ends_in < 301
    assert selectors.inbox_outlook("bob") == Outlook(has_mail=False, lease_ends_in=None)


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"])
def test_an_empty_form_from_another_site_leases_nothing(api, send, content_type):
    # What any web page can make its visitors' browsers send, without asking them.
    message_id = send(username="ann", text="hi").json()["id"]

    response = api.generic("POST", "/chats/ann/leases", b"", content_type=content_type)

    assert response.status_code == 415
    assert "Unsupported media type" in response.json()["detail"]
    assert [m["id"] for m in api.get("/chats/ann").json()] == [message_id]


def test_an_empty_body_without_a_content_type_takes_the_defaults(api, send):
    send(username="ann", text="hi")

    response = api.generic("POST", "/chats/ann/leases", b"", content_type="")

    assert response.status_code == 201
    assert response.json()["messages"][0]["text"] == "hi"
