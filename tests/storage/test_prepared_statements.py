"""
On PostgreSQL the requests' statements run prepared, with generic plans: the
ring of partitions is planned once per connection and statement, on the
partitions the statement names by their bounds (the live window, or the
slot of an id), and each execution locks those alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from django.conf import settings
from django.db import connection, transaction
from rest_framework.test import APIClient

from restapi.message_ids import slot_of
from restapi.storage import messages, partitions

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no prepared statements to keep"),
]

COLLECT = "UPDATE restapi_message SET expiration_date%"
SEND = "INSERT INTO restapi_message%"


def plans(statement: str) -> tuple[int, int]:
    """Generic and custom plans made for this connection's prepared statement like ``statement``; (0, 0) if none."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(sum(generic_plans), 0), COALESCE(sum(custom_plans), 0) "
            "FROM pg_prepared_statements WHERE statement LIKE %s",
            [statement],
        )
        generic, custom = cursor.fetchone()
    return int(generic), int(custom)


@pytest.fixture
def without_prepared_statements() -> Iterator[None]:
    options = connection.settings_dict["OPTIONS"]
    saved = options.get("prepared_statements")
    options["prepared_statements"] = False
    yield
    options["prepared_statements"] = saved


def test_sends_and_collects_run_prepared_with_generic_plans(api: APIClient, send: Callable[..., object]) -> None:
    sends, collects = plans(SEND), plans(COLLECT)
    for n in range(3):
        assert send(username="prepared", text=f"number {n}", timeout=60).status_code == 201
        assert [m["text"] for m in api.get("/chats/prepared").json()] == [f"number {n}"]

    # Each execution used the generic plan; none was planned with its values.
    assert plans(SEND) == (sends[0] + 3, sends[1])
    assert plans(COLLECT) == (collects[0] + 3, collects[1])


def partitions_locked() -> set[str]:
    """The ring's partitions this connection holds a lock on, in its open transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE l.pid = pg_backend_pid() AND c.relname ~ '^restapi_message_s[0-9]{2}$'"
        )
        return {name for (name,) in cursor.fetchall()}


def test_a_collect_on_its_generic_plan_locks_only_the_live_window(send: Callable[..., object]) -> None:
    send(username="pruned", text="hello", timeout=60)
    for _ in range(2):
        # The second time on the generic plan made the first time.
        with transaction.atomic():
            assert [m.text for m in messages.collect_messages(username="pruned", limit=10)] in (["hello"], [])
            locked = partitions_locked()
    in_use = partitions.slots_in_use(now=time.time(), retention_days=settings.CHAT["RETENTION_DAYS"])
    assert locked == {partitions.partition_name(slot) for slot in in_use}
    assert plans(COLLECT)[0] >= 2


def test_a_read_by_id_on_its_generic_plan_locks_its_own_partition_only(send: Callable[..., object]) -> None:
    sent = send(username="pruned", text="hello", timeout=60).json()["id"]
    for _ in range(2):
        with transaction.atomic():
            assert messages.fetch_message(sent).message.text == "hello"
            locked = partitions_locked()
    assert locked == {partitions.partition_name(slot_of(sent))}


def test_switched_off_nothing_is_prepared(
    without_prepared_statements: None, api: APIClient, send: Callable[..., object]
) -> None:
    sends, collects = plans(SEND), plans(COLLECT)
    assert send(username="unprepared", text="hello", timeout=60).status_code == 201
    assert [m["text"] for m in api.get("/chats/unprepared").json()] == ["hello"]

    assert (plans(SEND), plans(COLLECT)) == (sends, collects)
