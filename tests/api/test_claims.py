"""Claimed inboxes: POST /inboxes, the token on reads, rotation and release."""

from __future__ import annotations

import re

import pytest

from restapi.models import Inbox, Message
from restapi.tokens import token_hash
from tests.support.claims import bearer


def test_claiming_returns_a_url_safe_token_of_at_least_256_bits_once(api, db):
    response = api.post("/inboxes", {"username": "ann"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["username"] == "ann"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", body["token"])  # 43 base64 characters carry 258 bits
    assert response["Cache-Control"] == "no-store"
    assert response["Location"] == "/inboxes/ann"


def test_only_the_tokens_hash_is_stored(api, db):
    token = api.post("/inboxes", {"username": "ann"}, format="json").json()["token"]

    stored = Inbox.objects.get(username="ann")
    assert stored.token_hash == token_hash(token)
    assert token not in stored.token_hash


def test_each_claim_gets_a_different_token(api, db):
    tokens = {api.post("/inboxes", {"username": f"user{n}"}, format="json").json()["token"] for n in range(20)}

    assert len(tokens) == 20


def test_claiming_a_claimed_name_is_409_and_keeps_the_first_token(api, claim):
    token = claim("ann")

    response = api.post("/inboxes", {"username": "ann"}, format="json")

    assert response.status_code == 409
    assert "token" not in response.json()
    assert api.get("/chats/ann", **bearer(token)).status_code == 200


@pytest.mark.parametrize("body", [{}, {"username": ""}, {"username": "a/b"}, {"username": 7}])
def test_an_invalid_claim_is_400_and_claims_nothing(api, db, body):
    response = api.post("/inboxes", body, format="json")

    assert response.status_code == 400
    assert "username" in response.json()
    assert not Inbox.objects.exists()


def test_a_claim_with_an_unknown_field_is_400(api, db):
    response = api.post("/inboxes", {"username": "ann", "token": "mine"}, format="json")

    assert response.status_code == 400
    assert "token" in response.json()
    assert not Inbox.objects.exists()


def test_a_claim_body_that_is_not_an_object_is_400(api, db):
    response = api.post("/inboxes", ["ann"], format="json")

    assert response.status_code == 400
    assert "JSON object" in response.json()["detail"]


def test_a_claim_normalises_the_username_as_a_send_does(api, claim, send):
    """A compatibility spelling (here fullwidth letters) claims the inbox that sends to the plain spelling fill."""
    response = api.post("/inboxes", {"username": "\uff41\uff4e\uff4e"}, format="json")
    send(username="ann", text="hi")

    assert response.json()["username"] == "ann"
    assert api.get("/chats/ann").status_code == 401
    assert api.get("/chats/\uff41\uff4e\uff4e").status_code == 401
    assert api.get("/chats/ann", **bearer(response.json()["token"])).status_code == 200


def test_claims_use_the_same_username_rule_as_sends(api, claim, send):
    """Whatever name a send addresses, a claim of the same spelling protects it."""
    token = claim("Ann.B+x@example")
    send(username="Ann.B+x@example", text="hi")

    assert api.get("/chats/Ann.B+x@example").status_code == 401
    assert [m["text"] for m in api.get("/chats/Ann.B+x@example", **bearer(token)).json()] == ["hi"]


# Collecting a claimed inbox


def test_collecting_a_claimed_inbox_without_a_token_is_401_with_a_bearer_challenge(api, claim, send):
    claim("ann")
    send(username="ann", text="secret")

    response = api.get("/chats/ann")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "secret" not in response.content.decode()
    assert Message.objects.get(username="ann").collected_at is None


def test_collecting_a_claimed_inbox_with_its_token_hands_out_messages_sent_before_and_after_the_claim(api, claim, send):
    before = send(username="ann", text="before").json()["id"]
    token = claim("ann")
    after = send(username="ann", text="after").json()["id"]

    response = api.get("/chats/ann", **bearer(token))

    assert response.status_code == 200
    assert response.json() == [{"id": before, "text": "before"}, {"id": after, "text": "after"}]


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer wrong",
        "Bearer " + "A" * 43,
        "Bearer ",
        "bearer",
        "Basic YW5uOnNlY3JldA==",
    ],
)
def test_collecting_with_a_wrong_or_malformed_authorization_is_401_and_collects_nothing(
    api, claim, send, authorization
):
    claim("ann")
    send(username="ann", text="secret")

    response = api.get("/chats/ann", HTTP_AUTHORIZATION=authorization)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert Message.objects.get(username="ann").collected_at is None


