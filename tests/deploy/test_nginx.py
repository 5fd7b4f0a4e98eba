"""
The deployment as shipped: nginx with deploy/nginx/ephemeral-messages.conf in front
of gunicorn with deploy/gunicorn.conf.py, on loopback ports, smoke-tested through nginx.

Clients connect from different loopback addresses (127.0.0.2, 127.0.0.3, ...), so
nginx sees distinct real clients, as it would on the internet.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import rest_framework

from tests.deploy.conftest import deployed
from tests.hardening.http import Answer, call
from tests.hardening.load import MessagingLoad
from tests.support.nginx import running_nginx
from tests.support.processes import PATIENCE_SECONDS, PROJECT_DIR, ServiceProcess, wait_until

pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]

DEPLOY = PROJECT_DIR / "deploy"
SMOKE_CLIENT = "127.0.0.4"
STATIC_FILE = "rest_framework/css/bootstrap.min.css"
READ_RATE = 20


def logged(path: Path, text: str) -> bool:
    """Whether ``text`` shows up in the log at ``path``; servers write a line just after answering."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while text not in path.read_text():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@dataclass
class Stack:
    url: str
    service: ServiceProcess
    static_root: Path
    access_log: Path

    def call(self, method: str, path: str, *, client: str = SMOKE_CLIENT, **kwargs) -> Answer:
        return call(self.url, method, path, source_address=client, **kwargs)


@pytest.fixture(scope="module")
def stack(nginx: str, tmp_path_factory: pytest.TempPathFactory, django_db_setup, django_db_blocker) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("deploy")
    static_root = tmp / "static"
    env = {
        "STATIC_ROOT": str(static_root),
        "CHAT_TRUSTED_PROXIES": "127.0.0.1",
        "CHAT_THROTTLE_RATE": "2/day",
        "CHAT_READ_THROTTLE_RATE": f"{READ_RATE}/day",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prometheus"),
    }
    with django_db_blocker.unblock():
        service = ServiceProcess(tmp, workers=2, env=env, config=DEPLOY / "gunicorn.conf.py")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=PROJECT_DIR,
        env=service.env,
        check=True,
        capture_output=True,
    )
    service.start()

    prefix = tmp / "nginx"
    try:
        with running_nginx(nginx, prefix, upstream_port=service.port, static_root=static_root) as port:
            yield Stack(f"http://127.0.0.1:{port}", service, static_root, prefix / "access.log")
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    finally:
        service.stop()


def test_the_three_endpoints_through_nginx(stack: Stack) -> None:
    sent = stack.call("POST", "/chat", json_body={"username": "ann", "text": "through nginx", "timeout": 600})
    assert sent.status == 201
    message_id = sent.json()["id"]
    assert sent.headers["location"] == f"/chat/{message_id}"

    read = stack.call("GET", f"/chat/{message_id}")
    assert read.status == 200
    assert read.json()["text"] == "through nginx"
    assert read.json()["expiration_date"].endswith("Z")

    collected = stack.call("GET", "/chats/ann/")
    assert collected.status == 200
    assert collected.json() == [{"id": message_id, "text": "through nginx"}]
    assert collected.headers["cache-control"] == "no-store"
    assert stack.call("GET", "/chats/ann").json() == []


def established_peers(port: int) -> set[int]:
    """The remote ports of the open TCP connections to local ``port`` (from /proc/net/tcp)."""
    peers = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote, state = line.split()[1:4]
        if state == "01" and int(local.split(":")[1], 16) == port:
            peers.add(int(remote.split(":")[1], 16))
    return peers


def test_nginx_keeps_its_connections_to_gunicorn_open(stack: Stack) -> None:
    used = set()
    for _ in range(20):
        assert stack.call("GET", "/health").status == 200
        used |= established_peers(stack.service.port)
    # Without keep-alive each request would open (and close) a connection of its
    # own, and none would be open between requests; nginx runs one worker per core.
    assert 1 <= len(used) <= 2 * (os.cpu_count() or 1)


def test_a_static_file_is_served_by_nginx_from_static_root(stack: Stack) -> None:
    answer = stack.call("GET", f"/static/{STATIC_FILE}")
    assert answer.status == 200
    source = Path(rest_framework.__file__).parent / "static" / STATIC_FILE
    assert answer.body == source.read_bytes() == (stack.static_root / STATIC_FILE).read_bytes()
    assert answer.headers["content-type"] == "text/css"
    # Only the service sets X-Request-ID; nginx answered this one alone.
    assert "x-request-id" not in answer.headers
    assert stack.call("GET", "/static/no/such/file.css").status == 404


