"""The measured scenarios: each seeds what it needs, loads the service with wrk, and checks the answers."""

from __future__ import annotations

import os
import secrets
import threading
import time
from pathlib import Path

import redis

from bench.checks import check_collected, check_created, hot_store_counts
from bench.data import WARM_IDS, Seeded, seed_live
from bench.processes import Client, Load, Server, recorded, rss_mib, serving
from bench.report import Result, rows_label

MIX_USERS = 2_000


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
        "CHAT_READ_THROTTLE_RATE": "1000000000/s",
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
    with serving("EphemeralMessages.wsgi", env, work_dir, f"service-{label}", args.nginx, args.server) as server:
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
        hot = redis.Redis.from_url(args.redis_url)
        # Keys carry the deployment's id: ephemeral:<deployment>:message:<id>.
        deployment = next(hot.scan_iter("ephemeral:*:message:*"), b"").decode().rsplit(":message:", 1)[0]
        cached = hot.exists(*[f"{deployment}:message:{i}" for i in range(first, last + 1)])
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
    with serving("EphemeralMessages.wsgi", env, work_dir, "soak", args.nginx, args.server) as server:
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
