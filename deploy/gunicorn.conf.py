"""
Gunicorn settings for the Ephemeral Messaging Service.

    gunicorn -c deploy/gunicorn.conf.py EphemeralMessages.wsgi

Where it listens and the performance values come from the environment
(``GUNICORN_<NAME>``), so a host with more cores or a different socket changes a
variable, not this file; the defaults are the ones docs/PERFORMANCE.md measured
(rerun ``make bench`` before changing them). With PROMETHEUS_MULTIPROC_DIR set,
the hooks below keep the per-process metric files of prometheus-client
consistent: emptied when the master starts, and a dead worker's live gauges
dropped when it exits.
"""

import os
from pathlib import Path


def _env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < minimum:
        raise SystemExit(f"{name}: expected a whole number of at least {minimum}, got {raw!r}.")
    return int(raw)


wsgi_app = "EphemeralMessages.wsgi"
bind = [address.strip() for address in os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")]

# A request is about a millisecond of Python around waits on PostgreSQL (the
# commit of every POST and collect waits for the WAL flush) and Redis. One
# process per core keeps the cores busy; threads in each process overlap the
# waits, so commits from several requests share one flush. gthread also keeps
# client connections open between requests, which the sync worker cannot.
# Measured (docs/PERFORMANCE.md): 2 x 8 gthread beat 2, 4 and 8 sync workers
# and 2 x 4 gthread. Each thread holds one persistent PostgreSQL connection:
# workers x threads connections per host.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
workers = _env_int("GUNICORN_WORKERS", os.cpu_count() or 1, minimum=1)
threads = _env_int("GUNICORN_THREADS", 8, minimum=1)

# Seconds an idle keep-alive connection is held open for nginx's next request.
# Keep it above nginx's upstream keepalive_timeout (4 s in deploy/nginx), so
# that nginx closes idle connections first.
keepalive = _env_int("GUNICORN_KEEPALIVE", 5)

# A worker is replaced after this many requests (plus up to the jitter, so the
# workers do not all restart at once): whatever a long-lived process
# accumulates is given back. Memory measured flat without it; this is a safety
# net. 0 turns recycling off.
max_requests = _env_int("GUNICORN_MAX_REQUESTS", 100_000)
max_requests_jitter = _env_int("GUNICORN_MAX_REQUESTS_JITTER", 10_000)

# Importing Django once in the master makes workers start fast and share the
# pages of the imported code. Nothing connects to PostgreSQL or Redis at import,
# so no connection is shared across the fork.
preload_app = os.environ.get("GUNICORN_PRELOAD", "1").strip().lower() not in {"0", "false", "no", "off"}

# A request that takes longer than this is stuck; the worker is replaced.
timeout = _env_int("GUNICORN_TIMEOUT", 30, minimum=1)
# On stop or reload, workers finish the requests they hold for up to this long.
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 20)

# Access log on stdout (the journal under systemd). The request id is the one
# the service answered with, which nginx generated, so one id finds a request
# in nginx's log, this log and chat_server.log.
accesslog = "-"
access_log_format = '%(h)s "%({x-forwarded-for}i)s" "%(r)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'
errorlog = "-"

# gunicorn trusts X-Forwarded-Proto (for request.scheme) only from these peers;
# nginx runs on this host.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def on_starting(server) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        # Files left by a previous run would be added to this run's numbers.
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
