"""
Long-poll and leases as production runs them: the asynchronous gunicorn
worker, two masters sharing one database (and Redis, when configured), real
HTTP clients that wait, race, disconnect and are killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.processes import RedisServer, ServiceProcess

pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]

# Far longer than anything here should take: a waiter answered before it was
# woken by a send, not by its time running out.
LONG_WAIT = 30


def _request(
    base_url: str,
    method: str,
    path: str,
    body: dict | None = None,
    timeout: float = 60,
    headers: dict[str, str] | None = None,
) -> tuple[int, object]:
    request = urllib.request.Request(
        f"{base_url}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={**({"Content-Type": "application/json"} if body is not None else {}), **(headers or {})},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _send(base_url: str, username: str, text: str, timeout: int = 600) -> int:
    status, body = _request(base_url, "POST", "/chat", {"username": username, "text": text, "timeout": timeout})
    assert status == 201
    return body["id"]


@contextlib.contextmanager
def _two_masters(tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    services = []
    for name in ("host-a", "host-b"):
        (tmp_path / name).mkdir()
        services.append(ServiceProcess(tmp_path / name, workers=2, asynchronous=True))
    try:
        for service in services:
            service.start()
        yield services
    finally:
        for service in services:
            service.stop()


@pytest.fixture(scope="module")
def two_masters(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServiceProcess]]:
    """Two asynchronous gunicorn masters, as two hosts would run them, shared by the tests that leave them running."""
    with _two_masters(tmp_path_factory.mktemp("hosts")) as services:
        yield services


@pytest.fixture
def own_two_masters(tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    """Two masters for a test that kills or stops them."""
    with _two_masters(tmp_path) as services:
        yield services


@pytest.fixture
def service(two_masters: list[ServiceProcess]) -> ServiceProcess:
    return two_masters[0]


def test_a_waiter_on_one_host_is_woken_by_a_send_on_another(two_masters):
    waiter_host, sending_host = two_masters
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = time.monotonic()
        waiting = pool.submit(_request, waiter_host.url, "GET", f"/chats/ann?wait={LONG_WAIT}")
        time.sleep(1)
        message_id = _send(sending_host.url, "ann", "wake up")
        status, body = waiting.result()
        waited = time.monotonic() - started

    assert (status, body) == (200, [{"id": message_id, "text": "wake up"}])
    assert waited < LONG_WAIT / 2


def test_a_waiter_whose_time_is_up_gets_an_empty_inbox(service):
    assert _request(service.url, "GET", "/chats/ann?wait=1") == (200, [])


def test_a_waiter_with_mail_waiting_is_answered_at_once(service):
    message_id = _send(service.url, "ann", "already here")

    assert _request(service.url, "GET", f"/chats/ann?wait={LONG_WAIT}", timeout=LONG_WAIT / 2) == (
        200,
        [{"id": message_id, "text": "already here"}],
    )


def test_waiters_lessees_and_collectors_on_two_hosts_get_each_message_exactly_once(two_masters):
    messages = 60
    handed_out: list[int] = []
    failures: list[object] = []
    lock = threading.Lock()
    stop = threading.Event()

    def waiter(n: int) -> None:
        base = two_masters[n % 2].url
        while not stop.is_set():
            _, body = _request(base, "GET", "/chats/race?wait=2")
            with lock:
                handed_out.extend(message["id"] for message in body)

    def lessee(n: int) -> None:
        base = two_masters[n % 2].url
        while not stop.is_set():
            status, body = _request(base, "POST", "/chats/race/leases", {"seconds": 60, "wait": 2})
            if status == 201:
                with lock:
                    handed_out.extend(message["id"] for message in body["messages"])
                acknowledged = _request(base, "DELETE", f"/chats/race/leases/{body['lease']}")
                if acknowledged[0] != 204:
                    failures.append(acknowledged)

    def collector(n: int) -> None:
        base = two_masters[n % 2].url
        while not stop.is_set():
            _, body = _request(base, "GET", "/chats/race")
            with lock:
                handed_out.extend(message["id"] for message in body)
            time.sleep(0.05)

    def recording_failures(client: Callable[[int], None], n: int) -> None:
        try:
            client(n)
        except Exception as exc:
            failures.append(repr(exc))

    kinds = [waiter] * 6 + [lessee] * 6 + [collector] * 2
    clients = [threading.Thread(target=recording_failures, args=(kind, n)) for n, kind in enumerate(kinds)]
    for client in clients:
        client.start()
    try:
        time.sleep(1)
        with ThreadPoolExecutor(max_workers=4) as pool:
            sent = set(pool.map(lambda n: _send(two_masters[n % 2].url, "race", f"m{n}"), range(messages)))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                if len(handed_out) >= messages:
                    break
            time.sleep(0.1)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=30)

    assert failures == []
    assert [message_id for message_id, count in Counter(handed_out).items() if count > 1] == []
    assert set(handed_out) == sent


def test_requests_the_view_refuses_are_refused_before_they_wait(service):
    status, claimed = _request(service.url, "POST", "/inboxes", {"username": "kept"})
    assert status == 201
    longest = 60
    started = time.monotonic()

    answers = [
        _request(service.url, "GET", f"/chats/kept?wait={longest}")[0],
        _request(service.url, "GET", f"/chats/kept?wait={longest}", headers={"Authorization": "Bearer wrong"})[0],
        _request(service.url, "POST", "/chats/kept/leases", {"wait": longest})[0],
        _request(service.url, "GET", f"/chats/open?wait={longest}", headers={"Sec-Purpose": "prefetch"})[0],
    ]

    assert answers == [401, 401, 401, 403]
    # Each would have waited a minute had it waited before being refused.
    assert time.monotonic() - started < longest / 2
    token = {"Authorization": f"Bearer {claimed['token']}"}
    assert _request(service.url, "GET", "/chats/kept?wait=1", headers=token) == (200, [])


def test_a_waiter_whose_client_disconnects_collects_nothing(service):
    with socket.create_connection(("127.0.0.1", service.port)) as client:
        client.sendall(f"GET /chats/ann?wait={LONG_WAIT} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        time.sleep(1)
    # The client is gone; a message arrives for the inbox it was waiting on.
    message_id = _send(service.url, "ann", "for the next collector")
    time.sleep(2)

    assert _request(service.url, "GET", "/chats/ann") == (200, [{"id": message_id, "text": "for the next collector"}])


def test_a_waiter_is_answered_when_a_lease_on_its_inbox_ends_unacknowledged(service):
    message_id = _send(service.url, "ann", "returned")
    status, _ = _request(service.url, "POST", "/chats/ann/leases", {"seconds": 2})
    assert status == 201
    started = time.monotonic()

    # No send announces the lease's end: the waiter looks again when it ends.
    answer = _request(service.url, "GET", f"/chats/ann?wait={LONG_WAIT}")

    assert answer == (200, [{"id": message_id, "text": "returned"}])
    assert time.monotonic() - started < LONG_WAIT / 2


_HOLDER = """
import json, sys, time, urllib.request
request = urllib.request.Request(sys.argv[1], data=json.dumps({"seconds": 2}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
with urllib.request.urlopen(request) as response:
    print(json.loads(response.read())["lease"], flush=True)
time.sleep(600)
"""


def test_a_lease_whose_holder_is_killed_returns_its_messages_when_it_ends(own_two_masters):
    first, second = own_two_masters
    message_id = _send(first.url, "ann", "not acknowledged")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, f"{first.url}/chats/ann/leases"], stdout=subprocess.PIPE, text=True
    )
    try:
        lease = holder.stdout.readline().strip()
        assert lease
        assert _request(second.url, "GET", "/chats/ann") == (200, [])
    finally:
        holder.kill()
        holder.wait(timeout=10)
    # The host that gave the lease out dies too: the lease lives in the database alone.
    first.kill()
    time.sleep(2.5)

    assert _request(second.url, "GET", "/chats/ann") == (200, [{"id": message_id, "text": "not acknowledged"}])
    assert _request(second.url, "DELETE", f"/chats/ann/leases/{lease}")[0] == 409


def test_stopping_the_server_answers_its_waiters_instead_of_cutting_them_off(tmp_path):
    service = ServiceProcess(tmp_path, workers=1, asynchronous=True).start()
    with ThreadPoolExecutor(max_workers=3) as pool:
        waiting = [pool.submit(_request, service.url, "GET", f"/chats/w{n}?wait={LONG_WAIT}") for n in range(3)]
        time.sleep(1)
        started = time.monotonic()
        os.kill(service.process.pid, signal.SIGTERM)
        answers = [future.result() for future in waiting]

    service.process.wait(timeout=LONG_WAIT)
    assert answers == [(200, [])] * 3
    assert time.monotonic() - started < LONG_WAIT / 2


def test_waiters_fall_back_to_polling_the_database_while_redis_is_down(tmp_path):
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    service = ServiceProcess(tmp_path, workers=1, asynchronous=True, env={"REDIS_URL": redis_server.url})
    try:
        service.start()
        with ThreadPoolExecutor(max_workers=2) as pool:
            started = time.monotonic()
            waiting = [pool.submit(_request, service.url, "GET", f"/chats/ann{n}?wait={LONG_WAIT}") for n in range(2)]
            time.sleep(1)
            redis_server.stop()
            ids = [_send(service.url, f"ann{n}", "while redis is down") for n in range(2)]
            answers = [future.result() for future in waiting]
        assert answers == [(200, [{"id": ids[n], "text": "while redis is down"}]) for n in range(2)]
        assert time.monotonic() - started < LONG_WAIT / 2
    finally:
        service.stop()
        redis_server.stop()
