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
   per waiter, and their threads.
3. POST /chat and GET /chat/<id> on the threaded server with wrk, without the
   waiters and with them: throughput and p99.
"""

from __future__ import annotations

import argparse
import asyncio
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
    latencies = []
    for n in range(samples):
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
        reader.join()
        conn.close()
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
        asyncio.run_coroutine_threadsafe(self._open_all(), self.loop).result()

    def close(self) -> None:
        async def close_all() -> None:
            for writer in self.writers:
                writer.close()

        asyncio.run_coroutine_threadsafe(close_all(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)


def threads_of(pids: list[int]) -> int:
    return sum(len(os.listdir(f"/proc/{pid}/task")) for pid in pids)


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waiters", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
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
    try:
        _post(threaded.port, "bench-longpoll-start")
        CHANNEL_PREFIX[0] = inbox_channel_prefix(database_url)
        client = Client(threaded.port)
        for message_id in range(seeded.settled[0], seeded.settled[1] + 1):
            client.get(f"/chat/{message_id}")
        client.close()
        load.run("read", threaded.url, 2, ids)  # warm-up, not measured

        alone = wake_up_latencies(threaded, waiting, args.samples, "alone")
        without = regular_endpoints(load, threaded, args.seconds, ids, "no waiters")

        workers = waiting.workers()
        rss_before = sum(rss_mib(pid) for pid in workers)
        threads_before = threads_of(workers)
        idle = IdleWaiters(waiting.port, args.waiters)
        started = time.monotonic()
        idle.start()
        names = [f"idle-{n}" for n in range(args.waiters)]
        while not _subscribed(redis_url, names[-100:] + names[:100]):
            if time.monotonic() - started > WAIT_SECONDS / 2:
                sys.exit("the waiters were not all waiting within 30 s")
            time.sleep(0.2)
        established = time.monotonic() - started
        subscribed = sum(
            count > 0
            for _, count in redis.Redis.from_url(redis_url).pubsub_numsub(*[CHANNEL_PREFIX[0] + name for name in names])
        )
        rss_after = sum(rss_mib(pid) for pid in workers)
        threads_after = threads_of(workers)
        with_waiters = regular_endpoints(load, threaded, args.seconds, ids, f"{args.waiters} waiters")
        among = wake_up_latencies(threaded, waiting, min(args.samples, 50), "among")
        idle.close()
    finally:
        threaded.stop()
        waiting.stop()

    print(f"\nwake-up latency, send's 201 -> waiter's answer ({len(alone)} sends, one waiter):")
    print(f"  p50 {statistics.median(alone):.1f} ms   p99 {_percentile(alone, 0.99):.1f} ms   max {max(alone):.1f} ms")
    print(f"wake-up latency with {args.waiters} idle waiters ({len(among)} sends):")
    print(f"  p50 {statistics.median(among):.1f} ms   p99 {_percentile(among, 0.99):.1f} ms   max {max(among):.1f} ms")
    print(f"\n{args.waiters} idle waiters: all waiting after {established:.1f} s; {subscribed} inboxes subscribed")
    print(
        f"  asynchronous workers' RSS {rss_before:.0f} -> {rss_after:.0f} MiB: "
        f"{(rss_after - rss_before) * 1024 * 1024 / args.waiters / 1024:.1f} KiB per waiter; "
        f"threads {threads_before} -> {threads_after}"
    )
    print(f"\nregular endpoints on the threaded server, wrk -c{args.connections}, {args.seconds:.0f} s each:")
    print(f"  {'endpoint':<16} {'waiters':>14} {'req/s':>8} {'p99 ms':>8} {'errors':>7}")
    for before, after in zip(without, with_waiters, strict=True):
        for result in (before, after):
            print(
                f"  {result.scenario:<16} {result.rows:>14} {result.rate:8.0f} {result.p99_ms:8.1f} {result.errors:7d}"
            )
        print(
            f"  {'':<16} {'change':>14} {100 * (after.rate / before.rate - 1):+7.1f}% "
            f"{100 * (after.p99_ms / before.p99_ms - 1):+7.1f}%"
        )
    print(f"\nwork folder: {work_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
