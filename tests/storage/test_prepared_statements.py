"""
On PostgreSQL the requests' statements run prepared, with generic plans: the
ring of partitions is planned once per connection and statement, and pruned
to the partitions of each execution's values when it runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from django.db import connection
from rest_framework.test import APIClient

from restapi.storage import messages

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


def test_the_generic_plan_of_a_collect_reads_only_the_live_window(send: Callable[..., object]) -> None:
    send(username="pruned", text="hello", timeout=60)
    assert [m.text for m in messages.collect_messages(username="pruned", limit=10)] == ["hello"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements WHERE statement LIKE %s", [COLLECT])
        (name,) = cursor.fetchone()
        window = messages.partitions.live_window()
        cursor.execute(
            f"EXPLAIN (ANALYZE, COSTS OFF) EXECUTE {name}(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
            "%s, %s, %s, %s, %s, %s, %s)",
            [*window, "pruned", True, "pruned", "", *window, 10],
        )
        plan = "\n".join(row for (row,) in cursor.fetchall())
    # Planned once for any values; at run time every partition outside the window is skipped.
    assert "Subplans Removed" in plan
    # A scan names its partition, or an index of it (restapi_message_s60_pkey): the slots read.
    scanned = {
        slot
        for line in plan.splitlines()
        if "Scan" in line and "never executed" not in line
        for slot in re.findall(r"restapi_message_s(\d\d)", line)
    }
    assert 0 < len(scanned) <= 6


def test_switched_off_nothing_is_prepared(
    without_prepared_statements: None, api: APIClient, send: Callable[..., object]
) -> None:
    sends, collects = plans(SEND), plans(COLLECT)
    assert send(username="unprepared", text="hello", timeout=60).status_code == 201
    assert [m["text"] for m in api.get("/chats/unprepared").json()] == ["hello"]

    assert (plans(SEND), plans(COLLECT)) == (sends, collects)
