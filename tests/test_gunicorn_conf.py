"""deploy/gunicorn.conf.py: the recommended production values, overridable from the environment."""

from __future__ import annotations

import re
import runpy
from typing import Any

import pytest

from tests.support.processes import PROJECT_DIR

CONF = PROJECT_DIR / "deploy" / "gunicorn.conf.py"


def load(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    for name in ("GUNICORN_WORKERS", "GUNICORN_THREADS", "GUNICORN_WORKER_CLASS", "GUNICORN_MAX_REQUESTS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONF))


def test_defaults_are_threaded_workers_that_are_recycled_with_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load(monkeypatch)
    assert conf["worker_class"] == "EphemeralMessages.workers.ThreadWorker"
    assert conf["wsgi_app"] == "EphemeralMessages.wsgi"
    assert conf["workers"] >= 1
    assert conf["threads"] > 1
    assert conf["max_requests"] > 0
    assert 0 < conf["max_requests_jitter"] < conf["max_requests"]
    assert conf["preload_app"] is True


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load(monkeypatch, GUNICORN_WORKERS="5", GUNICORN_THREADS="1", GUNICORN_WORKER_CLASS="sync")
    assert (conf["workers"], conf["threads"], conf["worker_class"]) == (5, 1, "sync")
    assert load(monkeypatch, GUNICORN_MAX_REQUESTS="0")["max_requests"] == 0


def test_the_asynchronous_server_serves_the_asgi_application_without_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load(monkeypatch, GUNICORN_WORKER_CLASS="asgi")
    assert conf["worker_class"] == "EphemeralMessages.workers.ASGIWorker"
    assert conf["wsgi_app"] == "EphemeralMessages.asgi:application"
    assert conf["threads"] == 1
    # Each waiting client holds a connection: thousands per worker.
    assert conf["worker_connections"] >= 10_000


def test_no_control_socket_shared_by_the_masters_of_one_user(monkeypatch: pytest.MonkeyPatch) -> None:
    # gunicorn's default path is one per user, taken by whichever master starts last.
    assert load(monkeypatch)["control_socket_disable"] is True


def test_a_bad_number_stops_the_start_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit, match="GUNICORN_WORKERS"):
        load(monkeypatch, GUNICORN_WORKERS="two")


def test_nginx_closes_idle_upstream_connections_before_gunicorn_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # Otherwise nginx could send a request on a connection gunicorn is just closing.
    site = (PROJECT_DIR / "deploy" / "nginx" / "snippets" / "ephemeral-messages-http.conf").read_text()
    nginx_idle = re.search(r"^\s*keepalive_timeout (\d+)s;", site, re.MULTILINE)
    assert nginx_idle is not None, "the upstream block sets no keepalive_timeout"
    assert int(nginx_idle.group(1)) < load(monkeypatch)["keepalive"]


@pytest.mark.parametrize(("name", "value"), [("GUNICORN_PRELOAD", "maybe"), ("PROMETHEUS_MULTIPROC_DIR", "relative")])
def test_a_bad_value_stops_the_start_naming_it(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    with pytest.raises(SystemExit, match=f"^{name}:"):
        load(monkeypatch, **{name: value})
