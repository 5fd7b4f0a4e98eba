"""
The benchmark: the service under gunicorn on PostgreSQL + Redis, against a
bare Django view served the same way, loaded with wrk at 64 connections.

    make bench                           # or: .venv/bin/python -m bench.run
    .venv/bin/python -m bench.run --soak 300

It starts both servers as production runs them: gunicorn with
deploy/gunicorn.conf.py (GUNICORN_* variables override it) behind nginx with
deploy/nginx/ephemeral-messages.conf (--direct loads gunicorn itself instead).
It seeds the data each scenario needs, loads
POST /chat, GET /chat/<id> (from the hot store), GET /chats/<username> (one
live message per inbox) and a 50/25/25 mix, first with 10^4 messages in the
table and then with 10^7 (kept in a database of its own, seeded once and
reused), checks the answers afterwards (no id handed out twice, every 201 id
stored and readable, no stale read after a collect), and prints one table.
Numbers are only comparable within one run: the ratio column divides by the
bare view measured in the same run. BENCH_KEEP=1 keeps the work folder (wrk
scripts, recorded ids, gunicorn and service logs) for inspection.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

import psycopg
import redis
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.support.nginx import find_nginx, running_nginx
from tests.support.processes import free_port, stop_process_group, worker_pids

ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPTS = ROOT / "bench" / "wrk"
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
BIN = Path(sys.executable).parent

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/ephemeral_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/4"

# Recipients whose history the seeded rows form; the collect scenario's inboxes
# are among them, so with 10^7 rows each inbox has about 50 old messages.
HISTORY_USERS = 200_000
INBOXES = 150_000
WARM_IDS = 2_000
MIX_USERS = 2_000
SAMPLE = 200


@dataclass
class Result:
    scenario: str
    rows: str
    requests: int = 0
    seconds: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: int = 0
    cpu_seconds: float = 0.0
    checks: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_seconds / self.requests if self.requests else 0.0


# --- servers -------------------------------------------------------------------------------------


class Server:
    """gunicorn with the production configuration, on a free loopback port."""

    def __init__(self, app: str, env: dict[str, str], log_dir: Path, name: str) -> None:
        self.port = free_port()
        # Where the load goes: gunicorn itself, or the nginx in front of it.
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        self.env = env
        self.log = log_dir / f"{name}.gunicorn.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Server:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(BIN / "gunicorn"), "-c", str(GUNICORN_CONF), "--bind", f"127.0.0.1:{self.port}", self.app],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"gunicorn exited with {self.process.returncode}; see {self.log}")
            try:
                http_get(self.port, "/")
                return self
            except OSError:
                time.sleep(0.2)
        sys.exit(f"gunicorn did not answer within 30 s; see {self.log}")

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
def serving(app: str, env: dict[str, str], log_dir: Path, name: str, nginx: str | None) -> Iterator[Server]:
    """gunicorn serving ``app``, behind the shipped nginx site unless ``nginx`` is None."""
    server = Server(app, env, log_dir, name).start()
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


# --- load ----------------------------------------------------------------------------------------


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


# --- data ----------------------------------------------------------------------------------------


def admin_conninfo(url: str) -> tuple[str, str]:
    params = conninfo_to_dict(url)
    name = params.pop("dbname")
    return make_conninfo(**params, dbname="postgres"), name


def ensure_database(url: str, env: dict[str, str]) -> None:
    admin, name = admin_conninfo(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env={**env, "DATABASE_URL": url},
        check=True,
    )


def seed_history(conn: psycopg.Connection, rows: int) -> None:
    """``rows`` old messages over 30 days: 70% collected, the rest expired unread."""
    started = time.monotonic()
    print(f"seeding {rows:,} messages of history", flush=True)
    conn.execute("TRUNCATE restapi_message RESTART IDENTITY")
    conn.execute(
        """
        INSERT INTO restapi_message (username, text, created_at, expiration_date, collected_at)
        SELECT 'inbox-' || (i %% %(users)s), 'an old message, number ' || i, t, t + interval '60 seconds',
               CASE WHEN i %% 10 < 7 THEN t + interval '20 seconds' END
        FROM generate_series(1, %(rows)s) AS i,
             LATERAL (SELECT now() - interval '1 day' - (i %% 2592000) * interval '1 second' AS t) AS created
        """,
        {"users": HISTORY_USERS, "rows": rows},
    )
    conn.execute("CREATE TABLE IF NOT EXISTS bench_seed (rows bigint NOT NULL)")
    conn.execute("DELETE FROM bench_seed")
    conn.execute("INSERT INTO bench_seed VALUES (%s)", [rows])
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE restapi_message")
    conn.autocommit = False
    print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)


def prepare_history(url: str, rows: int, *, reuse: bool) -> None:
    with psycopg.connect(url) as conn:
        if reuse:
            conn.execute("CREATE TABLE IF NOT EXISTS bench_seed (rows bigint NOT NULL)")
            seeded = conn.execute("SELECT rows FROM bench_seed").fetchone()
            conn.commit()
            if seeded and seeded[0] == rows:
                return
        seed_history(conn, rows)


def expire_live(conn: psycopg.Connection, prefix: str) -> None:
    """Collect what earlier runs left in the benchmark's inboxes, so each run starts from the same state."""
    conn.execute(
        "UPDATE restapi_message SET collected_at = now(), expiration_date = now() "
        "WHERE collected_at IS NULL AND expiration_date > now() AND username LIKE %s",
        [prefix + "%"],
    )


