"""Workers killed or stopped under load: no acknowledged message is lost, none is handed out twice."""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from restapi.models import Message
from tests.hardening.http import finish_slow_posts, start_slow_post
from tests.hardening.load import MessagingLoad, kill_one_worker
from tests.support.processes import running_service, wait_for_port, wait_until, worker_pids

pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]


def _wait_for_workers(master_pid: int, count: int) -> None:
    wait_until(lambda: len(worker_pids(master_pid)) >= count, what="gunicorn replacing its killed worker")


def test_sigkilled_workers_lose_no_acknowledged_message_and_hand_none_out_twice(tmp_path: Path) -> None:
    with running_service(tmp_path, workers=3) as service:
        master = service.process.pid
        load = MessagingLoad(service.url, threads=6, prefix="killed", tolerate_lost=True)
        killed = []
        with load.running():
            for _ in range(3):
                time.sleep(0.6)
                killed.append(kill_one_worker(master))
                _wait_for_workers(master, 3)
            time.sleep(0.5)

        # Collect what is left concurrently, killing a worker once more on the way.
        def drain(_: int) -> None:
            load.drain()

        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(drain, n) for n in range(3)]
            time.sleep(0.05)
            killed.append(kill_one_worker(master))
            for future in futures:
                future.result()
        _wait_for_workers(master, 3)
        load.drain()

    assert load.errors == []
    assert sum(client.lost for client in load.clients) > 0, "no request was cut: the kills missed the load"
    assert len(set(killed)) == len(killed)

    stored = {m.id: m for m in Message.objects.filter(username__startswith="killed")}
    # Every 201 was committed, with the text that was sent.
    for client in load.clients:
        for message_id, text in client.sent.items():
            assert message_id in stored
            assert stored[message_id].username == client.username
            assert stored[message_id].text == text
    collected = load.collected_ids
    assert len(collected) == len(set(collected)), "a message was handed out twice"
    # A collect cut by a kill may have expired messages no one received (at most once),
    # but after the drain nothing acknowledged is still waiting.
    assert not any(stored[i].collected_at is None for i in load.sent_ids)
    assert set(collected) <= set(stored)


def test_sigterm_lets_in_flight_requests_finish(tmp_path: Path) -> None:
    with running_service(tmp_path, workers=3) as service:
        master = service.process.pid
        bodies = [json.dumps({"username": "graceful", "text": f"in flight {n}"}).encode() for n in range(2)]
        # A sync worker takes each of these and waits inside it for the rest of the
        # body; the third worker serves the background load.
        slow = [start_slow_post(service.port, body) for body in bodies]
        time.sleep(0.5)
        load = MessagingLoad(service.url, threads=3, prefix="term", tolerate_lost=True)
        with load.running():
            time.sleep(0.3)
            os.kill(master, signal.SIGTERM)
            time.sleep(0.3)
            # The workers are shutting down; the requests they hold still complete.
            answers = finish_slow_posts(slow, bodies)
        service.process.wait(timeout=15)

    assert [status for status, _ in answers] == [201, 201]
    texts = {Message.objects.get(id=body["id"]).text for _, body in answers}
    assert texts == {"in flight 0", "in flight 1"}
    assert service.process.returncode == 0
    assert load.errors == []
    assert load.sent_ids, "the background load got no answer"
    # Every request of the background load that was answered 201 was stored.
    assert set(Message.objects.filter(id__in=load.sent_ids).values_list("id", flat=True)) == load.sent_ids
    # And the service has stopped listening.
    with pytest.raises(TimeoutError):
        wait_for_port(service.port, timeout=0.5)
