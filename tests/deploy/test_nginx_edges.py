"""
The shipped nginx site at its edges: nginx's own answers, the hosts it serves,
the admin it keeps shut, as a client on the internet meets them.

Clients come from different loopback addresses (127.0.0.2, 127.0.0.3, ...) so
nginx sees distinct remote clients; 127.0.0.1 is this host itself.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.conftest import deployed
from tests.hardening.http import Answer, call
from tests.support.nginx import RunningNginx, running_site
from tests.support.processes import ServiceProcess, free_port

pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]

REMOTE = "127.0.0.2"
# An address as a load balancer's probe sends it in Host: none of the site's names.
PROBE_HOST = "10.1.2.3"
ADMIN_OFF = "location ^~ /admin { return 404; }"
ADMIN_ON = "include /etc/nginx/snippets/ephemeral-messages-admin.conf;"


@dataclass
class Site:
    service: ServiceProcess
    nginx: RunningNginx

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.nginx.port}"

    def call(self, method: str, path: str, *, client: str = REMOTE, **kwargs) -> Answer:
        return call(self.url, method, path, source_address=client, **kwargs)

    def raw(self, request: bytes, *, client: str = REMOTE) -> Answer:
        """Send bytes no HTTP library would, and read the answer until nginx closes."""
        with socket.create_connection(("127.0.0.1", self.nginx.port), timeout=10, source_address=(client, 0)) as s:
            s.sendall(request)
            received = b""
            while chunk := s.recv(65536):
                received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in header_lines)}
        return Answer(int(status_line.split()[1]), headers, body)


@pytest.fixture(scope="module")
def site(nginx: str, tmp_path_factory: pytest.TempPathFactory, django_db_setup, django_db_blocker) -> Iterator[Site]:
    with django_db_blocker.unblock(), deployed(nginx, tmp_path_factory.mktemp("edges")) as (service, running):
        yield Site(service, running)


def assert_nginx_json_error(answer: Answer, status: int) -> None:
    assert answer.status == status
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["detail"]
    # No version anywhere: not in the Server header, not in the page.
    assert answer.headers.get("server") == "nginx"
    assert b"nginx" not in answer.body


def served_by_gunicorn(service: ServiceProcess, marker: str) -> bool:
    time.sleep(0.3)
    return marker in service.output_file.read_text()


def test_errors_nginx_answers_itself_are_json_without_a_version(site: Site) -> None:
    assert_nginx_json_error(site.raw(b"NOT HTTP AT ALL\r\n\r\n"), 400)
    assert_nginx_json_error(site.raw(b"GET /chat/1 HTTP/1.1\r\nHost: bad host\r\n\r\n"), 400)
    assert_nginx_json_error(site.call("GET", "/metrics"), 403)
    assert_nginx_json_error(site.call("GET", "/static/no/such/file.css"), 404)
    # The static root is the deployment's folder (see tests/deploy/conftest.py).
    (site.nginx.prefix.parent / "page.css").write_text("body {}")
    assert_nginx_json_error(site.call("POST", "/static/page.css"), 405)
    body = b'{"username": "ann", "text": "' + b"x" * (65 * 1024) + b'"}'
    too_large = site.call("POST", "/chat", body=body, headers={"Content-Type": "application/json"})
    assert_nginx_json_error(too_large, 413)
    assert "65536 bytes" in too_large.json()["detail"]
    assert_nginx_json_error(site.call("GET", "/chat/" + "1" * 20000), 414)
    # The service's own errors pass through as the service wrote them.
    own = site.call("GET", "/chat/987654321")
    assert own.status == 404
    assert "x-request-id" in own.headers


def test_requests_at_the_parsing_limits_get_json_never_an_html_page(site: Site) -> None:
    # A request line of 4 to 8 KiB, or more than 100 headers, used to pass nginx
    # and get gunicorn's own HTML 414 or 431.
    assert_nginx_json_error(site.call("GET", "/chat/1?p=" + "a" * 5000), 414)
    assert_nginx_json_error(site.call("GET", "/chats/ann?wait=1&p=" + "a" * 5000), 414)
    # A header over the limit: nginx's 494, sent as 400.
    assert_nginx_json_error(site.call("GET", "/chats/ann", headers={"X-Long": "a" * 9000}), 400)
    assert_nginx_json_error(site.call("GET", "/chats/ann", headers={"X-Long": "a" * 5000}), 400)
    # Many small headers within nginx's limits are the service's to answer.
    many = site.call("GET", "/chat/987654321", headers={f"X-Header-{n}": "1" for n in range(300)})
    assert many.status == 404
    assert many.json()["detail"] == "No message with id 987654321."
    # Just under the limit, the service answers.
    near = site.call("GET", "/chat/987654321?p=" + "a" * 3900)
    assert (near.status, near.headers["content-type"]) == (404, "application/json")


def test_a_gunicorn_that_does_not_answer_is_a_json_502(nginx: str, tmp_path: Path) -> None:
    with running_site(nginx, tmp_path / "nginx", upstream_port=free_port(), static_root=tmp_path) as running:
        answer = call(f"http://127.0.0.1:{running.port}", "GET", "/chat/1", source_address=REMOTE)
    assert_nginx_json_error(answer, 502)


def test_a_gunicorn_that_answers_too_late_is_a_json_504(nginx: str, tmp_path: Path) -> None:
    # A port that takes connections and never answers, and a location that waits 1 s for it
    # (the site's own wait is 35 s).
    waits_a_second = (
        ADMIN_OFF + "\n    location = /slow { proxy_read_timeout 1s; proxy_pass http://ephemeral_messages; }"
    )
    with (
        socket.create_server(("127.0.0.1", 0)) as silent,
        running_site(
            nginx,
            tmp_path / "nginx",
            upstream_port=silent.getsockname()[1],
            static_root=tmp_path,
            site_edits={ADMIN_OFF: waits_a_second},
        ) as running,
    ):
        answer = call(f"http://127.0.0.1:{running.port}", "GET", "/slow", source_address=REMOTE)
    assert_nginx_json_error(answer, 504)
    assert "may or may not have taken effect" in answer.json()["detail"]


def test_unknown_hosts_are_answered_by_nginx_and_never_reach_the_service(site: Site) -> None:
    for host in ("evil.example", "chat.example.org.evil.example", PROBE_HOST):
        answer = site.call("GET", "/chat/1?unknown-host-marker", headers={"Host": host})
        assert_nginx_json_error(answer, 400)
        assert "host" in answer.json()["detail"]
    assert not served_by_gunicorn(site.service, "unknown-host-marker")
    assert "Invalid HTTP_HOST" not in site.service.log_file.read_text()


def test_probes_by_address_are_served(site: Site) -> None:
    health = site.call("GET", "/health", headers={"Host": PROBE_HOST})
    assert (health.status, health.json()) == (200, {"status": "ok"})
    ready = site.call("GET", "/ready", headers={"Host": PROBE_HOST})
    assert (ready.status, ready.json()["checks"]["database"]) == (200, "ok")
    # Metrics only for this host itself.
    assert_nginx_json_error(site.call("GET", "/metrics", headers={"Host": PROBE_HOST}), 403)
    metrics = site.call("GET", "/metrics", client="127.0.0.1", headers={"Host": PROBE_HOST})
    assert metrics.status == 200
    assert b"chat_http_requests_total" in metrics.body


def test_the_admin_is_not_served_by_the_shipped_site(site: Site) -> None:
    for path in ("/admin/", "/admin/login/?admin-marker", "/admin"):
        assert_nginx_json_error(site.call("GET", path), 404)
    assert not served_by_gunicorn(site.service, "admin-marker")


def test_an_admin_turned_on_has_its_login_rate_limited(nginx: str, tmp_path: Path) -> None:
    with deployed(nginx, tmp_path, site_edits={ADMIN_OFF: ADMIN_ON}) as (_, running):
        url = f"http://127.0.0.1:{running.port}"
        assert call(url, "GET", "/admin/login/", source_address=REMOTE).status == 200
        attempts = [
            call(url, "POST", "/admin/login/", body=b"username=a&password=b", source_address=REMOTE) for _ in range(12)
        ]
        statuses = [answer.status for answer in attempts]
        # A burst of 5 beyond the first, then refused before Django sees a password.
        assert 429 in statuses
        assert statuses.index(429) <= 7
        assert_nginx_json_error(attempts[-1], 429)
        assert attempts[-1].headers["retry-after"] == "1"
        # Another address still reaches the log-in page.
        assert call(url, "GET", "/admin/login/", source_address="127.0.0.3").status == 200


def test_nginx_error_texts_are_valid_json_for_every_status() -> None:
    from tests.support.nginx import SNIPPETS

    text = (SNIPPETS / "ephemeral-messages-http.conf").read_text()
    block = text[text.index("map $status $ephemeral_messages_error_detail") :].split("}", 1)[0]
    details = [line.split(None, 1)[1].rstrip(";") for line in block.splitlines()[1:] if line.strip()]
    assert len(details) >= 12
    for detail in details:
        assert json.loads('{"detail": ' + detail + "}")["detail"]