@dataclass(frozen=True)
class Seeded:
    """The id ranges of the messages seed_live made: expired ones to read from the hot store, live ones."""

    settled: tuple[int, int]
    live: tuple[int, int]

    @staticmethod
    def wrk_env(ids: tuple[int, int]) -> dict[str, str]:
        return {"BENCH_ID_MIN": str(ids[0]), "BENCH_ID_MAX": str(ids[1])}


def seed_live(url: str) -> Seeded:
    """
    One live message in each of the INBOXES inboxes, and WARM_IDS expired messages to read by id (the hot
    store holds only settled messages).
    """
    with psycopg.connect(url) as conn:
        for prefix in ("inbox-", "mix-", "reader-"):
            expire_live(conn, prefix)
        live = conn.execute(
            """
            WITH made AS (
                INSERT INTO restapi_message (username, text, created_at, expiration_date)
                SELECT 'inbox-' || i, 'waiting in inbox ' || i, now(), now() + interval '1 hour'
                FROM generate_series(1, %s) AS i
                RETURNING id
            ) SELECT min(id), max(id) FROM made
            """,
            [INBOXES],
        ).fetchone()
        first, last = conn.execute(
            """
            WITH made AS (
                INSERT INTO restapi_message (username, text, created_at, expiration_date)
                SELECT 'reader-' || i, 'read me, number ' || i, now() - interval '2 hours', now() - interval '1 hour'
                FROM generate_series(1, %s) AS i
                RETURNING id
            ) SELECT min(id), max(id) FROM made
            """,
            [WARM_IDS],
        ).fetchone()
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE restapi_message")
    return Seeded(settled=(first, last), live=live)


def table_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'restapi_message'").fetchone()[0]


def hot_store_counts(port: int) -> dict[str, float]:
    """The service's hot-store counters from /metrics: hit, miss, error and skipped (summed over operations)."""
    status, body = http_get(port, "/metrics")
    if status != 200:
        sys.exit(f"GET /metrics answered {status}")
    counts: dict[str, float] = {}
    for line in body.decode().splitlines():
        if line.startswith("chat_hot_store_lookups_total{"):
            name = line.split('result="', 1)[1].split('"', 1)[0]
        elif line.startswith("chat_hot_store_errors_total{"):
            name = "error"
        elif line.startswith("chat_hot_store_skipped_total{"):
            name = "skipped"
        else:
            continue
        counts[name] = counts.get(name, 0) + float(line.rsplit(" ", 1)[1])
    return counts


# --- checks --------------------------------------------------------------------------------------


