"""
The shipped nginx site with both gunicorns: requests that may wait go to the
asynchronous one, and nginx waits longer than the longest wait.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from restapi.serializers import MAX_WAIT_SECONDS
from tests.deploy.conftest import GUNICORN_CONF
from tests.hardening.http import call
from tests.support.nginx import SNIPPETS, running_site
from tests.support.processes import ServiceProcess, wait_until

pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]


def _seconds(directive: str, text: str) -> int:
    found = re.search(rf"^\s*{directive} (\d+)s;", text, re.MULTILINE)
    assert found is not None, f"no {directive}"
    return int(found.group(1))


def test_nginx_waits_for_a_collect_longer_than_the_longest_wait() -> None:
    service_locations = (SNIPPETS / "ephemeral-messages-service.conf").read_text()
    chats = service_locations[service_locations.index("location ^~ /chats/") :]
    chats = chats[: chats.index("}")]

    assert _seconds("proxy_read_timeout", chats) > MAX_WAIT_SECONDS


def test_waiting_requests_go_to_the_asynchronous_server_and_others_do_not(nginx, tmp_path) -> None:
    (tmp_path / "threaded").mkdir()
    (tmp_path / "asynchronous").mkdir()
    env = {"CHAT_TRUSTED_PROXIES": "127.0.0.1"}
    threaded = ServiceProcess(tmp_path / "threaded", workers=1, env=env, config=GUNICORN_CONF)
    waiting = ServiceProcess(tmp_path / "asynchronous", workers=1, env=env, config=GUNICORN_CONF, asynchronous=True)
    threaded.start()
    waiting.start()
    try:
        with running_site(
            nginx, tmp_path / "nginx", upstream_port=threaded.port, waiting_port=waiting.port, static_root=tmp_path
        ) as site:
            base = f"http://127.0.0.1:{site.port}"
            with ThreadPoolExecutor(max_workers=2) as pool:
                waiter = pool.submit(call, base, "GET", "/chats/ann?wait=30", timeout=60)
                lessee = pool.submit(call, base, "POST", "/chats/bob/leases", json_body={"wait": 30}, timeout=60)
                time.sleep(1)
                sent = [
                    call(base, "POST", "/chat", json_body={"username": name, "text": "hi", "timeout": 600}).json()["id"]
                    for name in ("ann", "bob")
                ]
                assert waiter.result().json() == [{"id": sent[0], "text": "hi"}]
                assert lessee.result().json()["messages"] == [{"id": sent[1], "text": "hi"}]
            assert call(base, "GET", "/chats/carol").json() == []
            access_log = tmp_path / "nginx" / "access.log"
            # nginx writes a request's line just after answering it.
            wait_until(lambda: '"GET /chats/carol HTTP/1.1"' in access_log.read_text(), what="the last line logged")
            log = access_log.read_text().splitlines()
    finally:
        threaded.stop()
        waiting.stop()

    def upstreams(request: str) -> set[str]:
        return {line.rsplit("upstream=", 1)[1] for line in log if f'"{request} HTTP/1.1"' in line}

    assert upstreams("GET /chats/ann?wait=30") == {f"127.0.0.1:{waiting.port}"}
    assert upstreams("POST /chats/bob/leases") == {f"127.0.0.1:{waiting.port}"}
    assert upstreams("GET /chats/carol") == {f"127.0.0.1:{threaded.port}"}
    assert upstreams("POST /chat") == {f"127.0.0.1:{threaded.port}"}
