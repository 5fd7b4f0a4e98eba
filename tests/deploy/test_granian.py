"""
granian (deploy/granian.py), the documented alternative to gunicorn for the threaded
endpoints, held to what the deployment guarantees under gunicorn: what it keeps,
and the limits docs/DEPLOYMENT.md ("granian, the alternative HTTP server") names,
each shown here.
"""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from restapi.models import Message
from tests.deploy.conftest import deployed
from tests.hardening.http import call, finish_slow_posts, start_slow_post
from tests.hardening.load import CONNECTION_LOST, MessagingLoad
from tests.support.nginx import running_site
from tests.support.processes import ServiceProcess, running_service, wait_for_port, wait_until
from tests.support.release import copy_of_the_tree, release_on_disk

pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]


def test_behind_nginx_the_access_line_carries_the_request_id_nginx_logged(nginx: str, tmp_path: Path) -> None:
    with deployed(nginx, tmp_path, server="granian") as (service, site):
        url = f"http://127.0.0.1:{site.port}"
        sent = call(url, "POST", "/chat", json_body={"username": "granian", "text": "hello"})
        assert sent.status == 201
        request_id = sent.headers["x-request-id"]
        assert call(url, "GET", "/chats/granian").json() == [{"id": sent.json()["id"], "text": "hello"}]
        wait_until(lambda: f"rid={request_id}" in service.output_file.read_text(), what="granian's access line")
        wait_until(lambda: f"rid={request_id}" in (site.prefix / "access.log").read_text(), what="nginx's line")
    (line,) = [line for line in service.output_file.read_text().splitlines() if f"rid={request_id}" in line]
    assert '"POST /chat HTTP/1.1" 201' in line


def test_more_than_a_hundred_headers_get_an_empty_431_from_granian_through_nginx(nginx: str, tmp_path: Path) -> None:
    # nginx lets many small headers through; gunicorn's limits are raised so that the
    # service answers them (test_nginx_edges.py). granian's HTTP/1 parser stops at 100
    # headers and has no setting for it, and its answer is not JSON.
    with deployed(nginx, tmp_path, server="granian") as (_, site):
        url = f"http://127.0.0.1:{site.port}"
        many = call(url, "GET", "/chat/987654321", headers={f"X-Header-{n}": "1" for n in range(300)})
        fewer = call(url, "GET", "/chat/987654321", headers={f"X-Header-{n}": "1" for n in range(90)})
    assert (many.status, many.body) == (431, b"")
    assert (fewer.status, fewer.json()["detail"]) == (404, "No message with id 987654321.")


def test_sigterm_lets_in_flight_requests_finish(tmp_path: Path) -> None:
    with running_service(tmp_path, workers=2, server="granian") as service:
        bodies = [json.dumps({"username": "graceful", "text": f"in flight {n}"}).encode() for n in range(2)]
        slow = [start_slow_post(service.port, body) for body in bodies]
        time.sleep(0.5)
        os.kill(service.process.pid, signal.SIGTERM)
        time.sleep(0.5)
        answers = finish_slow_posts(slow, bodies)
        service.process.wait(timeout=15)

    assert [status for status, _ in answers] == [201, 201]
    assert {Message.objects.get(id=body["id"]).text for _, body in answers} == {"in flight 0", "in flight 1"}
    assert service.process.returncode == 0
    with pytest.raises(TimeoutError):
        wait_for_port(service.port, timeout=0.5)


def test_a_killed_worker_is_replaced(tmp_path: Path) -> None:
    with running_service(tmp_path, workers=2, server="granian") as service:
        before = service.worker_pids()
        os.kill(before[0], signal.SIGKILL)
        wait_until(lambda: len(set(service.worker_pids()) - set(before)) == 1, what="granian replacing its worker")
        wait_until(lambda: _serves(service.url) and len(service.worker_pids()) == 2, what="two workers serving")
        assert service.process.poll() is None


