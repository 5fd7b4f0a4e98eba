"""
The benchmark: the service under gunicorn on PostgreSQL + Redis, against a
bare Django view served the same way, loaded with wrk at 64 connections.

    make bench                           # or: .venv/bin/python -m bench.run
    .venv/bin/python -m bench.run --soak 300
    .venv/bin/python -m bench.run --server granian

It starts both servers as production runs them: gunicorn with
deploy/gunicorn.conf.py (GUNICORN_* variables override it) behind nginx with
deploy/nginx/ephemeral-messages.conf (--direct loads gunicorn itself instead).
--server granian serves both with granian's WSGI server instead, in the same
shape (deploy/granian.py; GRANIAN_* variables override it), behind the same
nginx site.
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
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL
from bench.data import ensure_database, prepare_history
from bench.processes import SERVERS, Load, ensure_installed, serving
from bench.report import Result, describe_settings, print_soak, print_table, rows_label, write_json
from bench.scenarios import run_service, run_soak, service_env
from tests.support.nginx import find_nginx


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
    parser.add_argument("--direct", action="store_true", help="load the server itself, without nginx in front")
    parser.add_argument("--server", choices=SERVERS, default="gunicorn", help="the HTTP server (default gunicorn)")
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
    with serving(bare_app, bare_env, work_dir, "bare", args.nginx, args.server) as bare:
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
    with serving(bare_app, bare_env, work_dir, "bare", args.nginx, args.server) as bare:
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
    print(f"\n{os.cpu_count()} CPUs; {describe_settings(args.server, args.nginx)}; {load_line}")
    print_table([bare, *results], bare_rate)
    print_soak(soak_samples)
    if args.json:
        write_json(args.json, bare_rate, [bare, *results], soak_samples)
    failed = [r for r in results if r.checks or r.errors]
    if not os.environ.get("BENCH_KEEP"):
        shutil.rmtree(work_dir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