def test_the_token_of_another_inbox_does_not_open_this_one(api, claim, send):
    claim("ann")
    bobs_token = claim("bob")
    send(username="ann", text="for ann")

    assert api.get("/chats/ann", **bearer(bobs_token)).status_code == 401
    assert Message.objects.get(username="ann").collected_at is None


def test_the_scheme_name_is_case_insensitive(api, claim, send):
    token = claim("ann")
    send(username="ann", text="hi")

    assert api.get("/chats/ann", HTTP_AUTHORIZATION=f"bEaReR {token}").status_code == 200


def test_open_inboxes_work_as_before_without_a_token(api, claim, send):
    claim("ann")
    send(username="bob", text="open")

    assert [m["text"] for m in api.get("/chats/bob").json()] == ["open"]


def test_sending_to_a_claimed_inbox_needs_no_token(claim, send):
    claim("ann")

    assert send(username="ann", text="hi").status_code == 201


# Reading a claimed inbox's message by id


def test_reading_a_claimed_inboxs_message_by_id_needs_its_token(api, claim, send):
    token = claim("ann")
    message_id = send(username="ann", text="secret").json()["id"]

    without = api.get(f"/chat/{message_id}")
    wrong = api.get(f"/chat/{message_id}", **bearer(claim("bob")))
    right = api.get(f"/chat/{message_id}", **bearer(token))

    for refused in (without, wrong):
        assert refused.status_code == 404
        assert "secret" not in refused.content.decode()
    assert right.status_code == 200
    assert right.json()["text"] == "secret"


def test_a_refused_read_by_id_is_answered_exactly_like_a_missing_id(api, claim, send):
    claim("ann")
    message_id = send(username="ann", text="secret").json()["id"]

    refused = api.get(f"/chat/{message_id}")
    missing = api.get(f"/chat/{message_id + 1}")

    assert refused.status_code == missing.status_code == 404
    assert refused.json()["detail"].replace(str(message_id), "N") == missing.json()["detail"].replace(
        str(message_id + 1), "N"
    )
    assert refused["WWW-Authenticate"] == missing["WWW-Authenticate"]


def test_a_message_sent_before_the_claim_is_protected_once_claimed_even_when_already_read(api, send, claim):
    message_id = send(username="ann", text="early").json()["id"]
    # Expired and read once while open: the hot store (where there is one) now holds it.
    api.get("/chats/ann")
    assert api.get(f"/chat/{message_id}").status_code == 200

    claim("ann")

    assert api.get(f"/chat/{message_id}").status_code == 404


def test_messages_of_open_inboxes_are_read_by_id_with_or_without_a_token(api, claim, send):
    message_id = send(username="bob", text="open").json()["id"]

    assert api.get(f"/chat/{message_id}").json()["text"] == "open"
    assert api.get(f"/chat/{message_id}", **bearer(claim("ann"))).json()["text"] == "open"


# Rotation


def test_rotation_returns_a_new_token_and_the_old_one_stops_working_at_once(api, claim, send):
    old = claim("ann")

    response = api.post("/inboxes/ann/token", **bearer(old))

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    new = response.json()["token"]
    assert new != old
    send(username="ann", text="hi")
    assert api.get("/chats/ann", **bearer(old)).status_code == 401
    assert api.post("/inboxes/ann/token", **bearer(old)).status_code == 401
    assert api.get("/chats/ann", **bearer(new)).status_code == 200


