"""The contract holds with requests spread over every app host, not only within one process."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from tests.cluster.conftest import on_host

RACERS = 8


def test_racing_collects_on_every_host_hand_out_each_message_exactly_once(net, lb, addresses):
    hosts = len(net.APPS)
    handed_out_by: Counter[int] = Counter()
    # Racer n collects on host n % hosts. A host can lose every race of a round
    # (the other's racers drain the inbox first), so a round is run again, with
    # new messages, until every host has handed some out.
    for _ in range(3):
        senders = addresses(4)
        sent = set()
        for n in range(160):
            answer = lb("POST", "/chat", source=senders[n % 4], json_body={"username": "race", "text": f"m{n}"})
            assert answer.status == 201, answer.body
            sent.add(answer.json()["id"])
        start = threading.Barrier(RACERS)

        def collect(n: int, start: threading.Barrier = start) -> list[int]:
            host = net.APPS[n % hosts]
            start.wait(timeout=60)
            ids = []
            for _ in range(10):
                answer = on_host(host, "GET", "/chats/race")
                assert answer.status == 200, answer.body
                ids.extend(message["id"] for message in answer.json())
            return ids

        with ThreadPoolExecutor(RACERS) as pool:
            handed_out = list(pool.map(collect, range(RACERS)))

        every = [message_id for ids in handed_out for message_id in ids]
        assert [i for i, count in Counter(every).items() if count > 1] == []
        assert set(every) == sent
        for n, ids in enumerate(handed_out):
            if ids:
                handed_out_by[n % hosts] += len(ids)
        if len(handed_out_by) == hosts:
            break
    assert sorted(handed_out_by) == list(range(hosts)), f"messages handed out per host: {dict(handed_out_by)}"


def test_the_throttle_counts_a_client_once_across_hosts(net, lb, addresses):
    """Each client's count is one Redis key: several clients, so that their keys fall on different masters."""
    limit = int(net.THROTTLE_RATE.split("/")[0])
    for _ in range(3):  # a new hour mid-test starts a new window; try again from fresh addresses
        clients = addresses(3)
        hour = int(time.time()) // 3600
        statuses = [
            Counter(
                lb("POST", "/chat", source=client, json_body={"username": "thr", "text": "x"}).status
                for _ in range(limit + 3)
            )
            for client in clients
        ]
        if int(time.time()) // 3600 == hour:
            break
    assert statuses == [{201: limit, 429: 3}] * len(clients)


def test_a_read_on_one_host_sees_what_another_host_just_did(net, addresses):
    app1, app2 = net.APPS
    for n, client in enumerate(addresses(20)):
        body = {"username": f"fresh{n}", "text": "t", "timeout": 3600}
        sent = on_host(app1, "POST", "/chat", json_body=body, source_address=client)
        assert sent.status == 201
        message_id = sent.json()["id"]

        live = on_host(app2, "GET", f"/chat/{message_id}")
        assert live.status == 200
        assert datetime.fromisoformat(live.json()["expiration_date"]) > datetime.now(UTC)

        collected = on_host(app1, "GET", f"/chats/fresh{n}")
        assert [m["id"] for m in collected.json()] == [message_id]
        # Read twice: the first read may have put the settled message in the hot store.
        for _ in range(2):
            after = on_host(app2, "GET", f"/chat/{message_id}")
            assert after.status == 200
            assert datetime.fromisoformat(after.json()["expiration_date"]) <= datetime.now(UTC)
