"""
PostgreSQL's ceiling for the service's own statements: pgbench running them, with no service.

    .venv/bin/python -m bench.pgbench_statements                  # 16 clients, 10 s each
    .venv/bin/python -m bench.pgbench_statements --clients 32 --seconds 30

Each script is the statement the service runs, taken from the storage layer as
it stands, with pgbench's random values in place of the parameters:

- ``send``: the ``INSERT … RETURNING`` of ``POST /chat`` (a durable commit each);
- ``collect``: the ``UPDATE … RETURNING`` of ``GET /chats/<username>``;
- ``message``: both, for one username, as one message's life costs the primary:
  its transactions per second are messages per second;
- ``read``: the ``SELECT`` of ``GET /chat/<id>`` for a live message (of those
  that expire today: the statement names its slot's bounds).

It uses the benchmark's database (``BENCH_DATABASE_URL``, migrated here) and
prints pgbench's transactions per second and mean latency for each.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.inprocess import DEFAULT_DATABASE_URL
from restapi.message_ids import MAX_MESSAGE_ID, SECONDS_PER_DAY, day_slot, slot_bounds

USERS = 10_000
LIVE_SECONDS = 3600


def statements(*, bounds_as_parameters: bool = False) -> dict[str, str]:
    """
    The service's PostgreSQL statements, with ``%s`` parameters: the collect of
    today's live window, and the read of an id in ``today_slot()``.

    ``bounds_as_parameters``: the design not taken, for comparison: the
    window's bounds as pgbench variables (parameters of the prepared statement)
    and the read by id without its slot's bounds.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "EphemeralMessages.settings")
    import django

    django.setup()
    from restapi.storage import messages
    from restapi.storage.partitions import live_window
    from restapi.storage.sql import POSTGRESQL

    window = live_window()
    found = {
        "insert": messages.statements(POSTGRESQL).insert,
        "collect": messages.window_statements(POSTGRESQL, window).collect,
        "fetch": messages.fetch_statement(POSTGRESQL, today_slot()),
    }
    if bounds_as_parameters:
        as_variables = " OR ".join(f"id >= :w{2 * n} AND id < :w{2 * n + 1}" for n in range(len(window)))
        found["collect"] = found["collect"].replace(messages.in_window(window), f"({as_variables})")
        found["fetch"] = found["fetch"].replace(messages.in_slot(today_slot()), "TRUE")
    return found


def window_variables() -> dict[str, str]:
    """The live window's bounds as the pgbench variables w0, w1, … that statements(bounds_as_parameters=True) uses."""
    from restapi.storage.partitions import live_window

    bounds = [bound for id_range in live_window() for bound in id_range]
    return {f"w{n}": str(bound) for n, bound in enumerate(bounds)}


def today_slot() -> int:
    """The slot of the messages that expire today (restapi.message_ids)."""
    return day_slot(int(time.time() // SECONDS_PER_DAY))


def bind(statement: str, *values: str) -> str:
    """The statement with each ``%s`` replaced by a pgbench expression, in order."""
    parts = statement.split("%s")
    if len(parts) != len(values) + 1:
        raise ValueError(f"{len(parts) - 1} parameters, {len(values)} values: {statement}")
    text = parts[0] + "".join(value + rest for value, rest in zip(values, parts[1:], strict=True))
    return text.replace("%%", "%") + ";\n"


def scripts(sql: dict[str, str]) -> dict[str, str]:
    user = f"\\set u random(1, {USERS})\n"
    username = "'user' || :u"
    # Any id has a partition; a random one costs what the service's does.
    send = f"\\set id random(1, {MAX_MESSAGE_ID})\n" + bind(
        sql["insert"], ":id", username, "'a message of average length'", "NULL", str(LIVE_SECONDS)
    )
    # The inbox, an open inbox's claim condition (messages.claim_parameters), the limit.
    collect = bind(sql["collect"], username, "true", username, "''", "100")
    return {
        "send": user + send,
        "collect": user + collect,
        "message": user + send + collect,
        "read": "\\set id random(:low_id, :max_id)\n" + bind(sql["fetch"], ":id"),
    }


# As the service runs its statements (restapi/storage/postgresql): prepared, with
# generic plans; or, with CHAT_DB_PREPARED_STATEMENTS=0, planned at each execution.
PROTOCOLS = {
    "prepared": ("prepared", "-c plan_cache_mode=force_generic_plan"),
    "simple": ("simple", ""),
}


def run_pgbench(
    url: str, script: Path, *, clients: int, seconds: int, variables: dict[str, str], protocol: str = "simple"
) -> tuple[float, float]:
    defines = [f"--define={name}={value}" for name, value in variables.items()]
    mode, options = PROTOCOLS[protocol]
    command = ["pgbench", "-n", "-M", mode, "-c", str(clients), "-j", "2", "-T", str(seconds), *defines]
    env = {**os.environ, "PGOPTIONS": options}
    command += ["-f", str(script), url]
    output = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    tps = float(re.search(r"tps = ([\d.]+)", output).group(1))
    latency = float(re.search(r"latency average = ([\d.]+) ms", output).group(1))
    return tps, latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--protocol",
        choices=sorted(PROTOCOLS),
        default="prepared",
        help="prepared statements with generic plans, as the service runs them (default), or planned each time",
    )
    parser.add_argument(
        "--bounds-as-parameters",
        action="store_true",
        help="the partitions' id bounds as parameters instead of written in (the design not taken)",
    )
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    args = parser.parse_args()
    os.environ.update(DATABASE_URL=args.database_url, SECRET_KEY="bench-" + "k" * 50, ALLOWED_HOSTS="localhost")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], check=True, env=os.environ)
    sql = statements(bounds_as_parameters=args.bounds_as_parameters)
    window = window_variables() if args.bounds_as_parameters else {}
    url = args.database_url.replace("postgres://", "postgresql://", 1)
    print(f"pgbench, {args.clients} clients, {args.seconds} s each, {args.protocol} statements, on {url}")
    print(f"{'script':<10} {'tps':>10} {'ms':>8}")
    low_id, high_id = slot_bounds(today_slot())
    with tempfile.TemporaryDirectory() as folder:
        for name, text in scripts(sql).items():
            # Reads pick among the ids stored so far in the slot their statement names.
            newest = f"SELECT coalesce(max(id), {low_id}) FROM restapi_message WHERE id >= {low_id} AND id < {high_id}"
            max_id = subprocess.run(
                ["psql", "-X", "-A", "-t", url, "-c", newest],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            script = Path(folder) / f"{name}.sql"
            script.write_text(text)
            tps, latency = run_pgbench(
                url,
                script,
                clients=args.clients,
                seconds=args.seconds,
                variables={"low_id": str(low_id), "max_id": max_id, **window},
                protocol=args.protocol,
            )
            print(f"{name:<10} {tps:>10.0f} {latency:>8.2f}")


if __name__ == "__main__":
    main()