def _serves(url: str) -> bool:
    # While granian replaces a worker, a connection can be refused for a moment.
    try:
        return call(url, "GET", "/health").status == 200
    except ConnectionRefusedError:
        return False


def test_a_worker_that_dies_again_within_seconds_of_its_replacement_stops_the_whole_server(tmp_path: Path) -> None:
    # granian reads two deaths of one worker within 5.5 s as a crash loop and exits,
    # taking the other workers with it; gunicorn replaces a worker however often it dies.
    with running_service(tmp_path, workers=2, server="granian") as service:
        first = service.worker_pids()
        os.kill(first[0], signal.SIGKILL)
        wait_until(lambda: len(set(service.worker_pids()) - set(first)) == 1, what="granian replacing its worker")
        (replacement,) = set(service.worker_pids()) - set(first)
        os.kill(replacement, signal.SIGKILL)
        service.process.wait(timeout=30)
    assert service.process.returncode != 0
    assert "crash loop" in service.output_file.read_text()


def test_stopping_cuts_off_its_waiters_at_the_kill_timeout(tmp_path: Path) -> None:
    # gunicorn's workers answer their waiters the moment they stop (EphemeralMessages/workers.py);
    # granian has no hook for that, so a waiter holds its thread until the kill timeout (5 s here).
    with running_service(tmp_path, workers=1, server="granian") as service, ThreadPoolExecutor(2) as pool:
        waiting = [pool.submit(_outcome, service.url, f"/chats/w{n}?wait=30") for n in range(2)]
        time.sleep(1)
        started = time.monotonic()
        os.kill(service.process.pid, signal.SIGTERM)
        outcomes = [future.result() for future in waiting]
        stopped_after = time.monotonic() - started
        service.process.wait(timeout=30)
    assert outcomes == ["cut off"] * 2
    assert 4 < stopped_after < 25


def _outcome(base_url: str, path: str) -> str:
    try:
        answer = call(base_url, "GET", path, timeout=60)
    except CONNECTION_LOST:
        return "cut off"
    return f"{answer.status} {answer.body!r}"


def test_sighup_under_load_behind_nginx_serves_the_new_code_and_may_fail_a_request(nginx: str, tmp_path: Path) -> None:
    # granian's reload (and its time-based recycling, the same respawn) starts a new
    # worker, waits respawn_interval, then stops the old one, which closes the
    # keep-alive connections it holds: a request nginx sends on one just then fails,
    # and nginx retries only the idempotent ones. gunicorn's USR2 upgrade, run the same
    # way (test_upgrade.py), fails none.
    tree = copy_of_the_tree(tmp_path / "app")
    service = ServiceProcess(
        tmp_path, workers=2, env={"CHAT_TRUSTED_PROXIES": "127.0.0.1"}, project_dir=tree, server="granian"
    )
    service.start()
    try:
        with running_site(nginx, tmp_path / "nginx", upstream_port=service.port, static_root=tmp_path) as site:
            url = f"http://127.0.0.1:{site.port}"
            assert "x-code-release" not in call(url, "GET", "/health").headers
            load = MessagingLoad(url, threads=6, prefix="reload")
            with load.running():
                time.sleep(2)
                release_on_disk(tree)
                os.kill(service.process.pid, signal.SIGHUP)
                wait_until(
                    lambda: service.output_file.read_text().count("Stopped old worker") == 2,
                    what="granian replacing both workers",
                )
                time.sleep(2)
            load.drain()
            answers = [call(url, "GET", "/health").headers.get("x-code-release") for _ in range(40)]
    finally:
        service.stop()
    assert answers == ["new"] * 40
    assert len(load.latencies) > 100
    # What fails is a POST on a connection the old worker closed: nginx's JSON 502, never a 5xx of the service.
    assert all(error.startswith("POST: 502 ") for error in load.errors), load.errors
    print(f"failed requests during the reload: {len(load.errors)} of {len(load.latencies) + len(load.errors)}")
