"""
granian, the alternative HTTP server for the threaded endpoints (docs/DEPLOYMENT.md, "granian").

    .venv/bin/python deploy/granian.py EphemeralMessages.wsgi:application

gunicorn with deploy/gunicorn.conf.py stays the default: granian serves the same
WSGI application faster but cannot keep every guarantee the deployment makes
(docs/PERFORMANCE.md, "gunicorn or granian"). This sets the shape
docs/PERFORMANCE.md measured it in, the same as gunicorn's (one worker per CPU,
8 threads running the application in each: each thread holds one PostgreSQL
connection, and granian's own default would be hundreds of threads), and then
becomes granian (exec), so that nothing imported here stays in the process that
forks the workers. Every value is granian's own ``GRANIAN_*`` variable: one set in
the environment wins, and granian checks it before it serves, naming the option.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The access log carries what gunicorn's does. granian logs request headers only,
# so the request id is the X-Request-ID nginx sends, which the service adopts and
# answers with (the same id in nginx's log and chat_server.log).
ACCESS_LOG_FORMAT = (
    '%(addr)s "%(header{x-forwarded-for})s" "%(method)s %(path)s %(protocol)s" %(status)d '
    "%(dt_ms).0fms rid=%(header{x-request-id})s"
)

DEFAULTS = {
    "GRANIAN_INTERFACE": "wsgi",
    "GRANIAN_HOST": "127.0.0.1",
    "GRANIAN_PORT": "8000",
    "GRANIAN_WORKERS": str(os.cpu_count() or 1),
    "GRANIAN_BLOCKING_THREADS": "8",
    # gunicorn's listen backlog.
    "GRANIAN_BACKLOG": "2048",
    # A worker that dies is replaced (off by default in granian).
    "GRANIAN_RESPAWN_FAILED_WORKERS": "true",
    # On stop or reload, workers finish the requests they hold for up to this long
    # (gunicorn's graceful_timeout); granian's own default waits without limit.
    "GRANIAN_WORKERS_KILL_TIMEOUT": "20",
    "GRANIAN_LOG_ACCESS_ENABLED": "true",
    "GRANIAN_LOG_ACCESS_FMT": ACCESS_LOG_FORMAT,
}


def environment(base: dict[str, str]) -> dict[str, str]:
    """``base`` with the defaults it does not set itself."""
    return {**DEFAULTS, **base}


def command(arguments: list[str]) -> list[str]:
    """granian from the same environment as this Python, with ``arguments`` (options, then the application)."""
    return [str(Path(sys.executable).with_name("granian")), *arguments]


if __name__ == "__main__":
    argv = command(sys.argv[1:])
    os.execve(argv[0], argv, environment(dict(os.environ)))  # noqa: S606 - becomes granian, the program next to this Python
