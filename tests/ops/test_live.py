"""
Health and metrics of the real service under gunicorn, started with deploy/gunicorn.conf.py.

Metrics are checked in prometheus-client's multi-process mode as deployed:
several workers, each writing its own files, summed by whichever worker
answers the scrape, and surviving the death of the workers that counted them.
"""

from __future__ import annotations

import gzip
import http.server
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from tests.hardening.http import call
from tests.support.processes import PATIENCE_SECONDS, PROJECT_DIR, ServiceProcess, running_service, wait_until
from tests.support.proxy import CuttableProxy

pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]

GUNICORN_CONF = PROJECT_DIR / "deploy" / "gunicorn.conf.py"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = call(url, "GET", "/metrics")
    assert answer.status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.body.decode())
        for sample in family.samples
    }


def created_total(url: str) -> float:
    return scrape(url).get(("chat_messages_created_total", ()), 0.0)


def post_messages(url: str, count: int) -> None:
    for n in range(count):
        # A new connection each time, so the workers share the requests.
        assert call(url, "POST", "/chat", json_body={"username": "mp", "text": f"m{n}"}).status == 201


def wait_for_workers(service: ServiceProcess, count: int, replaced: set[int]) -> list[int]:
    pids: list[int] = []

    def replaced_all() -> bool:
        pids[:] = service.worker_pids()
        return len(pids) == count and not replaced & set(pids)

    wait_until(replaced_all, what="gunicorn replacing its workers")
    return pids


@pytest.fixture
def metrics_dir(tmp_path: Path) -> Path:
    return tmp_path / "prometheus"


def post_until_two_workers_counted(url: str, metrics_dir: Path) -> int:
    """Send concurrent batches of posts until at least two workers have counted some; return how many."""
    sent = 0
    with ThreadPoolExecutor(max_workers=6) as pool:
        while sent < 120:
            list(pool.map(lambda n: post_messages(url, 1), range(6)))
            sent += 6
            if len(list(metrics_dir.glob("counter_*.db"))) >= 2:
                return sent
    raise AssertionError("the requests were never spread over the workers")


def test_counts_add_up_across_workers_and_outlive_them(tmp_path: Path, metrics_dir: Path) -> None:
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    with running_service(tmp_path, workers=3, env=env, config=GUNICORN_CONF) as service:
        first_batch = post_until_two_workers_counted(service.url, metrics_dir)
        # Every scrape sees every post, whichever worker answers it.
        assert {created_total(service.url) for _ in range(6)} == {float(first_batch)}

        first_workers = set(service.worker_pids())
        for pid in first_workers:
            os.kill(pid, signal.SIGKILL)
        wait_for_workers(service, 3, first_workers)

        post_messages(service.url, 5)
        total = first_batch + 5
        metrics = scrape(service.url)
        assert metrics[("chat_messages_created_total", ())] == total
        labels = (("endpoint", "chat-create"), ("method", "POST"), ("status", "201"))
        assert metrics[("chat_http_requests_total", labels)] == total
        assert metrics[("chat_http_request_duration_seconds_count", labels)] == total

    # The access log names each request's id, as the service answered it.
    posts = [line for line in service.output_file.read_text().splitlines() if '"POST /chat HTTP/1.1" 201' in line]
    assert len(posts) == total
    assert all(re.search(r" rid=[0-9a-f]{32}$", line) for line in posts), posts[:3]


def test_a_restart_starts_the_counts_afresh(tmp_path: Path, metrics_dir: Path) -> None:
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    with running_service(tmp_path, workers=2, env=env, config=GUNICORN_CONF) as service:
        post_messages(service.url, 4)
        assert created_total(service.url) == 4
    with running_service(tmp_path, workers=2, env=env, config=GUNICORN_CONF) as service:
        assert created_total(service.url) == 0
        post_messages(service.url, 1)
        assert created_total(service.url) == 1


