"""What a run checks after the load: every answer it recorded agrees with the database and the service."""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from datetime import UTC

import psycopg

from bench.processes import Client, http_get
from bench.report import Result

# Ids read back through the service after each scenario.
SAMPLE = 200


def stored(url: str, ids: list[int]) -> dict[int, tuple]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id, username, expiration_date, collected_at FROM restapi_message WHERE id = ANY(%s)", [ids]
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def read_back(port: int, ids: list[int]) -> Iterator[tuple[int, int, bytes]]:
    """GET /chat/<id> of a random sample of ``ids``, on one connection: (id, status, body) each."""
    client = Client(port)
    try:
        for message_id in random.sample(ids, min(SAMPLE, len(ids))):
            yield message_id, *client.get(f"/chat/{message_id}")
    finally:
        client.close()


def check_created(result: Result, url: str, port: int, created: list[int]) -> None:
    if len(set(created)) != len(created):
        result.checks.append(f"{len(created) - len(set(created))} duplicate ids in 201s")
    missing = len(set(created) - stored(url, created).keys())
    if missing:
        result.checks.append(f"{missing} ids answered 201 but not stored")
    for message_id, status, _ in read_back(port, created):
        if status != 200:
            result.checks.append(f"GET /chat/{message_id} of a 201 id answered {status}")
            break


def check_collected(result: Result, url: str, port: int, collected: list[int]) -> None:
    if len(set(collected)) != len(collected):
        result.checks.append(f"{len(collected) - len(set(collected))} messages handed out twice")
    rows = stored(url, collected)
    not_marked = sum(1 for row in rows.values() if row[2] is None) + len(set(collected) - rows.keys())
    if not_marked:
        result.checks.append(f"{not_marked} collected ids not marked collected")
    for message_id, status, body in read_back(port, collected):
        shown = json.loads(body).get("expiration_date") if status == 200 else None
        expected = rows[message_id][1].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if shown != expected:
            result.checks.append(f"GET /chat/{message_id} after its collect shows {shown}, stored {expected}")
            break


def hot_store_counts(port: int) -> dict[str, float]:
    """The service's hot-store counters from /metrics: hit, miss, error and skipped (summed over operations)."""
    status, body = http_get(port, "/metrics")
    if status != 200:
        sys.exit(f"GET /metrics answered {status}")
    counts: dict[str, float] = {}
    for line in body.decode().splitlines():
        if line.startswith("chat_hot_store_lookups_total{"):
            name = line.split('result="', 1)[1].split('"', 1)[0]
        elif line.startswith("chat_hot_store_errors_total{"):
            name = "error"
        elif line.startswith("chat_hot_store_skipped_total{"):
            name = "skipped"
        else:
            continue
        counts[name] = counts.get(name, 0) + float(line.rsplit(" ", 1)[1])
    return counts
