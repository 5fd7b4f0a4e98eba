"""
An upgrade under load behind nginx, as docs/DEPLOYMENT.md documents it: new code
on disk, then deploy/systemd/gunicorn-upgrade (what `systemctl reload` runs).

The change is in a module gunicorn's master imports before it forks (a
middleware, with the application preloaded as shipped): a reload that only
replaced the workers would keep serving the old one. The tree is a copy, so the
test can change it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.deploy.conftest import GUNICORN_CONF
from tests.hardening.http import call
from tests.hardening.load import MessagingLoad
from tests.support.nginx import running_site
from tests.support.processes import PROJECT_DIR, ServiceProcess, wait_until
from tests.support.release import copy_of_the_tree, release_on_disk

pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]

UPGRADE = PROJECT_DIR / "deploy" / "systemd" / "gunicorn-upgrade"


# Both gunicorns of a host upgrade the same way: the threaded one
# (ephemeral-messages.service) and the asynchronous one that serves waiting
# requests (ephemeral-messages-waiting.service).
@pytest.mark.parametrize("worker_class", ["gthread", "asgi"])
def test_an_upgrade_under_load_fails_no_request_and_serves_only_new_code(
    nginx: str, tmp_path: Path, worker_class: str
) -> None:
    tree = copy_of_the_tree(tmp_path / "app")
    pidfile = tmp_path / "gunicorn.pid"
    # Stands in for systemd's notification socket, to hear which process says it is the main one.
    notifications = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notifications.bind(str(tmp_path / "notify"))
    env = {
        "CHAT_TRUSTED_PROXIES": "127.0.0.1",
        "GUNICORN_CMD_ARGS": f"--pid {pidfile}",
        "NOTIFY_SOCKET": str(tmp_path / "notify"),
    }
    service = ServiceProcess(
        tmp_path,
        workers=2,
        env=env,
        config=tree / "deploy" / GUNICORN_CONF.name,
        project_dir=tree,
        asynchronous=worker_class == "asgi",
    )
    service.start()
    old_master = service.process.pid
    try:
        with running_site(nginx, tmp_path / "nginx", upstream_port=service.port, static_root=tmp_path) as site:
            url = f"http://127.0.0.1:{site.port}"
            assert "x-code-release" not in call(url, "GET", "/health").headers
            load = MessagingLoad(url, threads=6, prefix="upgrade")
            with load.running():
                time.sleep(2)
                release_on_disk(tree)
                upgraded = subprocess.run(
                    [str(UPGRADE), str(old_master), str(pidfile)], capture_output=True, text=True, timeout=120
                )
                assert upgraded.returncode == 0, upgraded.stderr
                # The old master exits once its workers have finished what they hold.
                service.process.wait(timeout=30)
                time.sleep(2)
            load.drain()
            answers = [call(url, "GET", "/health").headers.get("x-code-release") for _ in range(40)]
            # Read before the cleanup below: a master that stops removes its pidfile.
            wait_until(
                lambda: pidfile.exists() and pidfile.read_text().strip() not in {"", str(old_master)},
                what="the new master taking over the pidfile",
            )
            new_master = int(pidfile.read_text())
    finally:
        # The new master and its workers are in the old master's process group.
        os.killpg(old_master, signal.SIGTERM)
        time.sleep(1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(old_master, signal.SIGKILL)

    # A failure names what nginx and gunicorn saw, since a failed request here is rare and its cause not known.
    assert load.errors == [], (site.error_log.read_text(), service.output_file.read_text()[-4000:])
    assert len(load.latencies) > 100
    sent = {message_id for client in load.clients for message_id in client.sent}
    assert sorted(load.collected_ids) == sorted(sent)
    # Every worker now runs the new middleware.
    assert answers == ["new"] * 40
    assert new_master != old_master
    notifications.setblocking(False)
    heard = []
    with contextlib.suppress(BlockingIOError):
        while True:
            heard.append(notifications.recv(4096).decode())
    notifications.close()
    assert f"MAINPID={new_master}" in heard