@pytest.mark.parametrize("authorization", [None, "Bearer " + "A" * 43])
def test_rotation_without_the_current_token_is_401_and_changes_nothing(api, claim, authorization):
    token = claim("ann")
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    response = api.post("/inboxes/ann/token", **headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert Inbox.objects.get(username="ann").token_hash == token_hash(token)


def test_rotating_an_open_inbox_is_404(api, claim):
    response = api.post("/inboxes/nobody/token", **bearer(claim("ann")))

    assert response.status_code == 404
    assert not Inbox.objects.filter(username="nobody").exists()


# Release


def test_release_is_204_opens_the_name_and_never_shows_its_messages(api, claim, send):
    token = claim("ann")
    live = send(username="ann", text="live", timeout=3600).json()["id"]
    expired = send(username="ann", text="expired", timeout=0).json()["id"]

    response = api.delete("/inboxes/ann", **bearer(token))

    assert response.status_code == 204
    assert not Inbox.objects.filter(username="ann").exists()
    assert api.get("/chats/ann").json() == []
    for message_id in (live, expired):
        assert api.get(f"/chat/{message_id}").status_code == 404
    assert not Message.objects.filter(username="ann").exists()


def test_a_message_cached_while_claimed_is_not_shown_after_the_release(api, claim, send):
    token = claim("ann")
    message_id = send(username="ann", text="secret", timeout=0).json()["id"]
    # Settled and read by its owner: the hot store (where there is one) now holds it.
    assert api.get(f"/chat/{message_id}", **bearer(token)).status_code == 200

    api.delete("/inboxes/ann", **bearer(token))

    assert api.get(f"/chat/{message_id}").status_code == 404


def test_release_leaves_other_inboxes_alone(api, claim, send):
    token = claim("ann")
    kept = send(username="bob", text="for bob").json()["id"]

    api.delete("/inboxes/ann", **bearer(token))

    assert api.get(f"/chat/{kept}").status_code == 200


@pytest.mark.parametrize("authorization", [None, "Bearer " + "A" * 43])
def test_release_without_the_current_token_is_401_and_keeps_claim_and_messages(api, claim, send, authorization):
    claim("ann")
    send(username="ann", text="secret")
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    response = api.delete("/inboxes/ann", **headers)

    assert response.status_code == 401
    assert Inbox.objects.filter(username="ann").exists()
    assert Message.objects.filter(username="ann", collected_at__isnull=True).exists()


def test_releasing_an_open_inbox_is_404(api, claim, send):
    send(username="bob", text="open")

    response = api.delete("/inboxes/bob", **bearer(claim("ann")))

    assert response.status_code == 404
    assert Message.objects.filter(username="bob").exists()


def test_a_token_from_before_a_release_does_not_open_the_name_when_it_is_claimed_again(api, claim, send):
    first = claim("ann")
    api.delete("/inboxes/ann", **bearer(first))
    second = claim("ann")
    message_id = send(username="ann", text="for the new owner").json()["id"]

    assert api.get("/chats/ann", **bearer(first)).status_code == 401
    assert api.get(f"/chat/{message_id}", **bearer(first)).status_code == 404
    assert api.post("/inboxes/ann/token", **bearer(first)).status_code == 401
    assert api.delete("/inboxes/ann", **bearer(first)).status_code == 401
    assert api.get("/chats/ann", **bearer(second)).json() == [{"id": message_id, "text": "for the new owner"}]


# Throttling


def test_claims_are_throttled_with_sends_per_client_address(api, db, chat_settings):
    # Per day, so that the window cannot end between the requests.
    chat_settings(THROTTLE_RATE="3/day")
    api.post("/chat", {"username": "bob", "text": "one"}, format="json")
    api.post("/inboxes", {"username": "ann"}, format="json")
    api.post("/inboxes", {"username": "cat"}, format="json")

    response = api.post("/inboxes", {"username": "dan"}, format="json")

    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert not Inbox.objects.filter(username="dan").exists()


def test_rotations_and_releases_are_throttled_too(api, claim, chat_settings):
    token = claim("ann")
    # The claim above counted once in today's window: one send takes the rest.
    chat_settings(THROTTLE_RATE="2/day")
    api.post("/chat", {"username": "bob", "text": "one"}, format="json")

    assert api.post("/inboxes/ann/token", **bearer(token)).status_code == 429
    assert api.delete("/inboxes/ann", **bearer(token)).status_code == 429
    assert Inbox.objects.filter(username="ann", token_hash=token_hash(token)).exists()
