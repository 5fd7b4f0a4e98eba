"""Real processes for the tests: the service under gunicorn (or granian), a private Redis, a Redis that hangs."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from django.db import connection

from deploy import granian

PROJECT_DIR = Path(__file__).resolve().parents[2]
TEST_SECRET_KEY = "tests-only-" + "k" * 50
# Generous enough for any test that posts from one address; see tests/conftest.py.
TEST_THROTTLE_RATE = "1000000/day"
# How long gunicorn may take to answer its first request: generous, for a machine busy with other work.
STARTUP_SECONDS = 60
# How long a test waits for what a process is about to do (a worker replaced, a
# line logged): generous for the same reason. A wait ends as soon as it is done.
PATIENCE_SECONDS = 60


def wait_until(condition: Callable[[], bool], *, what: str, timeout: float = PATIENCE_SECONDS) -> None:
    """Return once ``condition()`` holds; TimeoutError naming ``what`` if it does not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def worker_pids(master_pid: int) -> list[int]:
    """The process ids of a gunicorn master's current workers (its children)."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text()
    return [int(pid) for pid in children.split()]


def stop_process_group(process: subprocess.Popen, *, timeout: float) -> None:
    """SIGTERM to a process started with ``start_new_session`` and its children; SIGKILL if it outlasts ``timeout``."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def migrate_database(database_url: str, log_file: Path) -> None:
    """``manage.py migrate`` against ``database_url``, in a process of its own."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": TEST_SECRET_KEY,
        "ALLOWED_HOSTS": "localhost",
        "REDIS_URL": "",
        "LOG_FILE": str(log_file),
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=PROJECT_DIR,
        env=env,
        check=True,
        timeout=120,
    )


def wait_for_port(port: int, *, timeout: float = PATIENCE_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def current_database_url() -> str:
    """A DATABASE_URL for the database the tests are using right now (the test database)."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = settings.get("USER") or "postgres"
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"


class ServiceProcess:
    """
    The service under gunicorn with ``workers`` sync workers, on a free loopback port.

    ``config`` is a gunicorn configuration file (such as deploy/gunicorn.conf.py);
    the port and worker count given here override the ones it sets. gunicorn's
    own output (access log included) goes to ``output_file``. ``asynchronous``
    serves the ASGI application with the asynchronous worker, as production
    serves long-polls. ``server="granian"`` serves it with granian and
    deploy/granian.py's settings instead (``config`` is gunicorn's only).
    """

    def __init__(
        self,
        tmp_path: Path,
        *,
        workers: int = 2,
        env: dict[str, str] | None = None,
        config: Path | None = None,
        project_dir: Path = PROJECT_DIR,
        asynchronous: bool = False,
        server: str = "gunicorn",
    ) -> None:
        self.port = free_port()
        self.server = server
        self.project_dir = project_dir
        self.asynchronous = asynchronous
        self.log_file = tmp_path / "chat_server.log"
        self.output_file = tmp_path / f"{server}.out"
        self.config = config
        self.workers = workers
        self.env = {
            **os.environ,
            "DATABASE_URL": current_database_url(),
            "SECRET_KEY": TEST_SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_FILE": str(self.log_file),
            "DATA_DIR": str(tmp_path / "data"),
            "CHAT_THROTTLE_RATE": TEST_THROTTLE_RATE,
            "CHAT_READ_THROTTLE_RATE": TEST_THROTTLE_RATE,
            **(env or {}),
        }
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        if self.server == "granian":
            interface = "asgi" if self.asynchronous else "wsgi"
            target = f"EphemeralMessages.{interface}:application"
            # The same stop deadline as gunicorn's below.
            options = ["--port", str(self.port), "--workers", str(self.workers), "--workers-kill-timeout", "5"]
            return granian.command([*options, "--interface", interface, target])
        gunicorn = Path(sys.executable).with_name("gunicorn")
        config = ["--config", str(self.config)] if self.config else []
        if self.asynchronous:
            application = [
                "EphemeralMessages.asgi:application",
                "--worker-class",
                "EphemeralMessages.workers.ASGIWorker",
            ]
        else:
            application = ["EphemeralMessages.wsgi"]
        return [
            str(gunicorn),
            *config,
            *application,
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.workers),
            "--graceful-timeout",
            "5",
            # gunicorn's control socket has one path per user: the masters of
            # parallel test runs, or several in one test, would take it from each other.
            "--no-control-socket",
        ]

    def start(self) -> ServiceProcess:
        output = self.output_file.open("ab")
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.project_dir,
            env=granian.environment(self.env) if self.server == "granian" else self.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        output.close()
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.server} exited with {self.process.returncode}; see {self.output_file} and {self.log_file}"
                )
            # Any HTTP answer (a redirect to HTTPS included) means it is up.
            probe = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
            try:
                probe.request("GET", "/chat/1")
                probe.getresponse().read()
                return self
            except (OSError, http.client.HTTPException):
                time.sleep(0.1)
            finally:
                probe.close()
        # Not left running for the rest of the session, holding connections to the test database.
        self.stop()
        raise TimeoutError(f"{self.server} did not start answering within {STARTUP_SECONDS}s; see {self.output_file}")

    def worker_pids(self) -> list[int]:
        """The process ids of the server's current workers (the master's children)."""
        assert self.process is not None
        return worker_pids(self.process.pid)

    def kill(self) -> None:
        """SIGKILL to the master and every worker: nothing gets to clean up."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process:
            stop_process_group(self.process, timeout=15)


@contextlib.contextmanager
def running_service(tmp_path: Path, **kwargs) -> Iterator[ServiceProcess]:
    service = ServiceProcess(tmp_path, **kwargs).start()
    try:
        yield service
    finally:
        service.stop()


class RedisServer:
    """A private redis-server on its own port, which a test may stop and start for real."""

    def __init__(self, directory: Path, *, options: tuple[str, ...] = ()) -> None:
        self.binary = shutil.which("redis-server")
        self.directory = directory
        self.port = free_port()
        self.options = options
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


class HungRedis:
    """A socket that accepts connections and never answers: a Redis that hangs."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.listener.accept()
                self.connections.append(conn)

    def close(self) -> None:
        self.listener.close()
        for conn in self.connections:
            conn.close()
