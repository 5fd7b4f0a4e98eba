"""Configuration: safe defaults for the embedded mode, a named error for every bad value."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from EphemeralMessages import config
from tests.support.processes import PROJECT_DIR

GOOD_KEY = "k" * 50
SERVER_DATABASE = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/db",
    "SECRET_KEY": GOOD_KEY,
    "ALLOWED_HOSTS": "chat.example.com",
}


@pytest.fixture
def load(tmp_path):
    def load(**env: str) -> config.Config:
        return config.load({"DATA_DIR": str(tmp_path), "LOG_FILE": str(tmp_path / "chat_server.log"), **env})

    return load


def test_embedded_defaults(load, tmp_path):
    loaded = load()

    assert loaded.embedded
    assert loaded.debug is False
    assert loaded.database["ENGINE"] == "restapi.storage.sqlite"
    assert loaded.database["NAME"] == str(tmp_path / "messages.sqlite3")
    assert "journal_mode=WAL" in loaded.database["OPTIONS"]["init_command"]
    assert loaded.redis_url is None
    assert (loaded.default_timeout, loaded.max_timeout, loaded.max_text_length) == (60, 31_536_000, 512)
    assert (loaded.throttle_rate, loaded.retention_days, loaded.max_collect) == ("100/day", 30, 1000)


def test_embedded_secret_key_is_random_and_kept_per_data_folder(load, tmp_path):
    first = load().secret_key

    assert len(first) >= 50
    assert load().secret_key == first
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"


def test_server_database_settings(load):
    loaded = load(**SERVER_DATABASE, REDIS_URL="redis://127.0.0.1:6379/2", REDIS_TIMEOUT="0.05")

    assert not loaded.embedded
    # Django's PostgreSQL backend with a health check that needs no round trip.
    assert loaded.database["ENGINE"] == "restapi.storage.postgresql"
    assert loaded.database["CONN_HEALTH_CHECKS"] is True
    assert loaded.allowed_hosts == ["chat.example.com"]
    assert (loaded.redis_url, loaded.redis_timeout) == ("redis://127.0.0.1:6379/2", 0.05)
    assert loaded.redis_cluster is False
    assert load(**SERVER_DATABASE, REDIS_URL="redis://redis1:7000/0", REDIS_CLUSTER="1").redis_cluster is True
    # Prepared statements unless a pooler in front cannot carry them.
    assert loaded.database["OPTIONS"]["prepared_statements"] is True
    assert load(**SERVER_DATABASE, CHAT_DB_PREPARED_STATEMENTS="0").database["OPTIONS"]["prepared_statements"] is False


def test_a_list_of_database_hosts_is_handed_to_libpq_as_lists(load):
    """Every app host finds the primary after a failover: libpq tries the hosts and keeps the writable one."""
    url = "postgres://chat:secret@db1.internal:5433,[fd00::2],10.0.0.3:5432/chat?target_session_attrs=read-write"

    database = load(**{**SERVER_DATABASE, "DATABASE_URL": url}).database

    assert (database["HOST"], database["PORT"]) == ("db1.internal,fd00::2,10.0.0.3", "5433,5432,5432")
    assert (database["USER"], database["PASSWORD"], database["NAME"]) == ("chat", "secret", "chat")
    assert database["OPTIONS"]["target_session_attrs"] == "read-write"


def test_debug_is_only_on_when_asked(load):
    assert load(DEBUG="true").debug is True
    assert load(DEBUG="0").debug is False


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"DATABASE_URL": "mysql://root@localhost/db", "SECRET_KEY": GOOD_KEY, "ALLOWED_HOSTS": "x"}, "DATABASE_URL"),
        ({"DATABASE_URL": "not a url at all"}, "DATABASE_URL"),
        ({**SERVER_DATABASE, "DATABASE_URL": "postgres://u@db1:5432,db2:port/db"}, "DATABASE_URL"),
        ({**SERVER_DATABASE, "DATABASE_URL": "postgres://u@db1:5432,/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgres://postgres@127.0.0.1/db", "ALLOWED_HOSTS": "x"}, "SECRET_KEY"),
        ({**SERVER_DATABASE, "SECRET_KEY": "django-insecure-" + "x" * 50}, "SECRET_KEY"),
        ({**SERVER_DATABASE, "SECRET_KEY": "short"}, "SECRET_KEY"),
        ({**SERVER_DATABASE, "ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS"),
        ({"REDIS_URL": "127.0.0.1:6379"}, "REDIS_URL"),
        ({"REDIS_CLUSTER": "1"}, "REDIS_CLUSTER"),
        ({"REDIS_CLUSTER": "1", "REDIS_URL": "unix:///run/redis.sock"}, "REDIS_CLUSTER"),
        ({"REDIS_CLUSTER": "sometimes", "REDIS_URL": "redis://r1:7000"}, "REDIS_CLUSTER"),
        ({"REDIS_TIMEOUT": "soon"}, "REDIS_TIMEOUT"),
        ({"REDIS_TIMEOUT": "30"}, "REDIS_TIMEOUT"),
        ({"REDIS_TIMEOUT": "nan"}, "REDIS_TIMEOUT"),
        ({"CHAT_DEFAULT_TIMEOUT": "-1"}, "CHAT_DEFAULT_TIMEOUT"),
        ({"CHAT_DEFAULT_TIMEOUT": "61", "CHAT_MAX_TIMEOUT": "60"}, "CHAT_DEFAULT_TIMEOUT"),
        ({"CHAT_MAX_TIMEOUT": "0"}, "CHAT_MAX_TIMEOUT"),
        ({"CHAT_MAX_TIMEOUT": "1e6"}, "CHAT_MAX_TIMEOUT"),
        ({"CHAT_MAX_TEXT_LENGTH": "0"}, "CHAT_MAX_TEXT_LENGTH"),
        ({"CHAT_MAX_COLLECT": "lots"}, "CHAT_MAX_COLLECT"),
        ({"CHAT_THROTTLE_RATE": "100"}, "CHAT_THROTTLE_RATE"),
        ({"CHAT_THROTTLE_RATE": "100/fortnight"}, "CHAT_THROTTLE_RATE"),
        ({"CHAT_THROTTLE_RATE": "0/day"}, "CHAT_THROTTLE_RATE"),
        ({"CHAT_READ_THROTTLE_RATE": "600"}, "CHAT_READ_THROTTLE_RATE"),
        ({"CHAT_READ_THROTTLE_RATE": "0/min"}, "CHAT_READ_THROTTLE_RATE"),
        ({"CHAT_ENCRYPTION_KEYS": "k1:dG9vIHNob3J0"}, "CHAT_ENCRYPTION_KEYS"),
        ({"CHAT_ENCRYPTION_KEYS": "no-key-id"}, "CHAT_ENCRYPTION_KEYS"),
        ({"CHAT_TRUSTED_PROXIES": "10.0.0.1,not-an-ip"}, "CHAT_TRUSTED_PROXIES"),
        ({"CHAT_RETENTION_DAYS": "a month"}, "CHAT_RETENTION_DAYS"),
        ({**SERVER_DATABASE, "CHAT_DB_PREPARED_STATEMENTS": "sometimes"}, "CHAT_DB_PREPARED_STATEMENTS"),
        ({"CHAT_RETENTION_DAYS": "-1"}, "CHAT_RETENTION_DAYS"),
        ({"CHAT_RETENTION_DAYS": "55"}, "CHAT_RETENTION_DAYS"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"LOG_ROTATION": "weekly"}, "LOG_ROTATION"),
        ({"LOG_FILE": "/no/such/folder/chat_server.log"}, "LOG_FILE"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(load, env, named):
    with pytest.raises(ImproperlyConfigured, match=rf"^{named}:"):
        load(**env)


def test_retention_is_refused_past_what_the_ring_of_partitions_takes(load):
    assert load(CHAT_RETENTION_DAYS="54").retention_days == 54
    with pytest.raises(ImproperlyConfigured, match=r"^CHAT_RETENTION_DAYS: must be at most 54, got 90\. "):
        load(CHAT_RETENTION_DAYS="90")


@pytest.mark.parametrize(("raw", "normalised"), [("5/min", "5/min"), ("100/hour", "100/hour"), (" 7 / Day ", "7/day")])
def test_throttle_rates(load, raw, normalised):
    assert load(CHAT_THROTTLE_RATE=raw).throttle_rate == normalised


def test_trusted_proxies_are_networks(load):
    assert load(CHAT_TRUSTED_PROXIES="10.0.0.1, 192.168.0.0/16").trusted_proxies == ["10.0.0.1/32", "192.168.0.0/16"]


def test_the_service_refuses_to_start_with_a_bad_setting(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env={"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path), "CHAT_MAX_TIMEOUT": "forever"},
        capture_output=True,
        text=True,
        cwd=config.BASE_DIR,
        check=False,
    )

    assert result.returncode != 0
    assert "CHAT_MAX_TIMEOUT: expected a whole number, got 'forever'." in result.stderr


@pytest.mark.parametrize(
    ("rotation", "handler"),
    [("size", "logging.handlers.RotatingFileHandler"), ("external", "logging.handlers.WatchedFileHandler")],
)
def test_log_rotation_picks_the_file_handler(tmp_path, rotation, handler):
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.conf import settings; print(settings.LOGGING['handlers']['file']['class'])",
        ],
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "EphemeralMessages.settings",
            "DATA_DIR": str(tmp_path),
            "LOG_FILE": str(tmp_path / "chat_server.log"),
            "LOG_ROTATION": rotation,
        },
        capture_output=True,
        text=True,
        cwd=config.BASE_DIR,
        check=True,
    )

    assert result.stdout.strip() == handler


def test_only_the_config_module_reads_the_environment():
    import re

    # Entry points may only give a default that config.py then reads and checks:
    # the settings module, and the asynchronous server's CHAT_CONN_MAX_AGE (asgi.py).
    defaults = r"os\.environ\.setdefault\(\"(DJANGO_SETTINGS_MODULE|CHAT_CONN_MAX_AGE)\""
    reads = re.compile(rf"(?!{defaults})os\.environ|os\.getenv|getenv\(")
    sources = [*(config.BASE_DIR / "restapi").rglob("*.py"), *(config.BASE_DIR / "EphemeralMessages").glob("*.py")]
    sources.append(config.BASE_DIR / "deploy" / "gunicorn.conf.py")
    readers = [str(path.relative_to(config.BASE_DIR)) for path in sources if reads.search(path.read_text())]
    assert readers == ["EphemeralMessages/config.py"]


def test_reads_are_limited_by_default_and_texts_kept_as_sent(load):
    loaded = load()
    assert loaded.read_throttle_rate == "600/min"
    assert loaded.encryption_keys is None


def test_encryption_keys_are_read_in_order(load):
    first, second = "A" * 43 + "=", "B" * 43 + "="
    keys = load(CHAT_ENCRYPTION_KEYS=f"new:{first}, old:{second}").encryption_keys
    assert [key_id for key_id, _ in keys] == ["new", "old"]
    assert all(len(key) == 32 for _, key in keys)


def test_a_bad_encryption_key_stops_the_process_naming_the_variable_not_the_key(tmp_path):
    bad_key = "c2VjcmV0LWJ1dC10b28tc2hvcnQ"
    env = {"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path), "LOG_FILE": str(tmp_path / "log")}
    env["CHAT_ENCRYPTION_KEYS"] = f"k1:{bad_key}"
    run = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode != 0
    assert "CHAT_ENCRYPTION_KEYS: the key 'k1' is not 32 bytes" in run.stderr
    assert bad_key not in run.stderr + run.stdout
