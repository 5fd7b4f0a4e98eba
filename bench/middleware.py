"""
What each middleware of the service costs per request, in process CPU.

    .venv/bin/python -m bench.middleware

A view that does nothing is served with the service's settings (``bench.stack``)
and its whole middleware, then with each middleware left out in turn; a
middleware's cost is the difference. The bare view of ``bench.bare`` (Django's
default middleware) is the reference, as in ``bench.inprocess``. Each variant
runs in a process of its own, since the middleware is fixed at start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from bench.inprocess import WARM_UP, Caller, configure

# Left out together: the other two need the session.
SESSION = "django.contrib.sessions.middleware.SessionMiddleware"
NEED_THE_SESSION = (
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
)


def measure(rounds: int, requests: int) -> list[float]:
    """CPU milliseconds per request of each timed block, in this process's configuration."""
    import time

    import django

    django.setup()
    call = Caller()
    for _ in range(WARM_UP):
        call("GET", "/")
    blocks = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(requests):
            call("GET", "/")
        blocks.append(1000 * (time.process_time() - started) / requests)
    if any(not status.startswith("200") for status in call.statuses):
        sys.exit(f"an answer was not 200: {sorted(set(call.statuses))}")
    return blocks


def run_variant(settings_module: str, without: tuple[str, ...], rounds: int, requests: int) -> float:
    env = {**os.environ, "BENCH_SETTINGS": settings_module, "BENCH_WITHOUT": ",".join(without)}
    command = [sys.executable, "-m", "bench.middleware", "--child", "--rounds", str(rounds)]
    command += ["--requests", str(requests)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if completed.returncode:
        sys.exit(completed.stdout + completed.stderr)
    return statistics.median(json.loads(completed.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000, help="requests per timed block")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        configure("bare" if os.environ["BENCH_SETTINGS"] == "bench.bare" else "service")
        os.environ["DJANGO_SETTINGS_MODULE"] = os.environ["BENCH_SETTINGS"]
        print(json.dumps(measure(args.rounds, args.requests)))
        return 0

    configure("service")
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.stack"
    from django.conf import settings

    bare = run_variant("bench.bare", (), args.rounds, args.requests)
    whole = run_variant("bench.stack", (), args.rounds, args.requests)
    print(f"bare view, Django's default middleware   {bare:.3f} ms")
    print(f"service middleware, view that does nothing {whole:.3f} ms ({whole / bare:.2f} x bare)")
    print(f"{'left out':58s} {'ms':>7s} {'cost':>7s}")
    for name in settings.MIDDLEWARE:
        if name in NEED_THE_SESSION:
            continue
        left_out = (name, *NEED_THE_SESSION) if name == SESSION else (name,)
        without = run_variant("bench.stack", left_out, args.rounds, args.requests)
        label = f"{name} (with auth and messages)" if name == SESSION else name
        print(f"{label:58s} {without:7.3f} {whole - without:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
