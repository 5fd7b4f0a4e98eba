"""
CPU per request of each endpoint with no HTTP server: the WSGI application called directly.

    .venv/bin/python -m bench.inprocess                 # every scenario
    .venv/bin/python -m bench.inprocess --rounds 8 read

Without gunicorn, nginx and the load generator competing for the two cores, the
process's own CPU time per request moves by a few per cent between runs, so a
change to the service can be judged in minutes: run this before and after it,
or profile one scenario with ``py-spy record -- .venv/bin/python -m bench.inprocess read``.
It uses the benchmark's PostgreSQL database and Redis database (``BENCH_DATABASE_URL``,
``BENCH_REDIS_URL``; the Redis database is flushed). Each scenario runs ``--rounds``
blocks of ``--requests`` requests after a warm-up, and prints the median and the
lowest block.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable

from bench import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL

SCENARIOS = ("bare", "post", "read", "read-live", "collect")
WARM_UP = 200
READ_IDS = 50

Request = tuple[str, str, bytes]


def configure(scenario: str) -> None:
    os.environ.update(
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        DEBUG="0",
        CHAT_THROTTLE_RATE="1000000000/s",
        CHAT_READ_THROTTLE_RATE="1000000000/s",
    )
    if scenario == "bare":
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.bare"
        return
    os.environ.update(
        DJANGO_SETTINGS_MODULE="EphemeralMessages.settings",
        DATABASE_URL=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        REDIS_URL=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        LOG_FILE=os.devnull,
    )


class Caller:
    """Calls the WSGI application as a server would, keeping the status of every answer."""

    def __init__(self) -> None:
        from django.core.wsgi import get_wsgi_application

        self.application = get_wsgi_application()
        self.statuses: list[str] = []

    def _start_response(self, status: str, headers: list, exc_info: object = None) -> None:
        self.statuses.append(status)

    def __call__(self, method: str, path: str, body: bytes = b"") -> bytes:
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_ACCEPT": "*/*",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
        }
        answer = self.application(environ, self._start_response)
        try:
            return b"".join(answer)
        finally:
            answer.close()


def requests_for(scenario: str, call: Caller) -> Callable[[int], Iterable[Request]]:
    """A function giving the ``n`` next requests of ``scenario``, each to be answered with 2xx."""
    tag = secrets.token_hex(4)

    def send(username: str, timeout: int = 60) -> Request:
        return "POST", "/chat", json.dumps({"username": username, "text": "hello there", "timeout": timeout}).encode()

    if scenario == "bare":
        return lambda n: [("GET", "/", b"")] * n
    if scenario == "post":
        return lambda n: [send(f"p{tag}-{i}") for i in range(n)]
    if scenario in ("read", "read-live"):
        # Expired at once, a message is settled and kept in the hot store after its
        # first read; a live one is read from the database every time.
        timeout = 0 if scenario == "read" else 3600
        ids = [json.loads(call(*send(f"r{tag}", timeout=timeout)))["id"] for _ in range(READ_IDS)]
        return lambda n: [("GET", f"/chat/{ids[i % READ_IDS]}", b"") for i in range(n)]

    counter = iter(range(10**9))

    def collects(n: int) -> list[Request]:
        # One live message in each inbox, sent before the block is timed.
        inboxes = [f"c{tag}-{next(counter)}" for _ in range(n)]
        for username in inboxes:
            call(*send(username))
        return [("GET", f"/chats/{username}", b"") for username in inboxes]

    return collects


def measure(scenario: str, rounds: int, requests: int) -> list[float]:
    """CPU milliseconds per request of each timed block."""
    configure(scenario)
    import django

    django.setup()
    if scenario != "bare":
        import redis
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    call = Caller()
    next_requests = requests_for(scenario, call)
    for request in next_requests(WARM_UP):
        call(*request)
    blocks = []
    for _ in range(rounds):
        batch = list(next_requests(requests))
        call.statuses.clear()
        started = time.process_time()
        for request in batch:
            call(*request)
        blocks.append(1000 * (time.process_time() - started) / requests)
        failed = [status for status in call.statuses if not status.startswith("2")]
        if failed:
            sys.exit(f"{scenario}: {len(failed)} answers were not 2xx, e.g. {failed[0]}")
    return blocks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "scenarios", nargs="*", metavar="scenario", help=f"any of {', '.join(SCENARIOS)} (default: all)"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1000, help="requests per timed block")
    parser.add_argument("--only", choices=SCENARIOS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}")

    if args.only:
        # One scenario per process: the bare view and the service need different settings.
        print(json.dumps(measure(args.only, args.rounds, args.requests)))
        return 0
    print(f"{'scenario':10s} {'median':>8s} {'lowest':>8s}  CPU ms per request, {args.rounds} x {args.requests}")
    for scenario in args.scenarios or SCENARIOS:
        command = [sys.executable, "-m", "bench.inprocess", "--only", scenario]
        command += ["--rounds", str(args.rounds), "--requests", str(args.requests)]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode:
            print(completed.stdout + completed.stderr, file=sys.stderr)
            return completed.returncode
        blocks = json.loads(completed.stdout.strip().splitlines()[-1])
        print(f"{scenario:10s} {statistics.median(blocks):8.3f} {min(blocks):8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
