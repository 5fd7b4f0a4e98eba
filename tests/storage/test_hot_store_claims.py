"""
The hot store and claims: it never holds a claimed inbox's message, so a hit
needs no database. A claim holds caching of its inbox off and removes what was
cached, or is not made at all. Redis is a real redis-server, stopped for real.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from datetime import UTC, datetime

from restapi.models import Inbox
from restapi.storage import StoredMessage, messages
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


class RedisThatStopsAfter:
    """
    A relay to a real redis-server that passes every command until the first one
    naming ``marker`` and nothing the client sends after it: Redis, for this
    client, stops answering right after that command, which it did run.
    """

    def __init__(self, upstream_port: int, marker: bytes) -> None:
        self.marker = marker
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.listener.getsockname()[1]}/0"
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                server = socket.create_connection(("127.0.0.1", self.upstream_port))
                self.sockets += [client, server]
                threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
                threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        cut = False
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                if not cut:
                    target.sendall(chunk)
                cut = cut or (from_client and self.marker in chunk)

    def close(self) -> None:
        for each in self.sockets:
            each.close()


def test_a_redis_that_stops_answering_mid_cache_write_leaves_no_entry_for_a_held_off_inbox(
    db, private_redis, redis_client, chat_settings
):
    # A reader fetched ann's message while the inbox was open; the claim has held
    # caching off since; Redis stops answering this reader right after its write.
    redis_client.set(hold_off_key("ann"), 1, ex=HOLD_OFF_SECONDS)
    settled = StoredMessage(4242, "ann", "early", datetime.now(UTC))
    relay = RedisThatStopsAfter(private_redis.port, message_key(4242).encode())
    passing = RedisThatStopsAfter(private_redis.port, message_key(4343).encode())
    chat_settings(REDIS_URL=relay.url)
    try:
        hot_store().remember_settled(settled)
        # The relay does pass the write: without a hold-off the entry is made.
        other = StoredMessage(4343, "bob", "open", datetime.now(UTC))
        chat_settings(REDIS_URL=passing.url)
        hot_store().remember_settled(other)
    finally:
        relay.close()
        passing.close()

    assert not redis_client.exists(message_key(4242))
    assert redis_client.exists(message_key(4343))
