"""
A claim as two hosts see it: two gunicorn masters, each with its own workers,
on one database. A rotated or released token must stop working on both the
moment the change is answered, so no process may hold a copy of a claim.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hardening.http import Answer, call
from tests.support.processes import ServiceProcess, running_service

pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]

WORKERS = 2


@pytest.fixture(scope="module")
def hosts(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    with (
        running_service(tmp_path_factory.mktemp("host-a"), workers=WORKERS) as first,
        running_service(tmp_path_factory.mktemp("host-b"), workers=WORKERS) as second,
    ):
        yield first, second


def _request(host: ServiceProcess, method: str, path: str, token: str | None = None, **kwargs) -> Answer:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return call(host.url, method, path, headers=headers, **kwargs)


def _warm_every_worker(host: ServiceProcess, token: str) -> None:
    """Have each worker accept ``token`` several times, so that any copy of the claim a worker kept is in place."""
    for _ in range(4 * WORKERS):
        assert _request(host, "GET", "/chats/ann", token).status == 200


def test_a_rotation_on_one_host_takes_effect_at_once_on_the_other(hosts):
    first, second = hosts
    old = _request(first, "POST", "/inboxes", json_body={"username": "ann"}).json()["token"]
    _warm_every_worker(first, old)
    message_id = _request(second, "POST", "/chat", json_body={"username": "ann", "text": "hi"}).json()["id"]
    assert _request(first, "GET", f"/chat/{message_id}", old).status == 200

    rotated = _request(second, "POST", "/inboxes/ann/token", old)
    assert rotated.status == 200
    new = rotated.json()["token"]

    # Every worker of the other host refuses the old token from the very next request.
    for _ in range(4 * WORKERS):
        assert _request(first, "GET", "/chats/ann", old).status == 401
        assert _request(first, "GET", f"/chat/{message_id}", old).status == 404
    assert _request(first, "GET", "/chats/ann", new).json() == [{"id": message_id, "text": "hi"}]


def test_a_release_on_one_host_takes_effect_at_once_on_the_other(hosts):
    first, second = hosts
    token = _request(first, "POST", "/inboxes", json_body={"username": "ann"}).json()["token"]
    message_id = _request(first, "POST", "/chat", json_body={"username": "ann", "text": "secret"}).json()["id"]
    _warm_every_worker(first, token)

    assert _request(second, "DELETE", "/inboxes/ann", token).status == 204

    for _ in range(4 * WORKERS):
        assert _request(first, "GET", f"/chat/{message_id}").status == 404
        assert _request(first, "GET", f"/chat/{message_id}", token).status == 404
        assert _request(first, "POST", "/inboxes/ann/token", token).status == 404
    reclaimed = _request(first, "POST", "/inboxes", json_body={"username": "ann"})
    assert reclaimed.status == 201
    assert _request(second, "GET", "/chats/ann", token).status == 401
