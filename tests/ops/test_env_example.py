"""The example environment file: every line, commented or not, is one the service and the shell read as meant."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from EphemeralMessages import config
from tests.support.processes import PROJECT_DIR, TEST_SECRET_KEY

EXAMPLE = PROJECT_DIR / "deploy" / "ephemeral-messages.env.example"
OPERATIONS = PROJECT_DIR / "docs" / "OPERATIONS.md"
COMMENTED_SETTING = re.compile(r"^# ?([A-Z][A-Z0-9_]*=.*)$")
SETTING = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")
# Folders the example names for the production host, moved under the test's own.
PATHS = ("DATA_DIR", "STATIC_ROOT", "LOG_FILE", "PROMETHEUS_MULTIPROC_DIR")


def uncommented(text: str) -> str:
    return "\n".join(COMMENTED_SETTING.sub(r"\1", line) for line in text.splitlines()) + "\n"


def settings_in(text: str) -> dict[str, str]:
    return {match[1]: match[2] for line in text.splitlines() if (match := SETTING.match(line))}


def sourced(path: Path) -> dict[str, str]:
    """The variables /bin/sh exports after `set -a; . path`, as the cron job and the guide load the file."""
    script = 'set -a; . "$1"; set +a; env -0'
    output = subprocess.run(
        ["/bin/sh", "-ec", script, "sh", str(path)], env={}, capture_output=True, text=True, check=True
    ).stdout
    return dict(item.split("=", 1) for item in output.split("\0") if item)


def test_every_commented_setting_can_be_uncommented(tmp_path: Path) -> None:
    text = uncommented(EXAMPLE.read_text())
    written = settings_in(text)
    # Every setting the service reads optionally is listed, so there is something to uncomment.
    optional = {"CHAT_MAX_BODY_BYTES", "CHAT_THROTTLE_RATE", "HSTS_SECONDS", "GUNICORN_WORKERS", "SENTRY_DSN"}
    assert optional <= set(written)
    env_file = tmp_path / "env"
    env_file.write_text(text)

    loaded = sourced(env_file)
    # The shell sees each value exactly as written: no comment or word of it is swallowed
    # or run, and no later line is lost.
    assert {name: loaded.get(name) for name in written} == written

    # What docs/DEPLOYMENT.md has the operator replace: the key, and here the host's folders.
    replaced = {name: str(tmp_path / name.lower()) for name in PATHS} | {"SECRET_KEY": TEST_SECRET_KEY}
    settings = config.load({**loaded, **replaced})
    assert settings.max_body_bytes == 65536
    assert settings.tls is False


def test_the_example_and_the_operations_guide_trust_the_same_proxies() -> None:
    example = settings_in(EXAMPLE.read_text())
    documented = settings_in("\n".join(line.strip() for line in OPERATIONS.read_text().splitlines()))
    assert example["CHAT_TRUSTED_PROXIES"] == documented["CHAT_TRUSTED_PROXIES"] == "127.0.0.1,::1"
