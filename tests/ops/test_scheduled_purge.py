"""
The retention purge as it is scheduled in production: the cron line of
deploy/cron/ephemeral-messages run as written (only this host's paths put in),
its log rotated by deploy/logrotate/, and the metrics it leaves for /metrics.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from prometheus_client import CollectorRegistry, multiprocess

from restapi.models import Message
from tests.support.processes import PROJECT_DIR, TEST_SECRET_KEY, current_database_url

pytestmark = pytest.mark.django_db(transaction=True)

CRON_FILE = PROJECT_DIR / "deploy" / "cron" / "ephemeral-messages"
LOGROTATE_FILE = PROJECT_DIR / "deploy" / "logrotate" / "ephemeral-messages"
SERVICE_UNIT = PROJECT_DIR / "deploy" / "systemd" / "ephemeral-messages.service"
OPERATIONS = PROJECT_DIR / "docs" / "OPERATIONS.md"
LOG_DIR = "/var/log/ephemeral-messages"


def cron_job_line() -> str:
    jobs = [
        line
        for line in CRON_FILE.read_text().splitlines()
        if line.strip() and not line.startswith("#") and not re.match(r"^[A-Z]+=", line)
    ]
    assert len(jobs) == 1
    return jobs[0]


def cron_entry() -> tuple[str, str, str]:
    """The schedule, user and command of the one job in the cron file."""
    minute, hour, day, month, weekday, user, command = cron_job_line().split(maxsplit=6)
    return " ".join((minute, hour, day, month, weekday)), user, command


def run_cron_job(command: str, tmp_path: Path, env_file: Path) -> None:
    local = (
        command.replace("/srv/ephemeral-messages/app", str(PROJECT_DIR))
        .replace("/etc/ephemeral-messages/env", str(env_file))
        .replace(LOG_DIR, str(tmp_path / "log"))
    )
    # cron's own environment: almost nothing, the variables the file sets.
    cron_env = {"PATH": "/usr/bin:/bin", "SHELL": "/bin/sh", "HOME": str(tmp_path)}
    subprocess.run(["/bin/sh", "-c", local], cwd="/", env=cron_env, check=True, timeout=120)


def service_environment(tmp_path: Path) -> tuple[Path, Path]:
    """An environment file like /etc/ephemeral-messages/env for the test database; its metrics folder."""
    (tmp_path / "log").mkdir()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env_file = tmp_path / "env"
    env_file.write_text(
        f"DATABASE_URL={current_database_url()}\nSECRET_KEY={TEST_SECRET_KEY}\nALLOWED_HOSTS=localhost\n"
        f"DATA_DIR={tmp_path / 'data'}\nLOG_FILE={tmp_path / 'log' / 'chat_server.log'}\n"
        f"PROMETHEUS_MULTIPROC_DIR={metrics_dir}\n"
    )
    return env_file, metrics_dir


def expired_message(days_ago: int) -> Message:
    expired = timezone.now() - timedelta(days=days_ago)
    return Message.objects.create(username="old", text="t", created_at=expired, expiration_date=expired)


def test_the_cron_job_runs_the_purge_as_the_service_user(tmp_path: Path) -> None:
    _, user, command = cron_entry()
    assert user == re.search(r"^User=(\S+)$", SERVICE_UNIT.read_text(), re.MULTILINE)[1]
    # The guide shows the file's own line, so what an operator copies is what runs here.
    assert f"\n    {cron_job_line()}\n" in OPERATIONS.read_text()

    env_file, _ = service_environment(tmp_path)
    old = expired_message(days_ago=40)

    run_cron_job(command, tmp_path, env_file)

    assert not Message.objects.filter(id=old.id).exists()
    assert re.search(r"^Deleted 1 messages expired before ", (tmp_path / "log" / "purge.log").read_text(), re.M)


def test_purges_leave_no_metrics_file_per_run_and_their_counts_add_up(tmp_path: Path) -> None:
    _, _, command = cron_entry()
    env_file, metrics_dir = service_environment(tmp_path)
    files_after_each_run = []
    for _ in range(3):
        expired_message(days_ago=40)
        run_cron_job(command, tmp_path, env_file)
        files_after_each_run.append(sorted(path.name for path in metrics_dir.iterdir()))

    assert files_after_each_run[0] == files_after_each_run[1] == files_after_each_run[2]
    assert not [name for name in files_after_each_run[0] if re.search(r"_\d+\.db$", name)]
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(metrics_dir))
    # Made through the ORM, in today's slot, so deleted row by row and counted.
    assert registry.get_sample_value("chat_messages_expired_unread_total", {"count": "counted"}) == 3
    last_run = registry.get_sample_value("chat_retention_last_success_timestamp_seconds")
    assert abs(last_run - timezone.now().timestamp()) < 120


def test_logrotate_rotates_the_service_log_and_the_purge_log(tmp_path: Path) -> None:
    logrotate = shutil.which("logrotate") or "/usr/sbin/logrotate"
    if not Path(logrotate).exists():
        pytest.skip("logrotate is not installed (apt-get install -y logrotate)")
    logs = tmp_path / "log"
    logs.mkdir()
    for name in ("chat_server.log", "purge.log"):
        (logs / name).write_text("a line\n")
    owner = f"{pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name}"
    config = tmp_path / "logrotate.conf"
    config.write_text(LOGROTATE_FILE.read_text().replace(LOG_DIR, str(logs)).replace("ephemeral ephemeral", owner))

    subprocess.run([logrotate, "--force", "--state", str(tmp_path / "state"), str(config)], check=True, timeout=60)

    for name in ("chat_server.log", "purge.log"):
        assert (logs / f"{name}.1").read_text() == "a line\n"
        assert (logs / name).read_text() == ""
