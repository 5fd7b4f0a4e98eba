"""
One abusive address against the shipped nginx site: connections that never
finish their headers (slow-loris) and floods of requests. Another address must
still be served. Clients come from distinct loopback addresses, as from the internet.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.deploy.conftest import deployed
from tests.hardening.http import call
from tests.support.nginx import RunningNginx

pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]

ATTACKER = "127.0.0.2"
BYSTANDER = "127.0.0.3"
# More connections than nginx could hold with Debian's stock worker_connections
# (768 per worker) or the 1024 of the tests' former nginx.conf, on two workers.
SLOW_LORIS_CONNECTIONS = 4500
# A file under /static/: nginx answers it without gunicorn, so a flood of it
# outruns the rate limit however busy the machine (gunicorn may serve fewer than
# 50 requests a second on a loaded one). The limit holds for every location alike.
STATIC_FILE = "flood.txt"


@pytest.fixture(scope="module")
def site(
    nginx: str, tmp_path_factory: pytest.TempPathFactory, django_db_setup, django_db_blocker
) -> Iterator[RunningNginx]:
    static_root = tmp_path_factory.mktemp("abuse")
    (static_root / STATIC_FILE).write_text("served by nginx itself\n")
    with django_db_blocker.unblock(), deployed(nginx, static_root) as (_, running):
        yield running


def test_a_slow_loris_from_one_address_does_not_stop_another_being_served(site: RunningNginx) -> None:
    held = []
    try:
        for n in range(SLOW_LORIS_CONNECTIONS):
            try:
                s = socket.create_connection(("127.0.0.1", site.port), timeout=5, source_address=(ATTACKER, 0))
            except OSError:
                # nginx may drop some once it is busy; what matters is the bystander below.
                continue
            # A request line and one header, and never the blank line that ends the headers.
            s.sendall(f"GET /chat/{n} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
            held.append(s)
        assert len(held) > SLOW_LORIS_CONNECTIONS // 2

        answer = call(f"http://127.0.0.1:{site.port}", "GET", "/health", source_address=BYSTANDER, timeout=5)
        assert (answer.status, answer.json()) == (200, {"status": "ok"})
    finally:
        for s in held:
            with contextlib.suppress(OSError):
                s.close()


def test_a_flood_from_one_address_is_refused_while_another_is_served(site: RunningNginx) -> None:
    url = f"http://127.0.0.1:{site.port}"

    def static_file(_: int) -> tuple[int, str]:
        answer = call(url, "GET", f"/static/{STATIC_FILE}", source_address=ATTACKER)
        return answer.status, answer.headers.get("retry-after", "")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(static_file, range(400)))
    statuses = [status for status, _ in answers]
    # A burst of about 100 goes through at once, then 50 a second; the rest is refused.
    assert 100 <= statuses.count(200) < 400
    assert set(statuses) == {200, 429}
    assert {retry for status, retry in answers if status == 429} == {"1"}
    assert call(url, "GET", "/health", source_address=BYSTANDER).status == 200
    # This host's own probes and monitoring are never limited.
    assert all(call(url, "GET", "/health").status == 200 for _ in range(150))


def test_the_documented_worker_connections_are_what_the_tests_run(tmp_path: Path) -> None:
    from tests.support.nginx import WORKER_CONNECTIONS, WORKER_RLIMIT_NOFILE
    from tests.support.processes import PROJECT_DIR

    guide = (PROJECT_DIR / "docs" / "DEPLOYMENT.md").read_text()
    assert f"worker_connections {WORKER_CONNECTIONS};" in guide
    assert f"worker_rlimit_nofile {WORKER_RLIMIT_NOFILE};" in guide