def test_an_oversized_body_is_refused_by_nginx(stack: Stack) -> None:
    body = b'{"username": "ann", "text": "' + b"x" * (65 * 1024) + b'"}'
    answer = stack.call("POST", "/chat", body=body, headers={"Content-Type": "application/json"})
    assert answer.status == 413
    assert "larger than the limit" in answer.json()["detail"]
    # Just under the limit is passed on, and the service answers for itself.
    text = "x" * 600
    fits = stack.call("POST", "/chat", json_body={"username": "ann", "text": text})
    assert fits.status == 400
    assert "text" in fits.json()


def test_health_ready_and_metrics_through_nginx(stack: Stack) -> None:
    health = stack.call("GET", "/health")
    assert (health.status, health.json()) == (200, {"status": "ok"})
    ready = stack.call("GET", "/ready")
    assert ready.status == 200
    assert ready.json()["checks"]["database"] == "ok"
    # /metrics is for this host only: refused to an outside client, served to a local one.
    assert stack.call("GET", "/metrics").status == 403
    metrics = stack.call("GET", "/metrics", client="127.0.0.1")
    assert metrics.status == 200
    assert b'chat_http_requests_total{endpoint="health",method="GET",status="200"}' in metrics.body


def test_nginx_request_id_reaches_the_service_and_its_log(stack: Stack) -> None:
    answer = stack.call("GET", "/chat/987654321", headers={"X-Request-ID": "chosen-by-the-client"})
    assert answer.status == 404
    request_id = answer.headers["x-request-id"]
    # nginx replaces whatever the client sent with its own id, and logs the same one.
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert logged(stack.access_log, f"rid={request_id}")
    assert logged(stack.service.output_file, f"rid={request_id}")


def test_the_throttle_counts_the_client_nginx_forwarded(nginx: str, tmp_path: Path) -> None:
    # A deployment of its own: the tests before this one empty the database between
    # them, the deployment id that names the throttle's Redis keys included, and
    # workers that read the id at different times would count in different places.
    with deployed(nginx, tmp_path, env={"CHAT_THROTTLE_RATE": "2/day"}) as (service, site):
        url = f"http://127.0.0.1:{site.port}"
        stack = Stack(url, service, tmp_path, tmp_path / "nginx" / "access.log")
        check_the_throttle_behind_nginx(stack)


def check_the_throttle_behind_nginx(stack: Stack) -> None:
    def send(client: str, forwarded_for: str) -> int:
        headers = {"X-Forwarded-For": forwarded_for}
        return stack.call(
            "POST", "/chat", client=client, json_body={"username": "t", "text": "x"}, headers=headers
        ).status

    # 127.0.0.2 invents a different address each time; it is still counted as itself.
    assert [send("127.0.0.2", f"203.0.113.{n}") for n in range(1, 4)] == [201, 201, 429]
    # Another client behind the same nginx has its own allowance...
    assert [send("127.0.0.3", "203.0.113.1") for _ in range(3)] == [201, 201, 429]
    # ...and claiming to be nginx itself does not help.
    assert send("127.0.0.5", "127.0.0.1") == 201
    limited = stack.call("POST", "/chat", client="127.0.0.2", json_body={"username": "t", "text": "x"})
    assert limited.status == 429
    assert int(limited.headers["retry-after"]) > 0
    # gunicorn's access log shows the forwarded chain nginx built: the real client last.
    assert logged(stack.service.output_file, '"203.0.113.3, 127.0.0.2"')


def test_workers_recycled_under_load_lose_no_request_behind_nginx(
    nginx: str, tmp_path: Path, django_db_blocker
) -> None:
    # nginx keeps connections to gunicorn open; a worker that exits after its
    # max_requests closes the ones it holds. None of that may fail a request.
    env = {"GUNICORN_MAX_REQUESTS": "20", "GUNICORN_MAX_REQUESTS_JITTER": "5", "CHAT_TRUSTED_PROXIES": "127.0.0.1"}
    with django_db_blocker.unblock():
        service = ServiceProcess(tmp_path, workers=2, env=env, config=DEPLOY / "gunicorn.conf.py")
    service.start()
    try:
        with running_nginx(nginx, tmp_path / "nginx", upstream_port=service.port, static_root=tmp_path) as port:
            load = MessagingLoad(f"http://127.0.0.1:{port}", threads=6, prefix="recycled")
            with load.running():
                # About 200 requests: a few seconds here, much longer on a machine busy with other work.
                wait_until(lambda: worker_boots(service) >= 10, what="ten worker boots", timeout=180)
            load.drain()
    finally:
        service.stop()

    assert worker_boots(service) >= 10, "the workers were not recycled"
    assert load.errors == []
    sent = {message_id for client in load.clients for message_id in client.sent}
    collected = [message_id for client in load.clients for message_id in client.collected]
    assert sorted(collected) == sorted(sent)