def test_the_purge_job_reports_to_the_service_metrics(tmp_path: Path, metrics_dir: Path) -> None:
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "CHAT_RETENTION_DAYS": "0"}
    with running_service(tmp_path, workers=2, env=env, config=GUNICORN_CONF) as service:
        for n in range(3):
            body = {"username": "purge", "text": f"never read {n}", "timeout": 0}
            assert call(service.url, "POST", "/chat", json_body=body).status == 201
        body = {"username": "purge", "text": "read", "timeout": 600}
        assert call(service.url, "POST", "/chat", json_body=body).status == 201
        assert len(call(service.url, "GET", "/chats/purge").json()) == 1

        # As the retention timer runs it: another process, the same environment.
        subprocess.run(
            [sys.executable, "manage.py", "purge_messages"],
            cwd=PROJECT_DIR,
            env=service.env,
            check=True,
            capture_output=True,
        )
        # Deleted row by row from today's slot, so counted, not estimated.
        assert scrape(service.url)[("chat_messages_expired_unread_total", (("count", "counted"),))] == 3


class _SentryIngest(http.server.BaseHTTPRequestHandler):
    """Stands in for a Sentry server: records every envelope posted to it."""

    envelopes: list[bytes]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.envelopes.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def sentry() -> Iterator[tuple[str, list[bytes]]]:
    envelopes: list[bytes] = []
    handler = type("Handler", (_SentryIngest,), {"envelopes": envelopes})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://publickey@127.0.0.1:{server.server_port}/7", envelopes
    server.shutdown()
    server.server_close()


@pytest.fixture
def database_behind_proxy(tmp_path: Path) -> Iterator[tuple[dict[str, str], callable, callable]]:
    """
    A DATABASE_URL whose database can be cut off for real, and functions to cut and restore it.

    PostgreSQL is reached through a relay that can drop every connection; the
    embedded SQLite file sits in a folder that is moved away and back.
    """
    if connection.vendor == "postgresql":
        settings = connection.settings_dict
        proxy = CuttableProxy(settings.get("HOST") or "127.0.0.1", int(settings.get("PORT") or 5432)).start()
        url = f"postgres://{settings.get('USER') or 'postgres'}@127.0.0.1:{proxy.port}/{settings['NAME']}"
        if settings.get("PASSWORD"):
            url = url.replace("@", f":{settings['PASSWORD']}@", 1)
        yield {"DATABASE_URL": url}, proxy.cut, proxy.restore
        proxy.cut()
        return
    folder, away = tmp_path / "db", tmp_path / "db-away"
    folder.mkdir()
    url = f"sqlite:///{folder / 'messages.sqlite3'}"
    env = {**os.environ, "DATABASE_URL": url, "DATA_DIR": str(tmp_path / "data")}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=PROJECT_DIR, env=env, check=True, capture_output=True
    )
    yield {"DATABASE_URL": url}, lambda: folder.rename(away), lambda: away.rename(folder)
    if away.exists():
        shutil.rmtree(away)


def test_ready_follows_the_database_and_errors_reach_sentry(
    tmp_path: Path, database_behind_proxy, sentry: tuple[str, list[bytes]]
) -> None:
    env, cut, restore = database_behind_proxy
    dsn, envelopes = sentry
    with running_service(tmp_path, workers=1, env={**env, "SENTRY_DSN": dsn}, config=GUNICORN_CONF) as service:
        assert call(service.url, "GET", "/ready").status == 200
        assert call(service.url, "POST", "/chat", json_body={"username": "db", "text": "secret text"}).status == 201

        cut()
        started = time.monotonic()
        ready = call(service.url, "GET", "/ready")
        assert time.monotonic() - started < 10
        assert ready.status == 503
        assert ready.json()["status"] == "unavailable"
        assert ready.json()["checks"]["database"] == "unavailable"
        assert ready.headers["retry-after"] == "5"
        # The process itself is still up.
        assert call(service.url, "GET", "/health").status == 200

        failed = call(service.url, "GET", "/chats/db")
        assert failed.status == 503
        deadline = time.monotonic() + PATIENCE_SECONDS
        while not any(b"database unavailable" in envelope for envelope in envelopes) and time.monotonic() < deadline:
            time.sleep(0.1)
        report = b"".join(envelopes)
        assert b"database unavailable" in report
        assert failed.json()["request_id"].encode() in report
        assert b"secret text" not in report

        restore()
        deadline = time.monotonic() + PATIENCE_SECONDS
        while call(service.url, "GET", "/ready").status != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert call(service.url, "GET", "/ready").json()["checks"]["database"] == "ok"
        assert call(service.url, "GET", "/chats/db").json()[0]["text"] == "secret text"
