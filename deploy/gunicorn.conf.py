"""
Gunicorn settings for the Ephemeral Messaging Service.

    gunicorn -c deploy/gunicorn.conf.py                               # the regular endpoints
    GUNICORN_WORKER_CLASS=asgi gunicorn -c deploy/gunicorn.conf.py    # long-polls

Both serve every endpoint. The threaded server (gthread, the default) is the
fastest of gunicorn's workers for the regular endpoints; a request that waits for
mail holds one of its threads. granian (deploy/granian.py) serves them faster
still but keeps fewer of the deployment's guarantees (docs/DEPLOYMENT.md,
"granian, the alternative HTTP server"), so this stays the default. The
asynchronous server (asgi) holds no thread and no database connection for a
waiting request, so nginx sends every request that asks to
wait there (docs/DESIGN.md, "The server model").

Where it listens and the performance values come from the environment
(``GUNICORN_<NAME>``, read and checked by ``EphemeralMessages.config``, without
loading Django's settings), so a host with more cores or a different socket
changes a variable, not this file; the defaults are the ones docs/PERFORMANCE.md measured
(rerun ``make bench`` before changing them). With PROMETHEUS_MULTIPROC_DIR set,
the hooks below keep the per-process metric files of prometheus-client
consistent: emptied when the master starts, and a dead worker's live gauges
dropped when it exits.
"""

import os
import sys
from pathlib import Path

# The project's folder, so that this file works from any working directory.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django.core.exceptions import ImproperlyConfigured

from EphemeralMessages.config import load_gunicorn

try:
    GUNICORN = load_gunicorn()
except ImproperlyConfigured as exc:
    raise SystemExit(str(exc)) from None

# Gunicorn's workers with one addition: waiters are answered when a worker stops.
_WORKER_CLASSES = {"gthread": "EphemeralMessages.workers.ThreadWorker", "asgi": "EphemeralMessages.workers.ASGIWorker"}
_asynchronous = GUNICORN.worker_class == "asgi"
wsgi_app = "EphemeralMessages.asgi:application" if _asynchronous else "EphemeralMessages.wsgi"
bind = GUNICORN.bind

# A request is about a millisecond of Python around waits on PostgreSQL (the
# commit of every POST and collect waits for the WAL flush) and Redis. One
# process per core keeps the cores busy; threads in each process overlap the
# waits, so commits from several requests share one flush. gthread also keeps
# client connections open between requests, which the sync worker cannot.
# Measured (docs/PERFORMANCE.md): 2 x 8 gthread beat 2, 4 and 8 sync workers
# and 2 x 4 gthread. Each thread holds one persistent PostgreSQL connection:
# workers x threads connections per host.
worker_class = _WORKER_CLASSES.get(GUNICORN.worker_class, GUNICORN.worker_class)
workers = GUNICORN.workers
# The asynchronous worker has no thread pool of its own (a threads setting above 1 only draws a warning).
threads = 1 if _asynchronous else GUNICORN.threads
# Open connections per asynchronous worker: each waiting client holds one.
worker_connections = GUNICORN.worker_connections

# Seconds an idle keep-alive connection is held open for nginx's next request.
# Keep it above nginx's upstream keepalive_timeout (4 s in deploy/nginx), so
# that nginx closes idle connections first.
keepalive = GUNICORN.keepalive

# A worker is replaced after this many requests (plus up to the jitter, so the
# workers do not all restart at once): whatever a long-lived process
# accumulates is given back. Memory measured flat without it; this is a safety
# net. 0 turns recycling off.
max_requests = GUNICORN.max_requests
max_requests_jitter = GUNICORN.max_requests_jitter

# Importing Django once in the master makes workers start fast and share the
# pages of the imported code. Nothing connects to PostgreSQL or Redis at import,
# so no connection is shared across the fork.
preload_app = GUNICORN.preload_app

# A request that takes longer than this is stuck; the worker is replaced.
timeout = GUNICORN.timeout
# On stop or reload, workers finish the requests they hold for up to this long.
graceful_timeout = GUNICORN.graceful_timeout

# Access log on stdout (the journal under systemd). The request id is the one
# the service answered with, which nginx generated, so one id finds a request
# in nginx's log, this log and chat_server.log.
accesslog = "-"
access_log_format = '%(h)s "%({x-forwarded-for}i)s" "%(r)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'
errorlog = "-"

# gunicorn's parsing limits, at their maxima, so that they are never what refuses a
# request: nginx refuses first (large_client_header_buffers 4 4k in the site), with
# a JSON answer, where gunicorn's own refusal is an HTML page. With the defaults
# (4094 bytes of request line, 100 headers) a request line of 4 to 8 KiB or a
# request with 101 small headers passed nginx and got gunicorn's HTML 414 or 431.
# gunicorn listens on the loopback only, behind nginx.
limit_request_line = 8190
limit_request_fields = 32768
limit_request_field_size = 8190

# No control socket (gunicornc). gunicorn's default path is one per user
# ($XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl), so every master
# of that user on the host would take it over in turn: the regular and the
# long-poll service, the new and the old master during a USR2 upgrade, and the
# one stopping last removes the socket of the one still running. The service is
# driven by systemd and signals (HUP, USR2, TERM, TTIN/TTOU), not gunicornc.
control_socket_disable = True

# gunicorn trusts X-Forwarded-Proto (for request.scheme) only from these peers;
# nginx runs on this host.
forwarded_allow_ips = GUNICORN.forwarded_allow_ips


def when_ready(server) -> None:
    if server.master_pid:
        # Started by USR2 beside the old master (deploy/systemd/gunicorn-upgrade):
        # systemd is to follow this process, not the old one about to exit
        # (the unit sets NotifyAccess=all so that it listens to this one).
        from gunicorn import systemd

        systemd.sd_notify(f"MAINPID={os.getpid()}", server.log)

    from django.apps import apps

    # The master has loaded the service (this file also serves bench/bare.py): the
    # OpenAPI document built here is inherited by every worker instead of built by each.
    if preload_app and apps.ready and apps.is_installed("restapi"):
        from restapi.schema_view import build_schema

        build_schema()


def on_starting(server) -> None:
    if GUNICORN.metrics_dir:
        # Files left by a previous run would be added to this run's numbers.
        for stale in GUNICORN.metrics_dir.glob("*.db"):
            stale.unlink()


def child_exit(server, worker) -> None:
    if GUNICORN.metrics_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
