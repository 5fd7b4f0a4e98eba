"""
The multi-host cluster of deploy/cluster/cluster.py, built once for these tests and torn down after.

Only root can make network namespaces; elsewhere the tests are skipped (failed
under CHAT_TESTS_REQUIRE_TOOLS=1, as in CI). They run in one pass of `make test`
only (the embedded one): they bring their own PostgreSQL and Redis.
"""

from __future__ import annotations

import itertools
import os
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from deploy.cluster import cluster
from tests.hardening.http import Answer, call
from tests.support.tools import missing

# EMS_CLUSTER_KEEP=1 leaves the cluster running after the tests and reuses a running one,
# for a developer running the tests again and again.
KEEP = os.environ.get("EMS_CLUSTER_KEEP") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/cluster/" in str(item.path):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def net() -> Iterator[Any]:
    """The running cluster (the ``deploy.cluster.cluster`` module, for its hosts and fault helpers)."""
    if os.geteuid() != 0:
        missing("root (to make network namespaces)", install="run the cluster tests as root")
    if shutil.which("ip") is None:
        missing("ip", install="apt-get install -y iproute2")
    if KEEP and cluster.namespaces():
        yield cluster
        return
    try:
        cluster.up()
    except BaseException:
        cluster.down(keep_logs=True)
        raise
    try:
        yield cluster
    finally:
        if not KEEP:
            # The logs stay (cluster.LOGS_KEPT) for whoever reads a failure.
            cluster.down(keep_logs=True)


@pytest.fixture(scope="session")
def _client_numbers() -> Iterator[int]:
    return itertools.count(1)


@pytest.fixture
def addresses(_client_numbers: Iterator[int]) -> Callable[[int], list[str]]:
    """Fresh client addresses, never used by another test, so no throttle window is shared."""

    def take(count: int) -> list[str]:
        return [cluster.client_address(next(_client_numbers)) for _ in range(count)]

    return take


@pytest.fixture
def lb(net: Any) -> Callable[..., Answer]:
    """A request through the load balancer from one of the client addresses."""

    def request(method: str, path: str, *, source: str, **kwargs: Any) -> Answer:
        return call(net.lb_url(), method, path, source_address=source, **kwargs)

    return request


def on_host(host: Any, method: str, path: str, **kwargs: Any) -> Answer:
    """A request straight to one app host's gunicorn, bypassing the load balancer."""
    return call(f"http://{host.address}:{cluster.APP_PORT}", method, path, **kwargs)


def wait_for(what: str, check: Callable[[], bool], *, timeout: float) -> float:
    """Poll ``check`` until true; the seconds it took."""
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > timeout:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.1)
    return time.monotonic() - began


def stored_ids(net: Any, ids: list[int]) -> set[int]:
    """Which of ``ids`` the current primary holds."""
    if not ids:
        return set()
    primary = net.primary()
    assert primary is not None, "no PostgreSQL primary"
    rows = net.psql(
        primary, f"SELECT id FROM restapi_message WHERE id IN ({','.join(map(str, ids))})", database=net.DATABASE
    )
    return {int(row) for row in rows.split()}
