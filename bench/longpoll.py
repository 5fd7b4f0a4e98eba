"""
Long-poll benchmark: wake-up latency, many idle waiters, and what they cost
the regular endpoints.

    .venv/bin/python -m bench.longpoll                    # 10,000 waiters, 8 s wrk runs
    .venv/bin/python -m bench.longpoll --waiters 2000 --seconds 5

Both servers run as deployed: the threaded gunicorn (regular endpoints, and
every send) and the asynchronous one (waiting requests), on the database and
Redis named by DATABASE_URL and REDIS_URL (migrated first). It reports:

1. Wake-up latency: a waiter waits on the asynchronous server; a message is
   sent through the threaded one; the time from the send's 201 to the waiter's
   answer, over ``--samples`` sends, with no other waiters and again with all
   of them waiting.
2. ``--waiters`` idle waiters (each on its own inbox, ``?wait=60``), held by
   one asyncio client: the asynchronous workers' memory before and after,
   per waiter, their threads and their PostgreSQL connections.
3. POST /chat and GET /chat/<id> on the threaded server with wrk, without the
   waiters and with them, alternating ``--rounds`` times so that other work on
   the machine falls on both: throughput, p99 and the workers' CPU per request
   (which other load on a shared machine moves far less than the first two).
   The run with waiters starts once every waiter is subscribed and the
   asynchronous workers are idle again (their first looks are done).

It also counts the asynchronous workers' PostgreSQL connections with no
waiter and with all of them waiting (waiters must not add any), and prints
the load average, since the machine may be busy with other work. Every phase
is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import redis

from bench.data import Seeded, seed_live
from bench.processes import Client, Load, Server, ensure_installed, rss_mib
from bench.report import Result
from bench.scenarios import service_env

ROOT = Path(__file__).resolve().parent.parent
WAIT_SECONDS = 60
# The waiters must all be waiting within this long of the first one, which
# leaves the measurement the rest of the first one's 60 s wait.
ESTABLISH_SECONDS = 40
# The latency samples of one phase stop after this long, however many are left.
SAMPLING_SECONDS = 120
POSTGRESQL_PORT = 5432
# Below this many CPU seconds a second, the asynchronous workers are taken to be idle.
IDLE_CPU_SECONDS = 0.05
# The root of this service's Redis keys (restapi.storage.redis_client.KEY_ROOT).
KEY_ROOT = "ephemeral"
# Filled in once the service has made its deployment id.
CHANNEL_PREFIX = [""]


def _post(port: int, username: str) -> float:
    """Send one message through the threaded server; the moment its 201 arrived."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps({"username": username, "text": "wake up", "timeout": 600})
    conn.request("POST", "/chat", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    acknowledged = time.perf_counter()
    conn.close()
    if response.status != 201:
        sys.exit(f"POST /chat answered {response.status}")
    return acknowledged


def wake_up_latencies(threaded: Server, waiting: Server, samples: int, label: str) -> list[float]:
    """Milliseconds from a send's 201 to the answer of the waiter it woke."""
    latencies: list[float] = []
    stop_at = time.monotonic() + SAMPLING_SECONDS
    for n in range(samples):
        if time.monotonic() > stop_at:
            print(f"latency phase {label}: stopped after {n} samples ({SAMPLING_SECONDS} s)", flush=True)
            break
        username = f"latency-{label}-{n}"
        conn = http.client.HTTPConnection("127.0.0.1", waiting.port, timeout=WAIT_SECONDS + 10)
        conn.request("GET", f"/chats/{username}?wait=30")
        answered: list[float] = []

        def read_answer(conn: http.client.HTTPConnection = conn, answered: list[float] = answered) -> None:
            response = conn.getresponse()
            response.read()
            answered.append(time.perf_counter())

        reader = threading.Thread(target=read_answer)
        reader.start()
        # The waiter is subscribed once its inbox's channel has a subscriber.
        deadline = time.monotonic() + 10
        while not _subscribed(waiting.env["REDIS_URL"], [username]) and time.monotonic() < deadline:
            time.sleep(0.005)
        acknowledged = _post(threaded.port, username)
        reader.join(timeout=WAIT_SECONDS)
        conn.close()
        if not answered:
            sys.exit(f"the waiter of {username} was not answered within {WAIT_SECONDS} s of the send")
        latencies.append((answered[0] - acknowledged) * 1000)
    return latencies


def inbox_channel_prefix(database_url: str) -> str:
    """The prefix of the inboxes' wake-up channels: this deployment's key space (restapi.storage.wakeups)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT deployment_id FROM restapi_deployment").fetchone()
    return f"{KEY_ROOT}:{row[0]}:inbox:"


def _subscribed(redis_url: str, usernames: list[str]) -> bool:
    counts = redis.Redis.from_url(redis_url).pubsub_numsub(*[CHANNEL_PREFIX[0] + name for name in usernames])
    return all(count > 0 for _, count in counts)


class IdleWaiters:
    """``count`` connections, each with a ``?wait=60`` collect on its own inbox, held by one asyncio loop."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.loop = asyncio.new_event_loop()
        self.writers: list[asyncio.StreamWriter] = []
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _open(self, n: int) -> None:
        _reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(f"GET /chats/idle-{n}?wait={WAIT_SECONDS} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        await writer.drain()
        self.writers.append(writer)

    async def _open_all(self) -> None:
        # In batches, so the server's listen backlog is never overrun.
        for start in range(0, self.count, 500):
            await asyncio.gather(*(self._open(n) for n in range(start, min(start + 500, self.count))))

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._open_all(), self.loop).result(timeout=ESTABLISH_SECONDS)

    def close(self) -> None:
        async def close_all() -> None:
            for writer in self.writers:
                writer.close()

        asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(timeout=WAIT_SECONDS)
        self.loop.call_soon_threadsafe(self.loop.stop)


def threads_of(pids: list[int]) -> int:
    return sum(len(os.listdir(f"/proc/{pid}/task")) for pid in pids)


def database_connections(pids: list[int]) -> int:
    """TCP connections to PostgreSQL's port that the processes ``pids`` hold open."""
    inodes = set()
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    held = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                # rem_address is HEX_IP:HEX_PORT; state 01 is ESTABLISHED; field 9 is the inode.
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == POSTGRESQL_PORT and fields[3] == "01" and fields[9] in inodes:
                    held += 1
    return held


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def regular_endpoints(load: Load, threaded: Server, seconds: float, ids: dict, label: str) -> list[Result]:
    results = []
    for scenario, name, env in (("post", "POST /chat", None), ("read", "GET /chat/<id>", ids)):
        result = Result(name, label)
        load.measure(result, scenario, threaded, seconds, env)
        results.append(result)
    return results


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def idle_within(server: Server, seconds: float) -> float:
    """Wait until ``server``'s workers use almost no CPU (their waiters' first looks are done); how long it took."""
    started = time.monotonic()
    before = server.cpu_seconds()
    while time.monotonic() - started < seconds:
        time.sleep(1)
        after = server.cpu_seconds()
        if after - before < IDLE_CPU_SECONDS:
            break
        before = after
    return time.monotonic() - started


def count_subscribed(redis_url: str, names: list[str]) -> int:
    counts = redis.Redis.from_url(redis_url).pubsub_numsub(*[CHANNEL_PREFIX[0] + name for name in names])
    return sum(count > 0 for _, count in counts)


def hold_waiters(waiting: Server, redis_url: str, count: int) -> tuple[IdleWaiters, dict]:
    """``count`` idle waiters, all subscribed and done with their first look; what holding them costs."""
    workers = waiting.workers()
    cost = {
        "workers": len(workers),
        "rss_before": sum(rss_mib(pid) for pid in workers),
        "threads_before": threads_of(workers),
        # The lookup threads of each worker have connected during the latency phase.
        "connections_before": database_connections(workers),
    }
    idle = IdleWaiters(waiting.port, count)
    cpu_before = waiting.cpu_seconds()
    started = time.monotonic()
    idle.start()
    names = [f"idle-{n}" for n in range(count)]
    # The first and last hundred stand for all while they are opened (counting
    # all 10,000 every half second would load Redis and this client), then all are counted.
    sample = names[:100] + names[-100:]
    while count_subscribed(redis_url, sample) < len(sample) or count_subscribed(redis_url, names) < count:
        if time.monotonic() - started > ESTABLISH_SECONDS:
            sys.exit(
                f"only {count_subscribed(redis_url, names)} of {count} waiters were waiting after "
                f"{ESTABLISH_SECONDS} s (the workers used {waiting.cpu_seconds() - cpu_before:.1f} s of CPU; "
                f"load average {load_average()}): too many for this machine now; try fewer with --waiters"
            )
        time.sleep(0.5)
    cost["subscribed_after"] = time.monotonic() - started
    cost["idle_after"] = cost["subscribed_after"] + idle_within(waiting, ESTABLISH_SECONDS - cost["subscribed_after"])
    cost["cpu_per_waiter_ms"] = 1000 * (waiting.cpu_seconds() - cpu_before) / count
    cost["rss_after"] = sum(rss_mib(pid) for pid in workers)
    cost["threads_after"] = threads_of(workers)
    cost["connections_after"] = database_connections(workers)
    cost["started"] = started
    cost["names"] = names
    return idle, cost


def release_waiters(idle: IdleWaiters, redis_url: str, names: list[str]) -> None:
    """Close the waiters' connections and wait until the server has dropped them all."""
    idle.close()
    deadline = time.monotonic() + WAIT_SECONDS
    while count_subscribed(redis_url, names) and time.monotonic() < deadline:
        time.sleep(0.5)


def print_latency(label: str, values: list[float]) -> None:
    print(f"{label} ({len(values)} sends):")
    print(
        f"  p50 {statistics.median(values):.1f} ms   p99 {_percentile(values, 0.99):.1f} ms   max {max(values):.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waiters", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="alternations of a run without and one with waiters")
    parser.add_argument(
        "--among-samples",
        type=int,
        help="sends among the idle waiters per round (default: a quarter of --samples over the rounds); "
        "each round's must fit in the waiters' 60 s with the wrk runs",
    )
    args = parser.parse_args()
    among_samples = args.among_samples or max(1, args.samples // (4 * args.rounds))
    database_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    if not database_url or not redis_url:
        sys.exit("set DATABASE_URL and REDIS_URL (a database and a Redis db this run may fill and flush)")
    # Each idle waiter is a socket here and one in the server.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.waiters * 2 + 1024)), hard))
    wrk = ensure_installed("wrk", lambda: __import__("shutil").which("wrk"))

    work_dir = Path(tempfile.mkdtemp(prefix="bench-longpoll-"))
    env = service_env(database_url, redis_url, work_dir)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    redis.Redis.from_url(redis_url).flushdb()
    seeded = seed_live(database_url)
    ids = Seeded.wrk_env(seeded.settled)
    threaded = Server("EphemeralMessages.wsgi", env, work_dir, "threaded").start()
    waiting_env = {**env, "GUNICORN_WORKER_CLASS": "asgi", "PROMETHEUS_MULTIPROC_DIR": str(work_dir / "metrics-async")}
    waiting = Server("EphemeralMessages.asgi:application", waiting_env, work_dir, "asynchronous").start()
    load = Load(wrk, args.connections, work_dir)
    pairs: list[tuple[list[Result], list[Result]]] = []
    costs: list[dict] = []
    among: list[float] = []
    loads = []
    try:
        _post(threaded.port, "bench-longpoll-start")
        CHANNEL_PREFIX[0] = inbox_channel_prefix(database_url)
        client = Client(threaded.port)
        for message_id in range(seeded.settled[0], seeded.settled[1] + 1):
            client.get(f"/chat/{message_id}")
        client.close()
        load.run("read", threaded.url, 2, ids)  # warm-up, not measured
        loads.append(("start", load_average()))

        alone = wake_up_latencies(threaded, waiting, args.samples, "alone")
        # Alternating the two conditions spreads whatever else the machine does over both.
        for round_number in range(1, args.rounds + 1):
            without = regular_endpoints(load, threaded, args.seconds, ids, "no waiters")
            loads.append((f"round {round_number} without waiters", load_average()))
            idle, cost = hold_waiters(waiting, redis_url, args.waiters)
            with_waiters = regular_endpoints(load, threaded, args.seconds, ids, f"{args.waiters} waiters")
            among += wake_up_latencies(threaded, waiting, among_samples, "among")
            loads.append((f"round {round_number} with waiters", load_average()))
            # The waiters' own time (60 s) must not have run out during the measurement.
            cost["still_waiting"] = count_subscribed(redis_url, cost["names"])
            cost["measured_within"] = time.monotonic() - cost["started"]
            release_waiters(idle, redis_url, cost["names"])
            pairs.append((without, with_waiters))
            costs.append(cost)
    finally:
        threaded.stop()
        waiting.stop()

    print()
    print_latency("wake-up latency, send's 201 -> waiter's answer, one waiter", alone)
    print_latency(f"wake-up latency with {args.waiters} idle waiters", among)
    for number, cost in enumerate(costs, 1):
        print(
            f"\nround {number}: {args.waiters} idle waiters subscribed after {cost['subscribed_after']:.1f} s, "
            f"workers idle after {cost['idle_after']:.1f} s, having used {cost['cpu_per_waiter_ms']:.2f} ms of CPU "
            f"per waiter; still waiting at the end "
            f"({cost['measured_within']:.0f} s after the first): {cost['still_waiting']}"
        )
        per_waiter = (cost["rss_after"] - cost["rss_before"]) * 1024 / args.waiters
        print(
            f"  asynchronous workers' RSS {cost['rss_before']:.0f} -> {cost['rss_after']:.0f} MiB: "
            f"{per_waiter:.1f} KiB per waiter; threads {cost['threads_before']} -> {cost['threads_after']}"
        )
        # Bounded by the waiters' shared lookup threads (restapi.waiting.LOOKUP_THREADS), not by waiters.
        print(
            f"  asynchronous workers' PostgreSQL connections {cost['connections_before']} -> "
            f"{cost['connections_after']} (at most {2 * cost['workers']}: two lookup threads per worker)"
        )
    print(f"\nregular endpoints on the threaded server, wrk -c{args.connections}, {args.seconds:.0f} s each:")
    print(f"  {'endpoint':<16} {'waiters':>14} {'req/s':>8} {'p99 ms':>8} {'CPU ms':>8} {'errors':>7}")
    for number, (without, with_waiters) in enumerate(pairs, 1):
        print(f"  round {number}")
        for before, after in zip(without, with_waiters, strict=True):
            for result in (before, after):
                print(
                    f"  {result.scenario:<16} {result.rows:>14} {result.rate:8.0f} {result.p99_ms:8.1f} "
                    f"{result.cpu_ms:8.2f} {result.errors:7d}"
                )
            print(
                f"  {'':<16} {'change':>14} {100 * (after.rate / before.rate - 1):+7.1f}% "
                f"{100 * (after.p99_ms / before.p99_ms - 1):+7.1f}% "
                f"{100 * (after.cpu_ms / before.cpu_ms - 1):+7.1f}%"
            )
    print("  all rounds together (requests / seconds; p99 and CPU averaged over the rounds)")
    for index, name in enumerate(("POST /chat", "GET /chat/<id>")):
        summary = []
        for position in (0, 1):
            results = [pair[position][index] for pair in pairs]
            rate = sum(r.requests for r in results) / sum(r.seconds for r in results)
            summary.append(
                (rate, statistics.mean(r.p99_ms for r in results), statistics.mean(r.cpu_ms for r in results))
            )
        (rate0, p990, cpu0), (rate1, p991, cpu1) = summary
        print(
            f"  {name:<16} {'change':>14} {100 * (rate1 / rate0 - 1):+7.1f}% {100 * (p991 / p990 - 1):+7.1f}% "
            f"{100 * (cpu1 / cpu0 - 1):+7.1f}%   ({rate0:.0f} -> {rate1:.0f} req/s, p99 {p990:.0f} -> {p991:.0f} ms)"
        )
    print("\nload average (1, 5, 15 min): " + "; ".join(f"{phase}: {value}" for phase, value in loads))
    print(f"\nwork folder: {work_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
