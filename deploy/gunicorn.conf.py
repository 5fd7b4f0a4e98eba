"""
Gunicorn settings for the Ephemeral Messaging Service.

    gunicorn -c deploy/gunicorn.conf.py EphemeralMessages.wsgi

Where it listens and how many workers it runs come from the environment
(GUNICORN_BIND, GUNICORN_WORKERS); the rest is fixed here. With
PROMETHEUS_MULTIPROC_DIR set, the hooks below keep the per-process metric files
of prometheus-client consistent: emptied when the master starts, and a dead
worker's live gauges dropped when it exits.
"""

import os
from pathlib import Path


def _workers() -> int:
    raw = os.environ.get("GUNICORN_WORKERS", "").strip()
    if not raw:
        # Sync workers spend most of their time waiting on the database, so a
        # few per core keep the cores busy.
        return 2 * (os.cpu_count() or 1) + 1
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"GUNICORN_WORKERS: expected a whole number of at least 1, got {raw!r}.")
    return int(raw)


wsgi_app = "EphemeralMessages.wsgi"
bind = [address.strip() for address in os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")]
workers = _workers()
worker_class = "sync"

# A request that takes longer than this is stuck; the worker is replaced.
timeout = 30
# On stop or reload, workers finish the requests they hold for up to this long.
graceful_timeout = 20
keepalive = 5

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
