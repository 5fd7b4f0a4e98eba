"""Metrics in one process: what each request, message and hot-store lookup adds to /metrics."""

from __future__ import annotations

import io
import time

import pytest
from django.core.management import call_command
from django.test import Client
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from restapi.models import Message
from tests.support.processes import RedisServer

pytestmark = pytest.mark.django_db


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def requests(endpoint: str, method: str, status: str) -> float:
    return value("chat_http_requests_total", endpoint=endpoint, method=method, status=status)


@pytest.fixture
def client() -> Client:
    return Client()


def post(client: Client, **body: object):
    return client.post("/chat", body, content_type="application/json")


def test_requests_are_counted_by_route_name_and_status(client: Client) -> None:
    before_created = requests("chat-create", "POST", "201")
    before_invalid = requests("chat-create", "POST", "400")
    before_detail = requests("chat-detail", "GET", "200")
    before_timed = value("chat_http_request_duration_seconds_count", endpoint="chat-detail", method="GET", status="200")

    ids = [post(client, username="ann", text=f"hello {n}").json()["id"] for n in range(3)]
    assert post(client, username="ann", text="").status_code == 400
    for message_id in ids:
        assert client.get(f"/chat/{message_id}/").status_code == 200

    assert requests("chat-create", "POST", "201") - before_created == 3
    assert requests("chat-create", "POST", "400") - before_invalid == 1
    # Different ids, one route: the label is the route, never the raw path.
    assert requests("chat-detail", "GET", "200") - before_detail == 3
    timed = value("chat_http_request_duration_seconds_count", endpoint="chat-detail", method="GET", status="200")
    assert timed - before_timed == 3


def test_a_body_refused_before_routing_is_still_counted_under_its_route(client: Client) -> None:
    before = requests("chat-create", "POST", "413")
    response = client.post("/chat", "x" * (70 * 1024), content_type="application/json")
    assert response.status_code == 413
    assert requests("chat-create", "POST", "413") - before == 1


def test_unknown_paths_share_one_label(client: Client) -> None:
    before = requests("unmatched", "GET", "404")
    for path in ("/nothing", "/wp-login.php", "/chat/abc"):
        assert client.get(path).status_code == 404
    assert requests("unmatched", "GET", "404") - before == 3


def test_messages_created_and_collected_are_counted(client: Client) -> None:
    created = value("chat_messages_created_total")
    collected = value("chat_messages_collected_total")
    for n in range(4):
        post(client, username="bob", text=f"m{n}")
    post(client, username="bob", text="gone at once", timeout=0)
    assert len(client.get("/chats/bob").json()) == 4
    assert client.get("/chats/bob").json() == []
    assert value("chat_messages_created_total") - created == 5
    assert value("chat_messages_collected_total") - collected == 4


def test_hot_store_hits_misses_and_errors(client: Client, private_redis: RedisServer) -> None:
    hits = value("chat_hot_store_lookups_total", result="hit")
    misses = value("chat_hot_store_lookups_total", result="miss")
    errors = value("chat_hot_store_errors_total", operation="get")
    skipped = value("chat_hot_store_skipped_total", operation="get")

    message_id = post(client, username="cy", text="settled", timeout=0).json()["id"]
    client.get(f"/chat/{message_id}")  # settled, not yet cached: a miss, then cached
    client.get(f"/chat/{message_id}")  # a hit
    client.get("/chat/999999999")  # in neither store: a miss
    assert value("chat_hot_store_lookups_total", result="hit") - hits == 1
    assert value("chat_hot_store_lookups_total", result="miss") - misses == 2

    private_redis.stop()
    assert client.get(f"/chat/{message_id}").status_code == 200  # Redis refuses: an error
    assert client.get(f"/chat/{message_id}").status_code == 200  # store suspended: skipped
    assert value("chat_hot_store_errors_total", operation="get") - errors == 1
    assert value("chat_hot_store_skipped_total", operation="get") - skipped == 1


def test_metrics_page_is_prometheus_text(client: Client) -> None:
    post(client, username="dee", text="counted")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    families = {family.name: family for family in text_string_to_metric_families(response.content.decode())}
    for name in (
        "chat_http_requests",
        "chat_http_request_duration_seconds",
        "chat_messages_created",
        "chat_messages_collected",
        "chat_messages_expired_unread",
        "chat_hot_store_lookups",
        "chat_hot_store_errors",
        "chat_throttle_rejections",
    ):
        assert name in families, name
    created = next(s for s in families["chat_messages_created"].samples if s.name == "chat_messages_created_total")
    assert created.value >= 1
    assert client.post("/metrics").status_code == 405


# Not inside one test transaction: PostgreSQL's now() would stand still for the whole test.
@pytest.mark.django_db(transaction=True)
def test_the_purge_counts_messages_that_expired_unread(client: Client, chat_settings) -> None:
    chat_settings(RETENTION_DAYS=0)
    for n in range(3):
        post(client, username="eve", text=f"never read {n}", timeout=0)
    for n in range(2):
        post(client, username="eve", text=f"read {n}", timeout=600)
    assert len(client.get("/chats/eve").json()) == 2
    # Today's slot, which sends are writing to: deleted row by row, so counted.
    before = value("chat_messages_expired_unread_total", count="counted")
    # SQLite's clock counts milliseconds: let the last expiry fall strictly before the purge's cutoff.
    time.sleep(0.01)

    call_command("purge_messages", "--batch-size", "2", stdout=io.StringIO())

    assert not Message.objects.exists()
    assert value("chat_messages_expired_unread_total", count="counted") - before == 3


def test_throttle_rejections_are_counted(client: Client, chat_settings) -> None:
    chat_settings(THROTTLE_RATE="2/hour")
    before = value("chat_throttle_rejections_total")
    statuses = [post(client, username="fay", text="hi").status_code for _ in range(5)]
    assert statuses == [201, 201, 429, 429, 429]
    assert value("chat_throttle_rejections_total") - before == 3
    assert requests("chat-create", "POST", "429") >= 3
