"""
The TLS site (deploy/nginx/ephemeral-messages-tls.conf) with the service at TLS=1,
on a certificate the test makes with openssl: HTTPS served over TLS 1.2 and 1.3
and refused over 1.0 and 1.1, plain HTTP to the site's name redirected, probes
by address still answered over plain HTTP.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.conftest import deployed
from tests.hardening.http import Answer, call
from tests.support.nginx import TLS_SITE, RunningNginx
from tests.support.processes import free_port

pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]

NAME = "localhost"
PROBE_HOST = "10.1.2.3"


@dataclass
class TlsSite:
    nginx: RunningNginx
    certificate: Path

    def context(self, **versions: ssl.TLSVersion) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.certificate))
        for attribute, version in versions.items():
            setattr(context, attribute, version)
        return context

    def https(self, method: str, path: str, *, body: dict | None = None, server_name: str = NAME) -> Answer:
        raw = socket.create_connection(("127.0.0.1", self.nginx.https_port), timeout=10)
        connection = http.client.HTTPSConnection(NAME, self.nginx.https_port, context=self.context(), timeout=10)
        connection.sock = self.context().wrap_socket(raw, server_hostname=server_name)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if body is not None else {}
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def http(self, path: str, *, host: str, client: str = "127.0.0.2") -> Answer:
        return call(f"http://127.0.0.1:{self.nginx.port}", "GET", path, headers={"Host": host}, source_address=client)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is not installed (apt-get install -y openssl)", pytrace=False)
    certificate, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={NAME}",
         "-addext", f"subjectAltName=DNS:{NAME}", "-keyout", str(key), "-out", str(certificate)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return certificate, key


@pytest.fixture(scope="module")
def site(nginx: str, tmp_path_factory: pytest.TempPathFactory, django_db_setup, django_db_blocker) -> Iterator[TlsSite]:
    tmp = tmp_path_factory.mktemp("tls")
    certificate = self_signed_certificate(tmp)
    with (
        django_db_blocker.unblock(),
        deployed(nginx, tmp, env={"TLS": "1"}, site=TLS_SITE, certificate=certificate) as (_, running),
    ):
        yield TlsSite(running, certificate[0])


def test_the_service_over_https(site: TlsSite) -> None:
    sent = site.https("POST", "/chat", body={"username": "tls", "text": "secret", "timeout": 600})
    assert sent.status == 201
    assert sent.headers["strict-transport-security"].startswith("max-age=")
    read = site.https("GET", sent.headers["location"])
    assert (read.status, read.json()["text"]) == (200, "secret")
    assert site.https("GET", "/chats/tls").json() == [{"id": sent.json()["id"], "text": "secret"}]


def test_only_modern_protocols_are_offered(site: TlsSite) -> None:
    tls12 = site.context(minimum_version=ssl.TLSVersion.TLSv1_2, maximum_version=ssl.TLSVersion.TLSv1_2)
    for context, version in ((tls12, "TLSv1.2"), (site.context(), "TLSv1.3")):
        with (
            socket.create_connection(("127.0.0.1", site.nginx.https_port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=NAME) as tls,
        ):
            assert tls.version() == version


def legacy_context(site: TlsSite, version: ssl.TLSVersion) -> ssl.SSLContext:
    """
    A client that offers only ``version``: OpenSSL 3 disables TLS 1.0/1.1 below
    security level 0 on the client too, so the client lowers its level to be able
    to ask; whatever refuses it then is the server.
    """
    context = site.context(minimum_version=version, maximum_version=version)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


# Python warns that the old versions are deprecated, which is what the test is about.
@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=["TLS 1.0", "TLS 1.1"])
def test_old_protocols_are_refused_by_the_site(site: TlsSite, version: ssl.TLSVersion) -> None:
    # The client can speak the old protocol: a server that allows it completes the handshake.
    assert legacy_server_handshake(site, legacy_context(site, version)) == version.name.replace("_", ".")
    with (
        socket.create_connection(("127.0.0.1", site.nginx.https_port), timeout=10) as raw,
        pytest.raises(ssl.SSLError) as refused,
    ):
        legacy_context(site, version).wrap_socket(raw, server_hostname=NAME)
    # The server's protocol_version alert, not a failure of the client's own.
    assert "TLSV1_ALERT_PROTOCOL_VERSION" in str(refused.value)


def legacy_server_handshake(site: TlsSite, context: ssl.SSLContext) -> str:
    """The protocol ``context`` agrees on with an ``openssl s_server`` that allows every version."""
    key = site.certificate.parent / "key.pem"
    # A free port can be taken by another process before s_server binds it; it then
    # exits at once, and a new port is tried.
    for _ in range(3):
        port = free_port()
        server = subprocess.Popen(
            ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(site.certificate),
             "-key", str(key), "-cipher", "DEFAULT:@SECLEVEL=0", "-quiet"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            if not _listens(server, port):
                continue
            with (
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                context.wrap_socket(raw, server_hostname=NAME) as tls,
            ):
                return tls.version() or ""
        finally:
            server.kill()
            server.wait()
    raise AssertionError("openssl s_server did not start on any of three ports")


def _listens(server: subprocess.Popen, port: int, timeout: float = 30) -> bool:
    """Whether ``server`` listens on ``port`` before it exits or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
        time.sleep(0.05)
    return False


def test_a_name_the_site_does_not_serve_gets_no_handshake(site: TlsSite) -> None:
    with pytest.raises(ssl.SSLError):
        site.https("GET", "/health", server_name="other.example")


@pytest.mark.parametrize(
    "request_head",
    [
        b"GET /chats/tls HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n",
        b"GET http://other.example/chats/tls HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        b"GET /chats/tls HTTP/1.0\r\n\r\n",
    ],
    ids=["Host header", "absolute URI", "no Host"],
)
def test_another_host_asked_for_after_the_handshake_gets_a_json_refusal(site: TlsSite, request_head: bytes) -> None:
    with (
        socket.create_connection(("127.0.0.1", site.nginx.https_port), timeout=10) as raw,
        site.context().wrap_socket(raw, server_hostname=NAME) as tls,
    ):
        tls.sendall(request_head)
        received = b""
        while chunk := tls.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0].split()[1] == b"421"
    assert b"content-type: application/json" in head.lower()
    assert json.loads(body)["detail"] == "This server does not serve the host name in the request."


def test_plain_http_to_the_site_is_redirected_to_https(site: TlsSite) -> None:
    answer = site.http("/chat/1?x=1", host=NAME)
    assert answer.status == 301
    assert answer.headers["location"] == f"https://{NAME}/chat/1?x=1"


def test_probes_by_address_work_over_plain_http(site: TlsSite) -> None:
    health = site.http("/health", host=PROBE_HOST)
    assert (health.status, health.json()) == (200, {"status": "ok"})
    ready = site.http("/ready", host=PROBE_HOST)
    assert (ready.status, ready.json()["checks"]["database"]) == (200, "ok")
    metrics = site.http("/metrics", host=PROBE_HOST, client="127.0.0.1")
    assert metrics.status == 200
    assert b"chat_http_requests_total" in metrics.body
    assert site.http("/metrics", host=PROBE_HOST).status == 403
