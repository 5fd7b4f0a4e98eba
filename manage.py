#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import fcntl
import os
import sys

# Holds the lock below for as long as the command runs.
_metrics_file_lock = None


def _write_metrics_to_one_shared_file() -> None:
    """
    Under gunicorn each process keeps its metrics in PROMETHEUS_MULTIPROC_DIR in
    files named after its process id, and /metrics adds up every file there. A
    management command is a short-lived process: named after its id, each daily
    purge would leave one more file behind until gunicorn restarts. Commands
    write to one file instead, kept across runs, so the purge's counts still add
    up; a command that finds another one holding it (two at once) falls back to
    a file of its own. Must run before any metric is created.
    """
    global _metrics_file_lock
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory or not os.path.isdir(directory):
        return
    lock = open(os.path.join(directory, "management-commands.lock"), "w")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        return
    _metrics_file_lock = lock
    from prometheus_client import values

    values.ValueClass = values.MultiProcessValue(process_identifier=lambda: "management-commands")


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "EphemeralMessages.settings")
    _write_metrics_to_one_shared_file()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
