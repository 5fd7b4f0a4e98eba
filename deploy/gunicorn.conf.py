"""
Gunicorn settings for production: ``gunicorn -c deploy/gunicorn.conf.py EphemeralMessages.wsgi``.

Every value can be overridden from the environment (``GUNICORN_<NAME>``), so a
host with more cores or a different socket changes a variable, not this file.
The numbers below are the ones docs/PERFORMANCE.md measured; rerun
``python bench/run.py`` before changing them.
"""

import multiprocessing
import os


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise SystemExit(f"{name}: expected a whole number, got {raw!r}.")
    return int(raw)


bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# A request is about a millisecond of Python around waits on PostgreSQL (the
# commit of every POST and collect waits for the WAL flush) and Redis. One
# process per core keeps the CPUs busy; threads in each process overlap the
# waits, so commits from several requests share one flush. gthread also keeps
# client connections open between requests, which the sync worker cannot.
# Measured in docs/PERFORMANCE.md: 2 x 8 gthread beat 2, 4 and 8 sync workers
# and 2 x 4 / 4 x 4 gthread on every endpoint. Each thread holds one
# persistent PostgreSQL connection: workers x threads connections per host.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
workers = _env_int("GUNICORN_WORKERS", multiprocessing.cpu_count())
threads = _env_int("GUNICORN_THREADS", 8)

# Seconds an idle keep-alive connection is held open. Behind nginx, whose
# upstream block should keep connections alive too (keepalive + HTTP/1.1), so
# requests do not pay a TCP handshake each.
keepalive = _env_int("GUNICORN_KEEPALIVE", 5)

# A worker is replaced after this many requests (plus up to the jitter, so the
# workers do not all restart at once): whatever a long-lived process
# accumulates is given back. 0 turns recycling off.
max_requests = _env_int("GUNICORN_MAX_REQUESTS", 100_000)
max_requests_jitter = _env_int("GUNICORN_MAX_REQUESTS_JITTER", 10_000)

# Importing Django once in the master makes workers start fast and share the
# pages of the imported code. Nothing connects to PostgreSQL or Redis at import,
# so no connection is shared across the fork.
preload_app = os.environ.get("GUNICORN_PRELOAD", "1").strip().lower() not in {"0", "false", "no", "off"}

# A request that runs longer than this is killed; the service's own waits
# (database connect 5 s, Redis 0.1 s) are well below it.
timeout = _env_int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 20)
