"""
The hot store and claims: it never holds a claimed inbox's message, so a hit
needs no database. A claim holds caching of its inbox off and removes what was
cached, or is not made at all. Redis is a real redis-server, stopped for real.
"""

from __future__ import annotations

from restapi.models import Inbox
from restapi.storage import messages
from restapi.storage.hot import HOLD_OFF_SECONDS, hold_off_key, hot_store, message_key
from tests.support.claims import bearer


def test_a_claimed_inboxs_message_is_never_cached(api, claim, send, redis_client):
    token = claim("ann")
    message_id = send(username="ann", text="secret", timeout=0).json()["id"]

    assert api.get(f"/chat/{message_id}", **bearer(token)).json()["text"] == "secret"

    assert not redis_client.exists(message_key(message_id))


def test_a_claim_removes_what_was_cached_of_its_inbox(api, claim, send, redis_client):
    message_id = send(username="ann", text="early", timeout=0).json()["id"]
    kept_id = send(username="bob", text="other", timeout=0).json()["id"]
    for read in (message_id, kept_id):
        assert api.get(f"/chat/{read}").status_code == 200
    assert redis_client.exists(message_key(message_id))

    claim("ann")

    assert not redis_client.exists(message_key(message_id))
    assert redis_client.exists(message_key(kept_id))
    assert api.get(f"/chat/{message_id}").status_code == 404


def test_a_reader_that_fetched_before_a_claim_cannot_cache_after_it(api, claim, send, redis_client):
    message_id = send(username="ann", text="early", timeout=0).json()["id"]
    # A reader fetched the row while the inbox was open ...
    fetched = messages.fetch_message(message_id)
    assert fetched.claim_hash is None
    # ... the inbox is claimed before it could cache it ...
    claim("ann")
    assert 0 < redis_client.ttl(hold_off_key("ann")) <= HOLD_OFF_SECONDS

    # ... and its late write is refused.
    hot_store().remember_settled(fetched.message)

    assert not redis_client.exists(message_key(message_id))
    assert api.get(f"/chat/{message_id}").status_code == 404


def test_no_claim_is_made_while_redis_cannot_be_told(api, db, send, private_redis):
    send(username="ann", text="early", timeout=0)
    private_redis.stop()

    response = api.post("/inboxes", {"username": "ann"}, format="json")

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert "token" not in response.json()
    assert not Inbox.objects.exists()
