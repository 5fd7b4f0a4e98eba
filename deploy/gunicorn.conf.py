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

# Each request is a few milliseconds of Python with short waits on PostgreSQL
# and Redis. Sync workers, one process per core, measured fastest: the work is
# CPU-bound, so threads in one process only queue on the GIL.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
workers = _env_int("GUNICORN_WORKERS", multiprocessing.cpu_count())
threads = _env_int("GUNICORN_THREADS", 1)

# Behind nginx, which keeps its own upstream connections alive.
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