def stored(url: str, ids: list[int]) -> dict[int, tuple]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id, username, expiration_date, collected_at FROM restapi_message WHERE id = ANY(%s)", [ids]
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def check_created(result: Result, url: str, port: int, created: list[int]) -> None:
    if len(set(created)) != len(created):
        result.checks.append(f"{len(created) - len(set(created))} duplicate ids in 201s")
    rows = stored(url, created)
    missing = len(set(created) - rows.keys())
    if missing:
        result.checks.append(f"{missing} ids answered 201 but not stored")
    client = Client(port)
    try:
        for message_id in random.sample(created, min(SAMPLE, len(created))):
            status, _ = client.get(f"/chat/{message_id}")
            if status != 200:
                result.checks.append(f"GET /chat/{message_id} of a 201 id answered {status}")
                break
    finally:
        client.close()


def check_collected(result: Result, url: str, port: int, collected: list[int]) -> None:
    if len(set(collected)) != len(collected):
        result.checks.append(f"{len(collected) - len(set(collected))} messages handed out twice")
    rows = stored(url, collected)
    not_marked = sum(1 for row in rows.values() if row[2] is None) + len(set(collected) - rows.keys())
    if not_marked:
        result.checks.append(f"{not_marked} collected ids not marked collected")
    client = Client(port)
    try:
        for message_id in random.sample(collected, min(SAMPLE, len(collected))):
            status, body = client.get(f"/chat/{message_id}")
            shown = json.loads(body).get("expiration_date") if status == 200 else None
            expected = rows[message_id][1].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            if shown != expected:
                result.checks.append(f"GET /chat/{message_id} after its collect shows {shown}, stored {expected}")
                break
    finally:
        client.close()


# --- scenarios -----------------------------------------------------------------------------------


def service_env(database_url: str, redis_url: str, work_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "EphemeralMessages.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DEBUG": "0",
        # Throttling runs on every POST, but the load generator is one client.
        "CHAT_THROTTLE_RATE": "1000000000/s",
        # As deployed behind nginx, which forwards the client's address.
        "CHAT_TRUSTED_PROXIES": "127.0.0.1",
        "LOG_FILE": str(work_dir / "chat_server.log"),
        # As deployed: /metrics adds up every worker's counters.
        "PROMETHEUS_MULTIPROC_DIR": str(work_dir / "metrics"),
        "DATA_DIR": str(work_dir / "data"),
    }


def run_service(args, load: Load, database_url: str, label: str, work_dir: Path) -> list[Result]:
    env = service_env(database_url, args.redis_url, work_dir)
    redis.Redis.from_url(args.redis_url).flushdb()
    seeded = seed_live(database_url)
    first, last = seeded.settled
    ids = Seeded.wrk_env(seeded.settled)
    results = []
    with serving("EphemeralMessages.wsgi", env, work_dir, f"service-{label}", args.nginx) as server:
        # Every read in the read scenario is a hot-store hit.
        client = Client(server.port)
        for message_id in range(first, last + 1):
            client.get(f"/chat/{message_id}")
        client.close()
        load.run("read", server.url, 3, ids)  # warm-up, not measured

        post = Result("POST /chat", label)
        prefix = load.measure(post, "post", server, args.duration)
        check_created(post, database_url, server.port, recorded(prefix, "created"))
        results.append(post)

        read = Result("GET /chat/<id>", label)
        cached = redis.Redis.from_url(args.redis_url).exists(
            *[f"ephemeral:message:{i}" for i in range(first, last + 1)]
        )
        if cached != WARM_IDS:
            read.checks.append(f"only {cached} of {WARM_IDS} warmed ids in the hot store")
        before = hot_store_counts(server.port)
        load.measure(read, "read", server, args.duration, ids)
        after = hot_store_counts(server.port)
        served = {name: after.get(name, 0) - before.get(name, 0) for name in after}
        if served.get("hit", 0) < 0.99 * read.requests:
            read.checks.append(
                "the hot store answered only {hit:.0f} reads (misses {miss:.0f}, errors {error:.0f}, "
                "skipped after a failure {skipped:.0f})".format(
                    **{"hit": 0, "miss": 0, "error": 0, "skipped": 0, **served}
                )
            )
        results.append(read)

        # Live messages are never cached: each read asks the hot store, misses, and reads PostgreSQL.
        live = Result("GET /chat/<id> live", label)
        before = hot_store_counts(server.port)
        load.measure(live, "read", server, args.duration, Seeded.wrk_env(seeded.live))
        after = hot_store_counts(server.port)
        # Up to one request per connection of the cached-read scenario can still be
        # finishing, behind nginx, when this one starts; any more hits would be live reads.
        hits = after.get("hit", 0) - before.get("hit", 0)
        if hits > args.connections:
            live.checks.append(f"the hot store answered {hits:.0f} reads of live messages")
        results.append(live)

        collect = Result("GET /chats/<user>", label)
        prefix = load.measure(collect, "collect", server, args.duration, {"BENCH_INBOX_FIRST": "1"})
        sizes = recorded(prefix, "inbox_size")
        if any(size != 1 for size in sizes):
            collect.checks.append(f"{sum(size != 1 for size in sizes)} collects did not return exactly one message")
        check_collected(collect, database_url, server.port, recorded(prefix, "collected"))
        results.append(collect)

        mix = Result("mix 50/25/25", label)
        run_mix(load, mix, server, database_url, args.duration, ids)
        results.append(mix)
    return results


