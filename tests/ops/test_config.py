"""The operations settings in config.py: each bad value stops the service with a message naming it."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from EphemeralMessages import config
from restapi.log import JsonFormatter, RequestIdFilter, bind_request_id, unbind_request_id


def load(tmp_path: Path, **env: str) -> config.Config:
    return config.load({"DATA_DIR": str(tmp_path / "data"), **env})


def test_defaults(tmp_path: Path) -> None:
    loaded = load(tmp_path)
    assert loaded.log_format == "text"
    assert loaded.sentry_dsn is None
    assert loaded.metrics_dir is None
    assert loaded.static_root == config.BASE_DIR / "EphemeralMessages" / "static"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LOG_FORMAT", "xml"),
        ("SENTRY_DSN", "not a dsn"),
        ("SENTRY_DSN", "https://sentry.example.org/12"),
        ("SENTRY_TRACES_SAMPLE_RATE", "1.5"),
        ("SENTRY_TRACES_SAMPLE_RATE", "often"),
        ("PROMETHEUS_MULTIPROC_DIR", "relative/dir"),
        ("PROMETHEUS_MULTIPROC_DIR", " "),
        ("STATIC_ROOT", "static"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=f"^{name}:"):
        load(tmp_path, **{name: value})


def test_folders_are_created(tmp_path: Path) -> None:
    loaded = load(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "m"), STATIC_ROOT=str(tmp_path / "s"))
    assert loaded.metrics_dir == tmp_path / "m"
    assert loaded.metrics_dir.is_dir()
    assert loaded.static_root.is_dir()


def test_a_folder_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ImproperlyConfigured, match=r"^PROMETHEUS_MULTIPROC_DIR: cannot create"):
        load(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "file" / "m"))


def test_valid_sentry_settings(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        SENTRY_DSN="https://abc123@sentry.example.org/42",
        SENTRY_ENVIRONMENT="staging",
        SENTRY_TRACES_SAMPLE_RATE="0.25",
        LOG_FORMAT="JSON",
    )
    assert loaded.sentry_dsn == "https://abc123@sentry.example.org/42"
    assert loaded.sentry_environment == "staging"
    assert loaded.sentry_traces_sample_rate == 0.25
    assert loaded.log_format == "json"


def _record(message: str, *args: object, exc_info: object = None) -> logging.LogRecord:
    record = logging.LogRecord("restapi.test", logging.WARNING, __file__, 1, message, args, exc_info)
    RequestIdFilter().filter(record)
    return record


def test_json_log_lines_carry_the_request_id() -> None:
    token = bind_request_id("req-42")
    try:
        line = JsonFormatter().format(_record('bad "%s"\nsecond line', "input"))
    finally:
        unbind_request_id(token)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["request_id"] == "req-42"
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "restapi.test"
    assert entry["message"] == 'bad "input"\nsecond line'
    assert entry["time"].endswith("+00:00")


def test_json_log_lines_include_the_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = _record("failed", exc_info=sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert entry["request_id"] == "-"
    assert "ValueError: boom" in entry["exception"]
