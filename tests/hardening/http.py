"""A small HTTP client for tests against a running service: any status is an answer, not an exception."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    base_url: str,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 20.0,
    source_address: str | None = None,
) -> Answer:
    """Send one request; ``source_address`` picks the local address it comes from (such as 127.0.0.2)."""
    parts = urlsplit(base_url)
    headers = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body).encode()
        headers.setdefault("Content-Type", "application/json")
    source = (source_address, 0) if source_address else None
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout, source_address=source)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def start_slow_post(port: int, body: bytes) -> http.client.HTTPConnection:
    """A POST whose headers and first byte are sent; the rest of the body comes later."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    connection.putrequest("POST", "/chat")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body[:1])
    return connection


def finish_slow_posts(connections: list[http.client.HTTPConnection], bodies: list[bytes]) -> list[tuple[int, Any]]:
    """Send the rest of each slow POST's body; the status and JSON answer of each, in order."""
    answers = []
    for connection, body in zip(connections, bodies, strict=True):
        connection.send(body[1:])
        response = connection.getresponse()
        answers.append((response.status, json.loads(response.read())))
        connection.close()
    return answers