def run_mix(load: Load, result: Result, server: Server, database_url: str, seconds: float, ids: dict) -> None:
    prefix = load.measure(result, "mix", server, seconds, {**ids, "BENCH_MIX_USERS": str(MIX_USERS)})
    created = recorded(prefix, "created")
    collected = recorded(prefix, "collected")
    check_created(result, database_url, server.port, created)
    check_collected(result, database_url, server.port, collected)
    strays = set(collected) - set(created)
    if strays:
        result.checks.append(f"{len(strays)} collected ids were never created in this run")


def run_soak(args, load: Load, work_dir: Path) -> tuple[Result, list[tuple[float, list[float]]]]:
    env = service_env(args.database_url, args.redis_url, work_dir)
    # Recycling would hide a leak: the soak runs workers for their whole life.
    env["GUNICORN_MAX_REQUESTS"] = "0"
    redis.Redis.from_url(args.redis_url).flushdb()
    ids = Seeded.wrk_env(seed_live(args.database_url).settled)
    result = Result(f"mix soak {args.soak}s", rows_label(args.small_rows))
    samples: list[tuple[float, list[float]]] = []
    with serving("EphemeralMessages.wsgi", env, work_dir, "soak", args.nginx) as server:
        load.run("read", server.url, 3, ids)
        workers = server.workers()
        started = time.monotonic()
        wrk = threading.Thread(
            target=run_mix, args=(load, result, server, args.database_url, args.soak, ids), daemon=True
        )
        wrk.start()
        while wrk.is_alive():
            samples.append((time.monotonic() - started, [rss_mib(pid) for pid in workers]))
            wrk.join(timeout=min(15, max(1, args.soak / 20)))
        samples.append((time.monotonic() - started, [rss_mib(pid) for pid in workers]))
        if server.workers() != workers:
            result.checks.append("a worker was replaced during the soak")
    return result, samples


def rows_label(rows: int) -> str:
    """10000 -> '10^4'; anything not a power of ten as it is."""
    digits = str(rows)
    return f"10^{len(digits) - 1}" if digits.strip("0") == "1" else digits


# --- report --------------------------------------------------------------------------------------


def print_table(results: list[Result], bare_rate: float) -> None:
    header = (
        f"{'scenario':<20} {'rows':>6} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>7} {'ratio':>6} "
        f"{'CPU ms':>7}  checks"
    )
    print()
    print(header)
    print("-" * len(header))
    for r in results:
        ratio = r.rate / bare_rate if bare_rate else 0.0
        checks = "; ".join(r.checks) if r.checks else "ok"
        print(
            f"{r.scenario:<20} {r.rows:>6} {r.rate:>8.0f} {r.p50_ms:>7.1f} {r.p99_ms:>7.1f} {r.errors:>7} "
            f"{ratio:>6.2f} {r.cpu_ms:>7.2f}  {checks}"
        )


