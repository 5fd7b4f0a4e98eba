"""
The service as it runs in production: several gunicorn workers, real HTTP,
processes killed for real.
"""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.processes import ServiceProcess, running_service

pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]


def _post(base_url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{base_url}/chat",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def _get(base_url: str, path: str) -> tuple[int, object]:
    with urllib.request.urlopen(f"{base_url}{path}", timeout=10) as response:
        return response.status, json.loads(response.read())


def test_concurrent_collects_across_workers_hand_out_each_message_once(tmp_path):
    with running_service(tmp_path, workers=4) as service:
        ids = set()
        with ThreadPoolExecutor(max_workers=8) as pool:
            for status, body in pool.map(
                lambda n: _post(service.url, {"username": f"user{n % 5}", "text": f"m{n}"}), range(200)
            ):
                assert status == 201
                ids.add(body["id"])

            # 40 collectors, 8 per inbox, racing over HTTP through 4 workers.
            collected = [
                message["id"]
                for status, messages in pool.map(lambda n: _get(service.url, f"/chats/user{n % 5}"), range(40))
                for message in messages
            ]

    duplicates = [message_id for message_id, count in Counter(collected).items() if count > 1]
    assert duplicates == []
    assert set(collected) == ids


def test_a_hard_killed_server_loses_no_acknowledged_message(tmp_path):
    service = ServiceProcess(tmp_path, workers=2).start()
    try:
        acknowledged = {}
        with ThreadPoolExecutor(max_workers=4) as pool:
            for status, body in pool.map(
                lambda n: _post(service.url, {"username": "ann", "text": f"durable {n}", "timeout": 3600}), range(50)
            ):
                assert status == 201
                acknowledged[body["id"]] = body
    finally:
        service.kill()

    with running_service(tmp_path, workers=1) as fresh:
        texts = {}
        for message_id in acknowledged:
            status, body = _get(fresh.url, f"/chat/{message_id}")
            assert status == 200
            texts[message_id] = body["text"]
        _, inbox = _get(fresh.url, "/chats/ann")

    assert sorted(texts.values()) == sorted(f"durable {n}" for n in range(50))
    assert {message["id"] for message in inbox} == set(acknowledged)


def test_a_test_server_opens_no_control_socket_that_parallel_runs_would_share(tmp_path):
    # gunicorn's default control socket is one path per user ($XDG_RUNTIME_DIR/gunicorn.ctl).
    runtime_dir = tmp_path / "run"
    runtime_dir.mkdir()
    with running_service(tmp_path, workers=1, env={"XDG_RUNTIME_DIR": str(runtime_dir)}) as service:
        assert _get(service.url, "/chats/ann") == (200, [])
    # gunicorn logs the socket when it opens it, and removes the file when it stops.
    assert "Control socket" not in service.output_file.read_text()