def worker_boots(service: ServiceProcess) -> int:
    return service.output_file.read_text().count("Booting worker")


def test_head_and_prefetches_through_nginx_collect_nothing(stack: Stack) -> None:
    client = "127.0.0.6"
    sent = stack.call("POST", "/chat", client=client, json_body={"username": "ivy", "text": "wait for me"})
    assert sent.status == 201

    head = stack.call("HEAD", "/chats/ivy", client=client)
    assert head.status == 405
    assert head.headers["allow"] == "GET, OPTIONS"
    for header, value in [("Sec-Purpose", "prefetch;prerender"), ("Purpose", "prefetch"), ("X-Purpose", "preview")]:
        assert stack.call("GET", "/chats/ivy", client=client, headers={header: value}).status == 403
    assert stack.call("OPTIONS", "/chats/ivy", client=client).status == 200

    collected = stack.call("GET", "/chats/ivy", client=client)
    assert [message["text"] for message in collected.json()] == ["wait for me"]


def test_the_read_limit_counts_the_client_nginx_forwarded(nginx: str, tmp_path: Path) -> None:
    # A deployment of its own, for the reason the send throttle's test gives.
    env = {"CHAT_THROTTLE_RATE": "2/day", "CHAT_READ_THROTTLE_RATE": f"{READ_RATE}/day"}
    with deployed(nginx, tmp_path, env=env) as (service, site):
        url = f"http://127.0.0.1:{site.port}"
        check_the_read_limit_behind_nginx(Stack(url, service, tmp_path, tmp_path / "nginx" / "access.log"))


def check_the_read_limit_behind_nginx(stack: Stack) -> None:
    def read(client: str, forwarded_for: str) -> Answer:
        return stack.call("GET", "/chats/nobody", client=client, headers={"X-Forwarded-For": forwarded_for})

    # Each read claims another address; nginx appends the real one, and that one is counted.
    codes = [read("127.0.0.7", f"203.0.113.{n}").status for n in range(READ_RATE + 1)]
    assert codes == [200] * READ_RATE + [429]
    limited = stack.call("GET", "/chat/1", client="127.0.0.7")
    assert limited.status == 429
    assert int(limited.headers["retry-after"]) > 0
    # Reads spent nothing of the send budget, and another client reads on.
    assert stack.call("POST", "/chat", client="127.0.0.7", json_body={"username": "r", "text": "x"}).status == 201
    assert read("127.0.0.8", "203.0.113.1").status == 200


def test_a_claimed_inbox_through_nginx_and_no_token_in_any_log(stack: Stack) -> None:
    owner = "127.0.0.9"
    claimed = stack.call("POST", "/inboxes", client=owner, json_body={"username": "nginx-owner"})
    assert claimed.status == 201
    old = claimed.json()["token"]
    sent = stack.call("POST", "/chat", client="127.0.0.10", json_body={"username": "nginx-owner", "text": "private"})
    message_id = sent.json()["id"]

    assert stack.call("GET", "/chats/nginx-owner").status == 401
    assert stack.call("GET", f"/chat/{message_id}").status == 404
    rotated = stack.call("POST", "/inboxes/nginx-owner/token", client=owner, headers={"Authorization": f"Bearer {old}"})
    assert rotated.status == 200
    new = rotated.json()["token"]
    assert stack.call("GET", "/chats/nginx-owner", headers={"Authorization": f"Bearer {old}"}).status == 401
    read = stack.call("GET", f"/chat/{message_id}", headers={"Authorization": f"Bearer {new}"})
    assert read.json()["text"] == "private"
    collected = stack.call("GET", "/chats/nginx-owner", headers={"Authorization": f"Bearer {new}"})
    assert collected.json() == [{"id": message_id, "text": "private"}]

    # Every request above is in the access logs; neither token is in any log.
    assert logged(stack.access_log, "/inboxes/nginx-owner/token")
    assert logged(stack.service.output_file, "/inboxes/nginx-owner/token")
    logs = [stack.access_log, stack.service.output_file, stack.service.log_file]
    for token in (old, new):
        assert not [log.name for log in logs if token in log.read_text()]
