"""GET /chat/<id> and GET /chats/<username> are limited per client address at their own rate."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis
from rest_framework.test import APIClient

from tests.support.processes import HungRedis, RedisServer

CLIENT = "203.0.113.20"


def read(api: APIClient, path: str, client: str = CLIENT, **headers: str):
    return api.get(path, REMOTE_ADDR=client, **headers)


def send(api: APIClient, client: str = CLIENT):
    return api.post("/chat", {"username": "ann", "text": "hi"}, format="json", REMOTE_ADDR=client)


@pytest.mark.django_db
def test_reads_over_the_rate_are_429_with_retry_after(
    counter_store: str, api: APIClient, chat_settings: Callable[..., None]
) -> None:
    chat_settings(READ_THROTTLE_RATE="3/min")
    message_id = send(api).json()["id"]

    codes = [read(api, f"/chat/{message_id}").status_code, read(api, "/chats/bob").status_code]
    codes.append(read(api, "/chat/123").status_code)
    refused = read(api, f"/chat/{message_id}")

    assert codes == [200, 200, 404]
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/json"
    assert "throttled" in refused.json()["detail"].lower()
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert read(api, "/chats/ann").status_code == 429
    # The refused collect took nothing: another client still finds the message.
    assert [message["id"] for message in read(api, "/chats/ann", client="203.0.113.21").json()] == [message_id]


@pytest.mark.django_db
def test_reads_and_sends_have_separate_budgets(
    counter_store: str, api: APIClient, chat_settings: Callable[..., None]
) -> None:
    chat_settings(READ_THROTTLE_RATE="2/hour", THROTTLE_RATE="2/hour")
    assert [read(api, "/chats/bob").status_code for _ in range(3)] == [200, 200, 429]
    assert [send(api).status_code for _ in range(3)] == [201, 201, 429]
    assert read(api, "/chats/bob", client="203.0.113.21").status_code == 200


@pytest.mark.django_db
def test_head_options_and_prefetches_do_not_spend_the_budget(
    counter_store: str, api: APIClient, chat_settings: Callable[..., None]
) -> None:
    chat_settings(READ_THROTTLE_RATE="2/hour")
    for _ in range(3):
        assert api.head("/chats/bob", REMOTE_ADDR=CLIENT).status_code == 405
        assert api.options("/chat/1", REMOTE_ADDR=CLIENT).status_code == 200
        assert read(api, "/chats/bob", HTTP_SEC_PURPOSE="prefetch").status_code == 403

    assert [read(api, "/chats/bob").status_code for _ in range(3)] == [200, 200, 429]


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(
    counter_store: str, api: APIClient, chat_settings: Callable[..., None]
) -> None:
    chat_settings(READ_THROTTLE_RATE="1/hour", TRUSTED_PROXIES=["10.0.0.0/8"])
    assert read(api, "/chats/bob", client="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 200
    assert read(api, "/chats/bob", client="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 200
    forged = read(api, "/chats/bob", client="10.0.0.3", HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.1")
    assert forged.status_code == 429


@pytest.mark.django_db
def test_a_client_cannot_dodge_the_read_limit_with_its_own_forwarded_header(
    counter_store: str, api: APIClient, chat_settings: Callable[..., None]
) -> None:
    chat_settings(READ_THROTTLE_RATE="2/hour", TRUSTED_PROXIES=[])
    codes = [read(api, "/chats/bob", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code for n in range(3)]
    assert codes == [200, 200, 429]


@pytest.mark.django_db
def test_reads_fail_open_while_redis_is_down(
    private_redis: RedisServer, api: APIClient, chat_settings: Callable[..., None]
) -> None:
    chat_settings(READ_THROTTLE_RATE="1/hour")
    assert [read(api, "/chats/bob").status_code for _ in range(2)] == [200, 429]

    private_redis.stop()
    assert [read(api, "/chats/bob").status_code for _ in range(3)] == [200, 200, 200]

    private_redis.start()
    time.sleep(1.1)
    assert [read(api, "/chats/bob").status_code for _ in range(2)] == [200, 429]


@pytest.mark.django_db
def test_a_hung_redis_lets_reads_through_quickly(
    hung_redis: HungRedis, api: APIClient, chat_settings: Callable[..., None]
) -> None:
    chat_settings(READ_THROTTLE_RATE="1/hour")
    started = time.monotonic()
    assert [read(api, "/chats/bob").status_code for _ in range(5)] == [200] * 5
    assert time.monotonic() - started < 2.0


@pytest.mark.django_db
def test_a_lease_spends_the_read_budget(counter_store: str, api: APIClient, chat_settings: Callable[..., None]) -> None:
    chat_settings(READ_THROTTLE_RATE="2/hour")
    lease = {"seconds": 30}
    codes = [api.post("/chats/bob/leases", lease, format="json", REMOTE_ADDR=CLIENT).status_code for _ in range(2)]
    assert codes == [200, 200]
    assert read(api, "/chats/bob").status_code == 429


@pytest.mark.django_db
def test_token_guesses_at_a_lease_acknowledgement_spend_the_read_budget(
    counter_store: str, api: APIClient, chat_settings: Callable[..., None]
) -> None:
    # An acknowledgement answers 401 to a wrong token of a claimed inbox and 404
    # (no such lease) to the right one, so it tells a guess from the token as a
    # read does; every such answer must spend the same budget.
    chat_settings(READ_THROTTLE_RATE="2/hour")
    api.post("/inboxes", {"username": "bob"}, format="json", REMOTE_ADDR="203.0.113.30")
    guesses = [
        api.delete("/chats/bob/leases/x", REMOTE_ADDR=CLIENT, HTTP_AUTHORIZATION=f"Bearer {n:043d}").status_code
        for n in range(3)
    ]
    assert guesses == [401, 401, 429]


def _round_trips(redis_client: redis.Redis, request: Callable[[], object]) -> int:
    """Requests the private Redis read from clients while ``request`` ran (a pipeline arrives as one)."""
    before = redis_client.info("stats")["total_reads_processed"]
    request()
    # Less the INFO that read the count.
    return redis_client.info("stats")["total_reads_processed"] - before - 1


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["", "?format=json"], ids=["fast path", "DRF"])
@pytest.mark.parametrize("timeout", [0, 3600], ids=["settled", "live"])
def test_a_read_by_id_counts_and_looks_up_in_one_round_trip(
    private_redis: RedisServer, redis_client: redis.Redis, api: APIClient, query: str, timeout: int
) -> None:
    message_id = api.post("/chat", {"username": "ann", "text": "hi", "timeout": timeout}, format="json").json()["id"]
    # The first read of a settled message caches it, one more round trip.
    assert read(api, f"/chat/{message_id}{query}").status_code == 200

    answers = []
    assert _round_trips(redis_client, lambda: answers.append(read(api, f"/chat/{message_id}{query}"))) == 1
    assert answers[0].status_code == 200
    assert answers[0].json()["text"] == "hi"
    assert _round_trips(redis_client, lambda: answers.append(read(api, f"/chat/{message_id + 1}{query}"))) == 1
    assert answers[1].status_code == 404


@pytest.mark.django_db
def test_a_read_by_id_over_the_rate_is_refused_after_one_round_trip(
    private_redis: RedisServer, redis_client: redis.Redis, api: APIClient, chat_settings: Callable[..., None]
) -> None:
    chat_settings(READ_THROTTLE_RATE="1/hour")
    message_id = send(api).json()["id"]
    assert read(api, f"/chat/{message_id}").status_code == 200

    answers = []
    assert _round_trips(redis_client, lambda: answers.append(read(api, f"/chat/{message_id}"))) == 1
    assert answers[0].status_code == 429
    assert 1 <= int(answers[0]["Retry-After"]) <= 3600
    # Another client's budget is its own.
    assert read(api, f"/chat/{message_id}", client="203.0.113.21").status_code == 200


@pytest.mark.django_db
def test_a_hung_redis_lets_reads_by_id_through_with_one_timeout(
    request: pytest.FixtureRequest, api: APIClient, chat_settings: Callable[..., None]
) -> None:
    message_id = send(api).json()["id"]
    hung_redis = request.getfixturevalue("hung_redis")
    chat_settings(READ_THROTTLE_RATE="1/hour")
    started = time.monotonic()
    answers = [read(api, f"/chat/{message_id}") for _ in range(5)]
    elapsed = time.monotonic() - started

    assert [answer.status_code for answer in answers] == [200] * 5
    assert {answer.json()["text"] for answer in answers} == {"hi"}
    # The throttle's count and the hot store's look-up waited on one connection, together.
    assert len(hung_redis.connections) == 1
    assert elapsed < 2.0