def describe_settings(nginx: str | None) -> str:
    names = sorted(name for name in os.environ if name.startswith("GUNICORN_"))
    overrides = ", ".join(f"{name}={os.environ[name]}" for name in names) or "none"
    front = "gunicorn loaded directly" if nginx is None else "behind nginx (deploy/nginx)"
    return f"gunicorn: {GUNICORN_CONF.relative_to(ROOT)}, overrides: {overrides}; {front}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--big-database-url", default=os.environ.get("BENCH_BIG_DATABASE_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--duration", type=int, default=15, help="seconds per measured scenario (default 15)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--small-rows", type=int, default=10**4)
    parser.add_argument("--big-rows", type=int, default=10**7)
    parser.add_argument("--skip-big", action="store_true", help="only the 10^4 table")
    parser.add_argument("--soak", type=int, default=0, metavar="SECONDS", help="also a mixed soak this long")
    parser.add_argument("--only-soak", action="store_true", help="only the bare view and the soak")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--direct", action="store_true", help="load gunicorn itself, without nginx in front")
    args = parser.parse_args()
    big_url = args.big_database_url or args.database_url.rstrip("/") + "_big"

    wrk = ensure_installed("wrk", lambda: shutil.which("wrk"))
    args.nginx = None if args.direct else ensure_installed("nginx", find_nginx)
    work_dir = Path(tempfile.mkdtemp(prefix="ephemeral-bench-"))
    load = Load(wrk, args.connections, work_dir)
    base_env = service_env(args.database_url, args.redis_url, work_dir)
    bare_env = {**base_env, "DJANGO_SETTINGS_MODULE": "bench.bare"}
    bare_app = "django.core.wsgi:get_wsgi_application()"

    ensure_database(args.database_url, base_env)
    if not args.skip_big and not args.only_soak:
        ensure_database(big_url, base_env)
        prepare_history(big_url, args.big_rows, reuse=True)

    results: list[Result] = []
    bare_rates = []
    with serving(bare_app, bare_env, work_dir, "bare", args.nginx) as bare:
        load.run("bare", bare.url, 3)
        first = Result("bare Django view", "-")
        load.measure(first, "bare", bare, args.duration)
        bare_rates.append(first.rate)

    if not args.only_soak:
        prepare_history(args.database_url, args.small_rows, reuse=False)
        results += run_service(args, load, args.database_url, rows_label(args.small_rows), work_dir)
        if not args.skip_big:
            results += run_service(args, load, big_url, rows_label(args.big_rows), work_dir)
    soak_samples = []
    if args.soak:
        if args.only_soak:
            prepare_history(args.database_url, args.small_rows, reuse=False)
        soak, soak_samples = run_soak(args, load, work_dir)
        results.append(soak)

    # The bare view again at the end, so the reference spans the same noise as the service.
    with serving(bare_app, bare_env, work_dir, "bare", args.nginx) as bare:
        load.run("bare", bare.url, 3)
        last = Result("bare Django view", "-")
        load.measure(last, "bare", bare, args.duration)
        bare_rates.append(last.rate)
    bare = Result("bare Django view", "-", checks=[f"mean of {first.rate:.0f} (first) and {last.rate:.0f} (last)"])
    bare.requests = first.requests + last.requests
    bare.seconds = first.seconds + last.seconds
    bare.p50_ms = statistics.mean([first.p50_ms, last.p50_ms])
    bare.p99_ms = max(first.p99_ms, last.p99_ms)
    bare.errors = first.errors + last.errors
    bare.cpu_seconds = first.cpu_seconds + last.cpu_seconds
    bare_rate = statistics.mean(bare_rates)

    load_line = f"wrk -t1 -c{args.connections} -d{args.duration:g}s"
    print(f"\n{os.cpu_count()} CPUs; {describe_settings(args.nginx)}; {load_line}")
    print_table([bare, *results], bare_rate)
    if soak_samples:
        print("\nworker RSS during the soak (MiB, one column per worker):")
        for elapsed, sizes in soak_samples:
            print(f"  {elapsed:6.0f} s  " + "  ".join(f"{size:7.1f}" for size in sizes))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "bare_rate": bare_rate,
                    "results": [{**r.__dict__, "rate": r.rate} for r in [bare, *results]],
                    "soak_rss": soak_samples,
                },
                indent=2,
            )
        )
    failed = [r for r in results if r.checks or r.errors]
    if not os.environ.get("BENCH_KEEP"):
        shutil.rmtree(work_dir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
