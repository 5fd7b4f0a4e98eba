"""The processes a benchmark run drives: gunicorn or granian (behind nginx or not), wrk, and a plain HTTP client."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from deploy import granian
from tests.support.nginx import running_nginx
from tests.support.processes import free_port, stop_process_group, worker_pids

if TYPE_CHECKING:
    from bench.report import Result

ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPTS = ROOT / "bench" / "wrk"
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
BIN = Path(sys.executable).parent
SERVERS = ("gunicorn", "granian")


class Server:
    """gunicorn or granian with the production configuration, on a free loopback port."""

    def __init__(self, app: str, env: dict[str, str], log_dir: Path, name: str, kind: str = "gunicorn") -> None:
        self.port = free_port()
        # Where the load goes: the server itself, or the nginx in front of it.
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        self.env = granian.environment(env) if kind == "granian" else env
        self.kind = kind
        self.log = log_dir / f"{name}.{kind}.log"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        """``app`` is named as gunicorn takes it: a module (its ``application``) or a factory call."""
        if self.kind == "gunicorn":
            return [str(BIN / "gunicorn"), "-c", str(GUNICORN_CONF), "--bind", f"127.0.0.1:{self.port}", self.app]
        # deploy/granian.py's settings; GRANIAN_* variables override them.
        factory = self.app.endswith("()")
        target = self.app.removesuffix("()") if factory else f"{self.app}:application"
        return granian.command(["--port", str(self.port), *(["--factory"] if factory else []), target])

    def start(self) -> Server:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"{self.kind} exited with {self.process.returncode}; see {self.log}")
            try:
                http_get(self.port, "/")
                return self
            except OSError:
                time.sleep(0.2)
        sys.exit(f"{self.kind} did not answer within 30 s; see {self.log}")

    def workers(self) -> list[int]:
        return sorted(worker_pids(self.process.pid))

    def cpu_seconds(self) -> float:
        """CPU time the workers have used so far: a cost per request that other load on the machine barely moves."""
        total = 0
        for pid in self.workers():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process:
            stop_process_group(self.process, timeout=30)


@contextmanager
def serving(
    app: str, env: dict[str, str], log_dir: Path, name: str, nginx: str | None, kind: str = "gunicorn"
) -> Iterator[Server]:
    """gunicorn or granian (``kind``) serving ``app``, behind the shipped nginx site unless ``nginx`` is None."""
    server = Server(app, env, log_dir, name, kind).start()
    try:
        if nginx is None:
            yield server
            return
        with running_nginx(nginx, log_dir / f"{name}.nginx", upstream_port=server.port, static_root=log_dir) as port:
            server.url = f"http://127.0.0.1:{port}"
            yield server
    finally:
        server.stop()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def http_get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Client:
    """One keep-alive connection, for warming the hot store and reading samples back."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def get(self, path: str) -> tuple[int, bytes]:
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.conn.close()


def ensure_installed(package: str, find: Callable[[], str | None]) -> str:
    """The path of a Debian package's program, installing the package with apt-get when run as root."""
    found = find()
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit(f"{package} is not installed: apt-get install -y {package}")
    print(f"installing {package} with apt-get", flush=True)
    subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=300", "update", "-qq"], check=False)
    subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-qq", package], check=True)
    return find() or sys.exit(f"{package} is installed but its program is still not found")


class Load:
    def __init__(self, wrk: str, connections: int, work_dir: Path) -> None:
        self.wrk = wrk
        self.connections = connections
        self.work_dir = work_dir
        self.runs = 0

    def run(self, scenario: str, url: str, seconds: float, env: dict[str, str] | None = None) -> tuple[dict, Path]:
        """Run wrk with ``bench/wrk/<scenario>.lua``; return its summary and the prefix of its id files."""
        self.runs += 1
        prefix = self.work_dir / f"run{self.runs}-{scenario}"
        script = prefix.with_suffix(".lua")
        script.write_text((WRK_SCRIPTS / "common.lua").read_text() + (WRK_SCRIPTS / f"{scenario}.lua").read_text())
        completed = subprocess.run(
            [self.wrk, "-t1", f"-c{self.connections}", f"-d{int(seconds)}s", "-s", str(script), url],
            env={**os.environ, "BENCH_OUT": str(prefix), **(env or {})},
            capture_output=True,
            text=True,
            check=True,
        )
        for line in completed.stdout.splitlines():
            if line.startswith("BENCH_RESULT "):
                return json.loads(line.removeprefix("BENCH_RESULT ")), prefix
        sys.exit(f"wrk printed no result:\n{completed.stdout}\n{completed.stderr}")

    def measure(self, result: Result, scenario: str, server: Server, seconds: float, env: dict | None = None) -> Path:
        cpu_before = server.cpu_seconds()
        summary, prefix = self.run(scenario, server.url, seconds, env)
        result.cpu_seconds = server.cpu_seconds() - cpu_before
        result.requests = summary["requests"]
        result.seconds = summary["duration_us"] / 1e6
        result.p50_ms = summary["p50_us"] / 1000
        result.p99_ms = summary["p99_us"] / 1000
        result.errors = sum(summary[kind] for kind in ("connect", "read", "write", "timeout", "status"))
        return prefix


def recorded(prefix: Path, kind: str) -> list[int]:
    path = Path(f"{prefix}.{kind}")
    if not path.exists():
        return []
    return [int(line) for line in path.read_text().split()]
